/**
 * Attested device registration (issue 7; docs/prt-protocol.md §2 AikCertificate/AttestationData,
 * §8): DRS checks the AK chain to a trusted TPM manufacturer CA, TPM2_Certify of the device and
 * transport keys over its own nonce, the certified Names and attributes. Every TPM structure here
 * is made by the built-in simulator (in-process, tpm-sim/index.ts) opened with the cloud's data
 * directory, so its EK certificate comes from the lab manufacturer CA the cloud trusts; a second
 * TPM on another data directory has a certificate from a CA the cloud does not trust.
 */
import 'reflect-metadata';
import { createHash, generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceCsr, rsaPublicKey } from '../../agent/certificates.ts';
import { certifyKey, createAttestationKey, ekCertificateOf } from '../../agent/keys/attestation.ts';
import { DRS_RESOURCE_URI } from '../../cloud/directory/seed.ts';
import type { User } from '../../cloud/directory/types.ts';
import { coreRoutes } from '../../cloud/routes.ts';
import type { CloudHandle } from '../../cloud/server.ts';
import { issueAccessToken } from '../../cloud/token-service/access-tokens.ts';
import { encodeRsaBlob } from '../../protocol/index.ts';
import {
  type CertifiedKeyData,
  encodeAikCertificate,
  encodeAttestationData,
  parseTpmtPublic,
} from '../../protocol/tpm-attestation.ts';
import {
  InProcessTransport,
  KeyFileSource,
  type LoadedKey,
  type OpenedTpm,
  openTpm,
  TPM_ALG,
  TPMA_OBJECT,
  TpmClient,
  templates,
} from '../../tpm-sim/index.ts';
import { marshal } from '../../tpm-sim/wire/codec.ts';
import { TPMT_PUBLIC } from '../../tpm-sim/wire/structures.ts';
import { BROKER_PLUGIN } from '../prt-client/client.ts';
import { httpsRequest } from '../prt-client/http.ts';
import { type JsonReply, startTestCloud, stopTestCloud, withJson } from '../shared/cloud.ts';

let dir: string;
let cloud: CloudHandle;
let ca: string;
let alice: User;
let scratch: string;
const opened: OpenedTpm[] = [];

/** A TPM with a device key and a transport key loaded, and its AK. */
interface DeviceTpm {
  client: TpmClient;
  dk: LoadedKey;
  tk: LoadedKey;
  ak: LoadedKey;
  ek: Buffer;
  csr: Buffer;
}

async function openLabTpm(name: string, dataDir: string): Promise<TpmClient> {
  const tpm = await openTpm({
    dir: join(scratch, name),
    keySource: new KeyFileSource(join(scratch, `${name}.key`)),
    dataDir,
  });
  opened.push(tpm);
  await tpm.device.powerOn();
  // powerOn starts the simulator (the agent's connect() does no more for the built-in TPM).
  return new TpmClient(new InProcessTransport(tpm.device));
}

/**
 * dk (RSA-2048 RSASSA) and tk (RSA-2048 OAEP-SHA1) as the agent makes them, children of an ECC
 * SRK; the SRK is flushed after loading them (children stay loaded), leaving a slot for the AK.
 */
async function deviceTpm(client: TpmClient, dkAttributes?: number): Promise<DeviceTpm> {
  const srk = await client.createPrimary({ template: templates.eccStoragePrimary() });
  const dkTemplate = templates.rsaSigningKey({ scheme: TPM_ALG.RSASSA });
  if (dkAttributes !== undefined) dkTemplate.objectAttributes = dkAttributes;
  const dk = await client.load(srk, await client.create(srk, { template: dkTemplate }));
  const tk = await client.load(
    srk,
    await client.create(srk, {
      template: templates.rsaDecryptKey({ scheme: TPM_ALG.OAEP, hashAlg: TPM_ALG.SHA1 }),
    }),
  );
  await client.flushContext(srk);
  const ak = await createAttestationKey(client);
  const ek = (await ekCertificateOf(client))!;
  const csr = await deviceCsr(keyOf(dk), async (data) => {
    const sig = await client.sign(dk, createHash('sha256').update(data).digest());
    return Buffer.from((sig.signature as { sig: Buffer }).sig);
  });
  return { client, dk, tk, ak, ek, csr };
}

function keyOf(k: LoadedKey) {
  const pub = k.publicArea!;
  return rsaPublicKey(pub.unique as Buffer, (pub.parameters as { exponent: number }).exponent);
}

async function drsNonce(): Promise<string> {
  const r = await call('GET', '/EnrollmentServer/nonce/contoso.test/?api-version=1.0');
  expect(r.status).toBe(200);
  return r.json.Value as string;
}

/** Certifications of dk and tk by the AK over `nonce` (a fresh DRS nonce by default). */
async function certify(d: DeviceTpm, nonce?: string) {
  const n = nonce ?? (await drsNonce());
  return {
    deviceKey: await certifyKey(d.client, d.dk, d.ak, n),
    transportKey: await certifyKey(d.client, d.tk, d.ak, n),
  };
}

function aikCertificate(d: DeviceTpm, certificates: Buffer[] = [d.ek]): string {
  return encodeAikCertificate({
    akPublic: marshal(TPMT_PUBLIC, d.ak.publicArea!),
    certificates,
  }).toString('base64');
}

function attestationData(c: { deviceKey: CertifiedKeyData; transportKey: CertifiedKeyData }) {
  return encodeAttestationData(c).toString('base64');
}

function body(d: DeviceTpm, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    CertificateRequest: { Type: 'pkcs10', Data: d.csr.toString('base64') },
    TransportKey: encodeRsaBlob(keyOf(d.tk)).toString('base64'),
    TargetDomain: 'contoso.test',
    DeviceType: 'Windows',
    OSVersion: '10.0.22631.4460',
    DeviceDisplayName: `LAB-${randomUUID().slice(0, 8)}`,
    JoinType: 0,
    attributes: { ReuseDevice: 'true', ReturnClientSid: 'true' },
    ...extra,
  };
}

async function attestedBody(d: DeviceTpm) {
  return body(d, {
    AikCertificate: aikCertificate(d),
    AttestationData: attestationData(await certify(d)),
  });
}

async function call(method: string, path: string, opts: { body?: object; bearer?: string } = {}) {
  const headers: Record<string, string> = {};
  if (opts.body) headers['content-type'] = 'application/json';
  if (opts.bearer) headers.authorization = `Bearer ${opts.bearer}`;
  return withJson(
    await httpsRequest(`${cloud.url}${path}`, {
      method,
      ca,
      headers,
      ...(opts.body ? { body: JSON.stringify(opts.body) } : {}),
    }),
  );
}

async function register(b: object): Promise<JsonReply> {
  const { token } = await issueAccessToken(cloud.services, {
    user: alice,
    clientId: BROKER_PLUGIN,
    resource: (await cloud.directory.applications.findResource(DRS_RESOURCE_URI))!,
    audience: DRS_RESOURCE_URI,
    version: 1,
    amr: ['pwd'],
    authTime: Math.floor(Date.now() / 1000),
  });
  return call('POST', '/EnrollmentServer/device/?api-version=2.0', { body: b, bearer: token });
}

function expectRefused(r: JsonReply, code: number, status = 400): void {
  expect(r.status, r.body).toBe(status);
  expect(r.json.error_codes).toEqual([code]);
  expect(r.json.error_description).toMatch(new RegExp(`^AADSTS${code}: `));
}

async function deviceOf(r: JsonReply) {
  const thumbprint = (r.json.Certificate as { Thumbprint: string }).Thumbprint;
  return (await cloud.directory.devices.findByThumbprint(thumbprint))!;
}

let lab: DeviceTpm;
let foreign: DeviceTpm;

beforeAll(async () => {
  ({ dir, cloud, ca } = await startTestCloud('prtlab-attest-', { routes: coreRoutes() }));
  scratch = await mkdtemp(join(tmpdir(), 'prtlab-attest-tpm-'));
  alice = await cloud.directory.users.create({
    upn: `alice@${cloud.tenant.domain}`,
    password: 'Correct-Horse-9',
  });
  // The lab TPM shares the cloud's data directory: its EK certificate is from the lab CA the
  // cloud trusts. The foreign TPM's manufacturer CA lives in another data directory.
  lab = await deviceTpm(await openLabTpm('lab', dirname(cloud.paths.root)));
  foreign = await deviceTpm(await openLabTpm('foreign', join(scratch, 'other-lab')));
}, 120_000);

afterAll(async () => {
  for (const t of opened) await t.close().catch(() => {});
  await stopTestCloud(cloud, dir);
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('attested registration (AikCertificate, AttestationData)', () => {
  it('verifies TPM-made attestation: the device is hardware-backed, and says why', async () => {
    const r = await register(await attestedBody(lab));
    expect(r.status, r.body).toBe(200);
    expect(r.json.LabAttestation).toMatchObject({ Status: 'verified', HardwareBacked: true });
    const device = await deviceOf(r);
    expect(device.hardwareBacked).toBe(true);
    expect(device.attestation.status).toBe('verified');
    expect(device.attestation.reason).toMatch(/tpm-manufacturer\/ca\.pem/);
  });

  it('records a registration without attestation as not hardware-backed', async () => {
    const r = await register(body(lab));
    expect(r.status, r.body).toBe(200);
    expect(r.json.LabAttestation).toMatchObject({ Status: 'absent', HardwareBacked: false });
    expect((await deviceOf(r)).hardwareBacked).toBe(false);
    // ROADtools sends the members as empty strings: the same as absent.
    const empty = await register(body(lab, { AikCertificate: '', AttestationData: '' }));
    expect(empty.json.LabAttestation).toMatchObject({ Status: 'absent' });
  });

  it('refuses a nonce the service did not issue, and one already spent (AADSTS9990216)', async () => {
    const forged = Buffer.alloc(41, 7).toString('base64url');
    const wrong = body(lab, {
      AikCertificate: aikCertificate(lab),
      AttestationData: attestationData(await certify(lab, forged)),
    });
    expectRefused(await register(wrong), 9990216);
    const good = await attestedBody(lab);
    expect((await register(good)).status).toBe(200);
    expectRefused(await register(good), 9990216);
  });

  it('refuses certified keys whose Names are not the CSR key and the transport key (AADSTS9990217)', async () => {
    const c = await certify(lab);
    const swapped = body(lab, {
      AikCertificate: aikCertificate(lab),
      AttestationData: attestationData({ deviceKey: c.transportKey, transportKey: c.deviceKey }),
    });
    expectRefused(await register(swapped), 9990217);
    // The right structures, but the public area sent is another key's than the one certified.
    const c2 = await certify(lab);
    const otherPublic = body(lab, {
      AikCertificate: aikCertificate(lab),
      AttestationData: attestationData({
        deviceKey: { ...c2.deviceKey, public: c2.transportKey.public },
        transportKey: c2.transportKey,
      }),
    });
    expectRefused(await register(otherPublic), 9990217);
  });

  it('refuses an EK certificate from a manufacturer CA the cloud does not trust (AADSTS9990215)', async () => {
    expectRefused(await register(await attestedBody(foreign)), 9990215);
    // The lab AK with the foreign TPM's EK certificate: the chain is checked, not just present.
    const mixed = body(lab, {
      AikCertificate: aikCertificate(lab, [foreign.ek]),
      AttestationData: attestationData(await certify(lab)),
    });
    expectRefused(await register(mixed), 9990215);
  });

  it('refuses a signature over other bytes (AADSTS9990219)', async () => {
    const c = await certify(lab);
    const resigned = body(lab, {
      AikCertificate: aikCertificate(lab),
      AttestationData: attestationData({
        deviceKey: { ...c.deviceKey, signature: c.transportKey.signature },
        transportKey: c.transportKey,
      }),
    });
    expectRefused(await register(resigned), 9990219);
    // One byte of the signed TPMS_ATTEST changed (its clock), the signature kept.
    const c2 = await certify(lab);
    const edited = Buffer.from(c2.deviceKey.attest);
    edited[edited.length - 90]! ^= 1;
    const tampered = body(lab, {
      AikCertificate: aikCertificate(lab),
      AttestationData: attestationData({
        deviceKey: { ...c2.deviceKey, attest: edited },
        transportKey: c2.transportKey,
      }),
    });
    expectRefused(await register(tampered), 9990219);
  });

  it('refuses a truncated TPMS_ATTEST, truncated members, or one member alone (AADSTS9990214)', async () => {
    const c = await certify(lab);
    const truncatedAttest = body(lab, {
      AikCertificate: aikCertificate(lab),
      AttestationData: attestationData({
        deviceKey: { ...c.deviceKey, attest: c.deviceKey.attest.subarray(0, 40) },
        transportKey: c.transportKey,
      }),
    });
    expectRefused(await register(truncatedAttest), 9990214);
    const whole = Buffer.from(attestationData(c), 'base64');
    const cut = body(lab, {
      AikCertificate: aikCertificate(lab),
      AttestationData: whole.subarray(0, whole.length - 7).toString('base64'),
    });
    expectRefused(await register(cut), 9990214);
    const aik = Buffer.from(aikCertificate(lab), 'base64');
    const cutAik = body(lab, {
      AikCertificate: aik.subarray(0, 30).toString('base64'),
      AttestationData: attestationData(c),
    });
    expectRefused(await register(cutAik), 9990214);
    expectRefused(await register(body(lab, { AikCertificate: aikCertificate(lab) })), 9990214);
  });

  it('refuses a certified device key without fixedTPM (AADSTS9990218)', async () => {
    // A duplicable key: no fixedTPM, no fixedParent; made and certified by the same lab TPM.
    const attrs = TPMA_OBJECT.sign | TPMA_OBJECT.userWithAuth | TPMA_OBJECT.sensitiveDataOrigin;
    // A second TPM on the cloud's data directory (trusted manufacturer), with its three slots free.
    const loose = await deviceTpm(await openLabTpm('loose', dirname(cloud.paths.root)), attrs);
    expect(parseTpmtPublic(marshal(TPMT_PUBLIC, loose.dk.publicArea!)).objectAttributes).toBe(
      attrs,
    );
    expectRefused(await register(await attestedBody(loose)), 9990218);
  });
});

describe('tenant setting requireHardwareBackedRegistration', () => {
  it('is off by default; on, refuses unattested registration (AADSTS9990220) and accepts attested', async () => {
    const policies = cloud.directory.policies;
    expect(await policies.requireHardwareBackedRegistration()).toBe(false);
    await policies.setRequireHardwareBackedRegistration(true);
    try {
      expect(await policies.requireHardwareBackedRegistration()).toBe(true);
      const software = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const softCsr = await deviceCsr(software.publicKey, async (data) =>
        (await import('node:crypto')).sign('sha256', data, software.privateKey),
      );
      const r = await register({
        ...body(lab),
        CertificateRequest: { Type: 'pkcs10', Data: softCsr.toString('base64') },
      });
      expectRefused(r, 9990220, 403);
      const ok = await register(await attestedBody(lab));
      expect(ok.status, ok.body).toBe(200);
      expect((await deviceOf(ok)).hardwareBacked).toBe(true);
    } finally {
      await policies.setRequireHardwareBackedRegistration(false);
    }
    expect((await register(body(lab))).status).toBe(200);
  });
});
