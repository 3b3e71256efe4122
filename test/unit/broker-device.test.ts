/**
 * The whole device side with the real agent: `prtlab device start` (agent with the built-in TPM
 * simulator, and the broker), client stubs through `prtlab client run`, the lab cloud over HTTPS.
 * Sign-in through the broker, the sealed cache surviving a restart, the SSO cookie, an app's
 * correlation id reaching the cloud, and a token-protection block read by a client that signs in
 * on its own.
 */
import { randomUUID } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addDevice, deviceDir, loadDeviceConfig } from '../../agent/index.ts';
import { BrokerClient } from '../../broker/client.ts';
import { clientCommand } from '../../cli/client.ts';
import { deviceStart } from '../../cli/device-start.ts';
import { PROFILE_NAMES, PROFILES } from '../../clients/profiles.ts';
import { tokenProtectionPreset } from '../../cloud/policies/preset.ts';
import { coreRoutes } from '../../cloud/routes.ts';
import type { CloudServices } from '../../cloud/services.ts';
import { signInStoreFor } from '../../cloud/signins/registry.ts';
import { tokenRoutes } from '../../cloud/token-service/service.ts';
import { captureIo, removeDir, startUntil, tempDir } from '../shared/cli.ts';
import { startTestCloud, stopTestCloud, type TestCloud } from '../shared/cloud.ts';

const PASSWORD = 'Correct-Horse-9';
const DEVICE = 'PC-1';

let tc: TestCloud;
let data: string;
let dir: string;
let upn: string;
let services: CloudServices | undefined;

/** `prtlab device start` in process: resolves once the broker is up; stop() ends it. */
function startDevice() {
  return startUntil('broker on ws://127.0.0.1:', (io) => deviceStart([DEVICE, '--data', data], io));
}

/** `prtlab client ...` in process. */
async function client(argv: string[]) {
  const io = captureIo();
  let code: number;
  try {
    code = await clientCommand([...argv, '--data', data], io);
  } catch (err) {
    // What cli/main.ts does with a coded error.
    const e = err as { code?: string; message: string };
    io.err(`prtlab: ${e.message} [${e.code}]`);
    code = e.code === 'ERR_USAGE' ? 2 : 1;
  }
  return { code, out: io.stdout, err: io.stderr };
}

beforeAll(async () => {
  tc = await startTestCloud('prtlab-broker-device-', {
    routes: (c) => {
      services = c;
      return [...tokenRoutes(c), ...coreRoutes(c)];
    },
  });
  upn = `adele@${tc.cloud.tenant.domain}`;
  await tc.cloud.directory.users.create({ upn, password: PASSWORD, displayName: 'Adele Vance' });
  data = await tempDir('prtlab-broker-device-data-');
  await addDevice({
    dataDir: data,
    name: DEVICE,
    tpm: 'builtin',
    cloudUrl: tc.cloud.url,
    cloudCaPem: tc.ca,
    user: { upn, password: PASSWORD },
  });
  dir = deviceDir(data, DEVICE);
}, 120_000);

afterAll(async () => {
  await removeDir(data);
  await stopTestCloud(tc?.cloud, tc?.dir);
});

describe('prtlab device start and prtlab client run', () => {
  it('signs a broker client in with a device-bound token, and serves it from the cache next time', async () => {
    const device = await startDevice();
    try {
      const first = await client([
        'run',
        'onedrive',
        '--device',
        DEVICE,
        '--user',
        upn,
        '--password',
        PASSWORD,
      ]);
      expect(first.err).toBe('');
      expect(first.code).toBe(0);
      expect(first.out).toMatch(/signs in through the broker/);
      expect(first.out).toMatch(/from the broker sign-in with password \(device-bound/);
      expect(first.out).toMatch(/GET \/resources\/sharepoint\/_api\/web -> 200: site /);
      const again = await client(['run', 'onedrive', '--device', DEVICE]);
      expect(again.code).toBe(0);
      expect(again.out).toMatch(/from the broker cache \(device-bound/);

      const broker = await BrokerClient.forDevice(dir);
      try {
        const config = await loadDeviceConfig(data, DEVICE);
        const status = await broker.getDeviceStatus();
        expect(status).toMatchObject({ DeviceId: config.deviceId, TpmProtected: 'YES' });
        const token = await broker.acquireTokenSilent({
          clientId: PROFILES.teams.appId,
          resource: 'https://outlook.office365.com',
        });
        const claims = JSON.parse(
          Buffer.from(token.accessToken.split('.')[1]!, 'base64url').toString(),
        );
        expect(claims).toMatchObject({
          deviceid: config.deviceId,
          upn,
          appid: PROFILES.teams.appId,
        });
        const { cookies } = await broker.getCookieInfoForUri(
          `${tc.cloud.url}/common/oauth2/authorize?sso_nonce=AwABEgEAAAAC`,
        );
        expect(cookies.map((c) => c.name)).toEqual(['x-ms-RefreshTokenCredential']);
      } finally {
        await broker.close();
      }
    } finally {
      expect(await device.stop()).toBe(0);
    }
    await expect(stat(join(dir, 'broker.json'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('after a restart the sealed cache still answers, and holds no token in the clear', async () => {
    const entries = (await readdir(join(dir, 'broker-cache'))).filter((n) => n.endsWith('.json'));
    expect(entries.length).toBeGreaterThanOrEqual(2);
    for (const e of entries) {
      const text = await readFile(join(dir, 'broker-cache', e), 'utf8');
      expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.eyJ/);
    }
    const device = await startDevice();
    try {
      const r = await client(['run', 'onedrive', '--device', DEVICE]);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/from the broker cache/);
    } finally {
      await device.stop();
    }
  });

  it("an app's correlationId goes through the agent to the cloud: the answer and the sign-in log carry it", async () => {
    const device = await startDevice();
    const broker = await BrokerClient.forDevice(dir);
    try {
      const id = randomUUID();
      const r = await broker.acquireTokenSilent({
        clientId: PROFILES.teams.appId,
        resource: 'https://outlook.office365.com',
        forceRefresh: true,
        correlationId: id,
      });
      expect(r).toMatchObject({ fromCache: false, correlationId: id });
      const logged = signInStoreFor(services!)
        .list({ top: 1000 })
        .value.filter((e) => e.correlationId === id);
      expect(logged).toMatchObject([
        { appId: PROFILES.teams.appId, userPrincipalName: upn, status: { errorCode: 0 } },
      ]);
    } finally {
      await broker.close();
      await device.stop();
    }
  });

  it('under an enabled token-protection policy, VS Code (no broker) is blocked with AADSTS53003', async () => {
    const policy = await tc.cloud.directory.policies.create(
      tokenProtectionPreset({ state: 'enabled' }),
    );
    const device = await startDevice();
    try {
      const blocked = await client([
        'run',
        'vscode',
        '--device',
        DEVICE,
        '--user',
        upn,
        '--password',
        PASSWORD,
      ]);
      expect(blocked.code).toBe(1);
      expect(blocked.out).toMatch(/signs in on its own/);
      expect(blocked.out).toMatch(/refused: AADSTS53003 invalid_grant/);
      expect(blocked.err).toMatch(
        /vscode: sign-in refused: AADSTS53003 \(invalid_grant\) \[ERR_CLIENT\]/,
      );
      // OneDrive is a client the 2023 preview supports: through the broker it passes.
      const allowed = await client([
        'run',
        'onedrive',
        '--device',
        DEVICE,
        '--resource',
        'exchange',
      ]);
      expect(allowed.code).toBe(0);
      expect(allowed.out).toMatch(
        /GET \/resources\/exchange\/api\/v2.0\/me\/messages -> 200: 1 message/,
      );
    } finally {
      await device.stop();
      await tc.cloud.directory.policies.delete(policy.id);
    }
  });

  it('client run without a running broker says how to start it', async () => {
    const r = await client(['run', 'teams', '--device', DEVICE]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/prtlab device start.*\[ERR_CLIENT\]/);
  });
});

describe('prtlab client list and help', () => {
  it('lists every profile with app id, version and broker use', async () => {
    const r = await client(['list']);
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+APP ID\s+DISPLAY NAME\s+VERSION\s+RESOURCE\s+BROKER$/);
    expect(lines).toHaveLength(1 + PROFILE_NAMES.length);
    expect(r.out).toMatch(
      /^onedrive\s+ab9b8c07-8f02-4f72-87fa-80105867a763\s+OneDrive SyncEngine\s+24\.201\.1006\.0005\s+sharepoint\s+from 22\.217$/m,
    );
    expect(r.out).toMatch(
      /^azure-cli\s+04b07795-8ddb-461a-bbee-02f9e1bf7b46\s+Microsoft Azure CLI\s+2\.64\.0\s+graph\s+no$/m,
    );
    const json = JSON.parse((await client(['list', '--json'])).out);
    expect(json.map((p: { name: string }) => p.name)).toEqual([...PROFILE_NAMES]);
    expect(json[0]).toMatchObject({ brokerAtThisVersion: true, broker: { use: 'from' } });
  });

  it('every subcommand has its help, and mistakes are usage errors', async () => {
    expect((await client(['--help'])).out).toMatch(/^Usage: prtlab client <subcommand>/);
    expect((await client(['list', '--help'])).out).toMatch(/^Usage: prtlab client list/);
    expect((await client(['run', '--help'])).out).toMatch(/^Usage: prtlab client run NAME/);
    const io = captureIo();
    expect(await deviceStart(['--help'], io)).toBe(0);
    expect(io.stdout).toMatch(/^Usage: prtlab device start NAME/);
    expect((await client(['run', 'teams'])).err).toMatch(/--device DEV is required \[ERR_USAGE\]/);
    expect((await client(['run', 'teams', '--device', DEVICE, '--resource', 'yammer'])).code).toBe(
      2,
    );
    expect((await client(['run', 'netscape', '--device', DEVICE])).err).toMatch(
      /no client profile 'netscape' .*\[ERR_CLIENT\]/,
    );
    expect((await client(['frobnicate'])).code).toBe(2);
  });
});
