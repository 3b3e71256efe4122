import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RESOURCE_IDS } from '../../cloud/ca/catalog.ts';
import { removeDir, runCli, tempDir } from '../shared/cli.ts';

let dir: string;

beforeEach(async () => {
  dir = await tempDir('prtlab-policy-cli-');
});

afterEach(() => removeDir(dir));

describe('prtlab policy', () => {
  it('prints help', async () => {
    const r = await runCli(['policy', '--help']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('--preset token-protection');
    expect((await runCli(['policy'])).code).toBe(2);
    expect((await runCli(['--help'])).out).toMatch(/policy {8}add, list/);
  });

  it('adds the token-protection preset with a group and a break-glass user', async () => {
    expect((await runCli(['group', 'add', 'TP Pilot', '--data', dir])).code).toBe(0);
    const user = await runCli([
      'user',
      'add',
      'breakglass@contoso.test',
      '--password',
      'Correct-Horse-9',
      '--data',
      dir,
    ]);
    expect(user.code).toBe(0);
    const add = await runCli([
      'policy',
      'add',
      '--preset',
      'token-protection',
      '--include-group',
      'TP Pilot',
      '--exclude-user',
      'breakglass@contoso.test',
      '--data',
      dir,
    ]);
    expect(add.err).toBe('');
    expect(add.code).toBe(0);
    expect(add.out).toMatch(/^added policy '.+' \(id [0-9a-f-]{36}, state enabledForReporting/);

    const list = JSON.parse((await runCli(['policy', 'list', '--json', '--data', dir])).out);
    expect(list).toHaveLength(1);
    const p = list[0];
    expect(p.state).toBe('enabledForReportingButNotEnforced');
    expect(p.conditions.applications.includeApplications).toEqual([
      RESOURCE_IDS.exchangeOnline,
      RESOURCE_IDS.sharePointOnline,
    ]);
    expect(p.conditions.users.includeGroups).toHaveLength(1);
    expect(p.conditions.users.excludeUsers).toHaveLength(1);
    expect(p.sessionControls.secureSignInSession.isEnabled).toBe(true);

    const table = await runCli(['policy', 'list', '--data', dir]);
    expect(table.out).toContain('ID');
    expect(table.out).toContain(p.id);

    const on = await runCli(['policy', 'set-state', p.id, 'on', '--data', dir]);
    expect(on.code).toBe(0);
    expect(on.out).toContain('is now enabled');
    expect(on.err).toBe('');
  });

  it('warns about a risky preset and an enabled policy with no report-only history', async () => {
    const add = await runCli([
      'policy',
      'add',
      '--preset',
      'token-protection',
      '--state',
      'on',
      '--data',
      dir,
    ]);
    expect(add.code).toBe(0);
    expect(add.err).toContain('[guests-unsupported]');
    expect(add.err).toContain('[no-exclusion]');
    expect(add.err).toContain('[enabled-without-report-only]');
  });

  it('adds a policy from a file, unchanged, and prints its warnings', async () => {
    const file = join(dir, 'p.json');
    const doc = {
      displayName: 'From file',
      state: 'disabled',
      conditions: {
        users: { includeUsers: ['None'] },
        applications: { includeApplications: ['Office365'] },
        signInRiskLevels: [],
      },
    };
    await writeFile(file, JSON.stringify(doc));
    const add = await runCli(['policy', 'add', file, '--data', dir]);
    expect(add.code).toBe(0);
    expect(add.err).toContain('[office365-group]');
    expect(add.err).toContain('[client-app-types]');
    const [p] = JSON.parse((await runCli(['policy', 'list', '--json', '--data', dir])).out);
    const { id, createdDateTime, modifiedDateTime, ...rest } = p;
    expect(rest).toEqual(doc);
    expect(modifiedDateTime).toBeNull();

    const report = await runCli(['policy', 'set-state', id, 'reportOnly', '--data', dir]);
    expect(report.out).toContain('enabledForReportingButNotEnforced');
    const on = await runCli(['policy', 'set-state', id, 'enabled', '--data', dir]);
    expect(on.err).not.toContain('enabled-without-report-only');
  });

  it('refuses bad input with coded errors', async () => {
    const file = join(dir, 'bad.json');
    await writeFile(file, JSON.stringify({ displayName: 'x', state: 'on', conditions: {} }));
    const bad = await runCli(['policy', 'add', file, '--data', dir]);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('[ERR_CA_POLICY]');
    await writeFile(file, '{');
    expect((await runCli(['policy', 'add', file, '--data', dir])).err).toContain('not JSON');
    expect((await runCli(['policy', 'add', join(dir, 'none.json'), '--data', dir])).code).toBe(2);
    expect((await runCli(['policy', 'add', '--preset', 'nope', '--data', dir])).code).toBe(2);
    expect((await runCli(['policy', 'add', file, '--state', 'on', '--data', dir])).code).toBe(2);
    expect((await runCli(['policy', 'list', '--state', 'on', '--data', dir])).code).toBe(2);
    const state = await runCli([
      'policy',
      'set-state',
      crypto.randomUUID(),
      'maybe',
      '--data',
      dir,
    ]);
    expect(state.code).toBe(2);
    const missing = await runCli(['policy', 'set-state', crypto.randomUUID(), 'on', '--data', dir]);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('no policy');
    const group = await runCli([
      'policy',
      'add',
      '--preset',
      'token-protection',
      '--include-group',
      'nope',
      '--data',
      dir,
    ]);
    expect(group.code).toBe(1);
    expect((await runCli(['policy', 'list', '--data', dir])).out).toBe('no policies\n');
  });
});

describe('prtlab policy edition', () => {
  it('prints the default, sets another, and refuses an unknown one', async () => {
    expect(await runCli(['policy', 'edition', '--data', dir])).toMatchObject({
      code: 0,
      out: '2023-preview\n',
    });
    expect((await runCli(['policy', 'edition', '2025-ga', '--data', dir])).code).toBe(0);
    expect((await runCli(['policy', 'edition', '--data', dir])).out).toBe('2025-ga\n');
    const bad = await runCli(['policy', 'edition', '2030', '--data', dir]);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('ERR_CA_POLICY');
    expect((await runCli(['policy', 'edition', '--data', dir])).out).toBe('2025-ga\n');
    expect((await runCli(['policy', 'edition', 'a', 'b', '--data', dir])).code).toBe(2);
  });
});
