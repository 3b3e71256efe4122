/**
 * The device agent's pieces on their own: the --tpm spec, the lab clock, the certificate request
 * and certificates it builds (byte for byte against RFC 2986 / RFC 5280, and read back by node's
 * OpenSSL and by the cloud's own CSR and certificate readers), the TPM import of a session
 * key (checked against the built-in TPM and against real Entra data), the single-block KDF input,
 * sealed blobs, and the device directory's refusals.
 */
import {
  createHash,
  createHmac,
  generateKeyPairSync,
  randomBytes,
  randomUUID,
  sign,
  verify,
  X509Certificate,
} from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  computerCertificate,
  deviceCsr,
  readIssuedCertificate,
  rsaPublicKey,
} from '../../agent/certificates.ts';
import { LabClock } from '../../agent/clock.ts';
import { isAgentError } from '../../agent/errors.ts';
import { checkPrivateDir, readPrivateFile } from '../../agent/files.ts';
import { kdfa, objectName, wrapHmacKeyForImport } from '../../agent/keys/duplicate.ts';
import { seal, unseal } from '../../agent/seal.ts';
import { kdfBlockInput } from '../../agent/session-key.ts';
import { checkDeviceName, deviceDir } from '../../agent/store.ts';
import { formatTpmSpec, parseTpmSpec } from '../../agent/tpm-spec.ts';
import {
  type Authority,
  DEVICE_CA_SUBJECT,
  signCertificate,
  toAuthority,
} from '../../cloud/pki/authority.ts';
import {
  issueDeviceCertificate,
  parseCsr,
  parseOnPremDeviceCertificate,
} from '../../cloud/pki/device-cert.ts';
import { webCrypto, x509 } from '../../cloud/pki/x509.ts';
import {
  CSR_SUBJECT_CN,
  DEVICE_CERT_OID,
  decryptResponseWith,
  deriveKeyV1,
  deriveKeyV2,
  guidExtensionValue,
  kdfV2Context,
  parseJsonObject,
} from '../../protocol/index.ts';
import {
  InProcessTransport,
  type LoadedKey,
  TpmClient,
  TpmResponseError,
  templates,
} from '../../tpm-sim/client/index.ts';
import { Tpm } from '../../tpm-sim/engine/tpm.ts';
import { dayCertificate } from '../shared/cloud.ts';
import { kdfa as kdfaRef } from '../shared/formulas.ts';
import { kat } from '../shared/protocol.ts';

const h = (hex: string) => Buffer.from(hex, 'hex');

async function agentCode(p: Promise<unknown> | (() => unknown)): Promise<string | undefined> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    return isAgentError(err) ? err.code : `not an agent error: ${String(err)}`;
  }
  return undefined;
}

describe('--tpm specs', () => {
  it('reads every kind, with the TCTI defaults, and writes them back canonically', () => {
    expect(parseTpmSpec('builtin')).toEqual({ kind: 'builtin' });
    expect(parseTpmSpec('none')).toEqual({ kind: 'none' });
    expect(parseTpmSpec('swtpm')).toEqual({ kind: 'swtpm', host: '127.0.0.1', port: 2321 });
    expect(parseTpmSpec('mssim:port=2400,host=localhost')).toEqual({
      kind: 'mssim',
      host: 'localhost',
      port: 2400,
    });
    expect(parseTpmSpec('device')).toEqual({ kind: 'device', path: '/dev/tpmrm0' });
    expect(parseTpmSpec('device:/dev/tpm0')).toEqual({ kind: 'device', path: '/dev/tpm0' });
    expect(formatTpmSpec(parseTpmSpec('swtpm:port=2321'))).toBe('swtpm:host=127.0.0.1,port=2321');
  });

  it('refuses anything else with ERR_AGENT_DEVICE', async () => {
    for (const bad of [
      'floppy',
      'builtin:x',
      'swtpm:port=0',
      'swtpm:port=70000',
      'mssim:port=65535', // the platform port would be 65536
      'swtpm:port=1,port=2',
      'swtpm:colour=blue',
      'swtpm:host=a b',
      'device:relative/path',
    ]) {
      expect(await agentCode(() => parseTpmSpec(bad)), bad).toBe('ERR_AGENT_DEVICE');
    }
  });
});

describe('the lab clock', () => {
  it('runs with the real clock plus an offset that advance() moves forward, telling listeners', () => {
    let real = 1_000_000;
    const clock = new LabClock(() => real);
    const heard: number[] = [];
    const stop = clock.onAdvance(() => heard.push(clock.now()));
    expect(clock.now()).toBe(1_000_000);
    real += 5;
    clock.advance(4 * 3600_000);
    expect(clock.now()).toBe(1_000_005 + 4 * 3600_000);
    expect(heard).toEqual([1_000_005 + 4 * 3600_000]);
    stop();
    clock.advance(1);
    expect(heard).toHaveLength(1);
    expect(() => clock.advance(-1)).toThrow(RangeError);
  });
});

/**
 * Known-answer DER for a 2048-bit RSA key, where every length is fixed: the subject Name of one
 * RDN whose CN is a 36-character GUID as a UTF8String (RFC 5280 §4.1.2.4), and
 * sha256WithRSAEncryption with NULL parameters (RFC 4055 §5).
 */
const cnName = (cn: string) =>
  Buffer.concat([h('302f312d302b06035504030c24'), Buffer.from(cn, 'ascii')]);
const SHA256_WITH_RSA = h('300d06092a864886f70d01010b0500');
/** BIT STRING header of a 2048-bit signature: 257 content bytes, no unused bits. */
const SIGNATURE_BITS = h('0382010100');
/** RFC 5280 §4.1.2.5.1 UTCTime, YYMMDDHHMMSSZ. */
const utcTime = (d: Date) =>
  Buffer.concat([h('170d'), Buffer.from(`${d.toISOString().slice(2, 19).replace(/\D/g, '')}Z`)]);

describe('the certificate request and certificates the device builds', () => {
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const spki = pair.publicKey.export({ type: 'spki', format: 'der' });
  const signer = async (data: Buffer) => sign('sha256', data, pair.privateKey);
  const forger = async (data: Buffer) =>
    sign('sha256', data, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);

  it('the CSR is RFC 2986 byte for byte: version 0, the fixed DRS subject, the key, no attributes', async () => {
    const signed: Buffer[] = [];
    const csr = await deviceCsr(pair.publicKey, async (d) => {
      signed.push(d);
      return signer(d);
    });
    // CertificationRequestInfo (§4.1): 3 + 49 + 294 + 2 = 348 bytes, attributes [0] present, empty.
    const info = Buffer.concat([h('3082015c020100'), cnName(CSR_SUBJECT_CN), spki, h('a000')]);
    expect(signed).toEqual([info]);
    const signature = sign('sha256', info, pair.privateKey);
    // CertificationRequest (§4.2): 4 + 348 + 15 + 5 + 256 = 628 bytes.
    expect(
      csr.equals(Buffer.concat([h('30820274'), info, SHA256_WITH_RSA, SIGNATURE_BITS, signature])),
    ).toBe(true);
    expect(verify('sha256', info, pair.publicKey, signature)).toBe(true);
  });

  it('the CSR is what the cloud and @peculiar/x509 read: subject, key, a valid signature', async () => {
    const der = await deviceCsr(pair.publicKey, signer);
    const csr = await parseCsr(der);
    expect(csr.subject).toBe(`CN=${CSR_SUBJECT_CN}`);
    expect(csr.subjectCn).toBe(CSR_SUBJECT_CN);
    expect(csr.publicKeySpki.equals(spki)).toBe(true);
    expect(csr.nonceExtension).toBeUndefined();
    const read = new x509.Pkcs10CertificateRequest(der);
    expect(read.subject).toBe(`CN=${CSR_SUBJECT_CN}`);
    expect(Buffer.from(read.publicKey.rawData).equals(spki)).toBe(true);
    expect(read.signatureAlgorithm).toMatchObject({
      name: 'RSASSA-PKCS1-v1_5',
      hash: { name: 'SHA-256' },
    });
    expect(read.attributes).toEqual([]);
    expect(await read.verify(webCrypto)).toBe(true);
    // A signature by another key yields a request the cloud refuses (AADSTS9002313).
    await expect(parseCsr(await deviceCsr(pair.publicKey, forger))).rejects.toMatchObject({
      code: 'ERR_CLOUD_REQUEST',
    });
  });

  it('the computer certificate is RFC 5280 byte for byte: v3, self-signed, no extensions', async () => {
    const now = new Date('2026-05-01T10:11:12.345Z');
    const id = '8a2b6c4d-1e2f-4a5b-9c8d-7e6f5a4b3c2d';
    const signed: Buffer[] = [];
    const der = await computerCertificate(
      id,
      pair.publicKey,
      async (d) => {
        signed.push(d);
        return signer(d);
      },
      now,
    );
    const tbs = signed[0]!;
    expect(signed).toHaveLength(1);
    // serialNumber (§4.1.2.2): 16 octets, positive, with no leading zero octet to trim.
    expect(tbs.subarray(9, 11)).toEqual(h('0210'));
    const serial = tbs.subarray(11, 27);
    expect(serial[0]! & 0xc0).toBe(0x40);
    const name = cnName(id.toUpperCase());
    // 5 + 18 + 15 + 49 + 32 + 49 + 294 = 462 bytes, ending with the key: no extensions field.
    const expected = Buffer.concat([
      h('308201cea003020102'), // TBSCertificate, version [0] v3
      h('0210'),
      serial,
      SHA256_WITH_RSA,
      name, // issuer = subject: self-signed
      h('301e'),
      utcTime(new Date('2026-05-01T09:11:12Z')), // an hour before, to the second (§4.1.2.5)
      utcTime(new Date('2027-05-01T10:11:12Z')), // a year after
      name,
      spki,
    ]);
    expect(tbs.toString('hex')).toBe(expected.toString('hex'));
    const signature = sign('sha256', tbs, pair.privateKey);
    expect(
      der.equals(Buffer.concat([h('308202e6'), tbs, SHA256_WITH_RSA, SIGNATURE_BITS, signature])),
    ).toBe(true);
  });

  it('the computer certificate is what node and pre-creation read: CN = the device id, its key, self-signed', async () => {
    const id = '8a2b6c4d-1e2f-4a5b-9c8d-7e6f5a4b3c2d';
    const der = await computerCertificate(id, pair.publicKey, signer, new Date());
    const onPrem = parseOnPremDeviceCertificate(der);
    expect(onPrem.deviceId).toBe(id);
    expect(onPrem.der.equals(der)).toBe(true);
    const cert = new X509Certificate(der);
    expect(cert.subject).toBe(`CN=${id.toUpperCase()}`);
    expect(cert.issuer).toBe(cert.subject);
    expect(cert.publicKey.export({ type: 'spki', format: 'der' }).equals(spki)).toBe(true);
    expect(cert.verify(pair.publicKey)).toBe(true);
    expect(cert.checkIssued(cert)).toBe(true);
    expect(Date.parse(cert.validTo) - Date.parse(cert.validFrom)).toBe(
      365 * 86_400_000 + 3_600_000,
    );
    const read = new x509.X509Certificate(der);
    expect(read.signatureAlgorithm).toMatchObject({
      name: 'RSASSA-PKCS1-v1_5',
      hash: { name: 'SHA-256' },
    });
    expect(read.extensions).toEqual([]);
    // RFC 5280 §4.1.2.2: positive, 16 octets with no leading zero to trim, new each time.
    const serials = new Set<string>();
    for (let i = 0; i < 16; i++) {
      const next = await computerCertificate(id, pair.publicKey, signer, new Date());
      serials.add(new X509Certificate(next).serialNumber);
    }
    expect(serials.size).toBe(16);
    for (const serial of serials) expect(serial).toMatch(/^[4-7][0-9A-F]{31}$/);
    // Signed by another key, it is no longer self-signed, and pre-creation refuses it.
    const forged = await computerCertificate(id, pair.publicKey, forger, new Date());
    expect(() => parseOnPremDeviceCertificate(forged)).toThrow(/self-signed/);
  });

  it('the computer certificate switches to GeneralizedTime from 2050 (RFC 5280 §4.1.2.5)', async () => {
    const now = new Date('2049-12-31T23:30:00.999Z');
    const der = await computerCertificate(randomUUID(), pair.publicKey, signer, now);
    expect(der.includes(utcTime(new Date('2049-12-31T22:30:00Z')))).toBe(true);
    expect(der.includes(Buffer.concat([h('180f'), Buffer.from('20501231233000Z')]))).toBe(true);
    const cert = new X509Certificate(der);
    expect(new Date(cert.validTo).toISOString()).toBe('2050-12-31T23:30:00.000Z');
    expect(cert.verify(pair.publicKey)).toBe(true);
  });

  it('an RSA TPM public area becomes the right node key (exponent 0 means 65537)', () => {
    const jwk = pair.publicKey.export({ format: 'jwk' });
    const key = rsaPublicKey(Buffer.from(jwk.n!, 'base64url'), 0);
    expect(key.export({ format: 'jwk' })).toEqual(jwk);
  });
});

describe('the device certificate DRS issues, read by the device', () => {
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const signer = async (data: Buffer) => sign('sha256', data, pair.privateKey);
  const caKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const tenant = '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';
  const deviceId = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee';
  let deviceCa: Authority;
  beforeAll(async () => {
    deviceCa = toAuthority(
      DEVICE_CA_SUBJECT,
      await dayCertificate(caKey, DEVICE_CA_SUBJECT),
      caKey,
    );
  });

  /** A certificate from the device CA for the device key, with exactly `extensions`. */
  async function withExtensions(extensions: x509.Extension[], subject = `CN=${deviceId}`) {
    const cert = await signCertificate(deviceCa, {
      subject,
      publicKey: pair.publicKey,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 86_400_000),
      extensions,
    });
    return Buffer.from(cert.raw);
  }
  const tenantExtension = (value: Buffer) =>
    new x509.Extension(DEVICE_CERT_OID.tenantId, false, value);

  it('reads device id, tenant id, thumbprint and validity from what the cloud issues for its CSR', async () => {
    const issued = await issueDeviceCertificate(deviceCa, {
      csrDer: await deviceCsr(pair.publicKey, signer),
      deviceId,
      tenantId: tenant,
      userObjectId: '11111111-2222-4333-8444-555555555555',
      joinType: 0,
      region: 'EU',
    });
    const read = readIssuedCertificate(issued.der, pair.publicKey);
    expect(read).toMatchObject({ deviceId, tenantId: tenant });
    expect(read.der.equals(issued.der)).toBe(true);
    expect(read.thumbprint).toBe(createHash('sha1').update(issued.der).digest('hex').toUpperCase());
    expect(read.thumbprint).toBe(issued.thumbprint);
    expect(read.validFrom).toEqual(issued.notBefore);
    expect(read.validTo).toEqual(issued.notAfter);
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    expect(() => readIssuedCertificate(issued.der, other)).toThrow(/not for the device key/);
  });

  it('refuses, as ERR_AGENT_DEVICE, a certificate it cannot use', async () => {
    const good = await withExtensions([tenantExtension(guidExtensionValue(tenant))]);
    expect(readIssuedCertificate(good, pair.publicKey).tenantId).toBe(tenant);
    const refusals: [string, Buffer, RegExp][] = [
      ['no TenantId', await withExtensions([]), /no TenantId extension/],
      [
        'two TenantIds (RFC 5280 §4.2)',
        await withExtensions([
          tenantExtension(guidExtensionValue(tenant)),
          tenantExtension(guidExtensionValue(deviceId)),
        ]),
        /more than one TenantId/,
      ],
      [
        'a short GUID',
        await withExtensions([tenantExtension(h('040f'.padEnd(34, '0')))]),
        /malformed extension/,
      ],
      [
        'no OCTET STRING around the GUID',
        await withExtensions([
          tenantExtension(Buffer.from(guidExtensionValue(tenant)).fill(0x0c, 0, 1)),
        ]),
        /malformed extension/,
      ],
      [
        'a subject that is no device id',
        await withExtensions([tenantExtension(guidExtensionValue(tenant))], 'CN=laptop'),
        /does not name a device id/,
      ],
      // OpenSSL parses the first certificate and ignores what follows; the thumbprint would lie.
      ['a byte after the certificate', Buffer.concat([good, h('00')]), /exactly one DER/],
      ['two certificates', Buffer.concat([good, good]), /exactly one DER/],
      ['PEM', Buffer.from(new X509Certificate(good).toString()), /exactly one DER/],
      ['not a certificate', randomBytes(64), /does not parse/],
      ['a truncated certificate', good.subarray(0, good.length - 1), /does not parse/],
    ];
    for (const [what, der, message] of refusals) {
      expect(await agentCode(() => readIssuedCertificate(der, pair.publicKey)), what).toBe(
        'ERR_AGENT_DEVICE',
      );
      expect(() => readIssuedCertificate(der, pair.publicKey), what).toThrow(message);
    }
  });
});

describe('the session key inside the TPM', () => {
  let tpm: TpmClient;
  let srk: LoadedKey;

  beforeAll(async () => {
    const engine = new Tpm();
    await engine.powerOn();
    tpm = new TpmClient(new InProcessTransport(engine));
    srk = await tpm.createPrimary({ template: templates.eccStoragePrimary() });
  });

  afterAll(() => tpm?.close());

  async function imported(key: Buffer): Promise<LoadedKey> {
    const wrapped = wrapHmacKeyForImport(srk.publicArea, key);
    const outPrivate = await tpm.import(srk, wrapped);
    const loaded = await tpm.load(srk, { outPrivate, outPublic: wrapped.objectPublic });
    expect(loaded.name.equals(objectName(wrapped.objectPublic))).toBe(true);
    return loaded;
  }

  it("KDFa matches the test suite's own formula", () => {
    const key = randomBytes(32);
    const u = randomBytes(34);
    expect(kdfa(key, 'STORAGE', u, Buffer.alloc(0), 128)).toEqual(
      kdfaRef(key, 'STORAGE', u, Buffer.alloc(0), 128),
    );
  });

  it('imports as an HMAC key whose TPM2_HMAC equals HMAC-SHA256 under the plain key', async () => {
    const key = randomBytes(32);
    const k = await imported(key);
    try {
      const msg = Buffer.from('prtlab');
      expect((await tpm.hmac(k, msg)).equals(createHmac('sha256', key).update(msg).digest())).toBe(
        true,
      );
    } finally {
      await tpm.flushContext(k);
    }
  });

  it('a tampered duplicate does not import (TPM_RC_INTEGRITY on parameter 3)', async () => {
    const wrapped = wrapHmacKeyForImport(srk.publicArea, randomBytes(32));
    const bad = Buffer.from(wrapped.duplicate);
    bad[bad.length - 1]! ^= 1;
    const err = await tpm.import(srk, { ...wrapped, duplicate: bad }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TpmResponseError);
    expect((err as TpmResponseError).rc).toBe(0x3df);
  });

  it('[KAT] the TPM-derived key decrypts a real Entra response (prt-protocol §9 item 2)', async () => {
    const k = await imported(h(kat.session_key_hex));
    try {
      const derived = await tpm.hmac(k, kdfBlockInput(h(kat.response_ctx_hex)));
      expect(derived.toString('hex')).toBe(kat.response_derived_key_hex);
      const out = await decryptResponseWith(kat.response_jwe, async (ctx) =>
        tpm.hmac(k, kdfBlockInput(ctx)),
      );
      expect(parseJsonObject(out.plaintext, 'response')).toMatchObject({
        token_type: 'Bearer',
        refresh_token_expires_in: 1209599,
      });
    } finally {
      await tpm.flushContext(k);
    }
  });

  it('the one-block KDF input gives KDFv1 and KDFv2 exactly (§5.1, §5.2)', () => {
    const sk = randomBytes(32);
    const ctx = randomBytes(24);
    const payload = Buffer.from('{"request_nonce":"n"}');
    const mac = (context: Buffer) =>
      createHmac('sha256', sk).update(kdfBlockInput(context)).digest();
    expect(mac(ctx)).toEqual(deriveKeyV1(sk, ctx));
    expect(mac(kdfV2Context(ctx, payload))).toEqual(deriveKeyV2(sk, ctx, payload));
  });
});

describe('sealed blobs', () => {
  const key = randomBytes(32);
  const hmac = async (d: Buffer) => createHmac('sha256', key).update(d).digest();

  it('open only with the same key, domain and label; each blob has its own salt', async () => {
    const plain = Buffer.from('cache');
    const a = await seal(hmac, 'broker', plain, 'tokens');
    const b = await seal(hmac, 'broker', plain, 'tokens');
    expect(a.subarray(0, 4).toString()).toBe('PSL1');
    expect(a.equals(b)).toBe(false);
    expect((await unseal(hmac, 'broker', a, 'tokens')).equals(plain)).toBe(true);
    expect(await agentCode(unseal(hmac, 'agent', a, 'tokens'))).toBe('ERR_AGENT_DEVICE');
    expect(await agentCode(unseal(hmac, 'broker', a, 'other'))).toBe('ERR_AGENT_DEVICE');
    const otherKey = async (d: Buffer) => createHmac('sha256', randomBytes(32)).update(d).digest();
    expect(await agentCode(unseal(otherKey, 'broker', a, 'tokens'))).toBe('ERR_AGENT_DEVICE');
    expect(await agentCode(unseal(hmac, 'broker', a.subarray(0, 20), 'tokens'))).toBe(
      'ERR_AGENT_DEVICE',
    );
    await expect(seal(hmac, 'broker', plain, 'a\0b')).rejects.toThrow(TypeError);
  });
});

describe('the device directory', () => {
  let base: string;
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'prtlab-agent-dir-'));
  });
  afterAll(() => rm(base, { recursive: true, force: true }));

  it('names: letters, digits, - and _; never a path', async () => {
    expect(checkDeviceName('LAB-PC_01')).toBe('LAB-PC_01');
    for (const bad of ['', '.', '..', '../x', 'a/b', '-x', 'x'.repeat(64), 'pc 1']) {
      expect(await agentCode(() => checkDeviceName(bad)), bad).toBe('ERR_AGENT_DEVICE');
    }
    expect(deviceDir('/data', 'PC1')).toBe('/data/devices/PC1');
  });

  it('refuses a directory others can enter and a file others can read', async () => {
    const dir = join(base, 'open');
    await mkdir(dir, { mode: 0o755 });
    await chmod(dir, 0o755);
    expect(await agentCode(checkPrivateDir(dir))).toBe('ERR_AGENT_DEVICE');
    await chmod(dir, 0o700);
    await checkPrivateDir(dir);
    const file = join(dir, 'device.json');
    await writeFile(file, '{}', { mode: 0o644 });
    await chmod(file, 0o644);
    expect(await agentCode(readPrivateFile(file))).toBe('ERR_AGENT_DEVICE');
    await chmod(file, 0o600);
    expect((await readPrivateFile(file))?.toString()).toBe('{}');
    expect(await readPrivateFile(join(dir, 'missing'))).toBeUndefined();
  });
});
