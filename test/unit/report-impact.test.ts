/**
 * `prtlab report impact` on a small lab: a report-only token-protection policy for Exchange
 * Online, a bound request (PRT-signed, from a joined Windows device) and unbound ones (password
 * grants from a desktop client), read back from the cloud's sign-in log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CloudHandle } from '../../cloud/server.ts';
import type { SignInStore } from '../../cloud/signins/store.ts';
import { PrtTestClient } from '../prt-client/client.ts';
import { runCli } from '../shared/cli.ts';
import {
  AZ_CLI,
  DESKTOP_UA,
  EXCHANGE,
  EXO_ID,
  ONEDRIVE,
  PASSWORD,
  passwordToken,
  startSignInCloud,
  stopSignInCloud,
} from '../shared/cloud.ts';
import { devicePrt, joinDevice } from '../shared/devices.ts';

const POLICY_ID = '5b0f6c3e-2a8f-4c1e-9d4a-6f1e2b3c4d5e';

let dir: string;
let cloud: CloudHandle;
let ca: string;
let store: SignInStore;
let policies: unknown[] = [];

async function desktopPassword(upn: string): Promise<void> {
  const r = await passwordToken(cloud, ca, {
    clientId: AZ_CLI,
    username: upn,
    password: PASSWORD,
    resource: EXCHANGE,
    userAgent: DESKTOP_UA,
  });
  expect(r.status, r.body).toBe(200);
}

beforeAll(async () => {
  ({ dir, cloud, ca, store } = await startSignInCloud('prtlab-report-', () => policies));
  const pilot = await cloud.directory.groups.create('TP Pilot');
  const adele = `adele@${cloud.tenant.domain}`;
  const sam = `sam@${cloud.tenant.domain}`;
  for (const upn of [adele, sam]) {
    await cloud.directory.users.create({ upn, password: PASSWORD, groups: [pilot.id] });
  }
  const client = new PrtTestClient({ baseUrl: cloud.url, tenant: 'common', ca });
  const device = await joinDevice(client, adele, PASSWORD);

  policies = [
    {
      id: POLICY_ID,
      displayName: 'CA-TP-01 Require token protection - EXO - Windows desktop',
      state: 'enabledForReportingButNotEnforced',
      conditions: {
        users: { includeGroups: [pilot.id] },
        applications: { includeApplications: [EXO_ID] },
        platforms: { includePlatforms: ['windows'] },
        clientAppTypes: ['mobileAppsAndDesktopClients'],
      },
      sessionControls: { secureSignInSession: { isEnabled: true } },
    },
  ];
  // Bound: OneDrive through the broker with adele's PRT, twice.
  const prt = await devicePrt(client, device, { username: adele, password: PASSWORD });
  for (let i = 0; i < 2; i++) {
    const r = await client.appTokenViaPrt(prt, {
      clientId: ONEDRIVE,
      resource: EXCHANGE,
      appVer: '24.226.1110.0004',
    });
    expect(r.response.status, r.response.body).toBe(200);
  }
  // Unbound: password grants from a desktop client, one by adele, two by sam.
  await desktopPassword(adele);
  await desktopPassword(sam);
  await desktopPassword(sam);
  store.flush();
}, 60_000);

afterAll(() => stopSignInCloud(store, cloud, dir));

describe('prtlab report impact', () => {
  it('prints per-app and per-user tables', async () => {
    const r = await runCli(['report', 'impact', '--data', dir]);
    expect(r.code, r.err).toBe(0);
    const lines = r.out.split('\n');
    expect(lines[0]).toMatch(
      /^Impact of token-protection policies since \S+Z \(\d+ sign-ins scanned\)$/,
    );
    const app = (name: string) => lines.find((l) => l.startsWith(name))?.split(/\s{2,}/);
    expect(lines[2]).toMatch(/^APP\s+REQUESTS\s+USERS\s+BLOCK\s+ALLOW\s+BLOCKED USERS\s+ALLOWED$/);
    expect(app('Microsoft Azure CLI')).toEqual([
      'Microsoft Azure CLI',
      '3',
      '2',
      '3',
      '0',
      '2',
      '0.00%',
    ]);
    expect(app('OneDrive SyncEngine')).toEqual([
      'OneDrive SyncEngine',
      '2',
      '1',
      '0',
      '2',
      '0',
      '100.00%',
    ]);
    expect(r.out).toMatch(/^USER\s+APP\s+RESOURCE\s+REQUESTS\s+BLOCK\s+ALLOW\s+ALLOWED$/m);
    expect(r.out).toMatch(
      /^sam@\S+\s+Microsoft Azure CLI\s+Office 365 Exchange Online\s+2\s+2\s+0\s+0\.00%$/m,
    );
  });

  it('prints JSON, selects a policy, and takes --since', async () => {
    const j = JSON.parse((await runCli(['report', 'impact', '--data', dir, '--json'])).out);
    expect(j.policyId).toBeUndefined();
    expect(j.apps.map((a: { app: string; requests: number }) => [a.app, a.requests])).toEqual([
      ['Microsoft Azure CLI', 3],
      ['OneDrive SyncEngine', 2],
    ]);
    expect(j.users).toHaveLength(3);

    const other = await runCli(['report', 'impact', '--data', dir, '--json', '--policy', 'nope']);
    expect(JSON.parse(other.out).apps).toEqual([]);
    const mine = await runCli([
      'report',
      'impact',
      '--data',
      dir,
      '--policy',
      POLICY_ID,
      '--since',
      '30m',
    ]);
    expect(mine.code, mine.err).toBe(0);
    expect(mine.out).toMatch(new RegExp(`^Impact of policy ${POLICY_ID} since`));
  });

  it('refuses a bad --since and an unknown subcommand', async () => {
    const bad = await runCli(['report', 'impact', '--data', dir, '--since', '1w']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--since/);
    expect((await runCli(['report', 'usage'])).code).toBe(2);
    expect((await runCli(['report', '--help'])).code).toBe(0);
  });
});
