/**
 * Without a policy source passed in, the token service evaluates the directory's own policies
 * (`directory.policies`) and logs to `<data>/cloud/signins.sqlite`.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CloudHandle } from '../../cloud/server.ts';
import { signInStoreFor } from '../../cloud/signins/registry.ts';
import { SIGNINS_DB_NAME, SignInStore } from '../../cloud/signins/store.ts';
import { tokenRoutes } from '../../cloud/token-service/service.ts';
import { httpsRequest } from '../prt-client/http.ts';
import { entraError, startTestCloud, stopTestCloud } from '../shared/cloud.ts';

const AZ_CLI = '04b07795-8ddb-461a-bbee-02f9e1bf7b46';
const EXO_ID = '00000002-0000-0ff1-ce00-000000000000';
const PASSWORD = 'Correct-Horse-9';

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
  return httpsRequest(`${cloud.url}/common/oauth2/token`, {
    method: 'POST',
    ca,
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'user-agent': 'Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0)',
    },
    body: new URLSearchParams({
      grant_type: 'password',
      client_id: AZ_CLI,
      username: upn,
      password: PASSWORD,
      resource: EXO_ID,
    }).toString(),
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
