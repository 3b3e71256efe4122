import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { signInsFilter } from '../../cli/signins.ts';
import { ensureCloudDirs } from '../../cloud/data-dir.ts';
import { buildSignIn } from '../../cloud/signins/entry.ts';
import { SIGNINS_DB_NAME, SignInStore } from '../../cloud/signins/store.ts';
import { removeDir, runCli, tempDir } from '../shared/cli.ts';

let dir: string;

beforeEach(async () => {
  dir = await tempDir('prtlab-signins-cli-');
  const paths = await ensureCloudDirs(dir);
  const store = new SignInStore(join(paths.root, SIGNINS_DB_NAME));
  const users = ['adele@contoso.test', 'sam@contoso.test'];
  for (let i = 0; i < 4; i++) {
    store.add(
      buildSignIn({
        id: `req-${i}`,
        createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)),
        tenantId: 't1',
        user: { id: `u${i % 2}`, upn: users[i % 2]!, displayName: 'X', kind: 'member' },
        app:
          i < 2
            ? { id: '04b07795-8ddb-461a-bbee-02f9e1bf7b46', displayName: 'Microsoft Azure CLI' }
            : { id: 'ab9b8c07-8f02-4f72-87fa-80105867a763', displayName: 'OneDrive SyncEngine' },
        clientAppType: 'mobileAppsAndDesktopClients',
        incomingTokenType: i < 2 ? 'none' : 'primaryRefreshToken',
        errorCode: i === 3 ? 53003 : 0,
      }),
    );
  }
  store.close();
});

afterEach(() => removeDir(dir));

describe('prtlab signins', () => {
  it('builds the $filter for --user and --app', () => {
    expect(signInsFilter('Adele@Contoso.test', "O'Neil")).toBe(
      "userPrincipalName eq 'adele@contoso.test' and appDisplayName eq 'O''Neil'",
    );
    expect(signInsFilter(undefined, 'AB9B8C07-8F02-4F72-87FA-80105867A763')).toBe(
      "appId eq 'AB9B8C07-8F02-4F72-87FA-80105867A763'",
    );
    expect(signInsFilter()).toBeUndefined();
  });

  it('lists newest first, filters by user and app, prints JSON', async () => {
    const all = await runCli(['signins', '--data', dir]);
    expect(all.code, all.err).toBe(0);
    const lines = all.out.trim().split('\n');
    expect(lines[0]).toMatch(/^TIME\s+USER\s+APP/);
    expect(lines).toHaveLength(5);
    expect(lines[1]).toMatch(/sam@contoso\.test\s+OneDrive SyncEngine.*non-interactive\s+53003/);

    const byUser = await runCli([
      'signins',
      '--data',
      dir,
      '--user',
      'ADELE@contoso.test',
      '--json',
    ]);
    expect(byUser.code, byUser.err).toBe(0);
    const j = JSON.parse(byUser.out);
    expect(j.map((e: { id: string }) => e.id)).toEqual(['req-2', 'req-0']);

    const byApp = await runCli([
      'signins',
      '--data',
      dir,
      '--app',
      'Microsoft Azure CLI',
      '--json',
    ]);
    expect(JSON.parse(byApp.out).map((e: { id: string }) => e.id)).toEqual(['req-1', 'req-0']);
    const byId = await runCli([
      'signins',
      '--data',
      dir,
      '--app',
      'ab9b8c07-8f02-4f72-87fa-80105867a763',
      '--json',
    ]);
    expect(JSON.parse(byId.out)).toHaveLength(2);
  });

  it('help, bad options and an empty log', async () => {
    const help = await runCli(['signins', '--help']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/Usage: prtlab signins/);
    expect((await runCli(['signins', '--data', dir, '--top', '0'])).code).toBe(2);
    expect((await runCli(['signins', '--data', dir, 'extra'])).code).toBe(2);
    const empty = await tempDir('prtlab-signins-empty-');
    try {
      const r = await runCli(['signins', '--data', empty]);
      expect(r.code, r.err).toBe(0);
      expect(r.out).toBe('No sign-ins.\n');
    } finally {
      await removeDir(empty);
    }
  });
});
