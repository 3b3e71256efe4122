import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { CaEvaluation } from '../../cloud/ca/evaluate.ts';
import { buildSignIn, type SignInInput } from '../../cloud/signins/entry.ts';
import { SIGNINS_SCHEMA_VERSION, SignInStore } from '../../cloud/signins/store.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'prtlab-signins-'));
  dirs.push(d);
  return join(d, 'signins.sqlite');
}

const USER = {
  id: 'u1',
  upn: 'Adele@Contoso.test',
  displayName: 'Adele Vance',
  kind: 'member' as const,
};

function input(i: number, over: Partial<SignInInput> = {}): SignInInput {
  return {
    id: `req-${i}`,
    createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)),
    tenantId: 't1',
    user: USER,
    app: { id: 'app-a', displayName: 'App A' },
    resource: { id: 'res-1', displayName: 'Exchange' },
    clientAppType: 'mobileAppsAndDesktopClients',
    incomingTokenType: 'none',
    errorCode: 0,
    ...over,
  };
}

describe('buildSignIn', () => {
  it('renders the Graph beta signIn shape', () => {
    const evaluation: CaEvaluation = {
      conditionalAccessStatus: 'notApplied',
      blocked: false,
      applied: [
        {
          id: 'p1',
          displayName: 'TP',
          result: 'reportOnlyFailure',
          enforcedSessionControls: ['SignInTokenProtection'],
          sessionControlsNotSatisfied: ['SignInTokenProtection'],
        },
      ],
      tokenProtection: { signInSessionStatus: 'unbound', signInSessionStatusCode: 1002 },
    };
    const e = buildSignIn(input(1, { evaluation }));
    expect(e).toMatchObject({
      id: 'req-1',
      createdDateTime: '2026-01-01T00:00:01.000Z',
      userPrincipalName: 'adele@contoso.test',
      userType: 'member',
      isInteractive: true,
      signInEventTypes: ['interactiveUser'],
      incomingTokenType: 'none',
      clientAppUsed: 'Mobile Apps and Desktop clients',
      status: { errorCode: 0 },
      conditionalAccessStatus: 'notApplied',
      deviceDetail: { deviceId: '', trustType: '' },
      tokenProtectionStatusDetails: {
        signInSessionStatus: 'unbound',
        signInSessionStatusCode: 1002,
      },
    });
    expect(e.appliedConditionalAccessPolicies[0]).toMatchObject({
      result: 'reportOnlyFailure',
      enforcedGrantControls: [],
      sessionControlsNotSatisfied: ['SignInTokenProtection'],
    });
  });

  it('non-interactive refresh, browser client, device trust-type strings', () => {
    const e = buildSignIn(
      input(2, {
        incomingTokenType: 'refreshToken',
        clientAppType: 'browser',
        userAgent: 'Mozilla/5.0 (Windows NT 10.0) Chrome/126.0 Safari/537.36 Edg/126.0',
        device: {
          id: 'd1',
          displayName: 'LAB-1',
          operatingSystem: 'Windows',
          operatingSystemVersion: '10.0.22631',
          trustType: 'ServerAd',
        },
        errorCode: 53003,
        failureReason: 'blocked',
      }),
    );
    expect(e.isInteractive).toBe(false);
    expect(e.signInEventTypes).toEqual(['nonInteractiveUser']);
    expect(e.clientAppUsed).toBe('Browser');
    expect(e.deviceDetail).toMatchObject({
      trustType: 'Hybrid Azure AD joined',
      operatingSystem: 'Windows 10',
      browser: 'Edge 126',
    });
    expect(e.status).toMatchObject({ errorCode: 53003, failureReason: 'blocked' });
    expect(e.tokenProtectionStatusDetails.signInSessionStatus).toBe('none');
  });
});

describe('SignInStore', () => {
  it('batches writes, lists newest first, pages, filters and persists', async () => {
    const path = tmp();
    const store = new SignInStore(path);
    for (let i = 0; i < 5; i++)
      store.add(buildSignIn(input(i, i % 2 ? { app: { id: 'app-b', displayName: 'B' } } : {})));
    await new Promise((r) => setImmediate(r));
    expect(store.count()).toBe(5);
    const p1 = store.list({ top: 2 });
    expect(p1.value.map((e) => e.id)).toEqual(['req-4', 'req-3']);
    expect(p1.nextOffset).toBe(2);
    const p3 = store.list({ top: 2, offset: 4 });
    expect(p3.value.map((e) => e.id)).toEqual(['req-0']);
    expect(p3.nextOffset).toBeUndefined();
    expect(store.list({ orderBy: 'createdDateTime asc', top: 1 }).value[0]?.id).toBe('req-0');
    expect(store.list({ filter: "appId eq 'app-b'" }).value.map((e) => e.id)).toEqual([
      'req-3',
      'req-1',
    ]);
    expect(
      store.list({ filter: "signInEventTypes/any(t: t eq 'interactiveUser')" }).value,
    ).toHaveLength(5);
    expect(() => store.list({ filter: 'nope eq 1' })).toThrow();
    store.add(buildSignIn(input(9)));
    store.close(); // flushes
    const db = new Database(path, { readonly: true });
    expect(db.prepare("SELECT value FROM meta WHERE key = 'version'").get()).toEqual({
      value: String(SIGNINS_SCHEMA_VERSION),
    });
    db.close();
    const again = new SignInStore(path);
    expect(again.count()).toBe(6);
    again.close();
  });
});

describe('SignInStore: applied policies stored once per outcome', () => {
  const outcome = (id: string, result: 'notApplied' | 'reportOnlyFailure') =>
    Object.freeze({
      id,
      displayName: `Policy ${id}`,
      result,
      enforcedSessionControls: Object.freeze(
        result === 'notApplied' ? [] : ['SignInTokenProtection'],
      ) as string[],
      sessionControlsNotSatisfied: Object.freeze(
        result === 'notApplied' ? [] : ['SignInTokenProtection'],
      ) as string[],
    });
  const evaluation = (applied: ReturnType<typeof outcome>[]): CaEvaluation => ({
    conditionalAccessStatus: 'notApplied',
    blocked: false,
    applied,
    tokenProtection: { signInSessionStatus: 'unbound', signInSessionStatusCode: 1002 },
  });

  it('reads back every entry whole, and writes each distinct outcome once', () => {
    const path = tmp();
    const store = new SignInStore(path);
    const a = outcome('p1', 'notApplied');
    const b = outcome('p2', 'reportOnlyFailure');
    const entries = [
      buildSignIn(input(1, { evaluation: evaluation([a, b]) })),
      buildSignIn(input(2, { evaluation: evaluation([b, a]) })),
      buildSignIn(input(3, { evaluation: evaluation([]) })),
      buildSignIn(input(4)),
    ];
    for (const e of entries) store.add(e);
    store.close();

    const again = new SignInStore(path);
    const read = again.list({ orderBy: 'createdDateTime asc' }).value;
    again.close();
    // Equal as JSON: what the Graph route serves is unchanged by the storage form.
    expect(JSON.parse(JSON.stringify(read))).toEqual(JSON.parse(JSON.stringify(entries)));
    expect(read[1]?.appliedConditionalAccessPolicies.map((p) => p.id)).toEqual(['p2', 'p1']);

    const db = new Database(path, { readonly: true });
    expect(db.prepare('SELECT count(*) AS n FROM applied_forms').get()).toEqual({ n: 2 });
    const row = db.prepare("SELECT json, applied FROM signins WHERE id = 'req-1'").get() as {
      json: string;
      applied: string;
    };
    db.close();
    expect(row.applied.split(',')).toHaveLength(2);
    expect(row.json).not.toContain('Policy p1');
  });

  it('opens a schema 1 log, keeps its rows readable and adds new ones in the new form', () => {
    const path = tmp();
    const old = new Database(path);
    old.exec(`
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      INSERT INTO meta VALUES ('version', '1');
      CREATE TABLE signins (id TEXT PRIMARY KEY, created_at TEXT NOT NULL, user_id TEXT,
        app_id TEXT, json TEXT NOT NULL);
    `);
    const v1 = buildSignIn(input(1, { evaluation: evaluation([outcome('p9', 'notApplied')]) }));
    old
      .prepare('INSERT INTO signins VALUES (?, ?, ?, ?, ?)')
      .run(v1.id, v1.createdDateTime, v1.userId, v1.appId, JSON.stringify(v1));
    old.close();

    const store = new SignInStore(path);
    store.add(buildSignIn(input(2, { evaluation: evaluation([outcome('p9', 'notApplied')]) })));
    const read = store.list({ orderBy: 'createdDateTime asc' }).value;
    store.close();
    expect(read.map((e) => e.appliedConditionalAccessPolicies[0]?.id)).toEqual(['p9', 'p9']);
    const db = new Database(path, { readonly: true });
    expect(db.prepare("SELECT value FROM meta WHERE key = 'version'").get()).toEqual({
      value: '2',
    });
    db.close();
  });

  it('refuses a log written by a newer prtlab', () => {
    const path = tmp();
    new SignInStore(path).close();
    const db = new Database(path);
    db.prepare("UPDATE meta SET value = '99' WHERE key = 'version'").run();
    db.close();
    expect(() => new SignInStore(path)).toThrow(
      expect.objectContaining({ code: 'ERR_CLOUD_STATE', message: expect.stringMatching(/99/) }),
    );
  });
});
