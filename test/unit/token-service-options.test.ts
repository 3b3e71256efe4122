/**
 * tokenRoutes options: `signInLog: false` turns the sign-in log off (the policy benchmark's
 * baseline); by default every token request but srv_challenge leaves one entry.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CloudHandle } from '../../cloud/server.ts';
import { SIGNINS_DB_NAME, SignInStore } from '../../cloud/signins/store.ts';
import { tokenRoutes } from '../../cloud/token-service/service.ts';
import { AZ_CLI, PASSWORD, passwordToken, startTestCloud, stopTestCloud } from '../shared/cloud.ts';

interface Running {
  dir: string;
  cloud: CloudHandle;
  ca: string;
  store: SignInStore;
  upn: string;
}

async function start(signInLog: boolean | undefined): Promise<Running> {
  let store: SignInStore | undefined;
  const { dir, cloud, ca } = await startTestCloud('prtlab-token-options-', {
    routes: (c) => {
      store = new SignInStore(join(c.paths.root, SIGNINS_DB_NAME));
      return tokenRoutes(c, {
        policies: { list: async () => [] },
        signIns: store,
        ...(signInLog === undefined ? {} : { signInLog }),
      });
    },
  });
  const upn = `adele@${cloud.tenant.domain}`;
  await cloud.directory.users.create({ upn, password: PASSWORD, displayName: 'Adele Vance' });
  return { dir, cloud, ca, store: store as SignInStore, upn };
}

function passwordGrant(r: Running, password: string) {
  return passwordToken(r.cloud, r.ca, {
    clientId: AZ_CLI,
    username: r.upn,
    password,
    resource: 'https://graph.microsoft.com',
  });
}

let off: Running;
let on: Running;

beforeAll(async () => {
  off = await start(false);
  on = await start(undefined);
}, 60_000);

afterAll(async () => {
  for (const r of [off, on]) {
    r?.store.close();
    if (r) await stopTestCloud(r.cloud, r.dir);
  }
});

describe('tokenRoutes signInLog option', () => {
  it('with signInLog: false no entry is written, for a success or a failure', async () => {
    expect((await passwordGrant(off, PASSWORD)).status).toBe(200);
    expect((await passwordGrant(off, 'wrong-password')).status).toBe(400);
    expect(off.store.count()).toBe(0);
  });

  it('by default (logging on) one entry is written per token request', async () => {
    const r = await passwordGrant(on, PASSWORD);
    expect(r.status, r.body).toBe(200);
    expect(on.store.count()).toBe(1);
    expect(on.store.list({ top: 1 }).value[0]?.status.errorCode).toBe(0);
  });
});
