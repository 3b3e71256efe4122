import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hashPassword, verifyPassword } from '../../cloud/directory/password.ts';
import { SCHEMA_VERSION } from '../../cloud/directory/schema.ts';
import { APP_IDS, DIRECTORY_ROLES } from '../../cloud/directory/seed.ts';
import { openSqliteDirectory } from '../../cloud/directory/sqlite.ts';
import type { Directory } from '../../cloud/directory/types.ts';
import { isCloudError } from '../../cloud/errors.ts';

const FAST = { ln: 10, r: 8, p: 1 };
const PASSWORD = 'Correct-Horse-9';

let dir: string;
let path: string;
let directory: Directory;
let now: Date;

async function open(): Promise<Directory> {
  return openSqliteDirectory({ path, scrypt: FAST, clock: () => now });
}

async function refusal(
  p: Promise<unknown>,
): Promise<{ code: string; aadsts: number; message: string }> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isCloudError(err)).toBe(true);
  return err as { code: string; aadsts: number; message: string };
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'prtlab-cloud-dir-'));
  path = join(dir, 'directory.sqlite');
  now = new Date('2025-03-01T10:00:00Z');
  directory = await open();
});

afterEach(async () => {
  await directory.close();
  await rm(dir, { recursive: true, force: true });
});

describe('tenant and schema', () => {
  it('creates the tenant on first open and keeps it', async () => {
    const { tenant } = directory;
    expect(tenant.domain).toBe('contoso.test');
    expect(tenant.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(tenant.region).toBe('NA');
    await directory.close();
    directory = await open();
    expect(directory.tenant).toEqual(tenant);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('records the schema version and runs in WAL mode', () => {
    const db = new Database(path, { readonly: true });
    try {
      expect(db.prepare('SELECT MAX(version) AS v FROM schema_version').get()).toEqual({
        v: SCHEMA_VERSION,
      });
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      db.close();
    }
  });

  it('refuses a database from a newer prtlab', async () => {
    await directory.close();
    const db = new Database(path);
    db.prepare('INSERT INTO schema_version (version, applied_at) VALUES (99, ?)').run(
      now.toISOString(),
    );
    db.close();
    const err = await refusal(open());
    expect(err.code).toBe('ERR_DIRECTORY');
    expect(err.message).toContain('newer');
    directory = await openSqliteDirectory({ path: join(dir, 'other.sqlite'), scrypt: FAST });
  });

  it('refuses a file that is not a database', async () => {
    const junk = join(dir, 'junk.sqlite');
    await import('node:fs/promises').then((f) => f.writeFile(junk, 'x'.repeat(4096)));
    const err = await refusal(openSqliteDirectory({ path: junk }));
    expect(err.code).toBe('ERR_DIRECTORY');
  });
});

describe('users', () => {
  it('adds and lists users; the password is stored only as a scrypt hash', async () => {
    const alice = await directory.users.create({ upn: 'Alice@Contoso.test', password: PASSWORD });
    expect(alice).toMatchObject({
      upn: 'Alice@contoso.test',
      kind: 'member',
      enabled: true,
      displayName: 'Alice',
    });
    expect(alice.createdAt).toBe(now.toISOString());
    await directory.users.create({ upn: 'bob@fabrikam.test', password: PASSWORD, kind: 'guest' });
    const list = await directory.users.list();
    expect(list.map((u) => u.upn)).toEqual(['Alice@contoso.test', 'bob@fabrikam.test']);
    await directory.close();
    const raw = await readFile(path);
    const wal = await readFile(`${path}-wal`).catch(() => Buffer.alloc(0));
    for (const bytes of [raw, wal]) expect(bytes.includes(Buffer.from(PASSWORD))).toBe(false);
    const db = new Database(path, { readonly: true });
    const row = db.prepare('SELECT password_hash FROM users WHERE id = ?').get(alice.id) as {
      password_hash: string;
    };
    db.close();
    expect(row.password_hash).toMatch(
      /^\$scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/,
    );
    directory = await open();
  });

  it('verifies passwords; a wrong one fails', async () => {
    const alice = await directory.users.create({ upn: 'alice@contoso.test', password: PASSWORD });
    expect(await directory.users.verifyPassword(alice.id, PASSWORD)).toBe(true);
    expect(await directory.users.verifyPassword(alice.id, 'Correct-Horse-8')).toBe(false);
    expect(await directory.users.verifyPassword(alice.id, '')).toBe(false);
    expect(
      await directory.users.verifyPassword('00000000-0000-4000-8000-000000000000', PASSWORD),
    ).toBe(false);
    expect((await directory.users.authenticate('ALICE@contoso.test', PASSWORD)).id).toBe(alice.id);
    const wrong = await refusal(
      directory.users.authenticate('alice@contoso.test', 'nope-nope-nope'),
    );
    expect(wrong).toMatchObject({ code: 'ERR_CLOUD_REQUEST', aadsts: 50126 });
    const unknown = await refusal(directory.users.authenticate('carol@contoso.test', PASSWORD));
    expect(unknown).toMatchObject({ code: 'ERR_CLOUD_REQUEST', aadsts: 50034 });
    expect(unknown.message).not.toContain('carol');
  });

  it('refuses a disabled user only after the right password', async () => {
    const alice = await directory.users.create({ upn: 'alice@contoso.test', password: PASSWORD });
    expect((await directory.users.setEnabled(alice.id, false)).enabled).toBe(false);
    expect(
      await refusal(directory.users.authenticate('alice@contoso.test', PASSWORD)),
    ).toMatchObject({
      aadsts: 50057,
    });
    expect(
      await refusal(directory.users.authenticate('alice@contoso.test', 'wrong-password')),
    ).toMatchObject({
      aadsts: 50126,
    });
    await directory.users.setEnabled('ALICE@contoso.test', true);
    expect((await directory.users.authenticate('alice@contoso.test', PASSWORD)).enabled).toBe(true);
  });

  it('keeps UPNs unique regardless of case, and finds them in any case', async () => {
    await directory.users.create({ upn: 'alice@contoso.test', password: PASSWORD });
    const dup = await refusal(
      directory.users.create({ upn: 'ALICE@CONTOSO.TEST', password: PASSWORD }),
    );
    expect(dup).toMatchObject({ code: 'ERR_DIRECTORY', aadsts: 9990001 });
    expect((await directory.users.findByUpn('aLiCe@contoso.TEST'))?.upn).toBe('alice@contoso.test');
    expect(await directory.users.list()).toHaveLength(1);
  });

  it('enforces UPN domains, UPN syntax and the password length rule', async () => {
    const outside = await refusal(
      directory.users.create({ upn: 'eve@example.com', password: PASSWORD }),
    );
    expect(outside).toMatchObject({ code: 'ERR_DIRECTORY', aadsts: 9990003 });
    expect(outside.message).toContain('guest');
    await refusal(
      directory.users.create({ upn: 'eve@contoso.test', password: PASSWORD, kind: 'guest' }),
    );
    for (const upn of [
      'no-at-sign',
      '@contoso.test',
      'a..b@contoso.test',
      'a b@contoso.test',
      'x@contoso',
    ]) {
      expect(await refusal(directory.users.create({ upn, password: PASSWORD }))).toMatchObject({
        aadsts: 9990003,
      });
    }
    expect(
      await refusal(directory.users.create({ upn: 'short@contoso.test', password: 'short' })),
    ).toMatchObject({
      aadsts: 9990003,
    });
  });

  it('assigns directory roles by name or template id; unknown roles are refused with the list', async () => {
    const admin = await directory.users.create({
      upn: 'admin@contoso.test',
      password: PASSWORD,
      roles: ['global administrator', '7698a772-787b-4ac8-901f-60d6b08affd2'],
    });
    await directory.users.assignRole(admin.id, 'User');
    const { roles } = await directory.users.memberOf(admin.id);
    expect(roles.map((r) => r.displayName).sort()).toEqual([
      'Cloud Device Administrator',
      'Global Administrator',
      'User',
    ]);
    expect(roles.find((r) => r.displayName === 'Global Administrator')?.id).toBe(
      '62e90394-69f5-4237-9190-012177145e10',
    );
    const bad = await refusal(
      directory.users.create({ upn: 'x@contoso.test', password: PASSWORD, roles: ['Wizard'] }),
    );
    expect(bad).toMatchObject({ code: 'ERR_DIRECTORY', aadsts: 9990002 });
    expect(bad.message).toContain('Cloud Device Administrator');
    expect(await directory.users.findByUpn('x@contoso.test')).toBeUndefined();
    expect((await directory.roles.list()).length).toBe(DIRECTORY_ROLES.length);
  });
});

describe('groups', () => {
  it('creates groups with case-insensitively unique names and manages members', async () => {
    const pilot = await directory.groups.create('TP Pilot', 'token protection pilot');
    const dup = await refusal(directory.groups.create('tp pilot'));
    expect(dup).toMatchObject({ code: 'ERR_DIRECTORY', aadsts: 9990001 });
    const alice = await directory.users.create({
      upn: 'alice@contoso.test',
      password: PASSWORD,
      groups: ['tp PILOT'],
    });
    const bob = await directory.users.create({ upn: 'bob@contoso.test', password: PASSWORD });
    await directory.groups.addMember(pilot.id, bob.upn);
    expect((await directory.groups.members(pilot.id)).map((u) => u.upn)).toEqual([
      'alice@contoso.test',
      'bob@contoso.test',
    ]);
    expect((await directory.users.memberOf(alice.id)).groups.map((g) => g.displayName)).toEqual([
      'TP Pilot',
    ]);
    expect(await directory.groups.removeMember(pilot.id, bob.id)).toBe(true);
    expect(await directory.groups.removeMember(pilot.id, bob.id)).toBe(false);
    const missing = await refusal(
      directory.users.create({ upn: 'carol@contoso.test', password: PASSWORD, groups: ['Nope'] }),
    );
    expect(missing).toMatchObject({ code: 'ERR_DIRECTORY', aadsts: 9990002 });
    expect(await directory.users.findByUpn('carol@contoso.test')).toBeUndefined();
  });
});

describe('devices', () => {
  const deviceId = '0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D';
  const thumbprint = 'ab'.repeat(20);

  it('creates, finds, updates, disables and deletes devices', async () => {
    const alice = await directory.users.create({ upn: 'alice@contoso.test', password: PASSWORD });
    const device = await directory.devices.create({
      id: deviceId,
      displayName: 'LAPTOP-01',
      joinType: 0,
      operatingSystemVersion: '10.0.19041.928',
      transportKey: Buffer.from('RSA1-blob'),
      certThumbprint: thumbprint,
      registeringUserId: alice.id,
      systemLabels: ['CloudPC'],
    });
    expect(device).toMatchObject({
      id: deviceId.toLowerCase(),
      trustType: 'AzureAd',
      state: 'registered',
      enabled: true,
      certThumbprint: thumbprint.toUpperCase(),
      registeringUserId: alice.id,
      systemLabels: ['CloudPC'],
    });
    expect(device.objectId).not.toBe(device.id);
    expect(device.transportKey?.toString()).toBe('RSA1-blob');
    expect((await directory.devices.findByThumbprint(thumbprint))?.id).toBe(device.id);
    expect((await directory.devices.find(device.objectId))?.id).toBe(device.id);
    const dup = await refusal(
      directory.devices.create({ id: deviceId, displayName: 'again', joinType: 4 }),
    );
    expect(dup).toMatchObject({ code: 'ERR_DIRECTORY', aadsts: 9990001 });
    now = new Date('2025-03-02T10:00:00Z');
    const disabled = await directory.devices.setEnabled(device.id, false);
    expect(disabled.enabled).toBe(false);
    expect(disabled.updatedAt).toBe(now.toISOString());
    const moved = await directory.devices.update(device.id, { joinType: 4 });
    expect(moved.trustType).toBe('Workplace');
    await directory.tokens.add({
      id: 'prt-1',
      kind: 'prt',
      userId: alice.id,
      deviceId: device.id,
      clientId: APP_IDS.windowsSignIn,
      issuedAt: 1000,
      expiresAt: 2000,
    });
    expect(await directory.devices.delete(device.id)).toBe(true);
    expect(await directory.devices.get(device.id)).toBeUndefined();
    expect((await directory.tokens.get('prt-1'))?.revokedAt).toBe(Math.floor(now.getTime() / 1000));
    expect(await directory.devices.delete(device.id)).toBe(false);
    expect(await refusal(directory.devices.setEnabled(device.id, true))).toMatchObject({
      aadsts: 700003,
    });
  });

  it('pre-creates a hybrid device awaiting its join', async () => {
    const device = await directory.devices.precreate({
      id: deviceId,
      displayName: 'WKS-HYBRID',
      onPremCertificate: Buffer.from([0x30, 0x82, 0x01]),
    });
    expect(device).toMatchObject({
      joinType: 6,
      trustType: 'ServerAd',
      state: 'precreated',
      certThumbprint: null,
    });
    expect(device.onPremCertificate?.equals(Buffer.from([0x30, 0x82, 0x01]))).toBe(true);
    const joined = await directory.devices.update(device.id, {
      state: 'registered',
      certThumbprint: thumbprint,
      transportKey: Buffer.from('tk'),
    });
    expect(joined.state).toBe('registered');
    expect((await directory.devices.list()).map((d) => d.id)).toEqual([deviceId.toLowerCase()]);
  });

  it('refuses bad device attributes', async () => {
    expect(
      await refusal(directory.devices.create({ id: 'not-a-guid', displayName: 'x', joinType: 0 })),
    ).toMatchObject({
      aadsts: 9990003,
    });
    expect(
      await refusal(
        directory.devices.create({ id: deviceId, displayName: 'x', joinType: 3 as never }),
      ),
    ).toMatchObject({ aadsts: 9990003 });
    expect(
      await refusal(
        directory.devices.create({
          id: deviceId,
          displayName: 'x',
          joinType: 0,
          certThumbprint: 'xyz',
        }),
      ),
    ).toMatchObject({ aadsts: 9990003 });
  });
});

describe('applications', () => {
  it('seeds first-party resources and clients', async () => {
    const drs = await directory.applications.findResource(
      'urn:ms-drs:enterpriseregistration.windows.net',
    );
    expect(drs?.appId).toBe('01cb2876-7ebd-4aa4-9cc9-d28bd4d359a9');
    expect((await directory.applications.findResource('https://graph.microsoft.com/'))?.appId).toBe(
      APP_IDS.microsoftGraph,
    );
    expect(
      (await directory.applications.findResource('HTTPS://OUTLOOK.OFFICE365.COM'))?.appId,
    ).toBe(APP_IDS.exchangeOnline);
    const spo = await directory.applications.findResource(APP_IDS.sharePointOnline);
    expect(spo?.identifierUris).toEqual(['https://contoso.sharepoint.com']);
    const broker = await directory.applications.get(APP_IDS.microsoftAuthenticationBroker);
    expect(broker).toMatchObject({ kind: 'client', brokerCapable: true, publicClient: true });
    expect(
      (await directory.applications.get('5e3ce6c0-2b1f-4285-8d4b-75ee78787346'))?.brokerCapable,
    ).toBe(false);
    expect(
      await directory.applications.findResource(APP_IDS.microsoftAuthenticationBroker),
    ).toBeUndefined();
    expect(
      await directory.applications.get('99999999-9999-4999-8999-999999999999'),
    ).toBeUndefined();
    const clients = await directory.applications.list('client');
    expect(clients.every((c) => c.kind === 'client')).toBe(true);
  });
});

describe('token records', () => {
  it('records tokens and revokes them with everything obtained from them', async () => {
    const user = await directory.users.create({ upn: 'alice@contoso.test', password: PASSWORD });
    const base = {
      userId: user.id,
      clientId: APP_IDS.microsoftAuthenticationBroker,
      issuedAt: 100,
      expiresAt: 200,
    };
    const prt = await directory.tokens.add({
      ...base,
      kind: 'prt',
      deviceId: '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d',
    });
    const rt = await directory.tokens.add({ ...base, kind: 'refresh_token', parentId: prt.id });
    const rt2 = await directory.tokens.add({ ...base, kind: 'refresh_token', parentId: rt.id });
    const other = await directory.tokens.add({ ...base, kind: 'refresh_token' });
    expect(prt.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(prt.revokedAt).toBeNull();
    expect(await directory.tokens.revoke(prt.id, 150)).toBe(3);
    expect((await directory.tokens.get(rt2.id))?.revokedAt).toBe(150);
    expect((await directory.tokens.get(other.id))?.revokedAt).toBeNull();
    expect(await directory.tokens.revoke(prt.id, 160)).toBe(0);
    expect(await directory.tokens.revokeForUser(user.id, 170)).toBe(1);
    expect(await directory.tokens.purgeExpired(201)).toBe(4);
    expect(await directory.tokens.get(prt.id)).toBeUndefined();
    await expect(directory.tokens.add({ ...base, kind: 'prt', expiresAt: 50 })).rejects.toThrow(
      RangeError,
    );
  });
});

describe('password hashes', () => {
  it('carry their parameters and fail closed when damaged', async () => {
    const stored = await hashPassword('pw-123456', FAST);
    expect(await verifyPassword('pw-123456', stored)).toBe(true);
    expect(await verifyPassword('pw-123457', stored)).toBe(false);
    expect(await verifyPassword('pw-123456', stored.replace('ln=10', 'ln=31'))).toBe(false);
    expect(await verifyPassword('pw-123456', 'plain')).toBe(false);
    expect(stored).not.toContain('pw-123456');
  });
});
