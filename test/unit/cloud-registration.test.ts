/**
 * Device registration (DRS, docs/prt-protocol.md §1.4, §1.5, §2) over real HTTPS: join and
 * register with a user's DRS token (through test/prt-client, written from the protocol document),
 * hybrid join with a pre-created device and its ClientIdentity, self-deletion with a device proof,
 * and a negative test for every check. The lab CA is the only trust anchor.
 */
import 'reflect-metadata';
import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomUUID,
  sign,
  webcrypto,
  X509Certificate,
} from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_IDS, DRS_RESOURCE_URI } from '../../cloud/directory/seed.ts';
import type { Application, User } from '../../cloud/directory/types.ts';
import { isCloudError } from '../../cloud/errors.ts';
import type { CloudRequest } from '../../cloud/http/server.ts';
import { authenticateDevice, DrsNonces } from '../../cloud/registration/device-auth.ts';
import {
  CLIENT_IDENTITY_MAX_AGE_MS,
  objectIdToSid,
  peerCertificate,
} from '../../cloud/registration/index.ts';
import { coreRoutes } from '../../cloud/routes.ts';
import type { CloudHandle } from '../../cloud/server.ts';
import { issueAccessToken } from '../../cloud/token-service/access-tokens.ts';
import { signRs256 } from '../../protocol/index.ts';
import { BROKER_PLUGIN, type Device, PrtTestClient } from '../prt-client/client.ts';
import { deviceSignedJwt, rsa1Blob } from '../prt-client/crypto.ts';
import { httpsRequest } from '../prt-client/http.ts';
import {
  type JsonReply,
  startTestCloud,
  stopTestCloud,
  webCryptoKeys,
  withJson,
} from '../shared/cloud.ts';

const provider = webcrypto as unknown as NonNullable<
  Parameters<typeof x509.Pkcs10CertificateRequestGenerator.create>[1]
>;
const RSA_ALG = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
const CSR_CN = '7E980AD9-B86D-4306-9425-9AC066FB014A';
const PASSWORD = 'Correct-Horse-9';
const GLOBAL_ADMIN = '62e90394-69f5-4237-9190-012177145e10';
const DEVICE_LOCAL_ADMIN = '9f06204d-73c1-4d4c-880a-6edb90606fd8';
const OID = {
  deviceId: '1.2.840.113556.1.5.284.2',
  user: '1.2.840.113556.1.5.284.3',
  tenant: '1.2.840.113556.1.5.284.5',
  joinType: '1.2.840.113556.1.5.284.7',
};

let dir: string;
let cloud: CloudHandle;
let ca: string;
let client: PrtTestClient;
let alice: User;
let drsApp: Application;
/** Added to the cloud's clock, to issue tokens in the past or check nonces in the future. */
let skewMs = 0;
const logLines: string[] = [];

// --- helpers -------------------------------------------------------------------------------

async function call(
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: string | object } = {},
): Promise<JsonReply> {
  const body =
    opts.body === undefined || typeof opts.body === 'string'
      ? opts.body
      : JSON.stringify(opts.body);
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (body !== undefined && headers['content-type'] === undefined)
    headers['content-type'] = 'application/json';
  return withJson(
    await httpsRequest(`${cloud.url}${path}`, {
      method,
      ca,
      headers,
      ...(body !== undefined ? { body } : {}),
    }),
  );
}

/** An Entra-shaped error with this status and AADSTS number, and nothing a client should not see. */
function expectError(r: JsonReply, status: number, code: number): void {
  expect(r.status, r.body).toBe(status);
  expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
  expect(r.json.error_codes).toEqual([code]);
  expect(r.json.error_description).toMatch(new RegExp(`^AADSTS${code}: `));
  expect(r.json.trace_id).toBeTruthy();
  expect(r.body).not.toMatch(/\n\s+at |Error:|node:internal/);
}

function expectChallenge(r: JsonReply): void {
  expect(String(r.headers['www-authenticate'])).toMatch(
    new RegExp(
      `^Bearer realm="", authorization_uri="${cloud.url.replace(/[.]/g, '\\.')}/common/oauth2/authorize", error="invalid_token"`,
    ),
  );
}

async function token(
  user: User,
  opts: { resource?: Application; audience?: string; version?: 1 | 2 } = {},
): Promise<string> {
  const resource = opts.resource ?? drsApp;
  const version = opts.version ?? 1;
  const { token: t } = await issueAccessToken(cloud.services, {
    user,
    clientId: BROKER_PLUGIN,
    resource,
    ...(version === 1 ? { audience: opts.audience ?? DRS_RESOURCE_URI } : {}),
    version,
    amr: ['pwd'],
    authTime: Math.floor(Date.now() / 1000),
  });
  return t;
}

function rsaKey(bits = 2048) {
  return generateKeyPairSync('rsa', { modulusLength: bits });
}

/** Device and transport keys for request bodies, made once: RSA key generation dominates the run. */
let pooled: { dk: ReturnType<typeof rsaKey>; tk: ReturnType<typeof rsaKey> } | undefined;
function bodyKeys(fresh = false) {
  if (fresh) return { dk: rsaKey(), tk: rsaKey() };
  pooled ??= { dk: rsaKey(), tk: rsaKey() };
  return pooled;
}

/**
 * A certificate for `CN=<cn>` self-signed with `pair`, valid from `validity.pastMs` ago to
 * `validity.futureMs` ahead (by default a minute ago to a day ahead).
 */
async function selfSignedDer(
  serialNumber: string,
  cn: string,
  pair: ReturnType<typeof rsaKey>,
  validity = { pastMs: 60_000, futureMs: 86_400_000 },
): Promise<Buffer> {
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber,
      name: `CN=${cn}`,
      notBefore: new Date(Date.now() - validity.pastMs),
      notAfter: new Date(Date.now() + validity.futureMs),
      signingAlgorithm: RSA_ALG,
      keys: await webCryptoKeys(pair, RSA_ALG),
    },
    provider,
  );
  return Buffer.from(cert.rawData);
}

async function csrDer(pair: ReturnType<typeof rsaKey>, subject = `CN=${CSR_CN}`): Promise<Buffer> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    { name: subject, keys: await webCryptoKeys(pair, RSA_ALG), signingAlgorithm: RSA_ALG },
    provider,
  );
  return Buffer.from(csr.rawData);
}

/** A valid join body (JoinType 0), with `patch` applied on top. */
async function joinBody(patch: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  const { dk, tk } = bodyKeys();
  return {
    CertificateRequest: { Type: 'pkcs10', Data: (await csrDer(dk)).toString('base64') },
    TransportKey: rsa1Blob(tk.publicKey).toString('base64'),
    TargetDomain: 'contoso.test',
    DeviceType: 'Windows',
    OSVersion: '10.0.22631.4460',
    DeviceDisplayName: `LAB-${randomUUID().slice(0, 8)}`,
    JoinType: 0,
    attributes: { ReuseDevice: 'true', ReturnClientSid: 'true' },
    ...patch,
  };
}

function postJoin(body: unknown, bearer?: string, apiVersion = '2.0'): Promise<JsonReply> {
  return call('POST', `/EnrollmentServer/device/?api-version=${apiVersion}`, {
    headers: bearer === undefined ? {} : { authorization: `Bearer ${bearer}` },
    body: body as object,
  });
}

/** The .NET byte order of a GUID (first three fields little-endian), written independently. */
function dotnetGuid(guid: string): Buffer {
  const hex = guid.replaceAll('-', '');
  const b = Buffer.from(hex, 'hex');
  return Buffer.concat([
    Buffer.from(b.subarray(0, 4)).reverse(),
    Buffer.from(b.subarray(4, 6)).reverse(),
    Buffer.from(b.subarray(6, 8)).reverse(),
    b.subarray(8),
  ]);
}

function extensionValue(cert: x509.X509Certificate, oid: string): Buffer {
  const ext = cert.getExtension(oid);
  expect(ext, oid).toBeTruthy();
  return Buffer.from(ext!.value);
}

const octets = (payload: Buffer) => Buffer.concat([Buffer.of(0x04, payload.length), payload]);

/** Checks an issued device certificate against §1.4 and returns its device id. */
function checkDeviceCertificate(
  rawBody: string,
  thumbprint: string,
  want: { user: string; joinType: '0' | '1' },
): string {
  const der = Buffer.from(rawBody, 'base64');
  expect(thumbprint).toBe(createHash('sha1').update(der).digest('hex').toUpperCase());
  const cert = new x509.X509Certificate(der);
  const m = /^CN=([0-9a-f-]{36})$/.exec(cert.subject);
  expect(m, cert.subject).toBeTruthy();
  const deviceId = m![1]!;
  expect(cert.issuer).toBe('CN=MS-Organization-Access');
  const node = new X509Certificate(der);
  expect(node.verify(cloud.services.deviceCa.cert.publicKey)).toBe(true);
  expect(extensionValue(cert, OID.deviceId)).toEqual(octets(dotnetGuid(deviceId)));
  expect(extensionValue(cert, OID.user)).toEqual(octets(dotnetGuid(want.user)));
  expect(extensionValue(cert, OID.tenant)).toEqual(octets(dotnetGuid(cloud.tenant.id)));
  expect(extensionValue(cert, OID.joinType)).toEqual(octets(Buffer.from(want.joinType)));
  return deviceId;
}

async function newUser(name: string): Promise<User> {
  return cloud.directory.users.create({
    upn: `${name}-${randomUUID().slice(0, 6)}@${cloud.tenant.domain}`,
    password: PASSWORD,
  });
}

/** An hour-long PRT record for alice on `deviceId`, for checking that it is revoked. */
async function prtRecord(deviceId: string) {
  const now = Math.floor(Date.now() / 1000);
  return cloud.directory.tokens.add({
    kind: 'prt',
    userId: alice.id,
    deviceId,
    clientId: BROKER_PLUGIN,
    issuedAt: now,
    expiresAt: now + 3600,
  });
}

async function registeredDevice(joinType: 0 | 4 = 0): Promise<Device> {
  const { device, response } = await client.registerDevice(await token(alice), joinType);
  expect(response.status, response.body).toBe(200);
  return device;
}

// --- set-up --------------------------------------------------------------------------------

beforeAll(async () => {
  ({ dir, cloud, ca } = await startTestCloud('prtlab-drs-', {
    routes: coreRoutes(),
    clock: () => new Date(Date.now() + skewMs),
    log: (l) => logLines.push(l),
  }));
  client = new PrtTestClient({ baseUrl: cloud.url, tenant: 'common', ca });
  alice = await cloud.directory.users.create({
    upn: `alice@${cloud.tenant.domain}`,
    password: PASSWORD,
    displayName: 'Alice',
  });
  drsApp = (await cloud.directory.applications.findResource(DRS_RESOURCE_URI))!;
  expect(drsApp.appId).toBe(APP_IDS.deviceRegistrationService);
}, 60_000);

afterAll(async () => {
  await stopTestCloud(cloud, dir);
  // Tokens, keys and bodies never reach the log.
  // (JWTs start eyJ, DER certificates and CSRs MII, RSA1 blobs UlNBMQ in base64.)
  expect(logLines.join('\n')).not.toMatch(/eyJ[\w-]{8}|MII[\w+/]{8}|UlNBMQ|-----BEGIN/);
});

// --- join and register ---------------------------------------------------------------------

describe('POST /EnrollmentServer/device/ (join and register, §2)', () => {
  it('joins a device (JoinType 0): certificate per §1.4, user, membership changes, device record', async () => {
    const { device, response } = await client.registerDevice(await token(alice), 0);
    expect(response.status, response.body).toBe(200);
    const out = JSON.parse(response.body);
    const deviceId = checkDeviceCertificate(out.Certificate.RawBody, out.Certificate.Thumbprint, {
      user: alice.id,
      joinType: '1',
    });
    expect(deviceId).toBe(device.deviceId);
    expect(out.User).toEqual({ Upn: alice.upn });
    // Global Administrator's SID worked out by hand: the four LE u32 of its .NET GUID bytes.
    expect(objectIdToSid(GLOBAL_ADMIN)).toBe('S-1-12-1-1659437972-1110927861-553750673-274601079');
    expect(out.MembershipChanges).toEqual([
      {
        LocalSID: 'S-1-5-32-544',
        AddSIDs: [objectIdToSid(GLOBAL_ADMIN), objectIdToSid(DEVICE_LOCAL_ADMIN)],
      },
    ]);
    const record = await cloud.directory.devices.get(deviceId);
    expect(record).toMatchObject({
      joinType: 0,
      trustType: 'AzureAd',
      state: 'registered',
      enabled: true,
      certThumbprint: out.Certificate.Thumbprint,
      registeringUserId: alice.id,
      deviceType: 'Windows',
      operatingSystem: 'Windows',
      operatingSystemVersion: '10.0.22631.4460',
    });
    expect(record!.transportKey).toEqual(rsa1Blob(createPublicKey(device.transportKey)));
    expect(await cloud.directory.devices.findByThumbprint(out.Certificate.Thumbprint)).toEqual(
      record,
    );
  });

  it('registers a device (JoinType 4): join type "0" in the certificate, trust type Workplace', async () => {
    const { device, response } = await client.registerDevice(await token(alice), 4);
    expect(response.status, response.body).toBe(200);
    const out = JSON.parse(response.body);
    checkDeviceCertificate(out.Certificate.RawBody, out.Certificate.Thumbprint, {
      user: alice.id,
      joinType: '0',
    });
    expect(await cloud.directory.devices.get(device.deviceId)).toMatchObject({
      joinType: 4,
      trustType: 'Workplace',
    });
  });

  it('accepts api-version 1.0, a v2 token whose audience is the DRS app id, and Attributes', async () => {
    const body = await joinBody({ attributes: undefined, Attributes: { ReuseDevice: true } });
    const r = await postJoin(body, await token(alice, { version: 2 }), '1.0');
    expect(r.status, r.body).toBe(200);
    // Without ReturnClientSid there are no MembershipChanges ([HB-spec] 2.1.1.1.1).
    expect(r.json.MembershipChanges).toBeUndefined();
  });

  it('ReuseDevice never reuses: the same request twice gives two devices', async () => {
    const body = await joinBody();
    const t = await token(alice);
    const a = await postJoin(body, t);
    const b = await postJoin(body, t);
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(a.json.Certificate.Thumbprint).not.toBe(b.json.Certificate.Thumbprint);
  });

  describe('the bearer token', () => {
    it('is required (401 with a Bearer challenge)', async () => {
      const r = await postJoin(await joinBody());
      expectError(r, 401, 9990301);
      expectChallenge(r);
      const basic = await call('POST', '/EnrollmentServer/device/?api-version=2.0', {
        headers: { authorization: 'Basic YWxpY2U6cHc=' },
        body: await joinBody(),
      });
      expectError(basic, 401, 9990301);
    });

    it('must be a valid JWT of this cloud', async () => {
      const r = await postJoin(await joinBody(), 'not.a.token');
      expectError(r, 401, 9990301);
      expectChallenge(r);
    });

    it('must carry the cloud signature', async () => {
      const good = await token(alice);
      const [h, p] = good.split('.') as [string, string];
      const header = JSON.parse(Buffer.from(h, 'base64url').toString());
      const payload = JSON.parse(Buffer.from(p, 'base64url').toString());
      const forged = signRs256(rsaKey().privateKey, header, payload);
      const r = await postJoin(await joinBody(), forged);
      expectError(r, 401, 9990301);
      // The token never appears in the answer.
      expect(r.body).not.toContain(forged.slice(0, 40));
    });

    it('must not be expired', async () => {
      skewMs = -3 * 3600_000;
      const old = await token(alice);
      skewMs = 0;
      expectError(await postJoin(await joinBody(), old), 401, 9990301);
    });

    it('must be for DRS', async () => {
      const graph = (await cloud.directory.applications.get(APP_IDS.microsoftGraph))!;
      const t = await token(alice, { resource: graph, audience: 'https://graph.microsoft.com' });
      const r = await postJoin(await joinBody(), t);
      expectError(r, 401, 9990301);
      expect(r.json.error_description).toMatch(/not for this resource/);
    });

    it('must name an enabled user of the directory', async () => {
      const bob = await newUser('bob');
      const t = await token(bob);
      await cloud.directory.users.setEnabled(bob.id, false);
      expectError(await postJoin(await joinBody(), t), 400, 50057);
      const ghost: User = { ...alice, id: randomUUID(), upn: `ghost@${cloud.tenant.domain}` };
      expectError(await postJoin(await joinBody(), await token(ghost)), 400, 50034);
    });
  });

  describe('the body', () => {
    let t: string;
    beforeAll(async () => {
      t = await token(alice);
    });

    it('must be JSON (AADSTS9002313)', async () => {
      expectError(await postJoin('{"CertificateRequest":', t), 400, 9002313);
      const form = await call('POST', '/EnrollmentServer/device/?api-version=2.0', {
        headers: { authorization: `Bearer ${t}`, 'content-type': 'text/plain' },
        body: JSON.stringify(await joinBody()),
      });
      expectError(form, 400, 9002313);
    });

    it('needs every required field (AADSTS90014)', async () => {
      for (const field of ['CertificateRequest', 'TransportKey', 'OSVersion', 'JoinType']) {
        const r = await postJoin(await joinBody({ [field]: undefined }), t);
        expectError(r, 400, 90014);
        expect(r.json.error_description).toContain(`'${field}'`);
      }
    });

    it('refuses wrong types, sizes and unknown members (AADSTS9990205)', async () => {
      const cases: Record<string, unknown>[] = [
        { JoinType: '0' },
        { DeviceDisplayName: 'x'.repeat(300) },
        { DeviceDisplayName: 'bad\nname' },
        { OSVersion: 42 },
        { Surprise: true },
        { PreAuthorizedJoinChallenge: 'eyJ...' },
        { attributes: { ReuseDevice: 'maybe' } },
        { attributes: { Unknown: 'true' } },
        { attributes: ['ReuseDevice'] },
        { Attributes: { ReuseDevice: 'true' } },
        { CertificateRequest: { Type: 'pkcs7', Data: 'AAAA' } },
        { TransportKey: 'A'.repeat(5000) },
      ];
      for (const patch of cases) {
        expectError(await postJoin(await joinBody(patch), t), 400, 9990205);
      }
      expectError(await postJoin([await joinBody()], t), 400, 9990205);
      expectError(await postJoin(await joinBody(), t, '3.0'), 400, 9990205);
    });

    it('refuses bad base64 (AADSTS9990201)', async () => {
      const body = await joinBody();
      const data = (body.CertificateRequest as { Data: string }).Data;
      const tk = String(body.TransportKey);
      for (const patch of [
        { CertificateRequest: { Type: 'pkcs10', Data: `${data.slice(0, 40)}\n${data.slice(40)}` } },
        { CertificateRequest: { Type: 'pkcs10', Data: 'Zm9v!A==' } },
        { TransportKey: `${tk.slice(0, 40)} ${tk.slice(40)}` },
        { TransportKey: 'QQ=' }, // wrong padding
        { TransportKey: 'QR==' }, // unused bits set: not the one canonical spelling
        { TransportKey: 'Zm9v_-8=' }, // the base64url alphabet
      ]) {
        expectError(await postJoin({ ...body, ...patch }, t), 400, 9990201);
      }
    });

    it('refuses a tampered CSR (AADSTS9990202)', async () => {
      const der = await csrDer(rsaKey());
      const tampered = Buffer.from(der);
      tampered[tampered.length - 5]! ^= 0x01; // inside the signature
      for (const bad of [tampered, der.subarray(0, 100), Buffer.from('not a csr')]) {
        const r = await postJoin(
          await joinBody({ CertificateRequest: { Type: 'pkcs10', Data: bad.toString('base64') } }),
          t,
        );
        expectError(r, 400, 9990202);
        expect(r.json.error_description).toMatch(/malformed or its signature is invalid/);
      }
      const small = await csrDer(rsaKey(1024));
      expectError(
        await postJoin(
          await joinBody({
            CertificateRequest: { Type: 'pkcs10', Data: small.toString('base64') },
          }),
          t,
        ),
        400,
        9990202,
      );
    });

    it('refuses a CSR whose subject is not the fixed CN (AADSTS9990203)', async () => {
      for (const subject of [`CN=${randomUUID()}`, `CN=${CSR_CN}, O=Contoso`]) {
        const der = await csrDer(rsaKey(), subject);
        const r = await postJoin(
          await joinBody({ CertificateRequest: { Type: 'pkcs10', Data: der.toString('base64') } }),
          t,
        );
        expectError(r, 400, 9990203);
      }
    });

    it('refuses a transport key that is not an RSA-2048 RSA1 blob (AADSTS9990204)', async () => {
      const blob = rsa1Blob(rsaKey().publicKey);
      const badMagic = Buffer.from(blob);
      badMagic.write('RSA2', 0, 'ascii');
      const withPrime = Buffer.from(blob);
      withPrime.writeUInt32LE(1, 16);
      for (const bad of [
        badMagic,
        withPrime,
        blob.subarray(0, blob.length - 1),
        rsa1Blob(rsaKey(1024).publicKey),
        Buffer.from(JSON.stringify({ kty: 'RSA', n: 'AQAB', e: 'AQAB' })), // an Android-style JWK
      ]) {
        expectError(
          await postJoin(await joinBody({ TransportKey: bad.toString('base64') }), t),
          400,
          9990204,
        );
      }
    });

    it('refuses JoinType 6 (hybrid, PUT only) and join types it does not know (AADSTS9990206)', async () => {
      const hybrid = await postJoin(await joinBody({ JoinType: 6 }), t);
      expectError(hybrid, 400, 9990206);
      expect(hybrid.json.error_description).toMatch(/PUT \/EnrollmentServer\/device/);
      for (const jt of [3, 8])
        expectError(await postJoin(await joinBody({ JoinType: jt }), t), 400, 9990206);
    });
  });
});

// --- hybrid join ---------------------------------------------------------------------------

interface OnPrem {
  id: string;
  key: KeyObject;
}

/** A computer's self-signed on-premises certificate (CN = device GUID), pre-created in the cloud. */
async function precreated(): Promise<OnPrem> {
  const id = randomUUID();
  const pair = rsaKey();
  const onPremCertificate = await selfSignedDer('01', id, pair, {
    pastMs: 86_400_000,
    futureMs: 365 * 86_400_000,
  });
  await cloud.directory.devices.precreate({
    id,
    displayName: `HYB-${id.slice(0, 6)}`,
    onPremCertificate,
  });
  return { id, key: pair.privateKey };
}

const COMPUTER_SID = 'S-1-5-21-1004336348-1177238915-682003330-1105';

function utcStamp(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

function clientIdentity(key: KeyObject, atMs = Date.now(), sid = COMPUTER_SID) {
  const text = `${sid}.${utcStamp(atMs)}`;
  return {
    Type: 'sha256signed',
    Sid: text,
    SignedBlob: sign('sha256', Buffer.from(text, 'utf8'), key).toString('base64'),
  };
}

async function hybridBody(
  device: OnPrem,
  opts: {
    identity?: unknown;
    patch?: Record<string, unknown>;
    adPatch?: Record<string, unknown>;
    freshKeys?: boolean;
  } = {},
): Promise<{ body: Record<string, unknown>; tk: ReturnType<typeof rsaKey> }> {
  const { dk, tk } = bodyKeys(opts.freshKeys);
  return {
    tk,
    body: {
      CertificateRequest: { Type: 'pkcs10', Data: (await csrDer(dk)).toString('base64') },
      ServerAdJoinData: {
        TransportKey: rsa1Blob(tk.publicKey).toString('base64'),
        TargetDomain: cloud.tenant.id,
        DeviceType: 'Windows',
        OSVersion: '10.0.19041.928',
        DeviceDisplayName: 'HYB-PC01',
        TargetDomainId: cloud.tenant.id,
        ClientIdentity: opts.identity ?? clientIdentity(device.key),
        ...(opts.adPatch ?? {}),
      },
      JoinType: 6,
      attributes: { ReuseDevice: 'true', ReturnClientSid: 'true' },
      ...(opts.patch ?? {}),
    },
  };
}

function putJoin(id: string, body: unknown, apiVersion = '2.0'): Promise<JsonReply> {
  return call('PUT', `/EnrollmentServer/device/${id}?api-version=${apiVersion}`, {
    body: body as object,
  });
}

describe('PUT /EnrollmentServer/device/{id} (hybrid join, §1.5, §2)', () => {
  it('joins a pre-created device with a valid ClientIdentity and no bearer token', async () => {
    const dev = await precreated();
    const { body, tk } = await hybridBody(dev);
    const r = await putJoin(dev.id, body);
    expect(r.status, r.body).toBe(200);
    const record = (await cloud.directory.devices.get(dev.id))!;
    const deviceId = checkDeviceCertificate(
      r.json.Certificate.RawBody,
      r.json.Certificate.Thumbprint,
      {
        user: record.objectId,
        joinType: '1',
      },
    );
    expect(deviceId).toBe(dev.id);
    expect(r.json.User).toBeUndefined();
    expect(r.json.MembershipChanges[0].LocalSID).toBe('S-1-5-32-544');
    expect(record).toMatchObject({
      joinType: 6,
      trustType: 'ServerAd',
      state: 'registered',
      certThumbprint: r.json.Certificate.Thumbprint,
      displayName: 'HYB-PC01',
      operatingSystemVersion: '10.0.19041.928',
      registeringUserId: null,
    });
    expect(record.transportKey).toEqual(rsa1Blob(tk.publicKey));
  });

  it('re-joins with a new proof: new certificate, the device tokens revoked', async () => {
    const dev = await precreated();
    const first = await putJoin(dev.id, (await hybridBody(dev)).body);
    expect(first.status).toBe(200);
    const rec = await prtRecord(dev.id);
    const again = await putJoin(
      dev.id,
      (await hybridBody(dev, { identity: clientIdentity(dev.key, Date.now() - 2000) })).body,
    );
    expect(again.status, again.body).toBe(200);
    expect(again.json.Certificate.Thumbprint).not.toBe(first.json.Certificate.Thumbprint);
    expect((await cloud.directory.tokens.get(rec.id))!.revokedAt).not.toBeNull();
  });

  it('refuses a replayed ClientIdentity (AADSTS9990210)', async () => {
    const dev = await precreated();
    const identity = clientIdentity(dev.key);
    expect((await putJoin(dev.id, (await hybridBody(dev, { identity })).body)).status).toBe(200);
    // The same proof with a fresh CSR and transport key: an attacker who saw the first body.
    expectError(
      await putJoin(dev.id, (await hybridBody(dev, { identity, freshKeys: true })).body),
      400,
      9990210,
    );
  });

  it('refuses a stale or far-future ClientIdentity (AADSTS9990209)', async () => {
    const dev = await precreated();
    for (const at of [Date.now() - CLIENT_IDENTITY_MAX_AGE_MS - 60_000, Date.now() + 6 * 60_000]) {
      const r = await putJoin(
        dev.id,
        (await hybridBody(dev, { identity: clientIdentity(dev.key, at) })).body,
      );
      expectError(r, 400, 9990209);
    }
    expect((await cloud.directory.devices.get(dev.id))!.state).toBe('precreated');
  });

  it('refuses a forged ClientIdentity (AADSTS9990208)', async () => {
    const dev = await precreated();
    const other = await precreated();
    const good = clientIdentity(dev.key);
    for (const identity of [
      clientIdentity(rsaKey().privateKey), // a key that is not the computer's
      clientIdentity(other.key), // another computer's key
      { ...good, Sid: good.Sid.replace('-1105.', '-1106.') }, // the signed text changed
    ]) {
      expectError(await putJoin(dev.id, (await hybridBody(dev, { identity })).body), 400, 9990208);
    }
  });

  it('refuses a malformed ClientIdentity (AADSTS9990205, 9990201)', async () => {
    const dev = await precreated();
    const good = clientIdentity(dev.key);
    for (const identity of [
      { ...good, Type: 'sha1signed' },
      { ...good, Sid: `${COMPUTER_SID}.2024-02-30 10:00:00Z` },
      { ...good, Sid: 'not-a-sid.2024-01-01 10:00:00Z' },
      { ...good, Sid: COMPUTER_SID },
      { ...good, Extra: 1 },
    ]) {
      expectError(await putJoin(dev.id, (await hybridBody(dev, { identity })).body), 400, 9990205);
    }
    expectError(
      await putJoin(
        dev.id,
        (await hybridBody(dev, { identity: { ...good, SignedBlob: '%%%=' } })).body,
      ),
      400,
      9990201,
    );
  });

  it('refuses a device that was not pre-created (AADSTS700003) or is not a hybrid device (AADSTS9990207)', async () => {
    const ghost = { id: randomUUID(), key: rsaKey().privateKey };
    const r = await putJoin(ghost.id, (await hybridBody(ghost)).body);
    expectError(r, 400, 700003);
    const joined = await registeredDevice(0);
    const asHybrid = { id: joined.deviceId, key: rsaKey().privateKey };
    expectError(await putJoin(joined.deviceId, (await hybridBody(asHybrid)).body), 400, 9990207);
  });

  it('refuses a proof made for another device (the path names the device)', async () => {
    const a = await precreated();
    const b = await precreated();
    // B's body, signed by B, sent to A's path: A's on-premises key does not verify it.
    expectError(await putJoin(a.id, (await hybridBody(b)).body), 400, 9990208);
  });

  it('refuses a disabled device, another tenant, a wrong JoinType, a bad path, a missing api-version', async () => {
    const dev = await precreated();
    await cloud.directory.devices.setEnabled(dev.id, false);
    expectError(await putJoin(dev.id, (await hybridBody(dev)).body), 400, 135011);
    const live = await precreated();
    expectError(
      await putJoin(
        live.id,
        (await hybridBody(live, { adPatch: { TargetDomainId: randomUUID() } })).body,
      ),
      400,
      90002,
    );
    expectError(
      await putJoin(live.id, (await hybridBody(live, { patch: { JoinType: 0 } })).body),
      400,
      9990206,
    );
    expectError(await putJoin('not-a-guid', (await hybridBody(live)).body), 400, 9990205);
    const noVersion = await call('PUT', `/EnrollmentServer/device/${live.id}`, {
      body: (await hybridBody(live)).body,
    });
    expectError(noVersion, 400, 9990205);
    // Top-level TransportKey belongs in ServerAdJoinData for a hybrid join.
    expectError(
      await putJoin(live.id, (await hybridBody(live, { patch: { TransportKey: 'AAAA' } })).body),
      400,
      9990205,
    );
    // The proof was not spent by the refusals: the device still joins.
    expect((await putJoin(live.id, (await hybridBody(live)).body)).status).toBe(200);
  });
});

// --- delete --------------------------------------------------------------------------------

async function drsNonce(): Promise<string> {
  const r = await call('GET', `/EnrollmentServer/nonce/${cloud.tenant.id}/?api-version=1.0`);
  expect(r.status, r.body).toBe(200);
  expect(r.json.ReponseStatus.message).toBe('Successfully created a nonce');
  return r.json.Value;
}

async function deviceProof(
  device: Pick<Device, 'deviceKey' | 'certDer'>,
  payload: Record<string, unknown> = {},
): Promise<string> {
  return deviceSignedJwt(device.deviceKey, device.certDer, {
    request_nonce: await drsNonce(),
    aud: DRS_RESOURCE_URI,
    ...payload,
  });
}

function del(id: string, proof?: string): Promise<JsonReply> {
  return call('DELETE', `/EnrollmentServer/device/${id}`, {
    headers: proof === undefined ? {} : { authorization: `Bearer ${proof}` },
  });
}

describe('LabSystemLabels (a lab convention for the device systemLabels)', () => {
  it('stores the labels a join names on the device record; a join without them has none', async () => {
    const t = await token(alice);
    const labelled = await postJoin(
      await joinBody({ LabSystemLabels: ['MicrosoftTeamsRoom', 'CloudPC'] }),
      t,
    );
    expect(labelled.status, labelled.body).toBe(200);
    const id = new X509Certificate(
      Buffer.from(labelled.json.Certificate.RawBody, 'base64'),
    ).subject.replace(/^CN=/, '');
    expect((await cloud.directory.devices.get(id))!.systemLabels).toEqual([
      'MicrosoftTeamsRoom',
      'CloudPC',
    ]);
    const plain = await postJoin(await joinBody(), t);
    const plainId = new X509Certificate(
      Buffer.from(plain.json.Certificate.RawBody, 'base64'),
    ).subject.replace(/^CN=/, '');
    expect((await cloud.directory.devices.get(plainId))!.systemLabels).toEqual([]);
  });

  it('refuses anything but an array of distinct known labels (AADSTS9990205)', async () => {
    const t = await token(alice);
    for (const bad of [
      'CloudPC',
      ['cloudpc'],
      ['CloudPC', 'CloudPC'],
      ['Compliant'],
      [7],
      {},
      [
        'SurfaceHub',
        'MicrosoftTeamsRoom',
        'AzureVirtualDesktop',
        'CloudPC',
        'MicrosoftPowerAutomate',
        'x',
      ],
    ]) {
      expectError(await postJoin(await joinBody({ LabSystemLabels: bad }), t), 400, 9990205);
    }
  });

  it('a hybrid join sets the labels too', async () => {
    const dev = await precreated();
    const { body } = await hybridBody(dev, { patch: { LabSystemLabels: ['AzureVirtualDesktop'] } });
    const r = await putJoin(dev.id, body);
    expect(r.status, r.body).toBe(200);
    expect((await cloud.directory.devices.get(dev.id))!.systemLabels).toEqual([
      'AzureVirtualDesktop',
    ]);
    const { body: bad } = await hybridBody(dev, {
      identity: clientIdentity(dev.key, Date.now() - 1000),
      patch: { LabSystemLabels: ['Windows'] },
    });
    expectError(await putJoin(dev.id, bad), 400, 9990205);
  });
});

describe('DELETE /EnrollmentServer/device/{id} (the device removes itself)', () => {
  it('serves DRS nonces on the nonce endpoint for every tenant alias', async () => {
    for (const alias of ['common', cloud.tenant.domain, cloud.tenant.id]) {
      const r = await call('GET', `/EnrollmentServer/nonce/${alias}/`);
      expect(r.status).toBe(200);
      expect(r.json.Value).toMatch(/^[A-Za-z0-9_-]{55}$/);
      expect(r.json.ReponseStatus.time).toMatch(
        /^\d{1,2}\/\d{1,2}\/\d{4} \d{1,2}:\d{2}:\d{2} [AP]M$/,
      );
    }
    expectError(await call('GET', '/EnrollmentServer/nonce/fabrikam.test/'), 400, 90002);
  });

  it('deletes the device with a device-signed proof, and its tokens are revoked', async () => {
    const device = await registeredDevice();
    const rec = await prtRecord(device.deviceId);
    const r = await del(device.deviceId, await deviceProof(device));
    expect(r.status, r.body).toBe(200);
    expect(await cloud.directory.devices.get(device.deviceId)).toBeUndefined();
    expect((await cloud.directory.tokens.get(rec.id))!.revokedAt).not.toBeNull();
    // Gone: the same device cannot authenticate again.
    expectError(await del(device.deviceId, await deviceProof(device)), 401, 9990212);
  });

  it('takes the x5c header as an array too (RFC 7515), and api-version when given', async () => {
    const device = await registeredDevice(4);
    const jwt = signRs256(
      device.deviceKey,
      { alg: 'RS256', typ: 'JWT', x5c: [device.certDer.toString('base64')] },
      { request_nonce: await drsNonce(), aud: DRS_RESOURCE_URI },
    );
    const r = await call('DELETE', `/EnrollmentServer/device/${device.deviceId}?api-version=1.0`, {
      headers: { authorization: `Bearer ${jwt}` },
    });
    expect(r.status, r.body).toBe(200);
  });

  it('refuses a request without proof (AADSTS9990211) and a malformed one (AADSTS9990212)', async () => {
    const device = await registeredDevice();
    const none = await del(device.deviceId);
    expectError(none, 401, 9990211);
    expect(none.headers['www-authenticate']).toBeTruthy();
    for (const proof of ['garbage', 'a.b.c', await token(alice)]) {
      expectError(await del(device.deviceId, proof), 401, 9990212);
    }
    expect(await cloud.directory.devices.get(device.deviceId)).toBeTruthy();
  });

  it('refuses another device (AADSTS9990213) and a stolen certificate without its key', async () => {
    const victim = await registeredDevice();
    const attacker = await registeredDevice();
    expectError(await del(victim.deviceId, await deviceProof(attacker)), 403, 9990213);
    // The victim's certificate in x5c, signed with some other key.
    const stolen = { certDer: victim.certDer, deviceKey: attacker.deviceKey };
    const r = await del(victim.deviceId, await deviceProof(stolen));
    expectError(r, 401, 9990212);
    expect(r.json.error_description).toMatch(/signature is invalid/);
    expect(await cloud.directory.devices.get(victim.deviceId)).toBeTruthy();
  });

  it('refuses a certificate the device CA did not issue, or one that was replaced', async () => {
    const device = await registeredDevice();
    const pair = rsaKey();
    const fake = {
      certDer: await selfSignedDer('02', device.deviceId, pair),
      deviceKey: pair.privateKey,
    };
    const r = await del(device.deviceId, await deviceProof(fake));
    expectError(r, 401, 9990212);
    expect(r.json.error_description).toMatch(/not issued by this tenant/);
    // A certificate that is no longer the device's current one (e.g. after a re-join).
    await cloud.directory.devices.update(device.deviceId, { certThumbprint: 'A'.repeat(40) });
    expectError(await del(device.deviceId, await deviceProof(device)), 401, 9990212);
  });

  it('refuses a wrong audience, a forged, reused or expired nonce', async () => {
    const device = await registeredDevice();
    const other = await registeredDevice();
    expectError(
      await del(device.deviceId, await deviceProof(device, { aud: 'https://graph.microsoft.com' })),
      401,
      9990212,
    );
    const forged = Buffer.alloc(41, 7).toString('base64url');
    const f = await del(device.deviceId, await deviceProof(device, { request_nonce: forged }));
    expectError(f, 401, 9990212);
    expect(f.json.error_description).toMatch(/not issued by this service/);
    expectError(
      await del(device.deviceId, await deviceProof(device, { request_nonce: undefined })),
      401,
      9990212,
    );
    // A nonce is spent even by a refused request: used for the wrong device, then for the right one.
    const n = await drsNonce();
    expectError(
      await del(other.deviceId, await deviceProof(device, { request_nonce: n })),
      403,
      9990213,
    );
    const reused = await del(device.deviceId, await deviceProof(device, { request_nonce: n }));
    expectError(reused, 401, 9990212);
    expect(reused.json.error_description).toMatch(/already used/);
    const stale = await deviceProof(device);
    skewMs = 11 * 60_000;
    try {
      const r = await del(device.deviceId, stale);
      expectError(r, 401, 9990212);
      expect(r.json.error_description).toMatch(/expired/);
    } finally {
      skewMs = 0;
    }
    expect((await del(device.deviceId, await deviceProof(device))).status).toBe(200);
  });

  it('refuses a disabled device (AADSTS135011)', async () => {
    const device = await registeredDevice();
    await cloud.directory.devices.setEnabled(device.deviceId, false);
    expectError(await del(device.deviceId, await deviceProof(device)), 400, 135011);
  });

  it('only DELETE and PUT exist on a device path (405 with Allow)', async () => {
    const r = await call('GET', `/EnrollmentServer/device/${randomUUID()}`);
    expectError(r, 405, 900561);
    expect(r.headers.allow).toBe('PUT, DELETE');
  });
});

describe('TLS client-certificate authentication (used when the front requests certificates)', () => {
  function fakeRequest(raw: Buffer | undefined): CloudRequest {
    return {
      headers: {},
      socket: { getPeerCertificate: () => (raw ? { raw } : {}) },
    } as unknown as CloudRequest;
  }

  it('reads the peer certificate only when the handshake carried one', () => {
    expect(peerCertificate(fakeRequest(undefined).socket)).toBeUndefined();
    expect(peerCertificate(fakeRequest(Buffer.from('x')).socket)).toEqual(Buffer.from('x'));
  });

  it('authenticates the device whose current certificate the client presented', async () => {
    const device = await registeredDevice();
    const nonces = new DrsNonces();
    const found = await authenticateDevice(fakeRequest(device.certDer), cloud.services, nonces);
    expect(found.id).toBe(device.deviceId);
    // A certificate from elsewhere is refused even though TLS proved its key.
    const pair = rsaKey();
    const foreign = await selfSignedDer('03', device.deviceId, pair);
    const err = await authenticateDevice(fakeRequest(foreign), cloud.services, nonces).catch(
      (e: unknown) => e,
    );
    expect(isCloudError(err) && err.aadsts).toBe(9990212);
  });
});
