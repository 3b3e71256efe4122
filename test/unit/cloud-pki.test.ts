import { createHash, generateKeyPairSync, type KeyObject, X509Certificate } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CloudPaths, ensureCloudDirs } from '../../cloud/data-dir.ts';
import { isCloudError } from '../../cloud/errors.ts';
import { certificateThumbprint, loadOrCreateAuthorities } from '../../cloud/pki/authority.ts';
import {
  issueDeviceCertificate,
  parseCsr,
  parseOnPremDeviceCertificate,
} from '../../cloud/pki/device-cert.ts';
import { ensureServerCertificate } from '../../cloud/pki/server-cert.ts';
import { loadOrCreateSigningKey, rsaJwkThumbprint } from '../../cloud/pki/signing-key.ts';
import { webCrypto, x509 } from '../../cloud/pki/x509.ts';
import {
  readAsciiExtensionValue,
  readGuidExtensionValue,
} from '../../protocol/device-certificate.ts';
import { dayCertificate, webCryptoKeys } from '../shared/cloud.ts';

const CSR_SUBJECT = 'CN=7E980AD9-B86D-4306-9425-9AC066FB014A';
const RSA = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as const;

async function makeCsr(
  options: { bits?: number; ec?: boolean; subject?: string } = {},
): Promise<{ der: Buffer; publicKey: KeyObject }> {
  const pair = options.ec
    ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : generateKeyPairSync('rsa', { modulusLength: options.bits ?? 2048 });
  const alg = options.ec ? { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } : RSA;
  const keys = await webCryptoKeys(pair, alg);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    { name: options.subject ?? CSR_SUBJECT, keys: keys as never, signingAlgorithm: alg },
    webCrypto,
  );
  return { der: Buffer.from(csr.rawData), publicKey: pair.publicKey };
}

/** .NET Guid.ToByteArray() order, written out by hand for a fixed GUID. */
const FIXED_GUID = '00112233-4455-6677-8899-aabbccddeeff';
const FIXED_GUID_DOTNET = Buffer.from('33221100554477668899aabbccddeeff', 'hex');

let dir: string;
let paths: CloudPaths;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'prtlab-cloud-pki-'));
  paths = await ensureCloudDirs(dir);
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('lab CA and device CA', () => {
  it('are created once with private keys at 0600, then reused', async () => {
    const first = await loadOrCreateAuthorities(paths);
    expect(first.created).toBe(true);
    expect(first.labCa.cert.ca).toBe(true);
    expect(first.deviceCa.cert.subject).toBe('CN=MS-Organization-Access');
    expect(first.deviceCa.privateKey.asymmetricKeyType).toBe('rsa');
    for (const key of [paths.labCaKey, paths.deviceCaKey]) {
      expect((await stat(key)).mode & 0o777).toBe(0o600);
    }
    expect((await stat(paths.caDir)).mode & 0o777).toBe(0o700);
    const second = await loadOrCreateAuthorities(paths);
    expect(second.created).toBe(false);
    expect(second.labCa.certDer.equals(first.labCa.certDer)).toBe(true);
    expect(second.deviceCa.certDer.equals(first.deviceCa.certDer)).toBe(true);
  });

  it('come out the same when two callers create them at once', async () => {
    const [a, b] = await Promise.all([
      loadOrCreateAuthorities(paths),
      loadOrCreateAuthorities(paths),
    ]);
    expect(a.labCa.certDer.equals(b.labCa.certDer)).toBe(true);
    expect([a.created, b.created].filter(Boolean)).toHaveLength(1);
    expect((await readFile(paths.labCaCert)).toString()).toBe(a.labCa.certPem);
  });

  it('refuse a key that group or others can read, a symlinked key, and an incomplete CA', async () => {
    await loadOrCreateAuthorities(paths);
    await chmod(paths.labCaKey, 0o640);
    const loose = await loadOrCreateAuthorities(paths).catch((e: unknown) => e);
    expect(isCloudError(loose, 'ERR_CLOUD_STATE')).toBe(true);
    expect(String((loose as Error).message)).toContain('chmod 600');
    await chmod(paths.labCaKey, 0o600);

    const real = `${paths.deviceCaKey}.real`;
    await writeFile(real, await readFile(paths.deviceCaKey), { mode: 0o600 });
    await unlink(paths.deviceCaKey);
    await symlink(real, paths.deviceCaKey);
    const linked = await loadOrCreateAuthorities(paths).catch((e: unknown) => e);
    expect(isCloudError(linked, 'ERR_CLOUD_STATE')).toBe(true);
    expect(String((linked as Error).message)).toContain('symbolic link');

    await unlink(paths.deviceCaKey);
    const incomplete = await loadOrCreateAuthorities(paths).catch((e: unknown) => e);
    expect(isCloudError(incomplete, 'ERR_CLOUD_STATE')).toBe(true);
    expect(String((incomplete as Error).message)).toContain('incomplete');
  });

  it('refuse a cloud directory that others can enter', async () => {
    await chmod(paths.root, 0o755);
    const err = await ensureCloudDirs(dir).catch((e: unknown) => e);
    expect(isCloudError(err, 'ERR_CLOUD_STATE')).toBe(true);
    expect(String((err as Error).message)).toContain('chmod 700');
  });
});

describe('server certificate and signing key', () => {
  it('reuses the server certificate until a new host name is needed', async () => {
    const { labCa } = await loadOrCreateAuthorities(paths);
    const first = await ensureServerCertificate(paths, labCa);
    expect(first.issued).toBe(true);
    expect((await stat(paths.serverPem)).mode & 0o777).toBe(0o600);
    expect((await ensureServerCertificate(paths, labCa)).issued).toBe(false);
    const wider = await ensureServerCertificate(paths, labCa, ['127.0.0.2']);
    expect(wider.issued).toBe(true);
    expect(wider.certificate.checkIP('127.0.0.2')).toBe('127.0.0.2');
    expect(wider.certificate.checkIP('::1')).toBe('::1');
    expect(wider.certificate.checkHost('localhost')).toBe('localhost');
  });

  it('computes the RFC 7638 thumbprint of the RFC example key', () => {
    const n =
      '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw';
    expect(rsaJwkThumbprint(n, 'AQAB')).toBe('NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');
  });

  it('creates the token-signing key once (0600) and keeps its kid', async () => {
    const { labCa } = await loadOrCreateAuthorities(paths);
    const first = await loadOrCreateSigningKey(paths, labCa);
    expect((await stat(paths.tokenSigningKey)).mode & 0o777).toBe(0o600);
    expect(first.alg).toBe('RS256');
    expect(first.jwk.kid).toBe(first.kid);
    expect(first.jwk).not.toHaveProperty('d');
    const again = await loadOrCreateSigningKey(paths, labCa);
    expect(again.kid).toBe(first.kid);
    expect(again.x5t).toBe(first.x5t);
    await chmod(paths.tokenSigningKey, 0o644);
    const err = await loadOrCreateSigningKey(paths, labCa).catch((e: unknown) => e);
    expect(isCloudError(err, 'ERR_CLOUD_STATE')).toBe(true);
  });
});

describe('device certificates', () => {
  const deviceId = 'C0FFEE00-1234-4DEF-8ABC-0123456789AB';
  const tenantId = 'a1b2c3d4-0000-4111-8222-333344445555';

  it('carry subject CN=<deviceId>, issuer MS-Organization-Access and the Entra extensions', async () => {
    const { deviceCa } = await loadOrCreateAuthorities(paths);
    const csr = await makeCsr();
    const issued = await issueDeviceCertificate(deviceCa, {
      csrDer: csr.der,
      deviceId,
      tenantId,
      userObjectId: FIXED_GUID,
      joinType: 0,
      region: 'EU',
    });
    const cert = new X509Certificate(issued.der);
    expect(cert.subject).toBe(`CN=${deviceId.toLowerCase()}`);
    expect(cert.issuer).toBe('CN=MS-Organization-Access');
    expect(cert.verify(deviceCa.cert.publicKey)).toBe(true);
    expect(cert.publicKey.equals(csr.publicKey)).toBe(true);
    expect(issued.thumbprint).toBe(
      createHash('sha1').update(issued.der).digest('hex').toUpperCase(),
    );
    expect(certificateThumbprint(issued.der)).toBe(issued.thumbprint);

    const parsed = new x509.X509Certificate(issued.der);
    const ext = (oid: string) => Buffer.from(parsed.getExtension(oid)!.value);
    // The user's GUID, checked byte for byte against .NET order written out by hand.
    expect(ext('1.2.840.113556.1.5.284.3')).toEqual(
      Buffer.concat([Buffer.from([0x04, 0x10]), FIXED_GUID_DOTNET]),
    );
    expect(readGuidExtensionValue(ext('1.2.840.113556.1.5.284.2'))).toBe(deviceId.toLowerCase());
    expect(readGuidExtensionValue(ext('1.2.840.113556.1.5.284.3'))).toBe(FIXED_GUID);
    expect(readGuidExtensionValue(ext('1.2.840.113556.1.5.284.5'))).toBe(tenantId);
    expect(readAsciiExtensionValue(ext('1.2.840.113556.1.5.284.7'))).toBe('1');
    expect(readAsciiExtensionValue(ext('1.2.840.113556.1.5.284.8'))).toBe('EU');
    for (const oid of ['1.2.840.113556.1.5.284.2', '1.2.840.113556.1.5.284.7']) {
      expect(parsed.getExtension(oid)!.critical).toBe(false);
    }
  });

  it('write JoinType "0" for registered devices and "1" for joined and hybrid ones', async () => {
    const { deviceCa } = await loadOrCreateAuthorities(paths);
    const { publicKey } = await makeCsr();
    for (const [joinType, expected] of [
      [4, '0'],
      [6, '1'],
    ] as const) {
      const issued = await issueDeviceCertificate(deviceCa, {
        publicKey,
        deviceId,
        tenantId,
        userObjectId: FIXED_GUID,
        joinType,
        region: 'NA',
      });
      const ext = new x509.X509Certificate(issued.der).getExtension('1.2.840.113556.1.5.284.7')!;
      expect(readAsciiExtensionValue(Buffer.from(ext.value))).toBe(expected);
    }
  });

  it('parseCsr returns the verified key and subject', async () => {
    const csr = await makeCsr();
    const parsed = await parseCsr(csr.der);
    expect(parsed.subject).toBe(CSR_SUBJECT);
    expect(parsed.subjectCn).toBe('7E980AD9-B86D-4306-9425-9AC066FB014A');
    expect(parsed.publicKey.equals(csr.publicKey)).toBe(true);
    expect(parsed.publicKeySpki.equals(csr.publicKey.export({ type: 'spki', format: 'der' }))).toBe(
      true,
    );
    expect(parsed.nonceExtension).toBeUndefined();
  });

  it('parseCsr rejects tampered, truncated, padded and wrong-key requests', async () => {
    const { der } = await makeCsr();
    const expectRefused = async (bytes: Uint8Array) => {
      const err = await parseCsr(bytes).catch((e: unknown) => e);
      expect(isCloudError(err, 'ERR_CLOUD_REQUEST')).toBe(true);
      expect((err as { aadsts: number }).aadsts).toBe(9002313);
    };
    const sigFlip = Buffer.from(der);
    sigFlip[sigFlip.length - 1]! ^= 0x01;
    await expectRefused(sigFlip);
    // A byte inside the signed subject ("7E98..." -> "7F98...").
    const subjectFlip = Buffer.from(der);
    const at = subjectFlip.indexOf(Buffer.from('7E980AD9'));
    subjectFlip[at + 1] = 'F'.charCodeAt(0);
    await expectRefused(subjectFlip);
    await expectRefused(der.subarray(0, der.length - 10));
    await expectRefused(Buffer.concat([der, Buffer.from([0])]));
    await expectRefused(Buffer.from('not a csr'));
    await expectRefused((await makeCsr({ bits: 1024 })).der);
    await expectRefused((await makeCsr({ bits: 3072 })).der);
    await expectRefused((await makeCsr({ ec: true })).der);
    const { deviceCa } = await loadOrCreateAuthorities(paths);
    const err = await issueDeviceCertificate(deviceCa, {
      csrDer: sigFlip,
      deviceId,
      tenantId,
      userObjectId: FIXED_GUID,
      joinType: 0,
      region: 'NA',
    }).catch((e: unknown) => e);
    expect(isCloudError(err, 'ERR_CLOUD_REQUEST')).toBe(true);
  });

  it('reads a hybrid device on-premises certificate (self-signed, CN = device GUID)', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const onPrem = await dayCertificate(privateKey, `CN=${deviceId}`);
    const parsed = parseOnPremDeviceCertificate(onPrem.toString());
    expect(parsed.deviceId).toBe(deviceId.toLowerCase());
    expect(parsed.thumbprint).toBe(certificateThumbprint(onPrem));
    expect(parseOnPremDeviceCertificate(onPrem.raw).deviceId).toBe(deviceId.toLowerCase());

    const notGuid = await dayCertificate(privateKey, 'CN=WORKSTATION01');
    expect(() => parseOnPremDeviceCertificate(notGuid.raw)).toThrow(/GUID/);
    const { labCa } = await loadOrCreateAuthorities(paths);
    const issuedByCa = await dayCertificate(privateKey, `CN=${deviceId}`, labCa);
    const err = (() => {
      try {
        parseOnPremDeviceCertificate(issuedByCa.raw);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(isCloudError(err, 'ERR_DIRECTORY')).toBe(true);
    expect(() => parseOnPremDeviceCertificate('garbage')).toThrow(/certificate/);
  });
});
