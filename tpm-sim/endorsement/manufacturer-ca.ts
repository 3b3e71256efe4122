/**
 * The lab's "TPM manufacturer": one CA per lab data directory that issues the EK certificate of
 * every simulated TPM made there, as a TPM vendor's CA does at the factory. A verifier (the lab
 * cloud) that trusts this CA can tell a key certified by an EK of one of the lab's TPMs from any
 * other key.
 *
 *   <data>/tpm-manufacturer/         mode 0700
 *     ca.key                          PKCS#8 PEM, ECDSA P-256, mode 0600
 *     ca.pem                          the self-signed CA certificate, mode 0644
 *
 * Both files are created atomically and only if absent (a hard link from a fsynced temporary
 * file, tpm-sim/state/atomic-write.ts), so two processes that start at once end up with the
 * same CA: the loser of each race reads the winner's file. A key without a certificate (a crash
 * between the two writes) gets its certificate on the next call; a certificate whose key does
 * not match, or files that do not parse, are an error and are never replaced, because EK
 * certificates already issued chain to them.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  X509Certificate,
} from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { atomicCreateFile } from '../state/atomic-write.ts';
import { StateError } from '../state/errors.ts';
import { errnoCode, ioError, readNoFollow } from '../state/fs-util.ts';
import { ensurePrivateDir } from '../state/state-store.ts';
import { ECDSA_P256_SHA256, webCrypto, x509 } from './x509.ts';

export const MANUFACTURER_DIR_NAME = 'tpm-manufacturer';
export const MANUFACTURER_CA_CERT = 'ca.pem';
export const MANUFACTURER_CA_KEY = 'ca.key';
export const MANUFACTURER_CA_SUBJECT = 'CN=prtlab TPM manufacturer CA, O=prtlab';

const DAY_MS = 86_400_000;
/** The CA outlives the TPMs it certifies. */
const CA_VALIDITY_DAYS = 30 * 365;
/** Certificates start a little in the past so a verifier whose clock lags still accepts them. */
export const BACKDATE_MS = 5 * 60_000;
const MAX_FILE_BYTES = 64 * 1024;

/** The CA's certificate: what a verifier needs to trust the lab's EK certificates. */
export interface ManufacturerCaCertificate {
  /** The directory holding the CA. */
  readonly dir: string;
  readonly certPem: string;
  readonly certDer: Buffer;
}

/** The CA with its signing key (stays inside tpm-sim). */
export interface ManufacturerCa extends ManufacturerCaCertificate {
  readonly cert: X509Certificate;
  readonly privateKey: KeyObject;
}

/** A random positive serial number (16 bytes, top bit clear, first byte non-zero), as hex. */
export function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes.toString('hex');
}

export async function signingKeyOf(privateKey: KeyObject) {
  return webCrypto.subtle.importKey(
    'pkcs8',
    privateKey.export({ type: 'pkcs8', format: 'der' }),
    ECDSA_P256_SHA256,
    false,
    ['sign'],
  );
}

async function selfSigned(privateKey: KeyObject): Promise<Buffer> {
  const now = Date.now();
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: MANUFACTURER_CA_SUBJECT,
      issuer: MANUFACTURER_CA_SUBJECT,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter: new Date(now + CA_VALIDITY_DAYS * DAY_MS),
      publicKey: spki,
      signingKey: await signingKeyOf(privateKey),
      signingAlgorithm: ECDSA_P256_SHA256,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(spki, false, webCrypto),
      ],
    },
    webCrypto,
  );
  return Buffer.from(cert.rawData);
}

async function readSmallFile(path: string): Promise<Buffer | undefined> {
  const bytes = await readNoFollow(path, undefined, (st) => {
    if (!st.isFile() || st.size > MAX_FILE_BYTES) {
      throw new StateError('ERR_STATE_CORRUPT', `${path} is not a CA file (size or type)`);
    }
    return st.size;
  });
  return bytes === undefined ? undefined : Buffer.from(bytes);
}

function parseKey(pem: Buffer, path: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    // The parser's message could quote key bytes; only say which file is wrong.
    throw new StateError('ERR_STATE_CORRUPT', `${path} does not hold a PEM private key`, {
      cause: err,
    });
  }
  if (key.asymmetricKeyType !== 'ec') {
    throw new StateError('ERR_STATE_CORRUPT', `${path} is not an ECDSA P-256 key`);
  }
  return key;
}

function parseCert(data: Buffer, path: string): X509Certificate {
  try {
    return new X509Certificate(data);
  } catch (err) {
    throw new StateError('ERR_STATE_CORRUPT', `${path} does not hold a certificate`, {
      cause: err,
    });
  }
}

/**
 * Loads the lab's TPM manufacturer CA from `<dataDir>/tpm-manufacturer/`, creating it on first
 * use. Fails with a StateError: ERR_STATE_DIR_INSECURE (the directory is not private to this
 * user), ERR_STATE_CORRUPT (files that do not parse or do not belong together), ERR_STATE_IO.
 */
export async function openManufacturerCa(dataDir: string): Promise<ManufacturerCa> {
  if (typeof dataDir !== 'string' || dataDir.length === 0)
    throw new TypeError('dataDir must be a non-empty path');
  const root = resolve(dataDir);
  try {
    await mkdir(root, { recursive: true, mode: 0o700 });
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') throw ioError('create data directory', root, err);
  }
  const dir = join(root, MANUFACTURER_DIR_NAME);
  await ensurePrivateDir(dir, 'TPM manufacturer directory');
  const keyPath = join(dir, MANUFACTURER_CA_KEY);
  const certPath = join(dir, MANUFACTURER_CA_CERT);

  let keyPem = await readSmallFile(keyPath);
  if (keyPem === undefined) {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = Buffer.from(privateKey.export({ type: 'pkcs8', format: 'pem' }));
    // Another process may have created it meanwhile: then its key is the CA's key.
    await atomicCreateFile(keyPath, pem, { mode: 0o600, removeStale: false });
    keyPem = await readSmallFile(keyPath);
    if (keyPem === undefined) throw new StateError('ERR_STATE_IO', `${keyPath} vanished`);
  }
  const privateKey = parseKey(keyPem, keyPath);

  let certData = await readSmallFile(certPath);
  if (certData === undefined) {
    const der = await selfSigned(privateKey);
    const pem = new x509.X509Certificate(der).toString('pem');
    await atomicCreateFile(certPath, Buffer.from(`${pem}\n`), { mode: 0o644, removeStale: false });
    certData = await readSmallFile(certPath);
    if (certData === undefined) throw new StateError('ERR_STATE_IO', `${certPath} vanished`);
  }
  const cert = parseCert(certData, certPath);
  const keyMatches = cert.publicKey
    .export({ type: 'spki', format: 'der' })
    .equals(createPublicKey(privateKey).export({ type: 'spki', format: 'der' }));
  if (!keyMatches || !cert.ca) {
    throw new StateError(
      'ERR_STATE_CORRUPT',
      `${certPath} is not the CA certificate of ${keyPath}; EK certificates issued by it would not ` +
        'chain, so it is not replaced: move the directory away to start a new manufacturer CA',
    );
  }
  return {
    dir,
    cert,
    certDer: Buffer.from(cert.raw),
    certPem: cert.toString(),
    privateKey,
  };
}

/**
 * The lab's TPM manufacturer CA certificate (created with its key on first use, in
 * `<dataDir>/tpm-manufacturer/`): the trust anchor for EK certificates of the lab's TPMs.
 */
export async function loadOrCreateManufacturerCa(
  dataDir: string,
): Promise<ManufacturerCaCertificate> {
  const ca = await openManufacturerCa(dataDir);
  return { dir: ca.dir, certPem: ca.certPem, certDer: ca.certDer };
}
