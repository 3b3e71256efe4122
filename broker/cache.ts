/**
 * The broker's token cache: one entry per account, client and resource (or scope set), holding the
 * last access token and the device-bound app refresh token (prt-protocol §6.2: WAM keeps the app
 * refresh token to itself and hands the app only the access token).
 *
 * In memory it is a Map in least-recently-used order, bounded by `maxEntries`. On disk each entry
 * is one file in `<device>/broker-cache/` (0700), rewritten atomically whenever the entry changes:
 *
 *   <sha256(label) hex, 32 chars>.json   {"v":1,"accountId","clientId","target","sealed":"<b64>"}
 *
 * `sealed` is the entry's tokens sealed by the agent (a key that never leaves the device's TPM)
 * under the label `broker-cache:v1:<accountId>:<clientId>:<sha256(target) b64url>`. The label
 * names the entry, so a file moved under another entry's header does not unseal; a file that does
 * not unseal (tampered, or sealed by another device) is dropped with a warning, since every token
 * in it can be obtained again through the PRT.
 *
 * Writes happen behind the request that caused them: the answer does not wait for the disk. A
 * change waits DEFAULT_WRITE_DELAY_MS for more changes to the same entry, and changes made while
 * its file is being written end in one more write of the latest state. flush() (the broker's
 * close()) writes everything pending at once.
 */
import { createHash } from 'node:crypto';
import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { BrokerAgent } from './agent-port.ts';
import { atomicWriteFile, ensurePrivateDir, readPrivateFile } from './files.ts';

export interface CacheKey {
  readonly accountId: string;
  readonly clientId: string;
  /** `resource:<uri or app id>` or `scopes:<scopes, sorted, space-separated>`. */
  readonly target: string;
}

export interface CachedTokens {
  readonly accessToken: string;
  readonly tokenType: string;
  /** Unix seconds. */
  readonly expiresOn: number;
  /** The bound app refresh token; never leaves the broker. */
  readonly refreshToken?: string;
  /** When the refresh token expires, Unix seconds, if the cloud said (never sent after it). */
  readonly refreshTokenExpiresOn?: number;
  readonly upn: string;
  readonly tenantId: string;
}

export type Sealer = Pick<BrokerAgent, 'seal' | 'unseal'>;

export interface TokenCacheOptions {
  readonly dir: string;
  readonly sealer: Sealer;
  readonly maxEntries?: number;
  /** How long a change waits for more changes to the same entry before it is written. */
  readonly writeDelayMs?: number;
  /** Told about entries that were dropped or could not be written; never given token values. */
  readonly onWarning?: (message: string) => void;
}

export const DEFAULT_MAX_CACHE_ENTRIES = 4096;
/** A crash loses at most this much of the cache, all of it obtainable again through the PRT. */
export const DEFAULT_WRITE_DELAY_MS = 100;
const MAX_ENTRY_FILE_BYTES = 256 * 1024;
const FILE_RE = /^[0-9a-f]{32}\.json$/;
const TEMP_RE = /^\.[0-9a-f]{32}\.json\.[0-9a-f]{16}\.tmp$/;

/** The cache target of a request: the resource as given, or the scopes as a sorted set. */
export function cacheTarget(t: {
  resource?: string | undefined;
  scopes?: readonly string[] | undefined;
}): string {
  if (t.resource !== undefined) return `resource:${t.resource}`;
  return `scopes:${[...new Set(t.scopes ?? [])].sort().join(' ')}`;
}

export function entryLabel(key: CacheKey): string {
  const target = createHash('sha256').update(key.target).digest('base64url');
  return `broker-cache:v1:${key.accountId}:${key.clientId}:${target}`;
}

function entryFile(key: CacheKey): string {
  return `${createHash('sha256').update(entryLabel(key)).digest('hex').slice(0, 32)}.json`;
}

function mapKey(key: CacheKey): string {
  return `${key.accountId}\n${key.clientId}\n${key.target}`;
}

function isCachedTokens(v: unknown): v is CachedTokens {
  const t = v as Partial<CachedTokens> | null;
  return (
    typeof t === 'object' &&
    t !== null &&
    typeof t.accessToken === 'string' &&
    typeof t.tokenType === 'string' &&
    typeof t.expiresOn === 'number' &&
    Number.isFinite(t.expiresOn) &&
    (t.refreshToken === undefined || typeof t.refreshToken === 'string') &&
    (t.refreshTokenExpiresOn === undefined ||
      (typeof t.refreshTokenExpiresOn === 'number' && Number.isFinite(t.refreshTokenExpiresOn))) &&
    typeof t.upn === 'string' &&
    typeof t.tenantId === 'string'
  );
}

interface Entry {
  readonly key: CacheKey;
  tokens: CachedTokens;
}

/**
 * Per file: the write in progress, whether the entry changed again since it started, and how to
 * end the wait before the write early (flush).
 */
interface FileState {
  running: Promise<void>;
  again: boolean;
  wake: () => void;
}

export class TokenCache {
  private readonly entries = new Map<string, Entry>();
  private readonly files = new Map<string, FileState>();
  private readonly maxEntries: number;
  private readonly writeDelayMs: number;
  private readonly warn: (message: string) => void;
  private readonly options: TokenCacheOptions;
  /** While flush() runs, new changes are written without waiting. */
  private flushing = false;

  private constructor(options: TokenCacheOptions) {
    this.options = options;
    this.maxEntries = options.maxEntries ?? DEFAULT_MAX_CACHE_ENTRIES;
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 1)
      throw new RangeError('maxEntries must be a positive integer');
    this.writeDelayMs = options.writeDelayMs ?? DEFAULT_WRITE_DELAY_MS;
    if (!Number.isFinite(this.writeDelayMs) || this.writeDelayMs < 0)
      throw new RangeError('writeDelayMs must be a non-negative number');
    this.warn = options.onWarning ?? (() => {});
  }

  /** Opens the cache directory (0700, created if missing) and unseals every entry in it. */
  static async open(options: TokenCacheOptions): Promise<TokenCache> {
    const cache = new TokenCache(options);
    await ensurePrivateDir(options.dir);
    await cache.load();
    return cache;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The entry's tokens (and marks it recently used), or undefined. */
  get(key: CacheKey): CachedTokens | undefined {
    const k = mapKey(key);
    const entry = this.entries.get(k);
    if (!entry) return undefined;
    this.entries.delete(k);
    this.entries.set(k, entry);
    return entry.tokens;
  }

  /** Stores the entry in memory at once and on disk behind the caller. */
  put(key: CacheKey, tokens: CachedTokens): void {
    const k = mapKey(key);
    this.entries.delete(k);
    this.entries.set(k, { key, tokens });
    this.persist(key);
    while (this.entries.size > this.maxEntries) {
      const [oldest, entry] = this.entries.entries().next().value as [string, Entry];
      this.entries.delete(oldest);
      this.persist(entry.key);
    }
  }

  /**
   * Drops `refreshToken` from the entry (it expired), keeping the access token; a newer refresh
   * token the entry got meanwhile stays.
   */
  dropRefreshToken(key: CacheKey, refreshToken: string): void {
    const entry = this.entries.get(mapKey(key));
    if (!entry || entry.tokens.refreshToken !== refreshToken) return;
    const { refreshToken: _rt, refreshTokenExpiresOn: _exp, ...rest } = entry.tokens;
    entry.tokens = rest;
    this.persist(key);
  }

  /** Drops one entry. */
  delete(key: CacheKey): void {
    if (this.entries.delete(mapKey(key))) this.persist(key);
  }

  /** Drops every entry of an account (sign-out); returns how many there were. */
  removeAccount(accountId: string): number {
    let n = 0;
    for (const [k, entry] of [...this.entries]) {
      if (entry.key.accountId !== accountId) continue;
      this.entries.delete(k);
      this.persist(entry.key);
      n++;
    }
    return n;
  }

  /** Waits until every change so far is on disk. */
  async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.files.size > 0) {
        for (const f of this.files.values()) f.wake();
        await Promise.all([...this.files.values()].map((f) => f.running));
      }
    } finally {
      this.flushing = false;
    }
  }

  private persist(key: CacheKey): void {
    const name = entryFile(key);
    const state = this.files.get(name);
    if (state) {
      state.again = true;
      return;
    }
    const fresh: FileState = { running: Promise.resolve(), again: false, wake: () => {} };
    /** Waits out the write delay, unless flush() is waiting (then it writes at once). */
    const settle = () =>
      this.flushing || this.writeDelayMs === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, this.writeDelayMs);
            fresh.wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
    fresh.running = (async () => {
      try {
        // Changes that follow within the delay (a burst of refreshes of one entry) end in one
        // write: one seal by the agent, one fsync. Changes made during a write wait again.
        do {
          await settle();
          fresh.again = false;
          await this.writeEntry(key, name);
        } while (fresh.again);
      } finally {
        this.files.delete(name);
      }
    })();
    this.files.set(name, fresh);
  }

  /** Writes the entry's current state, or removes its file when the entry is gone. */
  private async writeEntry(key: CacheKey, name: string): Promise<void> {
    const path = join(this.options.dir, name);
    const entry = this.entries.get(mapKey(key));
    try {
      if (!entry) {
        await unlink(path).catch((err: { code?: string }) => {
          if (err.code !== 'ENOENT') throw err;
        });
        return;
      }
      const sealed = await this.options.sealer.seal(
        Buffer.from(JSON.stringify(entry.tokens)),
        entryLabel(key),
      );
      const body = JSON.stringify({
        v: 1,
        accountId: key.accountId,
        clientId: key.clientId,
        target: key.target,
        sealed: sealed.toString('base64'),
      });
      // One writer per entry (this broker; the agent's lock keeps a device to one), and open()
      // swept what an interrupted write left, so there is nothing stale to look for here.
      await atomicWriteFile(path, Buffer.from(body), { mode: 0o600, removeStale: false });
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      this.warn(
        `broker cache: could not write entry ${name}${typeof code === 'string' ? ` (${code})` : ''}; it stays in memory only`,
      );
    }
  }

  private async load(): Promise<void> {
    const all = await readdir(this.options.dir);
    // Temporary files of writes a crash interrupted (atomic-write.ts names them .<file>.<hex>.tmp).
    for (const n of all.filter((n) => TEMP_RE.test(n)))
      await unlink(join(this.options.dir, n)).catch(() => {});
    const names = all.filter((n) => FILE_RE.test(n)).sort();
    const loaded: Entry[] = [];
    for (const name of names) {
      const entry = await this.loadEntry(name);
      if (entry) loaded.push(entry);
    }
    // Files carry no use time; the entries whose access tokens expire first count as least
    // recently used, which is the order they were last refreshed in.
    loaded.sort((a, b) => a.tokens.expiresOn - b.tokens.expiresOn);
    for (const entry of loaded) this.entries.set(mapKey(entry.key), entry);
    while (this.entries.size > this.maxEntries) {
      const [oldest, entry] = this.entries.entries().next().value as [string, Entry];
      this.entries.delete(oldest);
      this.persist(entry.key);
    }
  }

  private async loadEntry(name: string): Promise<Entry | undefined> {
    const path = join(this.options.dir, name);
    const drop = async (why: string) => {
      this.warn(`broker cache: dropped entry ${name}: ${why}`);
      await unlink(path).catch(() => {});
      return undefined;
    };
    let data: Buffer | undefined;
    try {
      data = await readPrivateFile(path, MAX_ENTRY_FILE_BYTES);
    } catch (err) {
      return drop((err as Error).message);
    }
    if (data === undefined) return undefined;
    let header: {
      v?: unknown;
      accountId?: unknown;
      clientId?: unknown;
      target?: unknown;
      sealed?: unknown;
    };
    try {
      header = JSON.parse(data.toString('utf8'));
    } catch {
      return drop('not JSON');
    }
    const { accountId, clientId, target, sealed } = header ?? {};
    if (
      header?.v !== 1 ||
      typeof accountId !== 'string' ||
      typeof clientId !== 'string' ||
      typeof target !== 'string' ||
      typeof sealed !== 'string'
    )
      return drop('not a cache entry');
    const key: CacheKey = { accountId, clientId, target };
    if (entryFile(key) !== name) return drop('its name does not match its header');
    let plain: Buffer;
    try {
      plain = await this.options.sealer.unseal(Buffer.from(sealed, 'base64'), entryLabel(key));
    } catch {
      return drop('it does not unseal (tampered, or sealed on another device)');
    }
    let tokens: unknown;
    try {
      tokens = JSON.parse(plain.toString('utf8'));
    } catch {
      return drop('its sealed content is not JSON');
    } finally {
      plain.fill(0);
    }
    if (!isCachedTokens(tokens)) return drop('its sealed content is not a token entry');
    return { key, tokens };
  }
}
