/**
 * The sign-in log: `<data>/cloud/signins.sqlite` (better-sqlite3, WAL), its own file so the
 * directory's migrations never touch it. One row per token request; the Graph beta `signIn` JSON
 * is stored whole and filtered in memory with cloud/graph/filter.ts (the lab's logs are small).
 *
 * Writes are cheap: `add` queues the entry and one transaction per event-loop turn inserts
 * everything queued (`flush` forces it; `list` and `close` flush first).
 */
import Database from 'better-sqlite3';
import {
  type FilterPredicate,
  filterPredicate,
  orderByComparator,
  parseOrderBy,
  SIGN_IN_FILTER_SCHEMA,
} from '../graph/filter.ts';
import { pageByOffset } from '../graph/paging.ts';
import type { SignInEntry } from './entry.ts';

/** How long a queued entry may wait, and how many may queue, before a write. */
const FLUSH_WINDOW_MS = 20;
const FLUSH_AT_ENTRIES = 256;

export const SIGNINS_DB_NAME = 'signins.sqlite';
export const SIGNINS_SCHEMA_VERSION = 1;
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
    `);
    this.db
      .prepare(`INSERT OR IGNORE INTO meta (key, value) VALUES ('version', ?)`)
      .run(String(SIGNINS_SCHEMA_VERSION));
    this.insert = this.db.prepare(
      'INSERT INTO signins (id, created_at, user_id, app_id, json) VALUES (?, ?, ?, ?, ?)',
    );
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
        this.insert.run(e.id, e.createdDateTime, e.userId || null, e.appId, JSON.stringify(e));
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
    const rows = this.db.prepare('SELECT json FROM signins ORDER BY rowid').all() as {
      json: string;
    }[];
    let items = rows.map((r) => JSON.parse(r.json) as SignInEntry);
    if (predicate) items = items.filter(predicate);
    // Stable sort: equal timestamps keep insertion order (newest last, so reverse for desc).
    const cmp = orderByComparator(terms);
    const desc = terms[0]?.direction === 'desc';
    if (desc) items.reverse();
    items.sort(cmp);
    const page = pageByOffset(items, options.top ?? 50, options.offset ?? 0);
    return { value: page.items, nextOffset: page.nextOffset };
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
