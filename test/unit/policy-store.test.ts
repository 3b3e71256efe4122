import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RESOURCE_IDS } from '../../cloud/ca/catalog.ts';
import { isCaError } from '../../cloud/ca/errors.ts';
import { parsePolicy } from '../../cloud/ca/policy.ts';
import { SCHEMA_VERSION } from '../../cloud/directory/schema.ts';
import { openSqliteDirectory } from '../../cloud/directory/sqlite.ts';
import type { Directory } from '../../cloud/directory/types.ts';
import { lintPolicy } from '../../cloud/policies/lint.ts';
import { tokenProtectionPreset } from '../../cloud/policies/preset.ts';
import { mergePatch } from '../../cloud/policies/store.ts';

const BREAK_GLASS = '11111111-2222-3333-4444-555555555555';

let dir: string;
let directory: Directory;
let now = new Date('2026-01-01T00:00:00.000Z');

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'prtlab-policy-store-'));
  now = new Date('2026-01-01T00:00:00.000Z');
  directory = await openSqliteDirectory({
    path: join(dir, 'directory.sqlite'),
    scrypt: { ln: 10, r: 8, p: 1 },
    clock: () => now,
  });
});

afterEach(async () => {
  await directory.close();
  await rm(dir, { recursive: true, force: true });
});

function graphPolicy(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    displayName: 'TP',
    state: 'enabledForReportingButNotEnforced',
    conditions: {
      users: { includeUsers: ['All'], excludeUsers: [BREAK_GLASS] },
      applications: { includeApplications: [RESOURCE_IDS.exchangeOnline] },
      clientAppTypes: ['mobileAppsAndDesktopClients'],
      locations: { includeLocations: ['All'] },
    },
    sessionControls: { secureSignInSession: { isEnabled: true } },
    ...extra,
  };
}

describe('PolicyStore', () => {
  it('adds migration 2 with the ca_policies table', () => {
    expect(SCHEMA_VERSION).toBeGreaterThanOrEqual(2);
    const db = new Database(join(dir, 'directory.sqlite'), { readonly: true });
    try {
      const cols = db.prepare('PRAGMA table_info(ca_policies)').all() as { name: string }[];
      expect(cols.map((c) => c.name)).toEqual([
        'id',
        'json',
        'created_at',
        'modified_at',
        'report_only_since',
      ]);
    } finally {
      db.close();
    }
  });

  it('stores the JSON unchanged apart from the server fields', async () => {
    const input = graphPolicy({ id: BREAK_GLASS, createdDateTime: 'x', templateId: null });
    const p = await directory.policies.create(input);
    expect(p.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(p.id).not.toBe(BREAK_GLASS);
    const { id: _i, createdDateTime: _c, ...rest } = input;
    expect(p.policy).toEqual({
      id: p.id,
      ...rest,
      createdDateTime: '2026-01-01T00:00:00.000Z',
      modifiedDateTime: null,
    });
    expect(Object.keys(p.policy)[0]).toBe('id');
    expect(p.reportOnlySince).toBe('2026-01-01T00:00:00.000Z');
    expect((await directory.policies.get(p.id))?.policy).toEqual(p.policy);
    expect((await directory.policies.get(p.id.toUpperCase()))?.id).toBe(p.id);
    expect(await directory.policies.get('not-a-guid')).toBeUndefined();
  });

  it('refuses invalid policies with the JSON path', async () => {
    try {
      await directory.policies.create(graphPolicy({ state: 'on' }));
      expect.unreachable();
    } catch (err) {
      expect(isCaError(err, 'ERR_CA_POLICY')).toBe(true);
      expect((err as Error).message).toMatch(/^state:/);
    }
    expect(await directory.policies.list()).toEqual([]);
  });

  it('lists oldest first, updates with merge-patch semantics, deletes', async () => {
    const a = await directory.policies.create(graphPolicy({ displayName: 'A' }));
    now = new Date('2026-01-02T00:00:00.000Z');
    const b = await directory.policies.create(graphPolicy({ displayName: 'B' }));
    expect((await directory.policies.list()).map((p) => p.policy.displayName)).toEqual(['A', 'B']);

    now = new Date('2026-01-03T00:00:00.000Z');
    const u = await directory.policies.update(a.id, {
      id: b.id,
      displayName: 'A2',
      conditions: { clientAppTypes: ['all'], locations: null },
      sessionControls: null,
    });
    expect(u?.id).toBe(a.id);
    expect(u?.policy.displayName).toBe('A2');
    expect(u?.policy.modifiedDateTime).toBe('2026-01-03T00:00:00.000Z');
    expect(u?.policy.createdDateTime).toBe('2026-01-01T00:00:00.000Z');
    const c = u?.policy.conditions as Record<string, unknown>;
    expect(c.clientAppTypes).toEqual(['all']);
    expect(c.locations).toBeUndefined();
    expect(c.users).toEqual({ includeUsers: ['All'], excludeUsers: [BREAK_GLASS] });
    expect(u?.policy.sessionControls).toBeUndefined();

    await expect(directory.policies.update(a.id, { state: 'bad' })).rejects.toThrow(/state/);
    expect((await directory.policies.get(a.id))?.policy.displayName).toBe('A2');
    expect(await directory.policies.update(BREAK_GLASS, {})).toBeUndefined();

    expect(await directory.policies.delete(a.id)).toBe(true);
    expect(await directory.policies.delete(a.id)).toBe(false);
    expect((await directory.policies.list()).map((p) => p.id)).toEqual([b.id]);
  });

  it('sets the state and remembers report-only history', async () => {
    const p = await directory.policies.create(graphPolicy({ state: 'disabled' }));
    expect(p.reportOnlySince).toBeNull();
    now = new Date('2026-02-01T00:00:00.000Z');
    const r = await directory.policies.setState(p.id, 'enabledForReportingButNotEnforced');
    expect(r?.reportOnlySince).toBe('2026-02-01T00:00:00.000Z');
    now = new Date('2026-03-01T00:00:00.000Z');
    const e = await directory.policies.setState(p.id, 'enabled');
    expect(e?.state).toBe('enabled');
    expect(e?.policy.state).toBe('enabled');
    expect(e?.reportOnlySince).toBe('2026-02-01T00:00:00.000Z');
    expect(await directory.policies.setState(BREAK_GLASS, 'enabled')).toBeUndefined();
  });

  it('merge patch follows RFC 7396', () => {
    expect(mergePatch({ a: 'b', c: { d: 'e', f: 'g' } }, { a: 'z', c: { f: null } })).toEqual({
      a: 'z',
      c: { d: 'e' },
    });
    expect(mergePatch({ a: [1, 2] }, { a: [3] })).toEqual({ a: [3] });
    expect(mergePatch({ a: 1 }, [1])).toEqual([1]);
  });
});

describe('lintPolicy', () => {
  const codes = (json: unknown, reportOnlyHistory = false) =>
    lintPolicy(parsePolicy(json), { reportOnlyHistory }).map((w) => w.code);

  it('is quiet for a careful policy', () => {
    const json = graphPolicy();
    const c = json.conditions as Record<string, unknown>;
    c.users = { includeGroups: [BREAK_GLASS], excludeUsers: [BREAK_GLASS] };
    expect(codes(json)).toEqual([]);
  });

  it('reports each of the five problems', () => {
    const json = {
      displayName: 'bad',
      state: 'enabled',
      conditions: {
        users: { includeUsers: ['All'] },
        applications: { includeApplications: ['Office365'] },
      },
    };
    expect(codes(json)).toEqual([
      'office365-group',
      'client-app-types',
      'guests-unsupported',
      'no-exclusion',
      'enabled-without-report-only',
    ]);
    expect(codes(json, true)).not.toContain('enabled-without-report-only');
    const browser = graphPolicy();
    (browser.conditions as Record<string, unknown>).clientAppTypes = ['browser'];
    expect(codes(browser)).toContain('client-app-types');
  });

  it('does not report guests once they are excluded or B2B is supported', () => {
    const json = graphPolicy();
    expect(codes(json)).toEqual(['guests-unsupported']);
    expect(lintPolicy(parsePolicy(json), { reportOnlyHistory: true, edition: '2025-ga' })).toEqual(
      [],
    );
    (json.conditions as { users: { excludeUsers: string[] } }).users.excludeUsers.push(
      'GuestsOrExternalUsers',
    );
    expect(codes(json)).toEqual([]);
  });
});

describe('tokenProtectionPreset', () => {
  it('is the seed document policy, report-only', () => {
    const p = parsePolicy(tokenProtectionPreset());
    expect(p.state).toBe('enabledForReportingButNotEnforced');
    expect(p.conditions.applications.includeApplications).toEqual([
      RESOURCE_IDS.exchangeOnline,
      RESOURCE_IDS.sharePointOnline,
    ]);
    expect(p.conditions.platforms?.includePlatforms).toEqual(['windows']);
    expect(p.conditions.clientAppTypes).toEqual(['mobileAppsAndDesktopClients']);
    expect(p.sessionControls?.secureSignInSession?.isEnabled).toBe(true);
    expect(p.conditions.users.includeUsers).toEqual(['All']);
  });

  it('takes state, groups and excluded users', () => {
    const p = parsePolicy(
      tokenProtectionPreset({
        state: 'disabled',
        includeGroups: [BREAK_GLASS],
        excludeUsers: [BREAK_GLASS],
      }),
    );
    expect(p.conditions.users.includeGroups).toEqual([BREAK_GLASS]);
    expect(p.conditions.users.includeUsers).toEqual([]);
    expect(p.conditions.users.excludeUsers).toEqual([BREAK_GLASS]);
    expect(p.state).toBe('disabled');
  });
});
