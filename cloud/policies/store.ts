/**
 * Conditional Access policies on the directory's SQLite database (table `ca_policies`, schema
 * migration 2). A policy is kept as the Graph `conditionalAccessPolicy` JSON the caller sent,
 * validated by parsePolicy and stored without the server fields (`id`, `createdDateTime`,
 * `modifiedDateTime`), which are columns and are added back on read. Updates are JSON merge
 * patches (RFC 7396), like Graph PATCH. `report_only_since` remembers the first time a policy was
 * report-only, for the "enabled with no report-only history" lint. The tenant's catalog edition
 * is a row of `ca_settings` (schema migration 3).
 *
 * changeToken() lets the token service keep compiled policies between requests: SQLite's
 * `PRAGMA data_version` changes when another connection (a `prtlab policy` command in another
 * process) commits, and a counter here changes on this connection's own writes, which
 * data_version does not report (https://sqlite.org/pragma.html#pragma_data_version).
 */
import type Database from 'better-sqlite3';
import { DEFAULT_EDITION, EDITIONS } from '../ca/catalog.ts';
import { CaError } from '../ca/errors.ts';
import { parsePolicy } from '../ca/policy.ts';
import type { PolicyStore, StoredPolicy } from '../directory/types.ts';
import { isGuid, newGuid } from '../ids.ts';

/** Fields the server sets; ignored when a client sends them. */
export const SERVER_FIELDS = ['id', 'createdDateTime', 'modifiedDateTime'] as const;

type State = StoredPolicy['state'];

interface PolicyRow {
  id: string;
  json: string;
  created_at: string;
  modified_at: string | null;
  report_only_since: string | null;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `json` without the server fields (a shallow copy; non-objects are returned as they are). */
export function withoutServerFields(json: unknown): unknown {
  if (!isObj(json)) return json;
  const out: Obj = {};
  for (const [k, v] of Object.entries(json)) {
    if (!(SERVER_FIELDS as readonly string[]).includes(k)) out[k] = v;
  }
  return out;
}

/** RFC 7396 JSON merge patch: objects merge recursively, null removes, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return patch;
  const out: Obj = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function toStored(row: PolicyRow): StoredPolicy {
  const body = JSON.parse(row.json) as Obj;
  return {
    id: row.id,
    policy: {
      id: row.id,
      ...body,
      createdDateTime: row.created_at,
      modifiedDateTime: row.modified_at,
    },
    state: body.state as State,
    createdAt: row.created_at,
    modifiedAt: row.modified_at,
    reportOnlySince: row.report_only_since,
  };
}

/** Validates and serializes a client body (server fields dropped). */
function validated(json: unknown): { text: string; state: State } {
  const policy = parsePolicy(withoutServerFields(json));
  return { text: JSON.stringify(policy), state: policy.state };
}

/**
 * The policy store over `db()` (called per operation, so a closed directory throws), with
 * timestamps from `now()`.
 */
export function sqlitePolicyStore(db: () => Database.Database, now: () => string): PolicyStore {
  const row = (id: string): PolicyRow | undefined => {
    if (!isGuid(id)) return undefined;
    return db().prepare('SELECT * FROM ca_policies WHERE id = ?').get(id.toLowerCase()) as
      | PolicyRow
      | undefined;
  };

  // Bumped after every write through this store (data_version ignores our own commits).
  let localWrites = 0;

  const write = (old: PolicyRow, json: unknown): StoredPolicy => {
    const { text, state } = validated(json);
    const at = now();
    const since =
      old.report_only_since ?? (state === 'enabledForReportingButNotEnforced' ? at : null);
    db()
      .prepare(
        'UPDATE ca_policies SET json = ?, modified_at = ?, report_only_since = ? WHERE id = ?',
      )
      .run(text, at, since, old.id);
    localWrites++;
    return toStored({ ...old, json: text, modified_at: at, report_only_since: since });
  };

  return {
    async create(json) {
      const { text, state } = validated(json);
      const at = now();
      const r: PolicyRow = {
        id: newGuid(),
        json: text,
        created_at: at,
        modified_at: null,
        report_only_since: state === 'enabledForReportingButNotEnforced' ? at : null,
      };
      db()
        .prepare(
          'INSERT INTO ca_policies (id, json, created_at, modified_at, report_only_since) ' +
            'VALUES (?, ?, ?, ?, ?)',
        )
        .run(r.id, r.json, r.created_at, r.modified_at, r.report_only_since);
      localWrites++;
      return toStored(r);
    },

    async get(id) {
      const r = row(id);
      return r ? toStored(r) : undefined;
    },

    async list() {
      const rows = db()
        .prepare('SELECT * FROM ca_policies ORDER BY created_at, id')
        .all() as PolicyRow[];
      return rows.map(toStored);
    },

    async update(id, patch) {
      const conn = db();
      return conn.transaction(() => {
        const old = row(id);
        if (!old) return undefined;
        return write(old, mergePatch(JSON.parse(old.json), withoutServerFields(patch)));
      })();
    },

    async delete(id) {
      if (!isGuid(id)) return false;
      const gone =
        db().prepare('DELETE FROM ca_policies WHERE id = ?').run(id.toLowerCase()).changes > 0;
      if (gone) localWrites++;
      return gone;
    },

    async setState(id, state) {
      const conn = db();
      return conn.transaction(() => {
        const old = row(id);
        if (!old) return undefined;
        return write(old, { ...(JSON.parse(old.json) as Obj), state });
      })();
    },

    async edition() {
      const r = db().prepare("SELECT value FROM ca_settings WHERE key = 'edition'").get() as
        | { value: string }
        | undefined;
      return r?.value ?? DEFAULT_EDITION;
    },

    async setEdition(edition) {
      if (!(EDITIONS as readonly string[]).includes(edition)) {
        throw new CaError(
          'ERR_CA_POLICY',
          `unknown catalog edition '${String(edition).slice(0, 40)}' (expected one of: ${EDITIONS.join(', ')})`,
          { path: 'edition' },
        );
      }
      db()
        .prepare(
          "INSERT INTO ca_settings (key, value) VALUES ('edition', ?) " +
            'ON CONFLICT (key) DO UPDATE SET value = excluded.value',
        )
        .run(edition);
      localWrites++;
    },

    // A registration setting kept beside the edition in ca_settings (key/value text; schema
    // migration 3): 'true' or absent. Absent is off, Entra's default.
    async requireHardwareBackedRegistration() {
      const r = db()
        .prepare("SELECT value FROM ca_settings WHERE key = 'requireHardwareBackedRegistration'")
        .get() as { value: string } | undefined;
      return r?.value === 'true';
    },

    async setRequireHardwareBackedRegistration(on) {
      if (typeof on !== 'boolean') throw new TypeError('on must be a boolean');
      db()
        .prepare(
          "INSERT INTO ca_settings (key, value) VALUES ('requireHardwareBackedRegistration', ?) " +
            'ON CONFLICT (key) DO UPDATE SET value = excluded.value',
        )
        .run(on ? 'true' : 'false');
      localWrites++;
    },

    changeToken() {
      return `${db().pragma('data_version', { simple: true })}:${localWrites}`;
    },
  };
}
