/**
 * Graph paging: an opaque `$skiptoken` and the `@odata.nextLink` that carries it. Pure; no I/O.
 *
 * Token format: base64url(JSON payload) "." base64url(HMAC-SHA256(key, label || scope || payload)).
 * The payload is `{ v: 1, o: offset }` or `{ v: 1, k: [last sort key values...] }` (both may be
 * present). `scope` binds the token to one query (path, $filter, $orderby, ...): a token minted for
 * one query is refused by another, and no token can be minted without the key. Anything malformed,
 * forged or oversize throws GraphFilterError ("invalid $skiptoken"), answered as 400.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { GraphFilterError } from './filter.ts';

export type SkipKeyValue = string | number | boolean | null;

export interface SkipTokenState {
  /** Number of items already returned. */
  readonly offset?: number;
  /** Sort-key values of the last item returned (for keyset paging). */
  readonly lastKey?: readonly SkipKeyValue[];
}

export const MAX_SKIPTOKEN_LENGTH = 2048;
const LABEL = 'prtlab graph $skiptoken v1\0';
const MIN_KEY_BYTES = 16;

function mac(key: Uint8Array, scope: string, payload: string): Buffer {
  if (!(key instanceof Uint8Array) || key.length < MIN_KEY_BYTES) {
    throw new RangeError(`skiptoken key must be at least ${MIN_KEY_BYTES} bytes`);
  }
  return createHmac('sha256', key)
    .update(LABEL)
    .update(scope)
    .update('\0')
    .update(payload)
    .digest();
}

function checkState(state: SkipTokenState): void {
  const { offset, lastKey } = state;
  if (offset === undefined && lastKey === undefined) return;
  if (offset !== undefined && (!Number.isSafeInteger(offset) || offset < 0)) {
    throw new RangeError('skiptoken offset must be a non-negative safe integer');
  }
  if (lastKey !== undefined && !Array.isArray(lastKey)) {
    throw new RangeError('skiptoken lastKey must be an array');
  }
}

/** Mints a `$skiptoken` for `state`, bound to `scope` (use queryScope()). */
export function encodeSkipToken(state: SkipTokenState, key: Uint8Array, scope = ''): string {
  checkState(state);
  const body: { v: 1; o?: number; k?: readonly SkipKeyValue[] } = { v: 1 };
  if (state.offset !== undefined) body.o = state.offset;
  if (state.lastKey !== undefined) body.k = state.lastKey;
  const payload = Buffer.from(JSON.stringify(body), 'utf8').toString('base64url');
  const token = `${payload}.${mac(key, scope, payload).toString('base64url')}`;
  if (token.length > MAX_SKIPTOKEN_LENGTH) throw new RangeError('skiptoken state too large');
  return token;
}

const B64URL = /^[A-Za-z0-9_-]+$/;

function invalid(): GraphFilterError {
  return new GraphFilterError('invalid $skiptoken');
}

function isKeyValue(v: unknown): v is SkipKeyValue {
  return (
    v === null ||
    typeof v === 'string' ||
    typeof v === 'boolean' ||
    (typeof v === 'number' && Number.isFinite(v))
  );
}

/** Verifies and decodes a `$skiptoken`; throws GraphFilterError if malformed, forged or mis-scoped. */
export function decodeSkipToken(token: string, key: Uint8Array, scope = ''): SkipTokenState {
  if (typeof token !== 'string' || token.length > MAX_SKIPTOKEN_LENGTH) throw invalid();
  const parts = token.split('.');
  if (parts.length !== 2) throw invalid();
  const [payload, sig] = parts as [string, string];
  if (!B64URL.test(payload) || !B64URL.test(sig)) throw invalid();
  const expected = mac(key, scope, payload);
  const given = Buffer.from(sig, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalid();
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw invalid();
  const { v, o, k } = body as Record<string, unknown>;
  if (v !== 1) throw invalid();
  if (o !== undefined && (typeof o !== 'number' || !Number.isSafeInteger(o) || o < 0)) {
    throw invalid();
  }
  if (k !== undefined && (!Array.isArray(k) || !k.every(isKeyValue))) throw invalid();
  const state: { offset?: number; lastKey?: SkipKeyValue[] } = {};
  if (o !== undefined) state.offset = o as number;
  if (k !== undefined) state.lastKey = k as SkipKeyValue[];
  return state;
}

/**
 * The scope string a token is bound to: the resource path plus every query option except
 * $skiptoken, sorted by name, so that a token only continues the query it came from.
 */
export function queryScope(requestUrl: string | URL): string {
  const url = new URL(requestUrl, 'http://scope.invalid');
  const params = [...url.searchParams.entries()]
    .filter(([name]) => name.toLowerCase() !== '$skiptoken')
    .sort(([a, av], [b, bv]) => (a === b ? (av < bv ? -1 : av > bv ? 1 : 0) : a < b ? -1 : 1));
  return JSON.stringify([url.pathname, params]);
}

/**
 * `@odata.nextLink`: the request URL with its query options kept as sent, any old $skiptoken
 * dropped and the new one appended. `publicBase` (e.g. 'https://graph.localhost:8443') replaces
 * the request's origin when the server sits behind a different public address.
 */
export function buildNextLink(
  requestUrl: string | URL,
  skipToken: string,
  publicBase?: string,
): string {
  const url = new URL(requestUrl);
  const base = publicBase === undefined ? url.origin : publicBase.replace(/\/+$/, '');
  const kept = url.search
    .replace(/^\?/, '')
    .split('&')
    .filter((p) => {
      if (p === '') return false;
      const name = p.split('=', 1)[0]!;
      let decoded: string;
      try {
        decoded = decodeURIComponent(name.replaceAll('+', ' '));
      } catch {
        return true;
      }
      return decoded.toLowerCase() !== '$skiptoken';
    });
  kept.push(`$skiptoken=${encodeURIComponent(skipToken)}`);
  return `${base}${url.pathname}?${kept.join('&')}`;
}

export interface Page<T> {
  readonly items: T[];
  /** The offset of the next page, or undefined on the last page. */
  readonly nextOffset: number | undefined;
}

/** Offset paging over an already filtered and sorted list. */
export function pageByOffset<T>(items: readonly T[], top: number, offset = 0): Page<T> {
  const slice = items.slice(offset, offset + top);
  const next = offset + slice.length;
  return { items: slice, nextOffset: next < items.length ? next : undefined };
}
