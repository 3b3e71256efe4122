/**
 * The directory on SQLite (better-sqlite3): `<data>/cloud/directory.sqlite` in WAL mode, so the
 * CLI can change users and devices while `prtlab cloud serve` reads them. Multi-step changes run
 * in one transaction; the tenant is created (and the first-party applications seeded) on open.
 */
import { chmodSync, lstatSync } from 'node:fs';
import Database from 'better-sqlite3';
import { errnoCode } from '../data-dir.ts';
import { CloudRequestError, CloudStateError, DirectoryError, echo } from '../errors.ts';
import { isDnsName, isGuid, newGuid } from '../ids.ts';
import { JOIN_TYPES, type JoinType } from '../pki/device-cert.ts';
import { sqlitePolicyStore } from '../policies/store.ts';
import {
  hashPassword,
  MAX_PASSWORD_LENGTH,
  MIN_PASSWORD_LENGTH,
  type ScryptParams,
  verifyAgainstNothing,
  verifyPassword,
} from './password.ts';
import { MIGRATIONS, SCHEMA_VERSION } from './schema.ts';
import { DIRECTORY_ROLES, firstPartyApplications } from './seed.ts';
import type {
  Application,
  ApplicationKind,
  ApplicationStore,
  AttestationStatus,
  Device,
  DeviceAttestation,
  DevicePatch,
  DeviceStore,
  Directory,
  DirectoryRole,
  Group,
  GroupStore,
  NewDevice,
  NewTokenRecord,
  NewUser,
  PolicyStore,
  PrecreatedDevice,
  RoleStore,
  Tenant,
  TokenKind,
  TokenRecord,
  TokenRecordStore,
  TrustType,
  User,
  UserKind,
  UserMemberships,
  UserStore,
} from './types.ts';

export const DEFAULT_TENANT_DOMAIN = 'contoso.test';
export const DEFAULT_TENANT_REGION = 'NA';

export interface SqliteDirectoryOptions {
  /** The database file; created if missing. */
  path: string;
  /** Clock for timestamps and default revocation times (tests freeze it). */
  clock?: () => Date;
  /** Used only when the tenant is created (first open). */
  tenant?: { domain?: string; displayName?: string; region?: string };
  /** scrypt parameters for new password hashes (tests may lower them). */
  scrypt?: ScryptParams;
  /** How long a writer waits for another process's lock before failing (ms). */
  busyTimeoutMs?: number;
}

const TRUST_TYPE: Record<JoinType, TrustType> = { 0: 'AzureAd', 4: 'Workplace', 6: 'ServerAd' };
const MAX_TEXT = 256;
const MAX_LABELS = 32;
const UPN_LOCAL = /^[A-Za-z0-9'._!#^~+-]{1,64}$/;
const TOKEN_KINDS: readonly TokenKind[] = ['prt', 'refresh_token', 'access_token'];

interface UserRow {
  id: string;
  upn: string;
  display_name: string;
  kind: UserKind;
  enabled: number;
  password_hash: string;
  created_at: string;
  updated_at: string;
}
interface GroupRow {
  id: string;
  display_name: string;
  description: string;
  created_at: string;
}
interface DeviceRow {
  id: string;
  object_id: string;
  display_name: string;
  join_type: number;
  trust_type: TrustType;
  state: 'precreated' | 'registered';
  os: string;
  os_version: string;
  device_type: string;
  transport_key: Buffer | null;
  cert_thumbprint: string | null;
  onprem_certificate: Buffer | null;
  enabled: number;
  registering_user_id: string | null;
  system_labels: string;
  is_compliant: number | null;
  enrollment_profile_name: string | null;
  profile_type: string | null;
  attestation_status: AttestationStatus;
  attestation_reason: string;
  created_at: string;
  updated_at: string;
}
interface AppRow {
  app_id: string;
  display_name: string;
  kind: ApplicationKind;
  identifier_uris: string;
  broker_capable: number;
  public_client: number;
}
interface TokenRow {
  id: string;
  kind: TokenKind;
  user_id: string;
  device_id: string | null;
  client_id: string;
  parent_id: string | null;
  issued_at: number;
  expires_at: number;
  revoked_at: number | null;
}

/** Opens (creating and migrating if needed) the directory database. */
export async function openSqliteDirectory(options: SqliteDirectoryOptions): Promise<Directory> {
  if (typeof options?.path !== 'string' || options.path.length === 0) {
    throw new TypeError('path must be a non-empty string');
  }
  const clock = options.clock ?? (() => new Date());
  refuseSymlink(options.path);
  let db: Database.Database;
  try {
    db = new Database(options.path, { timeout: options.busyTimeoutMs ?? 5000 });
  } catch (err) {
    throw unusable(options.path, err);
  }
  cachePreparedStatements(db);
  try {
    // The directory holds password hashes: owner-only, whatever the umask.
    chmodSync(options.path, 0o600);
    db.pragma('journal_mode = WAL');
    db.pragma('foreign_keys = ON');
    // NORMAL is durable across application crashes in WAL mode, and much faster than FULL.
    db.pragma('synchronous = NORMAL');
    migrate(db, options.path);
    const tenant = ensureTenant(db, clock, options.tenant ?? {});
    seedApplications(db, tenant);
    return new SqliteDirectory(db, options.path, tenant, clock, options.scrypt);
  } catch (err) {
    db.close();
    if (err instanceof DirectoryError || err instanceof TypeError || err instanceof RangeError) {
      throw err;
    }
    throw unusable(options.path, err);
  }
}

function refuseSymlink(path: string): void {
  try {
    if (lstatSync(path).isSymbolicLink()) {
      throw new CloudStateError(`${path} is a symbolic link; the directory database must be real`);
    }
  } catch (err) {
    if (err instanceof CloudStateError) throw err;
    if (errnoCode(err) !== 'ENOENT')
      throw new CloudStateError(`cannot stat ${path}`, { cause: err });
  }
}

function unusable(path: string, err: unknown): DirectoryError {
  const why = err instanceof Error ? err.message : String(err);
  return new DirectoryError(50000, `cannot use the directory database ${path}: ${why}`, {
    cause: err,
  });
}

function migrate(db: Database.Database, path: string): void {
  const run = db.transaction(() => {
    db.exec(
      'CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL)',
    );
    const row = db.prepare('SELECT MAX(version) AS v FROM schema_version').get() as {
      v: number | null;
    };
    const current = row.v ?? 0;
    if (current > SCHEMA_VERSION) {
      throw new DirectoryError(
        50000,
        `the directory database ${path} has schema version ${current}, newer than this ` +
          `prtlab understands (${SCHEMA_VERSION}); use a newer prtlab`,
      );
    }
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue;
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_version (version, applied_at) VALUES (?, ?)').run(
        m.version,
        new Date().toISOString(),
      );
    }
  });
  run.immediate();
}

function ensureTenant(
  db: Database.Database,
  clock: () => Date,
  wanted: NonNullable<SqliteDirectoryOptions['tenant']>,
): Tenant {
  const create = db.transaction((): Tenant => {
    const existing = db.prepare('SELECT * FROM tenant').get() as
      | { id: string; domain: string; display_name: string; region: string; created_at: string }
      | undefined;
    if (existing) {
      return Object.freeze({
        id: existing.id,
        domain: existing.domain,
        displayName: existing.display_name,
        region: existing.region,
        createdAt: existing.created_at,
      });
    }
    const domain = (wanted.domain ?? DEFAULT_TENANT_DOMAIN).toLowerCase();
    if (!isDnsName(domain)) throw new RangeError(`tenant domain ${domain} is not a DNS name`);
    const region = wanted.region ?? DEFAULT_TENANT_REGION;
    if (!/^[A-Z]{2}$/.test(region)) throw new RangeError('tenant region must be two capitals');
    const label = domain.split('.')[0]!;
    const tenant: Tenant = Object.freeze({
      id: newGuid(),
      domain,
      displayName: wanted.displayName ?? `${label[0]!.toUpperCase()}${label.slice(1)} (prtlab)`,
      region,
      createdAt: clock().toISOString(),
    });
    db.prepare(
      'INSERT INTO tenant (id, domain, display_name, region, created_at) VALUES (?, ?, ?, ?, ?)',
    ).run(tenant.id, tenant.domain, tenant.displayName, tenant.region, tenant.createdAt);
    return tenant;
  });
  return create.immediate();
}

function seedApplications(db: Database.Database, tenant: Tenant): void {
  const upsert = db.prepare(
    `INSERT INTO applications (app_id, display_name, kind, identifier_uris, broker_capable, public_client)
     VALUES (@appId, @displayName, @kind, @uris, @broker, @public)
     ON CONFLICT (app_id) DO UPDATE SET display_name = excluded.display_name, kind = excluded.kind,
       identifier_uris = excluded.identifier_uris, broker_capable = excluded.broker_capable,
       public_client = excluded.public_client`,
  );
  db.transaction(() => {
    for (const app of firstPartyApplications(tenant.domain)) {
      upsert.run({
        appId: app.appId,
        displayName: app.displayName,
        kind: app.kind,
        uris: JSON.stringify(app.identifierUris),
        broker: app.brokerCapable ? 1 : 0,
        public: app.publicClient ? 1 : 0,
      });
    }
  }).immediate();
}

function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

function checkText(what: string, value: unknown, max = MAX_TEXT): string {
  if (typeof value !== 'string') throw new TypeError(`${what} must be a string`);
  const trimmed = value.trim();
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (trimmed.length === 0 || trimmed.length > max || /[\u0000-\u001f\u007f]/.test(trimmed)) {
    throw new DirectoryError(
      9990003,
      `${what} must be 1 to ${max} characters without control characters`,
    );
  }
  return trimmed;
}

function upnKey(upn: string): string {
  return upn.normalize('NFC').toLowerCase();
}

function toUser(row: UserRow): User {
  return Object.freeze({
    id: row.id,
    upn: row.upn,
    displayName: row.display_name,
    kind: row.kind,
    enabled: row.enabled === 1,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  });
}

function toGroup(row: GroupRow): Group {
  return Object.freeze({
    id: row.id,
    displayName: row.display_name,
    description: row.description,
    createdAt: row.created_at,
  });
}

function toDevice(row: DeviceRow): Device {
  return Object.freeze({
    id: row.id,
    objectId: row.object_id,
    displayName: row.display_name,
    joinType: row.join_type as JoinType,
    trustType: row.trust_type,
    state: row.state,
    operatingSystem: row.os,
    operatingSystemVersion: row.os_version,
    deviceType: row.device_type,
    transportKey: row.transport_key,
    certThumbprint: row.cert_thumbprint,
    onPremCertificate: row.onprem_certificate,
    enabled: row.enabled === 1,
    registeringUserId: row.registering_user_id,
    systemLabels: Object.freeze(JSON.parse(row.system_labels) as string[]),
    isCompliant: row.is_compliant === null ? null : row.is_compliant === 1,
    enrollmentProfileName: row.enrollment_profile_name,
    profileType: row.profile_type,
    attestation: Object.freeze({
      status: row.attestation_status,
      reason: row.attestation_reason,
    }),
    hardwareBacked: row.attestation_status === 'verified',
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  });
}

/** What a device without attestation records (NewDevice.attestation's default). */
const NO_ATTESTATION: DeviceAttestation = Object.freeze({
  status: 'absent',
  reason: 'no TPM attestation was presented',
});
const PRECREATED_ATTESTATION: DeviceAttestation = Object.freeze({
  status: 'absent',
  reason: 'pre-created (synced) device, not joined yet',
});

function checkAttestation(a: DeviceAttestation): DeviceAttestation {
  if (typeof a !== 'object' || a === null) throw new TypeError('attestation must be an object');
  if (a.status !== 'verified' && a.status !== 'absent') {
    throw new TypeError('attestation.status must be verified or absent');
  }
  return { status: a.status, reason: checkText('attestation.reason', a.reason, 512) };
}

function toApplication(row: AppRow): Application {
  return Object.freeze({
    appId: row.app_id,
    displayName: row.display_name,
    kind: row.kind,
    identifierUris: Object.freeze(JSON.parse(row.identifier_uris) as string[]),
    brokerCapable: row.broker_capable === 1,
    publicClient: row.public_client === 1,
  });
}

function toToken(row: TokenRow): TokenRecord {
  return Object.freeze({
    id: row.id,
    kind: row.kind,
    userId: row.user_id,
    deviceId: row.device_id,
    clientId: row.client_id,
    parentId: row.parent_id,
    issuedAt: row.issued_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
  });
}

function userNotFound(idOrUpn: string): DirectoryError {
  return new DirectoryError(50034, `user '${echo(idOrUpn)}' does not exist in the directory`);
}

function deviceNotFound(id: string): DirectoryError {
  return new DirectoryError(700003, `device '${echo(id)}' does not exist in the directory`);
}

function checkGuid(what: string, value: unknown): string {
  if (!isGuid(value)) throw new DirectoryError(9990003, `${what} must be a GUID`);
  return value.toLowerCase();
}

function checkLabels(labels: readonly string[] | undefined): string {
  const list = labels ?? [];
  if (!Array.isArray(list) || list.length > MAX_LABELS) {
    throw new DirectoryError(9990003, `systemLabels must be a list of at most ${MAX_LABELS}`);
  }
  return JSON.stringify(list.map((l) => checkText('system label', l, 64)));
}

function checkJoinType(value: unknown): JoinType {
  if (!JOIN_TYPES.includes(value as JoinType)) {
    throw new DirectoryError(9990003, 'joinType must be 0 (joined), 4 (registered) or 6 (hybrid)');
  }
  return value as JoinType;
}

function checkThumbprint(value: string | null | undefined): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || !/^[0-9A-Fa-f]{40}$/.test(value)) {
    throw new DirectoryError(9990003, 'certThumbprint must be 40 hex digits (SHA-1)');
  }
  return value.toUpperCase();
}

function checkSeconds(what: string, value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) {
    throw new TypeError(`${what} must be Unix seconds (a non-negative integer)`);
  }
  return value as number;
}

class SqliteDirectory implements Directory {
  readonly tenant: Tenant;
  readonly users: UserStore;
  readonly groups: GroupStore;
  readonly roles: RoleStore;
  readonly devices: DeviceStore;
  readonly applications: ApplicationStore;
  readonly tokens: TokenRecordStore;
  readonly policies: PolicyStore;
  readonly #db: Database.Database;
  readonly #path: string;
  readonly #clock: () => Date;
  readonly #scrypt: ScryptParams | undefined;
  #closed = false;

  constructor(
    db: Database.Database,
    path: string,
    tenant: Tenant,
    clock: () => Date,
    scrypt: ScryptParams | undefined,
  ) {
    this.#db = db;
    this.#path = path;
    this.tenant = tenant;
    this.#clock = clock;
    this.#scrypt = scrypt;
    this.users = this.#userStore();
    this.groups = this.#groupStore();
    this.roles = this.#roleStore();
    this.devices = this.#deviceStore();
    this.applications = this.#applicationStore();
    this.tokens = this.#tokenStore();
    this.policies = sqlitePolicyStore(
      () => this.#q(),
      () => this.#now(),
    );
  }

  describe(): string {
    return `directory ${this.#path} (SQLite, schema v${SCHEMA_VERSION})`;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }

  /** The database, after checking it is still open. */
  #q(): Database.Database {
    if (this.#closed) throw new TypeError('the directory is closed');
    return this.#db;
  }

  #now(): string {
    return this.#clock().toISOString();
  }

  #nowSeconds(): number {
    return Math.floor(this.#clock().getTime() / 1000);
  }

  #userRow(idOrUpn: string): UserRow | undefined {
    const db = this.#q();
    if (isGuid(idOrUpn)) {
      return db.prepare('SELECT * FROM users WHERE id = ?').get(idOrUpn.toLowerCase()) as
        | UserRow
        | undefined;
    }
    return db.prepare('SELECT * FROM users WHERE upn_key = ?').get(upnKey(idOrUpn)) as
      | UserRow
      | undefined;
  }

  #groupRow(idOrName: string): GroupRow | undefined {
    const db = this.#q();
    const byId = isGuid(idOrName)
      ? (db.prepare('SELECT * FROM groups WHERE id = ?').get(idOrName.toLowerCase()) as
          | GroupRow
          | undefined)
      : undefined;
    return (
      byId ??
      (db.prepare('SELECT * FROM groups WHERE name_key = ?').get(upnKey(idOrName.trim())) as
        | GroupRow
        | undefined)
    );
  }

  #deviceRow(idOrObjectId: string): DeviceRow | undefined {
    if (!isGuid(idOrObjectId)) return undefined;
    const id = idOrObjectId.toLowerCase();
    return this.#q()
      .prepare('SELECT * FROM devices WHERE id = ? OR object_id = ? ORDER BY id = ? DESC LIMIT 1')
      .get(id, id, id) as DeviceRow | undefined;
  }

  #role(idOrName: string): DirectoryRole | undefined {
    const key = idOrName.trim().toLowerCase();
    return DIRECTORY_ROLES.find((r) => r.id === key || r.displayName.toLowerCase() === key);
  }

  #checkUpn(upn: unknown, kind: UserKind): string {
    if (typeof upn !== 'string') throw new TypeError('upn must be a string');
    const value = upn.trim();
    const at = value.lastIndexOf('@');
    const local = value.slice(0, at);
    const domain = value.slice(at + 1).toLowerCase();
    if (
      at <= 0 ||
      !UPN_LOCAL.test(local) ||
      local.startsWith('.') ||
      local.endsWith('.') ||
      local.includes('..') ||
      !isDnsName(domain)
    ) {
      throw new DirectoryError(9990003, `'${echo(value)}' is not a valid user principal name`);
    }
    const own = domain === this.tenant.domain;
    if (kind === 'member' && !own) {
      throw new DirectoryError(
        9990003,
        `a member's UPN must be in the tenant's domain (@${this.tenant.domain}); ` +
          'add an external user as a guest',
      );
    }
    if (kind === 'guest' && own) {
      throw new DirectoryError(
        9990003,
        `a guest's UPN must be outside the tenant's domain (@${this.tenant.domain})`,
      );
    }
    return `${local}@${domain}`;
  }

  #userStore(): UserStore {
    const self = this;
    return {
      async create(input: NewUser): Promise<User> {
        if (typeof input !== 'object' || input === null)
          throw new TypeError('input must be an object');
        const kind: UserKind = input.kind ?? 'member';
        if (kind !== 'member' && kind !== 'guest')
          throw new TypeError('kind must be member or guest');
        const upn = self.#checkUpn(input.upn, kind);
        checkPasswordRule(input.password);
        const displayName = checkText('displayName', input.displayName ?? upn.split('@')[0]);
        const roleIds = (input.roles ?? []).map((name) => {
          const role = self.#role(name);
          if (!role) throw unknownRole(name);
          return role.id;
        });
        // Hash before the transaction: scrypt is slow and must not hold the write lock.
        const hash = await hashPassword(input.password, self.#scrypt);
        const db = self.#q();
        const id = newGuid();
        const now = self.#now();
        db.transaction(() => {
          const groupIds = (input.groups ?? []).map((name) => {
            const group = self.#groupRow(name);
            if (!group) throw unknownGroup(name);
            return group.id;
          });
          try {
            db.prepare(
              `INSERT INTO users (id, upn, upn_key, display_name, kind, enabled, password_hash, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
            ).run(
              id,
              upn,
              upnKey(upn),
              displayName,
              kind,
              input.enabled === false ? 0 : 1,
              hash,
              now,
              now,
            );
          } catch (err) {
            if (isUniqueViolation(err)) {
              throw new DirectoryError(9990001, `a user with UPN ${upn} already exists`);
            }
            throw err;
          }
          const addRole = db.prepare(
            'INSERT OR IGNORE INTO user_roles (user_id, role_id) VALUES (?, ?)',
          );
          for (const roleId of roleIds) addRole.run(id, roleId);
          const addMember = db.prepare(
            'INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?, ?)',
          );
          for (const groupId of groupIds) addMember.run(groupId, id);
        }).immediate();
        const row = self.#userRow(id);
        return toUser(row!);
      },

      async get(id: string): Promise<User | undefined> {
        if (!isGuid(id)) return undefined;
        const row = self.#userRow(id);
        return row && toUser(row);
      },

      async findByUpn(upn: string): Promise<User | undefined> {
        if (typeof upn !== 'string') return undefined;
        const row = self
          .#q()
          .prepare('SELECT * FROM users WHERE upn_key = ?')
          .get(upnKey(upn.trim())) as UserRow | undefined;
        return row && toUser(row);
      },

      async find(idOrUpn: string): Promise<User | undefined> {
        if (typeof idOrUpn !== 'string') return undefined;
        const row = self.#userRow(idOrUpn.trim());
        return row && toUser(row);
      },

      async list(): Promise<User[]> {
        return (self.#q().prepare('SELECT * FROM users ORDER BY upn_key').all() as UserRow[]).map(
          toUser,
        );
      },

      async setEnabled(id: string, enabled: boolean): Promise<User> {
        if (typeof enabled !== 'boolean') throw new TypeError('enabled must be a boolean');
        const row = self.#userRow(id);
        if (!row) throw userNotFound(id);
        self
          .#q()
          .prepare('UPDATE users SET enabled = ?, updated_at = ? WHERE id = ?')
          .run(enabled ? 1 : 0, self.#now(), row.id);
        return toUser(self.#userRow(row.id)!);
      },

      async setPassword(id: string, password: string): Promise<void> {
        checkPasswordRule(password);
        const row = self.#userRow(id);
        if (!row) throw userNotFound(id);
        const hash = await hashPassword(password, self.#scrypt);
        self
          .#q()
          .prepare('UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?')
          .run(hash, self.#now(), row.id);
      },

      async verifyPassword(id: string, password: string): Promise<boolean> {
        const row = typeof id === 'string' ? self.#userRow(id) : undefined;
        if (!row) return verifyAgainstNothing(password);
        return verifyPassword(password, row.password_hash);
      },

      async authenticate(upn: string, password: string): Promise<User> {
        const row =
          typeof upn === 'string'
            ? (self.#q().prepare('SELECT * FROM users WHERE upn_key = ?').get(upnKey(upn.trim())) as
                | UserRow
                | undefined)
            : undefined;
        if (!row) {
          await verifyAgainstNothing(password);
          // Entra hides the account name here ("{EUII Hidden}"); so does the lab.
          throw new CloudRequestError(50034, {
            description:
              `The user account {EUII Hidden} does not exist in the ${self.tenant.id} directory. ` +
              'To sign into this application, the account must be added to the directory.',
          });
        }
        if (!(await verifyPassword(password, row.password_hash))) {
          throw new CloudRequestError(50126);
        }
        // Only after the right password: a wrong guess learns nothing about the account state.
        if (row.enabled !== 1) throw new CloudRequestError(50057);
        return toUser(row);
      },

      async memberOf(id: string): Promise<UserMemberships> {
        const row = self.#userRow(id);
        if (!row) throw userNotFound(id);
        const db = self.#q();
        const groups = (
          db
            .prepare(
              `SELECT g.* FROM groups g JOIN group_members m ON m.group_id = g.id
               WHERE m.user_id = ? ORDER BY g.name_key`,
            )
            .all(row.id) as GroupRow[]
        ).map(toGroup);
        const roleIds = new Set(
          (
            db.prepare('SELECT role_id FROM user_roles WHERE user_id = ?').all(row.id) as {
              role_id: string;
            }[]
          ).map((r) => r.role_id),
        );
        const roles = DIRECTORY_ROLES.filter((r) => roleIds.has(r.id));
        return Object.freeze({ groups: Object.freeze(groups), roles: Object.freeze(roles) });
      },

      async assignRole(id: string, role: string): Promise<void> {
        const row = self.#userRow(id);
        if (!row) throw userNotFound(id);
        const found = self.#role(role);
        if (!found) throw unknownRole(role);
        self
          .#q()
          .prepare('INSERT OR IGNORE INTO user_roles (user_id, role_id) VALUES (?, ?)')
          .run(row.id, found.id);
      },
    };
  }

  #groupStore(): GroupStore {
    const self = this;
    return {
      async create(displayName: string, description = ''): Promise<Group> {
        const name = checkText('group name', displayName);
        const desc = description === '' ? '' : checkText('description', description, 1024);
        const id = newGuid();
        try {
          self
            .#q()
            .prepare(
              'INSERT INTO groups (id, display_name, name_key, description, created_at) VALUES (?, ?, ?, ?, ?)',
            )
            .run(id, name, upnKey(name), desc, self.#now());
        } catch (err) {
          if (isUniqueViolation(err)) {
            throw new DirectoryError(9990001, `a group named '${echo(name)}' already exists`);
          }
          throw err;
        }
        return toGroup(self.#groupRow(id)!);
      },

      async get(id: string): Promise<Group | undefined> {
        if (!isGuid(id)) return undefined;
        const row = self.#q().prepare('SELECT * FROM groups WHERE id = ?').get(id.toLowerCase()) as
          | GroupRow
          | undefined;
        return row && toGroup(row);
      },

      async find(idOrName: string): Promise<Group | undefined> {
        if (typeof idOrName !== 'string') return undefined;
        const row = self.#groupRow(idOrName);
        return row && toGroup(row);
      },

      async list(): Promise<Group[]> {
        return (
          self.#q().prepare('SELECT * FROM groups ORDER BY name_key').all() as GroupRow[]
        ).map(toGroup);
      },

      async addMember(groupId: string, userId: string): Promise<void> {
        const group = self.#groupRow(groupId);
        if (!group) throw unknownGroup(groupId);
        const user = self.#userRow(userId);
        if (!user) throw userNotFound(userId);
        self
          .#q()
          .prepare('INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?, ?)')
          .run(group.id, user.id);
      },

      async removeMember(groupId: string, userId: string): Promise<boolean> {
        const group = self.#groupRow(groupId);
        const user = self.#userRow(userId);
        if (!group || !user) return false;
        return (
          self
            .#q()
            .prepare('DELETE FROM group_members WHERE group_id = ? AND user_id = ?')
            .run(group.id, user.id).changes > 0
        );
      },

      async members(groupId: string): Promise<User[]> {
        const group = self.#groupRow(groupId);
        if (!group) throw unknownGroup(groupId);
        return (
          self
            .#q()
            .prepare(
              `SELECT u.* FROM users u JOIN group_members m ON m.user_id = u.id
               WHERE m.group_id = ? ORDER BY u.upn_key`,
            )
            .all(group.id) as UserRow[]
        ).map(toUser);
      },
    };
  }

  #roleStore(): RoleStore {
    const self = this;
    return {
      async list() {
        return DIRECTORY_ROLES;
      },
      async find(idOrName: string) {
        return typeof idOrName === 'string' ? self.#role(idOrName) : undefined;
      },
    };
  }

  #deviceStore(): DeviceStore {
    const self = this;
    const insert = (values: {
      id: string;
      displayName: string;
      joinType: JoinType;
      state: 'precreated' | 'registered';
      os: string;
      osVersion: string;
      deviceType: string;
      transportKey: Uint8Array | null;
      thumbprint: string | null;
      onPrem: Uint8Array | null;
      enabled: boolean;
      registeringUserId: string | null;
      labels: string;
      attestation: DeviceAttestation;
    }): Device => {
      const now = self.#now();
      try {
        self
          .#q()
          .prepare(
            `INSERT INTO devices (id, object_id, display_name, join_type, trust_type, state, os, os_version,
               device_type, transport_key, cert_thumbprint, onprem_certificate, enabled, registering_user_id,
               system_labels, attestation_status, attestation_reason, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(
            values.id,
            newGuid(),
            values.displayName,
            values.joinType,
            TRUST_TYPE[values.joinType],
            values.state,
            values.os,
            values.osVersion,
            values.deviceType,
            values.transportKey && Buffer.from(values.transportKey),
            values.thumbprint,
            values.onPrem && Buffer.from(values.onPrem),
            values.enabled ? 1 : 0,
            values.registeringUserId,
            values.labels,
            values.attestation.status,
            values.attestation.reason,
            now,
            now,
          );
      } catch (err) {
        if (isUniqueViolation(err)) {
          throw new DirectoryError(
            9990001,
            `a device with id ${values.id} (or that certificate thumbprint) already exists`,
          );
        }
        throw err;
      }
      return toDevice(self.#deviceRow(values.id)!);
    };
    const registeringUser = (id: string | null | undefined): string | null => {
      if (id === undefined || id === null) return null;
      const user = self.#userRow(checkGuid('registeringUserId', id));
      if (!user) throw userNotFound(id);
      return user.id;
    };

    return {
      async create(input: NewDevice): Promise<Device> {
        if (typeof input !== 'object' || input === null)
          throw new TypeError('input must be an object');
        return insert({
          id: checkGuid('device id', input.id),
          displayName: checkText('displayName', input.displayName),
          joinType: checkJoinType(input.joinType),
          state: 'registered',
          os: checkText('operatingSystem', input.operatingSystem ?? 'Windows', 64),
          osVersion: checkText(
            'operatingSystemVersion',
            input.operatingSystemVersion ?? 'unknown',
            64,
          ),
          deviceType: checkText('deviceType', input.deviceType ?? 'Windows', 64),
          transportKey: input.transportKey ?? null,
          thumbprint: checkThumbprint(input.certThumbprint),
          onPrem: null,
          enabled: input.enabled ?? true,
          registeringUserId: registeringUser(input.registeringUserId),
          labels: checkLabels(input.systemLabels),
          attestation: checkAttestation(input.attestation ?? NO_ATTESTATION),
        });
      },

      async precreate(input: PrecreatedDevice): Promise<Device> {
        if (typeof input !== 'object' || input === null)
          throw new TypeError('input must be an object');
        if (
          !(input.onPremCertificate instanceof Uint8Array) ||
          input.onPremCertificate.length === 0
        ) {
          throw new TypeError('onPremCertificate must be the certificate DER');
        }
        return insert({
          id: checkGuid('device id', input.id),
          displayName: checkText('displayName', input.displayName),
          joinType: 6,
          state: 'precreated',
          os: 'Windows',
          osVersion: 'unknown',
          deviceType: 'Windows',
          transportKey: null,
          thumbprint: null,
          onPrem: input.onPremCertificate,
          enabled: true,
          registeringUserId: null,
          labels: '[]',
          attestation: PRECREATED_ATTESTATION,
        });
      },

      async get(id: string): Promise<Device | undefined> {
        if (!isGuid(id)) return undefined;
        const row = self.#q().prepare('SELECT * FROM devices WHERE id = ?').get(id.toLowerCase()) as
          | DeviceRow
          | undefined;
        return row && toDevice(row);
      },

      async find(idOrObjectId: string): Promise<Device | undefined> {
        const row =
          typeof idOrObjectId === 'string' ? self.#deviceRow(idOrObjectId.trim()) : undefined;
        return row && toDevice(row);
      },

      async findByThumbprint(thumbprint: string): Promise<Device | undefined> {
        if (typeof thumbprint !== 'string' || !/^[0-9A-Fa-f]{40}$/.test(thumbprint))
          return undefined;
        const row = self
          .#q()
          .prepare('SELECT * FROM devices WHERE cert_thumbprint = ?')
          .get(thumbprint.toUpperCase()) as DeviceRow | undefined;
        return row && toDevice(row);
      },

      async list(): Promise<Device[]> {
        return (
          self.#q().prepare('SELECT * FROM devices ORDER BY created_at, id').all() as DeviceRow[]
        ).map(toDevice);
      },

      async update(id: string, patch: DevicePatch): Promise<Device> {
        if (typeof patch !== 'object' || patch === null)
          throw new TypeError('patch must be an object');
        const row = self.#deviceRow(id);
        if (!row) throw deviceNotFound(id);
        const sets: string[] = [];
        const args: unknown[] = [];
        const set = (column: string, value: unknown) => {
          sets.push(`${column} = ?`);
          args.push(value);
        };
        if (patch.displayName !== undefined)
          set('display_name', checkText('displayName', patch.displayName));
        if (patch.joinType !== undefined) {
          const jt = checkJoinType(patch.joinType);
          set('join_type', jt);
          set('trust_type', TRUST_TYPE[jt]);
        }
        if (patch.state !== undefined) {
          if (patch.state !== 'precreated' && patch.state !== 'registered') {
            throw new TypeError('state must be precreated or registered');
          }
          set('state', patch.state);
        }
        if (patch.operatingSystem !== undefined)
          set('os', checkText('operatingSystem', patch.operatingSystem, 64));
        if (patch.operatingSystemVersion !== undefined) {
          set('os_version', checkText('operatingSystemVersion', patch.operatingSystemVersion, 64));
        }
        if (patch.deviceType !== undefined)
          set('device_type', checkText('deviceType', patch.deviceType, 64));
        if (patch.transportKey !== undefined) {
          set('transport_key', patch.transportKey && Buffer.from(patch.transportKey));
        }
        if (patch.certThumbprint !== undefined)
          set('cert_thumbprint', checkThumbprint(patch.certThumbprint));
        if (patch.registeringUserId !== undefined) {
          set('registering_user_id', registeringUser(patch.registeringUserId));
        }
        if (patch.systemLabels !== undefined) set('system_labels', checkLabels(patch.systemLabels));
        if (patch.isCompliant !== undefined) {
          if (patch.isCompliant !== null && typeof patch.isCompliant !== 'boolean')
            throw new TypeError('isCompliant must be a boolean or null');
          set('is_compliant', patch.isCompliant === null ? null : patch.isCompliant ? 1 : 0);
        }
        if (patch.enrollmentProfileName !== undefined) {
          set(
            'enrollment_profile_name',
            patch.enrollmentProfileName === null
              ? null
              : checkText('enrollmentProfileName', patch.enrollmentProfileName, 256),
          );
        }
        if (patch.profileType !== undefined) {
          set(
            'profile_type',
            patch.profileType === null ? null : checkText('profileType', patch.profileType, 64),
          );
        }
        if (patch.enabled !== undefined) {
          if (typeof patch.enabled !== 'boolean') throw new TypeError('enabled must be a boolean');
          set('enabled', patch.enabled ? 1 : 0);
        }
        if (patch.attestation !== undefined) {
          const a = checkAttestation(patch.attestation);
          set('attestation_status', a.status);
          set('attestation_reason', a.reason);
        }
        set('updated_at', self.#now());
        try {
          self
            .#q()
            .prepare(`UPDATE devices SET ${sets.join(', ')} WHERE id = ?`)
            .run(...args, row.id);
        } catch (err) {
          if (isUniqueViolation(err)) {
            throw new DirectoryError(
              9990001,
              'another device already has that certificate thumbprint',
            );
          }
          throw err;
        }
        return toDevice(self.#deviceRow(row.id)!);
      },

      async setEnabled(id: string, enabled: boolean): Promise<Device> {
        return this.update(id, { enabled });
      },

      async delete(id: string): Promise<boolean> {
        const row = self.#deviceRow(id);
        if (!row) return false;
        const db = self.#q();
        const at = self.#nowSeconds();
        db.transaction(() => {
          revokeWhere(db, 'device_id = ?', [row.id], at);
          db.prepare('DELETE FROM devices WHERE id = ?').run(row.id);
        }).immediate();
        return true;
      },
    };
  }

  #applicationStore(): ApplicationStore {
    const normalizeUri = (uri: string) => uri.trim().toLowerCase().replace(/\/+$/, '');
    // Applications are seeded when the directory opens and nothing changes them afterwards, so
    // they are read once: every token request looks its client and resource up here.
    let cache:
      | { all: Application[]; byId: Map<string, Application>; byUri: Map<string, Application> }
      | undefined;
    const load = () => {
      if (cache) return cache;
      const all = (
        this.#q()
          .prepare('SELECT * FROM applications ORDER BY kind, display_name')
          .all() as AppRow[]
      ).map(toApplication);
      const byUri = new Map<string, Application>();
      for (const a of all) {
        if (a.kind !== 'resource') continue;
        // The first resource in table order wins a shared URI, as the scan it replaces did.
        for (const u of a.identifierUris)
          if (!byUri.has(normalizeUri(u))) byUri.set(normalizeUri(u), a);
      }
      cache = { all, byId: new Map(all.map((a) => [a.appId, a])), byUri };
      return cache;
    };
    return {
      async get(appId: string): Promise<Application | undefined> {
        if (!isGuid(appId)) return undefined;
        return load().byId.get(appId.toLowerCase());
      },
      async findResource(appIdOrUri: string): Promise<Application | undefined> {
        if (typeof appIdOrUri !== 'string' || appIdOrUri.length > 2048) return undefined;
        if (isGuid(appIdOrUri)) {
          const a = load().byId.get(appIdOrUri.toLowerCase());
          return a?.kind === 'resource' ? a : undefined;
        }
        return load().byUri.get(normalizeUri(appIdOrUri));
      },
      async list(kind?: ApplicationKind): Promise<Application[]> {
        return load().all.filter((a) => kind === undefined || a.kind === kind);
      },
    };
  }

  #tokenStore(): TokenRecordStore {
    const self = this;
    return {
      async add(record: NewTokenRecord): Promise<TokenRecord> {
        if (typeof record !== 'object' || record === null)
          throw new TypeError('record must be an object');
        if (!TOKEN_KINDS.includes(record.kind))
          throw new TypeError(`unknown token kind ${record.kind}`);
        const id = record.id ?? newGuid();
        if (typeof id !== 'string' || id.length === 0 || id.length > 128) {
          throw new TypeError('token record id must be 1 to 128 characters');
        }
        for (const [what, value] of [
          ['userId', record.userId],
          ['clientId', record.clientId],
        ] as const) {
          if (!isGuid(value)) throw new TypeError(`${what} must be a GUID`);
        }
        if (record.deviceId != null && !isGuid(record.deviceId))
          throw new TypeError('deviceId must be a GUID');
        const issuedAt = checkSeconds('issuedAt', record.issuedAt);
        const expiresAt = checkSeconds('expiresAt', record.expiresAt);
        if (expiresAt < issuedAt) throw new RangeError('expiresAt is before issuedAt');
        try {
          self
            .#q()
            .prepare(
              `INSERT INTO token_records (id, kind, user_id, device_id, client_id, parent_id, issued_at, expires_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
            )
            .run(
              id,
              record.kind,
              record.userId.toLowerCase(),
              record.deviceId?.toLowerCase() ?? null,
              record.clientId.toLowerCase(),
              record.parentId ?? null,
              issuedAt,
              expiresAt,
            );
        } catch (err) {
          if (isUniqueViolation(err))
            throw new DirectoryError(9990001, 'a token record with that id exists');
          throw err;
        }
        // The row just written, without reading it back.
        return Object.freeze({
          id,
          kind: record.kind,
          userId: record.userId.toLowerCase(),
          deviceId: record.deviceId?.toLowerCase() ?? null,
          clientId: record.clientId.toLowerCase(),
          parentId: record.parentId ?? null,
          issuedAt,
          expiresAt,
          revokedAt: null,
        });
      },

      async get(id: string): Promise<TokenRecord | undefined> {
        if (typeof id !== 'string') return undefined;
        const row = self.#q().prepare('SELECT * FROM token_records WHERE id = ?').get(id) as
          | TokenRow
          | undefined;
        return row && toToken(row);
      },

      async revoke(id: string, at?: number): Promise<number> {
        return revokeWhere(self.#q(), 'id = ?', [id], at ?? self.#nowSeconds());
      },

      async revokeForUser(userId: string, at?: number): Promise<number> {
        if (!isGuid(userId)) return 0;
        return revokeWhere(
          self.#q(),
          'user_id = ?',
          [userId.toLowerCase()],
          at ?? self.#nowSeconds(),
        );
      },

      async revokeForDevice(deviceId: string, at?: number): Promise<number> {
        if (!isGuid(deviceId)) return 0;
        return revokeWhere(
          self.#q(),
          'device_id = ?',
          [deviceId.toLowerCase()],
          at ?? self.#nowSeconds(),
        );
      },

      async purgeExpired(before: number): Promise<number> {
        const limit = checkSeconds('before', before);
        return self.#q().prepare('DELETE FROM token_records WHERE expires_at < ?').run(limit)
          .changes;
      },
    };
  }
}

/** Revokes the records matching `where` and every record descending from them (parent_id). */
function revokeWhere(db: Database.Database, where: string, args: unknown[], at: number): number {
  checkSeconds('revocation time', at);
  return db
    .prepare(
      `WITH RECURSIVE tree (id) AS (
         SELECT id FROM token_records WHERE ${where}
         UNION
         SELECT t.id FROM token_records t JOIN tree ON t.parent_id = tree.id
       )
       UPDATE token_records SET revoked_at = ? WHERE id IN (SELECT id FROM tree) AND revoked_at IS NULL`,
    )
    .run(...args, at).changes;
}

function checkPasswordRule(password: unknown): void {
  if (typeof password !== 'string') throw new TypeError('password must be a string');
  if (password.length < MIN_PASSWORD_LENGTH || password.length > MAX_PASSWORD_LENGTH) {
    throw new DirectoryError(
      9990003,
      `a password must be ${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters`,
    );
  }
}

function unknownRole(name: string): DirectoryError {
  return new DirectoryError(
    9990002,
    `no directory role '${echo(name)}'; roles: ${DIRECTORY_ROLES.map((r) => r.displayName).join(', ')}`,
  );
}

function unknownGroup(name: string): DirectoryError {
  return new DirectoryError(
    9990002,
    `no group '${echo(name)}' (create it first: prtlab group add NAME)`,
  );
}

/** Statements are compiled once per SQL text: the directory runs the same few on every request. */
const MAX_CACHED_STATEMENTS = 256;

function cachePreparedStatements(db: Database.Database): void {
  const prepare = db.prepare.bind(db);
  const cache = new Map<string, Database.Statement>();
  db.prepare = ((sql: string) => {
    let stmt = cache.get(sql);
    if (!stmt) {
      stmt = prepare(sql);
      if (cache.size < MAX_CACHED_STATEMENTS) cache.set(sql, stmt);
    }
    return stmt;
  }) as Database.Database['prepare'];
}
