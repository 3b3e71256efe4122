/**
 * The lab's TPM manufacturer CA and the EK certificates it issues (TCG EK Credential Profile):
 * files and modes, races, refusal of mismatched files, and provisioning by openTpm.
 */
import { createPublicKey, X509Certificate } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TCG_OID } from '../../tpm-sim/endorsement/ek-certificate.ts';
import { x509 } from '../../tpm-sim/endorsement/x509.ts';
import {
  InProcessTransport,
  KeyFileSource,
  loadOrCreateManufacturerCa,
  type OpenedTpm,
  openTpm,
  readEkCertificate,
  TPM_RH,
  TpmClient,
  templates,
} from '../../tpm-sim/index.ts';
import { StateError } from '../../tpm-sim/state/errors.ts';

let root: string;
const opened: OpenedTpm[] = [];

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'prtlab-ek-'));
});
afterEach(async () => {
  for (const t of opened.splice(0)) await t.close().catch(() => {});
  await rm(root, { recursive: true, force: true });
});

async function open(dataDir?: string, dir = join(root, 'tpm')): Promise<OpenedTpm> {
  const t = await openTpm({
    dir,
    keySource: new KeyFileSource(join(dir, 'sealing.key')),
    ...(dataDir ? { dataDir } : {}),
  });
  opened.push(t);
  return t;
}

async function clientOf(t: OpenedTpm): Promise<TpmClient> {
  await t.device.powerOn();
  return new TpmClient(new InProcessTransport(t.device));
}

function spkiOf(pub: ReturnType<typeof templates.ekRsaTemplate>): Buffer {
  const key =
    pub.type === 0x0001
      ? createPublicKey({
          key: { kty: 'RSA', n: (pub.unique as Buffer).toString('base64url'), e: 'AQAB' },
          format: 'jwk',
        })
      : createPublicKey({
          key: {
            kty: 'EC',
            crv: 'P-256',
            x: (pub.unique as { x: Buffer }).x.toString('base64url'),
            y: (pub.unique as { y: Buffer }).y.toString('base64url'),
          },
          format: 'jwk',
        });
  return key.export({ type: 'spki', format: 'der' });
}

async function rc(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (err) {
    return (err as { rc: number }).rc;
  }
  return 0;
}

describe('TPM manufacturer CA', () => {
  it('is created once per data directory: private directory, 0600 key, a CA certificate', async () => {
    const data = join(root, 'data');
    const ca = await loadOrCreateManufacturerCa(data);
    expect(ca.dir).toBe(join(data, 'tpm-manufacturer'));
    expect((await stat(ca.dir)).mode & 0o777).toBe(0o700);
    expect((await stat(join(ca.dir, 'ca.key'))).mode & 0o777).toBe(0o600);
    const cert = new X509Certificate(await readFile(join(ca.dir, 'ca.pem')));
    expect(cert.ca).toBe(true);
    expect(cert.subject).toContain('CN=prtlab TPM manufacturer CA');
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(ca.certDer.equals(Buffer.from(cert.raw))).toBe(true);
    const again = await loadOrCreateManufacturerCa(data);
    expect(again.certPem).toBe(ca.certPem);
  });

  it('two processes starting at once end up with one CA', async () => {
    const data = join(root, 'data');
    const [a, b, c] = await Promise.all([
      loadOrCreateManufacturerCa(data),
      loadOrCreateManufacturerCa(data),
      loadOrCreateManufacturerCa(data),
    ]);
    expect(b.certPem).toBe(a.certPem);
    expect(c.certPem).toBe(a.certPem);
  });

  it('a key left without its certificate (a crash) gets one; a certificate of another key is refused', async () => {
    const data = join(root, 'data');
    const ca = await loadOrCreateManufacturerCa(data);
    await rm(join(ca.dir, 'ca.pem'));
    const redone = await loadOrCreateManufacturerCa(data);
    expect(redone.certPem).not.toBe(ca.certPem);
    expect(
      new X509Certificate(redone.certPem).publicKey
        .export({ type: 'spki', format: 'der' })
        .equals(new X509Certificate(ca.certPem).publicKey.export({ type: 'spki', format: 'der' })),
    ).toBe(true);

    const other = join(root, 'other');
    const otherCa = await loadOrCreateManufacturerCa(other);
    await writeFile(join(redone.dir, 'ca.pem'), otherCa.certPem);
    const err = await loadOrCreateManufacturerCa(data).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateError);
    expect((err as StateError).code).toBe('ERR_STATE_CORRUPT');
    // Nothing was replaced.
    expect(await readFile(join(redone.dir, 'ca.pem'), 'utf8')).toBe(otherCa.certPem);
  });

  it('refuses a directory others can read, and files that are not PEM', async () => {
    const data = join(root, 'data');
    await mkdir(join(data, 'tpm-manufacturer'), { recursive: true });
    await chmod(join(data, 'tpm-manufacturer'), 0o755);
    const insecure = await loadOrCreateManufacturerCa(data).catch((e: unknown) => e);
    expect((insecure as StateError).code).toBe('ERR_STATE_DIR_INSECURE');
    await chmod(join(data, 'tpm-manufacturer'), 0o700);
    await writeFile(join(data, 'tpm-manufacturer', 'ca.key'), 'not a key', { mode: 0o600 });
    const corrupt = await loadOrCreateManufacturerCa(data).catch((e: unknown) => e);
    expect((corrupt as StateError).code).toBe('ERR_STATE_CORRUPT');
  });
});

describe('EK certificates', () => {
  it('openTpm with a data directory provisions RSA and ECC EK certificates for the default EKs', async () => {
    const data = join(root, 'data');
    const t = await open(data);
    expect(t.ekCertificates.rsa).toBeDefined();
    expect(t.ekCertificates.ecc).toBeDefined();
    const ca = new X509Certificate((await loadOrCreateManufacturerCa(data)).certPem);
    const client = await clientOf(t);
    for (const [kind, template] of [
      ['rsa', templates.ekRsaTemplate()],
      ['ecc', templates.ekEccTemplate()],
    ] as const) {
      const der = await readEkCertificate(client, kind);
      expect(der?.equals(t.ekCertificates[kind]!)).toBe(true);
      const cert = new X509Certificate(der!);
      expect(cert.verify(ca.publicKey)).toBe(true);
      expect(cert.checkIssued(ca)).toBe(true);
      expect(cert.ca).toBe(false);
      // An empty subject (node reports none at all); the TPM is named in subjectAltName.
      expect(cert.subject ?? '').toBe('');
      expect(new Date(cert.validTo).getUTCFullYear()).toBe(9999);
      // The certificate holds the key the default EK template gives this TPM.
      const ek = await client.createPrimary({ hierarchy: TPM_RH.ENDORSEMENT, template });
      await client.flushContext(ek);
      expect(
        cert.publicKey.export({ type: 'spki', format: 'der' }).equals(spkiOf(ek.publicArea)),
      ).toBe(true);
      // TCG profile essentials, read with the X.509 parser.
      const parsed = new x509.X509Certificate(der!);
      expect(parsed.subject).toBe('');
      const san = parsed.getExtension(x509.SubjectAlternativeNameExtension)!;
      expect(san.critical).toBe(true);
      expect(san.names.items[0]!.type).toBe('dn');
      const dn = new x509.Name(san.names.items[0]!.value).toJSON();
      expect(dn).toEqual([
        {
          [TCG_OID.tpmManufacturer]: ['id:5052544C'],
          [TCG_OID.tpmModel]: ['prtlab sim'],
          [TCG_OID.tpmVersion]: ['id:00000001'],
        },
      ]);
      // UTF8String (tag 0x0c) values, as the profile asks.
      expect(Buffer.from(san.value).includes(Buffer.from('0c0b69643a', 'hex'))).toBe(true);
      const usage = parsed.getExtension(x509.KeyUsagesExtension)!;
      expect(usage.critical).toBe(true);
      expect(usage.usages).toBe(
        kind === 'rsa' ? x509.KeyUsageFlags.keyEncipherment : x509.KeyUsageFlags.keyAgreement,
      );
      expect(parsed.getExtension(x509.BasicConstraintsExtension)?.ca).toBe(false);
      expect(parsed.getExtension(x509.ExtendedKeyUsageExtension)?.usages).toEqual([
        TCG_OID.ekCertificate,
      ]);
    }
    // Platform indexes: the owner can read but not delete them.
    expect(await rc(client.nvUndefineSpace(0x01c00002))).toBe(0x149);
    expect((await client.nvRead(0x01c0000a, { authHandle: TPM_RH.OWNER })).length).toBeGreaterThan(
      100,
    );
  });

  it('the certificates persist: reopening the TPM does not issue new ones', async () => {
    const data = join(root, 'data');
    const first = await open(data);
    const rsa = first.ekCertificates.rsa!;
    await first.close();
    opened.splice(opened.indexOf(first), 1);
    const second = await open(data);
    expect(second.created).toBe(false);
    expect(second.ekCertificates.rsa?.equals(rsa)).toBe(true);
  });

  it('without a data directory there are none; a TPM made before gets them when opened with one', async () => {
    const first = await open();
    expect(first.ekCertificates).toEqual({});
    const client = await clientOf(first);
    expect(await readEkCertificate(client, 'rsa')).toBeUndefined();
    await first.close();
    opened.splice(opened.indexOf(first), 1);
    const second = await open(join(root, 'data'));
    expect(second.created).toBe(false);
    expect(second.ekCertificates.ecc).toBeDefined();
  });
});
