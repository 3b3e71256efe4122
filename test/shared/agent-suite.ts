/**
 * The device agent's behaviour against one TPM: run with the built-in simulator in
 * test/unit/agent-builtin.test.ts, without a TPM in test/unit/agent-none.test.ts, and against
 * Debian's swtpm in test/interop/agent-swtpm.test.ts. Each run talks to a lab cloud over HTTPS
 * (the lab CA is the only trust anchor) that shares the agent's lab clock, so that moving lab
 * time forward moves both sides; the cloud counts the srv_challenge requests it answers and can
 * be set to run ahead of the agent (to make a nonce the agent still holds stale).
 */
import { createHash, randomUUID } from 'node:crypto';
import { lstat, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addDevice,
  type DeviceAgent,
  deviceDir,
  formatStatus,
  isAgentError,
  LabClock,
  openDeviceAgent,
  removeDevice,
} from '../../agent/index.ts';
import { NONCE_REUSE_MS } from '../../agent/nonce-cache.ts';
import type { User } from '../../cloud/directory/types.ts';
import type { RouteSpec } from '../../cloud/http/server.ts';
import { addTrustedManufacturer } from '../../cloud/registration/index.ts';
import { coreRoutes } from '../../cloud/routes.ts';
import type { CloudServices } from '../../cloud/services.ts';
import { signInStoreFor } from '../../cloud/signins/registry.ts';
import { masterKeyPath } from '../../cloud/token-service/master-key.ts';
import { tokenRoutes } from '../../cloud/token-service/service.ts';
import { openRefreshToken } from '../../cloud/tokens/claims.ts';
import { deriveTokenKeys } from '../../cloud/tokens/keys.ts';
import { parseCompact } from '../../protocol/index.ts';
import { loadOrCreateManufacturerCa } from '../../tpm-sim/index.ts';
import { httpsRequest } from '../prt-client/http.ts';
import { entraError, startTestCloud, stopTestCloud, type TestCloud } from './cloud.ts';

/** The TPM a run uses, as a --tpm spec, and how to stop it afterwards. */
export interface AgentTpmTarget {
  readonly spec: string;
  /** True when the keys live in a TPM (everything but `none`). */
  readonly tpmProtected: boolean;
  /** Restarts the TPM (its transient objects are gone afterwards); see AgentSuiteOptions. */
  restart?(): Promise<void>;
  close(): Promise<void>;
}

export interface AgentSuiteOptions {
  /** The target can restart its TPM: adds the test that the agent keeps working across one. */
  readonly restartable?: boolean;
}

const PASSWORD = 'Correct-Horse-9';
const EXCHANGE = 'https://outlook.office365.com';
const ONEDRIVE = 'ab9b8c07-8f02-4f72-87fa-80105867a763';
const HOUR = 3600_000;
const DAY = 24 * HOUR;

const claimsOf = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8'));

/** Every regular file under `dir`, with its path. */
async function filesUnder(dir: string): Promise<{ path: string; bytes: Buffer }[]> {
  const out: { path: string; bytes: Buffer }[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(path)));
    else if (entry.isFile()) out.push({ path, bytes: await readFile(path) });
  }
  return out;
}

/** Paths of the files under `dir` that contain `secret` raw, as hex, base64 or base64url. */
async function filesHolding(dir: string, secret: Buffer): Promise<string[]> {
  const forms = [
    secret,
    Buffer.from(secret.toString('hex')),
    Buffer.from(secret.toString('base64')),
    Buffer.from(secret.toString('base64url')),
  ];
  return (await filesUnder(dir))
    .filter(({ bytes }) => forms.some((f) => bytes.includes(f)))
    .map(({ path }) => path);
}

export function defineAgentSuite(
  label: string,
  open: () => Promise<AgentTpmTarget>,
  options: AgentSuiteOptions = {},
): void {
  describe(`device agent with ${label}`, () => {
    let target: AgentTpmTarget;
    let tc: TestCloud;
    let services: CloudServices | undefined;
    let data: string;
    let clock: LabClock;
    let adele: User;
    let names = 0;
    /** srv_challenge requests the cloud answered. */
    let nonceRequests = 0;
    /** How far the cloud's clock runs ahead of the agent's lab clock. */
    let cloudAheadMs = 0;

    /** The token routes, counting the srv_challenge requests they answer. */
    function countingNonces(route: RouteSpec<CloudServices>): RouteSpec<CloudServices> {
      if (!route.path.endsWith('/oauth2/token')) return route;
      return {
        ...route,
        handler: async (req, context) => {
          const form = await req.form().catch(() => undefined);
          if (form?.get('grant_type') === 'srv_challenge') nonceRequests++;
          return route.handler(req, context);
        },
      };
    }

    /** The cloud's sign-in log entries with `correlationId`. */
    function signInsWith(correlationId: string) {
      if (!services) throw new Error('the cloud has no routes yet');
      return signInStoreFor(services)
        .list({ top: 10_000 })
        .value.filter((e) => e.correlationId === correlationId);
    }

    /** Adds a joined device as `user` (adele) and returns its name. */
    async function newDevice(
      extra: Partial<Parameters<typeof addDevice>[0]> = {},
      upn = adele.upn,
    ): Promise<string> {
      const name = `PC-${++names}`;
      await addDevice({
        dataDir: data,
        name,
        tpm: target.spec,
        cloudUrl: tc.cloud.url,
        cloudCaPem: tc.ca,
        user: { upn, password: PASSWORD },
        clock,
        ...extra,
      });
      return name;
    }

    async function withAgent<T>(name: string, fn: (agent: DeviceAgent) => Promise<T>): Promise<T> {
      const agent = await openDeviceAgent({ dataDir: data, name, clock });
      try {
        return await fn(agent);
      } finally {
        await agent.close();
      }
    }

    async function newUser(prefix: string): Promise<User> {
      return tc.cloud.directory.users.create({
        upn: `${prefix}-${++names}@${tc.cloud.tenant.domain}`,
        password: PASSWORD,
      });
    }

    async function expectCode(p: Promise<unknown>, code: string): Promise<unknown> {
      const err = await p.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isAgentError(err) ? err.code : err).toBe(code);
      return err;
    }

    beforeAll(async () => {
      target = await open();
      clock = new LabClock();
      tc = await startTestCloud('prtlab-agent-cloud-', {
        routes: (c) => {
          services = c;
          return [...tokenRoutes(c), ...coreRoutes(c)].map(countingNonces);
        },
        clock: () => new Date(clock.now() + cloudAheadMs),
      });
      data = await mkdtemp(join(tmpdir(), 'prtlab-agent-data-'));
      // The devices' data directory is not the cloud's: the cloud trusts the devices' lab TPM
      // manufacturer CA explicitly (what `prtlab cloud trust-tpm-ca` does).
      await loadOrCreateManufacturerCa(data);
      await addTrustedManufacturer(tc.cloud.paths.root, join(data, 'tpm-manufacturer', 'ca.pem'));
      adele = await tc.cloud.directory.users.create({
        upn: `adele@${tc.cloud.tenant.domain}`,
        password: PASSWORD,
        displayName: 'Adele Vance',
      });
    }, 120_000);

    afterAll(async () => {
      await stopTestCloud(tc?.cloud, tc?.dir);
      if (data) await rm(data, { recursive: true, force: true });
      await target?.close();
    });

    describe('device add', () => {
      it('registers a joined device whose keys the cloud now knows, in a private directory', async () => {
        const name = await newDevice();
        const dir = deviceDir(data, name);
        await withAgent(name, async (agent) => {
          const record = await tc.cloud.directory.devices.get(agent.config.deviceId);
          expect(record).toMatchObject({
            joinType: 0,
            trustType: 'AzureAd',
            displayName: name,
            operatingSystem: 'Windows',
            operatingSystemVersion: '10.0.22631',
            registeringUserId: adele.id,
          });
          expect(agent.config.tenantId).toBe(tc.cloud.tenant.id);
          const status = await agent.deviceStatus();
          expect(record!.certThumbprint).toBe(status.Thumbprint);
          expect(status).toMatchObject({
            AzureAdJoined: 'YES',
            DomainJoined: 'NO',
            WorkplaceJoined: 'NO',
            DeviceId: agent.config.deviceId,
            TenantId: tc.cloud.tenant.id,
            TpmProtected: target.tpmProtected ? 'YES' : 'NO',
            KeySignTest: 'PASSED',
            DeviceAuthStatus: 'SUCCESS',
            AzureAdPrt: 'NO',
          });
          expect(status.Tpm).toContain(target.tpmProtected ? 'TPM' : 'software keys');
          // Only the built-in simulator has an EK certificate (from the lab manufacturer CA):
          // its registration is attested; software keys and bare TPMs register without.
          const attested = target.spec === 'builtin';
          expect(status).toMatchObject({
            AttestationStatus: attested ? 'VERIFIED' : 'ABSENT',
            HardwareBacked: attested ? 'YES' : 'NO',
          });
          expect(record!.hardwareBacked).toBe(attested);
          expect(record!.attestation.status).toBe(attested ? 'verified' : 'absent');
        });
        expect((await lstat(dir)).mode & 0o777).toBe(0o700);
        for (const { path } of await filesUnder(dir)) {
          expect((await lstat(path)).mode & 0o077, path).toBe(0);
        }
      });

      it('--no-attest registers without attestation: status ABSENT, not hardware-backed', async () => {
        const name = await newDevice({ attest: false });
        await withAgent(name, async (agent) => {
          const status = await agent.deviceStatus();
          expect(status).toMatchObject({ AttestationStatus: 'ABSENT', HardwareBacked: 'NO' });
          expect(status.AttestationReason).toMatch(/no TPM attestation was presented/);
          const record = await tc.cloud.directory.devices.get(agent.config.deviceId);
          expect(record!.hardwareBacked).toBe(false);
        });
      });

      it('leaves nothing behind when the cloud refuses the registration', async () => {
        const err = await expectCode(
          addDevice({
            dataDir: data,
            name: 'REFUSED',
            tpm: target.spec,
            cloudUrl: tc.cloud.url,
            cloudCaPem: tc.ca,
            user: { upn: adele.upn, password: 'wrong-password' },
          }),
          'ERR_AGENT_CLOUD',
        );
        expect((err as { refusal: { aadsts: number } }).refusal.aadsts).toBe(50126);
        expect((await readdir(join(data, 'devices'))).filter((n) => n.includes('REFUSED'))).toEqual(
          [],
        );
      });

      it('refuses a second device of the same name', async () => {
        const name = await newDevice();
        await expectCode(
          addDevice({
            dataDir: data,
            name,
            tpm: target.spec,
            cloudUrl: tc.cloud.url,
            cloudCaPem: tc.ca,
            user: { upn: adele.upn, password: PASSWORD },
          }),
          'ERR_AGENT_DEVICE',
        );
      });
    });

    describe('sign-in and app tokens', () => {
      let name: string;
      let agent: DeviceAgent;

      beforeAll(async () => {
        name = await newDevice();
        agent = await openDeviceAgent({ dataDir: data, name, clock });
      }, 120_000);

      afterAll(() => agent?.close());

      it('signs in: a PRT for the account, status AzureAdPrt YES with update and expiry times', async () => {
        const before = clock.now();
        const account = await agent.signIn(adele.upn, PASSWORD);
        expect(account).toEqual({ id: adele.id, upn: adele.upn, tenantId: tc.cloud.tenant.id });
        expect(await agent.accounts()).toEqual([account]);
        const s = await agent.deviceStatus();
        expect(s.AzureAdPrt).toBe('YES');
        const updated = Date.parse(s.AzureAdPrtUpdateTime.replace(' UTC', 'Z'));
        const expires = Date.parse(s.AzureAdPrtExpiryTime.replace(' UTC', 'Z'));
        expect(updated).toBeGreaterThanOrEqual(before - 1);
        // 14 days from the cloud's answer (refresh_token_expires_in 1209599 s).
        expect(expires - updated).toBe(1_209_599_000);
        expect(formatStatus(s)).toMatch(/ {20}AzureAdPrt : YES\n/);
      });

      it('signs the same user in again at once (each PRT request is a new signed request)', async () => {
        const again = await agent.signIn(adele.upn, PASSWORD);
        expect(again.id).toBe(adele.id);
        expect((await agent.deviceStatus()).AzureAdPrt).toBe('YES');
      });

      it('an app token through a KDFv2 PRT-signed request: device-bound access token, bound refresh token', async () => {
        const t = await agent.acquireToken({
          accountId: adele.id,
          clientId: ONEDRIVE,
          resource: EXCHANGE,
          clientVersion: '24.1.0',
        });
        expect(claimsOf(t.accessToken)).toMatchObject({
          aud: EXCHANGE,
          appid: ONEDRIVE,
          deviceid: agent.config.deviceId,
          upn: adele.upn,
        });
        expect(t.tokenType).toBe('Bearer');
        expect(t.expiresOn).toBeGreaterThan(Math.floor(Date.now() / 1000));
        expect(t.account.id).toBe(adele.id);
        expect(t.correlationId).toMatch(/^[0-9a-f-]{36}$/);
        // The refresh token is bound: as a bearer token it is refused (AADSTS9990105) ...
        const stolen = await httpsRequest(`${tc.cloud.url}/common/oauth2/token`, {
          method: 'POST',
          ca: tc.ca,
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({
            grant_type: 'refresh_token',
            client_id: ONEDRIVE,
            refresh_token: t.refreshToken!,
            resource: EXCHANGE,
          }).toString(),
        });
        expect(entraError(stolen.body).code).toBe(9990105);
        // ... and redeemed by the agent in a request signed with the session key.
        const again = await agent.redeemRefreshToken({
          accountId: adele.id,
          clientId: ONEDRIVE,
          resource: EXCHANGE,
          refreshToken: t.refreshToken!,
        });
        expect(claimsOf(again.accessToken).deviceid).toBe(agent.config.deviceId);
        expect(again.refreshToken).toBeTruthy();
        expect(again.refreshToken).not.toBe(t.refreshToken);
      });

      it("the app's correlation id is the request's client-request-id: the answer and the sign-in log carry it", async () => {
        const id = randomUUID();
        const before = clock.now();
        const t = await agent.acquireToken({
          accountId: adele.id,
          clientId: ONEDRIVE,
          resource: EXCHANGE,
          correlationId: id,
        });
        expect(t.correlationId).toBe(id);
        expect(signInsWith(id)).toMatchObject([
          { appId: ONEDRIVE, userId: adele.id, status: { errorCode: 0 } },
        ]);
        // The bound refresh token's lifetime: 90 days from the answer (refresh_token_expires_in).
        expect(t.refreshTokenExpiresOn).toBeGreaterThanOrEqual(
          Math.floor(before / 1000) + 90 * 86400,
        );
        expect(t.refreshTokenExpiresOn).toBeLessThanOrEqual(
          Math.floor(clock.now() / 1000) + 90 * 86400,
        );
        const redeemed = randomUUID();
        const again = await agent.redeemRefreshToken({
          accountId: adele.id,
          clientId: ONEDRIVE,
          resource: EXCHANGE,
          refreshToken: t.refreshToken!,
          correlationId: redeemed,
        });
        expect(again.correlationId).toBe(redeemed);
        expect(signInsWith(redeemed)).toHaveLength(1);
        // A refusal carries it too; without one the agent makes its own.
        const refused = randomUUID();
        const err = (await expectCode(
          agent.acquireToken({
            accountId: adele.id,
            clientId: '11111111-2222-3333-4444-555555555555',
            resource: EXCHANGE,
            correlationId: refused,
          }),
          'ERR_AGENT_CLOUD',
        )) as { refusal: { correlationId: string } };
        expect(err.refusal.correlationId).toBe(refused);
        expect(signInsWith(refused)).toMatchObject([{ status: { errorCode: 700016 } }]);
        const own = await agent.acquireToken({
          accountId: adele.id,
          clientId: ONEDRIVE,
          resource: EXCHANGE,
        });
        expect(own.correlationId).not.toBe(id);
        expect(signInsWith(own.correlationId)).toHaveLength(1);
        await expect(
          agent.acquireToken({
            accountId: adele.id,
            clientId: ONEDRIVE,
            resource: EXCHANGE,
            correlationId: 'not-a-guid',
          }),
        ).rejects.toThrow(TypeError);
      });

      it('signed requests share one srv_challenge nonce; one the cloud calls stale is replaced once', async () => {
        const request = { accountId: adele.id, clientId: ONEDRIVE, resource: EXCHANGE };
        // Past the reuse window: the next request fetches, the two after it share that nonce.
        clock.advance(NONCE_REUSE_MS + 1000);
        await agent.idle();
        const before = nonceRequests;
        for (let i = 0; i < 3; i++) await agent.acquireToken(request);
        expect(nonceRequests - before).toBe(1);
        try {
          // The cloud now sees the agent's nonce as expired (AADSTS76026): the agent fetches a
          // fresh one and signs a new request, once.
          cloudAheadMs = 6 * 60_000;
          const t = await agent.acquireToken(request);
          expect(claimsOf(t.accessToken).deviceid).toBe(agent.config.deviceId);
          expect(nonceRequests - before).toBe(2);
        } finally {
          cloudAheadMs = 0;
        }
        // That nonce is now from the cloud's future beyond its skew allowance: refused, replaced.
        await agent.acquireToken(request);
        expect(nonceRequests - before).toBe(3);
        await agent.acquireToken(request);
        expect(nonceRequests - before).toBe(3);
        expect((await agent.deviceStatus()).AzureAdPrt).toBe('YES');
      });

      it('the plain session key and the PRT appear nowhere under the data directory', async () => {
        const t = await agent.acquireToken({
          accountId: adele.id,
          clientId: ONEDRIVE,
          resource: EXCHANGE,
        });
        // The cloud seals the session key into the bound refresh token: open it with the
        // cloud's own key to learn the key the agent must never have written down.
        const master = await readFile(masterKeyPath(tc.cloud.paths));
        const claims = openRefreshToken(deriveTokenKeys(master).refreshToken, t.refreshToken);
        const sessionKey = Buffer.from(claims!.bound!.sk, 'base64');
        expect(sessionKey.length).toBe(32);
        expect(await filesHolding(data, sessionKey)).toEqual([]);
        // The derived keys are per request; the refresh token itself is the broker's to keep.
        expect(await filesHolding(data, Buffer.from(t.accessToken))).toEqual([]);
        // The PRT is sealed on disk: its text is nowhere either (the cloud knows the session id).
        const accounts = JSON.parse(
          await readFile(join(deviceDir(data, name), 'accounts.json'), 'utf8'),
        );
        expect(accounts.accounts[0].prt).toMatch(/^UFNMM/); // "PSL1", the sealed-blob magic
        expect(JSON.stringify(accounts)).not.toMatch(/"refresh_token"|eyJ/);
      });

      it('v2 scopes work too, and a refused request carries the Entra error fields', async () => {
        const t = await agent.acquireToken({
          accountId: adele.id,
          clientId: ONEDRIVE,
          scopes: [`${EXCHANGE}/.default`],
        });
        // A v2 access token names its resource by app id (Exchange Online's).
        expect(claimsOf(t.accessToken).aud).toBe('00000002-0000-0ff1-ce00-000000000000');
        const err = (await expectCode(
          agent.acquireToken({
            accountId: adele.id,
            clientId: '11111111-2222-3333-4444-555555555555',
            resource: EXCHANGE,
          }),
          'ERR_AGENT_CLOUD',
        )) as { refusal: Record<string, unknown> };
        expect(err.refusal).toMatchObject({ error: 'unauthorized_client', aadsts: 700016 });
        expect(err.refusal.correlationId).toMatch(/^[0-9a-f-]{36}$/);
        // An unknown client is not the PRT's fault: the account keeps its PRT.
        expect((await agent.deviceStatus()).AzureAdPrt).toBe('YES');
      });

      it('an account without a PRT is ERR_AGENT_NO_PRT', async () => {
        await expectCode(
          agent.acquireToken({ accountId: 'nobody', clientId: ONEDRIVE, resource: EXCHANGE }),
          'ERR_AGENT_NO_PRT',
        );
      });

      it('SSO cookies for the cloud only: x-ms-RefreshTokenCredential, KDFv2, accepted by the cloud', async () => {
        expect(await agent.cookiesFor('https://example.com/')).toEqual([]);
        const [cookie, ...more] = await agent.cookiesFor(
          `${tc.cloud.url}/common/oauth2/authorize?client_id=x&sso_nonce=abc`,
        );
        expect(more).toEqual([]);
        expect(cookie).toMatchObject({ name: 'x-ms-RefreshTokenCredential', flags: 8256 });
        const parsed = parseCompact(cookie!.data);
        expect(parsed.header).toMatchObject({ alg: 'HS256', kdf_ver: 2 });
        expect(Buffer.from(String(parsed.header.ctx), 'base64').length).toBe(24);
        expect(parsed.payload).toMatchObject({ is_primary: 'true', request_nonce: 'abc' });
        // With a fresh nonce, the cloud checks the cookie's signature like any PRT-signed JWT:
        // it gets past the signature and nonce checks and only then misses a client_id.
        const [fresh] = await agent.cookiesFor(`${tc.cloud.url}/common/oauth2/authorize`);
        const post = (request: string) =>
          httpsRequest(`${tc.cloud.url}/${tc.cloud.tenant.id}/oauth2/token`, {
            method: 'POST',
            ca: tc.ca,
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams({
              grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
              request,
            }).toString(),
          });
        expect(entraError((await post(fresh!.data)).body).code).toBe(900144);
        const [h, p, sig] = fresh!.data.split('.') as [string, string, string];
        const forged = `${h}.${p}.${sig.startsWith('A') ? 'B' : 'A'}${sig.slice(1)}`;
        expect(entraError((await post(forged)).body).code).toBe(9990103);
      });

      it('seal and unseal under the device key: round trip; a tampered blob or another label is refused', async () => {
        const plain = Buffer.from('the broker cache');
        const sealed = await agent.seal(plain, 'cache');
        expect(sealed.includes(plain)).toBe(false);
        expect((await agent.unseal(sealed, 'cache')).equals(plain)).toBe(true);
        await expectCode(agent.unseal(sealed, 'other'), 'ERR_AGENT_DEVICE');
        const tampered = Buffer.from(sealed);
        tampered[tampered.length - 1]! ^= 1;
        await expectCode(agent.unseal(tampered, 'cache'), 'ERR_AGENT_DEVICE');
        // Another device (another sealing key in its TPM) cannot open it. A TPM on TCP without a
        // resource manager (swtpm) serves one connection at a time, so this agent steps aside.
        await agent.close();
        try {
          const other = await newDevice();
          await withAgent(other, (o) => expectCode(o.unseal(sealed, 'cache'), 'ERR_AGENT_DEVICE'));
        } finally {
          agent = await openDeviceAgent({ dataDir: data, name, clock });
        }
        expect((await agent.unseal(sealed, 'cache')).equals(plain)).toBe(true);
      });

      it('keeps working after a restart: the keys and the PRT come back from disk', async () => {
        await agent.close();
        agent = await openDeviceAgent({ dataDir: data, name, clock });
        expect((await agent.accounts()).map((a) => a.upn)).toEqual([adele.upn]);
        const t = await agent.acquireToken({
          accountId: adele.id,
          clientId: ONEDRIVE,
          resource: EXCHANGE,
        });
        expect(claimsOf(t.accessToken).deviceid).toBe(agent.config.deviceId);
      });

      if (options.restartable) {
        it('keeps working after the TPM restarts: the SRK and the keys are loaded again', async () => {
          const request = { accountId: adele.id, clientId: ONEDRIVE, resource: EXCHANGE };
          await agent.acquireToken(request);
          const sealed = await agent.seal(Buffer.from('across a restart'), 'restart');
          await target.restart!();
          const t = await agent.acquireToken(request);
          expect(claimsOf(t.accessToken).deviceid).toBe(agent.config.deviceId);
          expect((await agent.unseal(sealed, 'restart')).toString()).toBe('across a restart');
          expect((await agent.deviceStatus()).KeySignTest).toBe('PASSED');
        });
      }

      it('a second agent on the same device is refused while the first is open', async () => {
        const err = await openDeviceAgent({ dataDir: data, name, clock }).then(
          (a) => a.close().then(() => undefined),
          (e: unknown) => e,
        );
        expect((err as { code?: string }).code).toBe('ERR_STATE_IN_USE');
      });

      it('two accounts on one device: their session keys and the device key share the TPM slots', async () => {
        const sam = await newUser('two');
        await agent.signIn(sam.upn, PASSWORD);
        const request = (u: User) => ({ accountId: u.id, clientId: ONEDRIVE, resource: EXCHANGE });
        try {
          for (let i = 0; i < 3; i++) {
            for (const u of [adele, sam]) {
              const t = await agent.acquireToken(request(u));
              expect(claimsOf(t.accessToken).upn).toBe(u.upn);
            }
            // The device key needs a slot too (status signs a challenge with it).
            expect((await agent.deviceStatus()).KeySignTest).toBe('PASSED');
          }
          const users = [adele, sam, adele, sam];
          const tokens = await Promise.all(users.map((u) => agent.acquireToken(request(u))));
          expect(tokens.map((t) => claimsOf(t.accessToken).upn)).toEqual(users.map((u) => u.upn));
        } finally {
          await agent.signOut(sam.id);
        }
      });

      it('signOut drops the PRT', async () => {
        const sam = await newUser('sam');
        const account = await agent.signIn(sam.upn, PASSWORD);
        expect((await agent.accounts()).map((a) => a.id)).toContain(sam.id);
        await agent.signOut(account.id);
        expect((await agent.accounts()).map((a) => a.id)).not.toContain(sam.id);
        await expectCode(
          agent.acquireToken({ accountId: sam.id, clientId: ONEDRIVE, resource: EXCHANGE }),
          'ERR_AGENT_NO_PRT',
        );
      });
    });

    describe('PRT lifetime on the lab clock', () => {
      it('renews every 4 hours of lab time: on use, and as soon as lab time moves on', async () => {
        const user = await newUser('renew');
        const name = await newDevice({}, user.upn);
        await withAgent(name, async (agent) => {
          await agent.signIn(user.upn, PASSWORD);
          const first = (await agent.deviceStatus()).AzureAdPrtUpdateTime;
          clock.advance(3 * HOUR);
          await agent.idle();
          expect((await agent.deviceStatus()).AzureAdPrtUpdateTime).toBe(first);
          clock.advance(HOUR + 60_000);
          await agent.idle();
          const renewed = await agent.deviceStatus();
          expect(renewed.AzureAdPrtUpdateTime).not.toBe(first);
          expect(Date.parse(renewed.AzureAdPrtUpdateTime.replace(' UTC', 'Z'))).toBeGreaterThan(
            Date.parse(first.replace(' UTC', 'Z')) + 4 * HOUR,
          );
          // The renewed PRT works with the same session key.
          const t = await agent.acquireToken({
            accountId: user.id,
            clientId: ONEDRIVE,
            resource: EXCHANGE,
          });
          expect(claimsOf(t.accessToken).upn).toBe(user.upn);
        });
        // Renewal on use: with no listener (the agent was closed), the next token request renews.
        clock.advance(5 * HOUR);
        await withAgent(name, async (agent) => {
          const before = (await agent.deviceStatus()).AzureAdPrtUpdateTime;
          await agent.acquireToken({ accountId: user.id, clientId: ONEDRIVE, resource: EXCHANGE });
          expect((await agent.deviceStatus()).AzureAdPrtUpdateTime).not.toBe(before);
        });
      });

      it('a PRT past its 14 days is never sent: ERR_AGENT_NO_PRT, status EXPIRED, sign in again', async () => {
        const user = await newUser('expire');
        const name = await newDevice({}, user.upn);
        // A renewal interval longer than the jump below, so that nothing renews on the way.
        const agent = await openDeviceAgent({
          dataDir: data,
          name,
          clock,
          renewalIntervalMs: 30 * DAY,
        });
        await agent.signIn(user.upn, PASSWORD);
        try {
          clock.advance(15 * DAY);
          await agent.idle();
          const err = await expectCode(
            agent.acquireToken({ accountId: user.id, clientId: ONEDRIVE, resource: EXCHANGE }),
            'ERR_AGENT_NO_PRT',
          );
          expect((err as { reason: string }).reason).toBe('expired');
          const s = await agent.deviceStatus();
          expect(s.AzureAdPrt).toBe('NO');
          expect(s.Accounts[0]!.AzureAdPrtState).toBe('EXPIRED');
          expect(await agent.accounts()).toEqual([]);
          await agent.signIn(user.upn, PASSWORD);
          expect((await agent.deviceStatus()).AzureAdPrt).toBe('YES');
        } finally {
          await agent.close();
        }
      });
    });

    describe('when the cloud withdraws trust', () => {
      it('a disabled user: the PRT is refused, status shows the refusal, sign-in is refused', async () => {
        const user = await newUser('disabled');
        const name = await newDevice({}, user.upn);
        await withAgent(name, async (agent) => {
          await agent.signIn(user.upn, PASSWORD);
          await tc.cloud.directory.users.setEnabled(user.id, false);
          const err = (await expectCode(
            agent.acquireToken({ accountId: user.id, clientId: ONEDRIVE, resource: EXCHANGE }),
            'ERR_AGENT_CLOUD',
          )) as { refusal: { aadsts: number } };
          expect(err.refusal.aadsts).toBe(50057);
          const s = await agent.deviceStatus();
          expect(s.AzureAdPrt).toBe('NO');
          expect(s.Accounts[0]).toMatchObject({ AzureAdPrtState: 'REVOKED' });
          expect(s.Accounts[0]!.AzureAdPrtError).toMatch(/^AADSTS50057 invalid_grant/);
          expect(formatStatus(s)).toMatch(/AzureAdPrtError : AADSTS50057/);
          await expectCode(
            agent.acquireToken({ accountId: user.id, clientId: ONEDRIVE, resource: EXCHANGE }),
            'ERR_AGENT_NO_PRT',
          );
          await expectCode(agent.signIn(user.upn, PASSWORD), 'ERR_AGENT_CLOUD');
        });
      });

      it('a device deleted in the cloud: DeviceAuthStatus FAILED and no PRT', async () => {
        const user = await newUser('deleted');
        const name = await newDevice({}, user.upn);
        await withAgent(name, async (agent) => {
          await agent.signIn(user.upn, PASSWORD);
          await tc.cloud.directory.devices.delete(agent.config.deviceId);
          // Deleting the device revoked its tokens (AADSTS50173) ...
          await expectCode(
            agent.acquireToken({ accountId: user.id, clientId: ONEDRIVE, resource: EXCHANGE }),
            'ERR_AGENT_CLOUD',
          );
          expect((await agent.deviceStatus()).AzureAdPrt).toBe('NO');
          // ... and a new PRT request names the device as unknown (AADSTS700003).
          const err = (await expectCode(agent.signIn(user.upn, PASSWORD), 'ERR_AGENT_CLOUD')) as {
            refusal: { aadsts: number };
          };
          expect(err.refusal.aadsts).toBe(700003);
          const s = await agent.deviceStatus();
          expect(s.DeviceAuthStatus).toMatch(
            /^FAILED\. Device is either disabled or deleted \(AADSTS700003/,
          );
        });
      });
    });

    describe('device remove', () => {
      it('deletes the device in the cloud with a device-signed proof, then its directory', async () => {
        const name = await newDevice();
        const id = (await withAgent(name, async (a) => a.config.deviceId)) as string;
        expect(await removeDevice({ dataDir: data, name })).toEqual({ leftCloud: true });
        expect(await tc.cloud.directory.devices.get(id)).toBeUndefined();
        await expect(lstat(deviceDir(data, name))).rejects.toThrow();
      });
    });

    it('the status fingerprint is the SHA-1 of the device certificate', async () => {
      const name = await newDevice();
      await withAgent(name, async (agent) => {
        const record = JSON.parse(
          await readFile(join(deviceDir(data, name), 'device.json'), 'utf8'),
        );
        const sha1 = createHash('sha1')
          .update(Buffer.from(record.certificate, 'base64'))
          .digest('hex')
          .toUpperCase();
        expect((await agent.deviceStatus()).Thumbprint).toBe(sha1);
      });
    });
  });
}
