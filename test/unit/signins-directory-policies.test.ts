/**
 * Without a policy source passed in, the token service evaluates the directory's own policies
 * (`directory.policies`) and logs to `<data>/cloud/signins.sqlite`. It keeps the compiled
 * policies between requests, so these tests also check that a change made through another
 * connection (what `prtlab policy` does from another process) is seen by the next request.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDirectory } from '../../cloud/directory/index.ts';
import type { CloudHandle } from '../../cloud/server.ts';
import { signInStoreFor } from '../../cloud/signins/registry.ts';
import { SIGNINS_DB_NAME, SignInStore } from '../../cloud/signins/store.ts';
import { tokenRoutes } from '../../cloud/token-service/service.ts';
import {
  AZ_CLI,
  EXO_ID,
  entraError,
  PASSWORD,
  passwordToken,
  startTestCloud,
  stopTestCloud,
} from '../shared/cloud.ts';

let dir: string;
let cloud: CloudHandle;
let ca: string;
let upn: string;

beforeAll(async () => {
  ({ dir, cloud, ca } = await startTestCloud('prtlab-signins-dir-', { routes: tokenRoutes }));
  upn = `adele@${cloud.tenant.domain}`;
  await cloud.directory.users.create({ upn, password: PASSWORD, displayName: 'Adele Vance' });
}, 60_000);

afterAll(() => stopTestCloud(cloud, dir));

function password() {
  return passwordToken(cloud, ca, {
    clientId: AZ_CLI,
    username: upn,
    password: PASSWORD,
    resource: EXO_ID,
    userAgent: 'Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0)',
  });
}

describe('policies from the directory', () => {
  it('an enabled token-protection policy in directory.policies blocks an unbound token', async () => {
    expect((await password()).status).toBe(200);
    await cloud.directory.policies.create({
      displayName: 'TP all users',
      state: 'enabled',
      conditions: {
        users: { includeUsers: ['All'] },
        applications: { includeApplications: [EXO_ID] },
        clientAppTypes: ['mobileAppsAndDesktopClients'],
      },
      grantControls: null,
      sessionControls: { secureSignInSession: { isEnabled: true } },
    });
    const r = await password();
    expect(r.status).toBe(400);
    expect(entraError(r.body).code).toBe(53003);
    // The server's log writes queued entries within a short window; force the write.
    signInStoreFor(cloud.services).flush();
    const store = new SignInStore(join(cloud.paths.root, SIGNINS_DB_NAME));
    try {
      const codes = store.list().value.map((e) => e.status.errorCode);
      expect(codes).toEqual([53003, 0]);
    } finally {
      store.close();
    }
  });
});

describe('changes from another process', () => {
  /** A second connection to the directory file, as a `prtlab policy` command would open. */
  async function otherProcess<T>(fn: (d: Awaited<ReturnType<typeof openDirectory>>) => Promise<T>) {
    const other = await openDirectory(cloud.paths);
    try {
      return await fn(other);
    } finally {
      await other.close();
    }
  }

  it('a policy disabled elsewhere stops blocking at the next request', async () => {
    expect((await password()).status).toBe(400);
    await otherProcess(async (d) => {
      for (const p of await d.policies.list()) await d.policies.setState(p.id, 'disabled');
    });
    expect((await password()).status).toBe(200);
  });

  it('the tenant edition decides the block code: 530084 under 2025-ga', async () => {
    await otherProcess(async (d) => {
      await d.policies.setEdition('2025-ga');
      for (const p of await d.policies.list()) await d.policies.setState(p.id, 'enabled');
    });
    const r = await password();
    expect(r.status).toBe(400);
    expect(entraError(r.body).code).toBe(530084);
    await cloud.directory.policies.setEdition('2023-preview');
    expect(entraError((await password()).body).code).toBe(53003);
  });

  it('an unknown edition is refused with a coded error and changes nothing', async () => {
    await expect(cloud.directory.policies.setEdition('2099-future')).rejects.toMatchObject({
      code: 'ERR_CA_POLICY',
    });
    expect(await cloud.directory.policies.edition()).toBe('2023-preview');
  });
});

describe('closing the cloud', () => {
  it('writes the queued sign-in entries before the log closes', async () => {
    const t = await startTestCloud('prtlab-signins-close-', { routes: tokenRoutes });
    const user = `megan@${t.cloud.tenant.domain}`;
    await t.cloud.directory.users.create({ upn: user, password: PASSWORD, displayName: 'Megan' });
    const r = await passwordToken(t.cloud, t.ca, {
      clientId: AZ_CLI,
      username: user,
      password: PASSWORD,
      resource: EXO_ID,
    });
    expect(r.status).toBe(200);
    const open = signInStoreFor(t.cloud.services);
    await t.cloud.close();
    // The cloud's store was closed and forgotten: asking again opens a fresh one.
    const fresh = signInStoreFor(t.cloud.services);
    expect(fresh).not.toBe(open);
    fresh.close();
    const store = new SignInStore(join(t.cloud.paths.root, SIGNINS_DB_NAME));
    try {
      expect(store.list().value.map((e) => e.userPrincipalName)).toEqual([user]);
    } finally {
      store.close();
      await stopTestCloud(t.cloud, t.dir);
    }
  });
});
