/**
 * The sign-in log: `<data>/cloud/signins.sqlite` (better-sqlite3, WAL), its own file so the
 * directory's migrations never touch it. One row per token request, holding the Graph beta
 * `signIn` JSON; reads filter in memory with cloud/graph/filter.ts (the lab's logs are small).
 *
 * Writes are cheap, because every token request writes one:
 * - `add` queues the entry; one transaction writes everything queued within FLUSH_WINDOW_MS
 *   (`flush` forces it; `list`, `count` and `close` flush first).
 * - `appliedConditionalAccessPolicies` lists every policy of the tenant (Graph does), which is
 *   most of an entry's size. Each distinct policy outcome is stored once, in `applied_forms`, and
 *   a row keeps only their keys (`applied`, comma-separated); reads put the list back. With 50
 *   policies this makes a row about a seventh of the size and skips most of the serialisation.
 *   Schema 1 rows (whole JSON, `applied` NULL) still read as they are.
 */
import Database from 'better-sqlite3';
import { CloudStateError } from '../errors.ts';
import {
  type FilterPredicate,
  filterPredicate,
  orderByComparator,
  parseOrderBy,
  SIGN_IN_FILTER_SCHEMA,
} from '../graph/filter.ts';
import { pageByOffset } from '../graph/paging.ts';
import type { AppliedConditionalAccessPolicy, SignInEntry } from './entry.ts';

/** How long a queued entry may wait, and how many may queue, before a write. */
const FLUSH_WINDOW_MS = 20;
const FLUSH_AT_ENTRIES = 256;

export const SIGNINS_DB_NAME = 'signins.sqlite';
export const SIGNINS_SCHEMA_VERSION = 2;
/** How many outcome forms this process remembers the keys of before starting afresh. */
const MAX_REMEMBERED_FORMS = 10_000;
export const SIGN_IN_ORDER_BY = ['createdDateTime'] as const;

export interface SignInListOptions {
  /** An OData `$filter` over SIGN_IN_FILTER_SCHEMA (GraphFilterError when invalid). */
  readonly filter?: string;
  /** Page size; default 50. */
  readonly top?: number;
  /** `$orderby`; default `createdDateTime desc`. */
  readonly orderBy?: string;
  /** Offset of the page (what a skip token carries). */
  readonly offset?: number;
}

export interface SignInPage {
  readonly value: SignInEntry[];
  /** Offset of the next page; undefined on the last one. */
  readonly nextOffset: number | undefined;
}

export class SignInStore {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private readonly insertForm: Database.Statement;
  private readonly formKey: Database.Statement;
  /** Written outcome forms (shared frozen objects, see entry.ts) and their keys. */
  private readonly keyOfForm = new WeakMap<AppliedConditionalAccessPolicy, number>();
  private rememberedForms = 0;
  /** Forms read back, by key (frozen; shared by every entry read). */
  private readonly formOfKey = new Map<number, AppliedConditionalAccessPolicy>();
  private queue: SignInEntry[] = [];
  private scheduled = false;
  private closed = false;

  constructor(path: string) {
    this.db = new Database(path, { timeout: 5000 });
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS signins (
        id TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        user_id TEXT,
        app_id TEXT,
        json TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS signins_created ON signins (created_at);
      CREATE TABLE IF NOT EXISTS applied_forms (
        key  INTEGER PRIMARY KEY,
        json TEXT NOT NULL UNIQUE
      );
    `);
    try {
      this.migrate();
    } catch (err) {
      this.db.close();
      throw err;
    }
    this.insert = this.db.prepare(
      'INSERT INTO signins (id, created_at, user_id, app_id, json, applied) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.insertForm = this.db.prepare('INSERT OR IGNORE INTO applied_forms (json) VALUES (?)');
    this.formKey = this.db.prepare('SELECT key FROM applied_forms WHERE json = ?').pluck();
  }

  /** Brings a schema 1 file to 2 (adds `applied`); refuses a newer file. */
  private migrate(): void {
    this.db.transaction(() => {
      const row = this.db.prepare(`SELECT value FROM meta WHERE key = 'version'`).get() as
        | { value: string }
        | undefined;
      const version = row ? Number(row.value) : 0;
      if (version > SIGNINS_SCHEMA_VERSION) {
        throw new CloudStateError(
          `the sign-in log has schema version ${version}, newer than this prtlab (${SIGNINS_SCHEMA_VERSION})`,
        );
      }
      const columns = this.db.prepare('PRAGMA table_info(signins)').all() as { name: string }[];
      if (!columns.some((c) => c.name === 'applied')) {
        this.db.exec('ALTER TABLE signins ADD COLUMN applied TEXT');
      }
      this.db
        .prepare(`INSERT OR REPLACE INTO meta (key, value) VALUES ('version', ?)`)
        .run(String(SIGNINS_SCHEMA_VERSION));
    })();
  }

  /** The key of one outcome form, writing the form the first time it is seen. */
  private keyFor(form: AppliedConditionalAccessPolicy): number {
    const known = this.keyOfForm.get(form);
    if (known !== undefined) return known;
    const json = JSON.stringify(form);
    this.insertForm.run(json);
    const key = this.formKey.get(json) as number;
    if (this.rememberedForms >= MAX_REMEMBERED_FORMS) {
      // Outcome objects belong to compiled policies that are replaced when policies change;
      // the WeakMap lets those go, the count only bounds how much a long run keeps.
      this.rememberedForms = 0;
    }
    if (Object.isFrozen(form)) {
      this.keyOfForm.set(form, key);
      this.rememberedForms++;
    }
    return key;
  }

  /** A stored form by key (cached; the table only ever grows). */
  private formFor(key: number): AppliedConditionalAccessPolicy {
    let form = this.formOfKey.get(key);
    if (!form) {
      const row = this.db.prepare('SELECT json FROM applied_forms WHERE key = ?').get(key) as
        | { json: string }
        | undefined;
      if (!row) throw new CloudStateError(`the sign-in log's policy outcome ${key} is missing`);
      const parsed = JSON.parse(row.json) as AppliedConditionalAccessPolicy;
      form = Object.freeze({
        ...parsed,
        enforcedGrantControls: Object.freeze(parsed.enforcedGrantControls) as string[],
        enforcedSessionControls: Object.freeze(parsed.enforcedSessionControls) as string[],
        sessionControlsNotSatisfied: Object.freeze(parsed.sessionControlsNotSatisfied) as string[],
      });
      this.formOfKey.set(key, form);
    }
    return form;
  }

  /** Queues one entry; written with the others of this event-loop turn. */
  add(entry: SignInEntry): void {
    if (this.closed) return;
    this.queue.push(entry);
    if (this.queue.length >= FLUSH_AT_ENTRIES) {
      this.flush();
    } else if (!this.scheduled) {
      this.scheduled = true;
      // A short window lets one transaction carry many entries under load; an entry waits at
      // most FLUSH_WINDOW_MS (lost only if the process dies inside that window).
      setTimeout(() => this.flush(), FLUSH_WINDOW_MS).unref();
    }
  }

  /** Writes every queued entry in one transaction. */
  flush(): void {
    this.scheduled = false;
    if (this.queue.length === 0 || this.closed) return;
    const batch = this.queue;
    this.queue = [];
    this.db.transaction(() => {
      for (const e of batch) {
        const keys = e.appliedConditionalAccessPolicies.map((f) => this.keyFor(f)).join(',');
        const json = JSON.stringify({ ...e, appliedConditionalAccessPolicies: [] });
        this.insert.run(e.id, e.createdDateTime, e.userId || null, e.appId, json, keys);
      }
    })();
  }

  list(options: SignInListOptions = {}): SignInPage {
    this.flush();
    const predicate: FilterPredicate | undefined =
      options.filter === undefined || options.filter === ''
        ? undefined
        : filterPredicate(options.filter, SIGN_IN_FILTER_SCHEMA);
    const terms = parseOrderBy(options.orderBy ?? 'createdDateTime desc', SIGN_IN_ORDER_BY);
    const rows = this.db.prepare('SELECT json, applied FROM signins ORDER BY rowid').all() as {
      json: string;
      applied: string | null;
    }[];
    let items = rows.map((r) => this.entryOf(r.json, r.applied));
    if (predicate) items = items.filter(predicate);
    // Stable sort: equal timestamps keep insertion order (newest last, so reverse for desc).
    const cmp = orderByComparator(terms);
    const desc = terms[0]?.direction === 'desc';
    if (desc) items.reverse();
    items.sort(cmp);
    const page = pageByOffset(items, options.top ?? 50, options.offset ?? 0);
    return { value: page.items, nextOffset: page.nextOffset };
  }

  /** A stored row back as the entry it was. */
  private entryOf(json: string, applied: string | null): SignInEntry {
    const entry = JSON.parse(json) as SignInEntry;
    if (applied !== null) {
      entry.appliedConditionalAccessPolicies =
        applied === '' ? [] : applied.split(',').map((k) => this.formFor(Number(k)));
    }
    return entry;
  }

  count(): number {
    this.flush();
    return (this.db.prepare('SELECT count(*) AS n FROM signins').get() as { n: number }).n;
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.db.close();
  }
}
