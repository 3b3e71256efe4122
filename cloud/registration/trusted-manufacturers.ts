/**
 * The TPM manufacturer CAs DRS trusts for attested registration (attestation.ts): every
 * certificate in `<data>/cloud/trusted-tpm-manufacturers/*.pem`, plus the lab's own manufacturer
 * CA `<data>/tpm-manufacturer/ca.pem` when the TPMs (tpm-sim's `openTpm({ dataDir })`, `prtlab
 * tpm serve`) share the cloud's data directory. The path of the lab CA is written here rather than
 * imported: cloud/ never imports tpm-sim, device and cloud meet only on the wire (README, "The TPM").
 *
 * Read at each attested registration (a few small files), so `prtlab cloud trust-tpm-ca` applies
 * without a restart. Bounded: at most MAX_FILES files of at most MAX_FILE_BYTES; symbolic links,
 * non-CA certificates and unparsable files are skipped (the log says which), never trusted.
 */
import { X509Certificate } from 'node:crypto';
import { copyFile, lstat, mkdir, readdir, readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { CloudStateError } from '../errors.ts';

/** The directory of trusted manufacturer CA files, inside the cloud directory. */
export const TRUSTED_TPM_MANUFACTURERS_DIR = 'trusted-tpm-manufacturers';
/** tpm-sim's manufacturer CA certificate, relative to the data directory (MANUFACTURER_CA_CERT). */
export const LAB_MANUFACTURER_CA = join('tpm-manufacturer', 'ca.pem');
const MAX_FILES = 64;
const MAX_FILE_BYTES = 64 * 1024;

export interface TrustedManufacturer {
  readonly cert: X509Certificate;
  /** Where it came from (a file name), for the device record's reason. */
  readonly source: string;
}

const PEM = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

async function readPemFile(path: string, log: (l: string) => void): Promise<X509Certificate[]> {
  let st: Awaited<ReturnType<typeof lstat>>;
  try {
    st = await lstat(path);
  } catch {
    return [];
  }
  if (!st.isFile() || st.size > MAX_FILE_BYTES) {
    log(`drs: skipped trusted TPM manufacturer file ${basename(path)} (not a regular small file)`);
    return [];
  }
  const text = await readFile(path, 'utf8');
  const out: X509Certificate[] = [];
  for (const block of text.match(PEM) ?? []) {
    try {
      const cert = new X509Certificate(block);
      if (cert.ca) out.push(cert);
      else log(`drs: skipped a non-CA certificate in ${basename(path)}`);
    } catch {
      log(`drs: skipped an unparsable certificate in ${basename(path)}`);
    }
  }
  return out;
}

/** The trusted manufacturer CAs for a cloud whose directory is `cloudRoot` (`<data>/cloud`). */
export async function trustedManufacturers(
  cloudRoot: string,
  log: (line: string) => void = () => {},
): Promise<TrustedManufacturer[]> {
  const out: TrustedManufacturer[] = [];
  for (const cert of await readPemFile(join(dirname(cloudRoot), LAB_MANUFACTURER_CA), log)) {
    out.push({ cert, source: LAB_MANUFACTURER_CA });
  }
  const dir = join(cloudRoot, TRUSTED_TPM_MANUFACTURERS_DIR);
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.pem')).sort();
  } catch {
    return out;
  }
  for (const name of names.slice(0, MAX_FILES)) {
    for (const cert of await readPemFile(join(dir, name), log)) {
      out.push({ cert, source: `${TRUSTED_TPM_MANUFACTURERS_DIR}/${name}` });
    }
  }
  return out;
}

/**
 * `prtlab cloud trust-tpm-ca FILE`: copies a PEM CA certificate into the trusted directory (0700),
 * named by its SHA-256 fingerprint. Refuses a file that is not one CA certificate.
 */
export async function addTrustedManufacturer(cloudRoot: string, file: string): Promise<string> {
  const certs = await readPemFile(file, () => {});
  if (certs.length !== 1) {
    throw new CloudStateError(
      `${file} must hold exactly one PEM CA certificate (basicConstraints CA)`,
    );
  }
  const dir = join(cloudRoot, TRUSTED_TPM_MANUFACTURERS_DIR);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const target = join(dir, `${certs[0]!.fingerprint256.replaceAll(':', '').toLowerCase()}.pem`);
  await copyFile(file, target);
  return target;
}
