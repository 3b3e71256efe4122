/**
 * JWTs signed with the PRT session key: the WAM-style token request `request` (§6.1) and the
 * browser SSO cookie x-ms-RefreshTokenCredential (§6.3). Header
 * `{"alg":"HS256","ctx":<std b64>,"kdf_ver":2}`; the HMAC key is derived from the session key:
 *
 * - KDFv2 (`kdf_ver: 2`, a number): context = SHA-256(ctx || payload bytes) (§5.2).
 * - KDFv1 (no `kdf_ver`; Shwmae sends `"1"` as a string [SHW]): context = ctx (§5.1).
 *
 * The header's ctx is always the raw random ctx, never the hash (§5.2). Which versions a server
 * accepts is policy, so verification reports the version and leaves the decision to the caller.
 */
import { ctxText, newCtx, readCtx } from './ctx.ts';
import { unsupported } from './errors.ts';
import type { JsonObject } from './json.ts';
import { type JwsPayload, jwsSigningInput, type ParsedJws, signHs256, verifyHs256 } from './jws.ts';
import { deriveKeyV1, deriveKeyV2, kdfV2Context } from './kdf.ts';

export type KdfVersion = 1 | 2;

export interface SessionJwtOptions {
  /** The header ctx; 24 fresh random bytes by default (§5.3). */
  ctx?: Uint8Array;
  /** 2 (default, what Windows sends since July 2021 [KDFV2]) or 1. */
  kdfVersion?: KdfVersion;
  /** Extra header members, e.g. `{ typ: 'JWT' }` (AADInternals adds it, §6.1). */
  header?: JsonObject;
}

function headerFor(ctx: Uint8Array, options: SessionJwtOptions): JsonObject {
  const kdfVersion = options.kdfVersion ?? 2;
  if (kdfVersion !== 1 && kdfVersion !== 2) throw new RangeError('kdfVersion must be 1 or 2');
  const extra = options.header ?? {};
  for (const name of ['alg', 'ctx', 'kdf_ver']) {
    if (Object.hasOwn(extra, name)) throw new TypeError(`header option may not set ${name}`);
  }
  const header: JsonObject = { alg: 'HS256', ...extra, ctx: ctxText(ctx) };
  if (kdfVersion === 2) header.kdf_ver = 2;
  return header;
}

/**
 * Signs `payload` with a key derived from the session key and returns the compact JWT. The payload
 * is serialized once, and KDFv2 hashes exactly those bytes.
 *
 * @example signWithSessionKey(sk, { refresh_token: prt, is_primary: 'true', request_nonce })
 */
export function signWithSessionKey(
  sessionKey: Uint8Array,
  payload: JwsPayload,
  options: SessionJwtOptions = {},
): string {
  const ctx = options.ctx ?? newCtx();
  const header = headerFor(ctx, options);
  // Fix the payload bytes first: under KDFv2 the key depends on them.
  const { payloadBytes } = jwsSigningInput('HS256', header, payload);
  const key =
    header.kdf_ver === 2
      ? deriveKeyV2(sessionKey, ctx, payloadBytes)
      : deriveKeyV1(sessionKey, ctx);
  try {
    return signHs256(key, header, payloadBytes);
  } finally {
    key.fill(0);
  }
}

/**
 * Like signWithSessionKey, with the key derivation done elsewhere (a TPM-held session key, §5.6):
 * `derive(context)` returns SP 800-108 HMAC-SHA256 output for label "AzureAD-SecureConversation"
 * and the given context, which is ctx for KDFv1 and SHA-256(ctx || payload bytes) for KDFv2.
 * Errors thrown by `derive` pass through unchanged.
 */
export async function signWithSessionKeyDerive(
  derive: (context: Buffer) => Promise<Uint8Array>,
  payload: JwsPayload,
  options: SessionJwtOptions = {},
): Promise<string> {
  if (typeof derive !== 'function') throw new TypeError('derive must be a function');
  const ctx = options.ctx ?? newCtx();
  const header = headerFor(ctx, options);
  const input = jwsSigningInput('HS256', header, payload);
  const context = header.kdf_ver === 2 ? kdfV2Context(ctx, input.payloadBytes) : Buffer.from(ctx);
  const key = await derive(context);
  return signHs256(key, header, input.payloadBytes);
}

/** What a session-key JWT header says about its key. */
export interface SessionJwtKdf {
  readonly kdfVersion: KdfVersion;
  /** The raw ctx from the header. */
  readonly ctx: Buffer;
}

/**
 * Reads `ctx` and `kdf_ver` from an untrusted header: absent, 1 or "1" mean KDFv1; the number 2
 * means KDFv2; anything else is ERR_PROTOCOL_UNSUPPORTED. A bad ctx is ERR_PROTOCOL_MALFORMED.
 */
export function sessionJwtKdf(parsed: ParsedJws, what = 'JWS'): SessionJwtKdf {
  const ctx = readCtx(parsed.header, what);
  const v = parsed.header.kdf_ver;
  if (v === undefined || v === 1 || v === '1') return { kdfVersion: 1, ctx };
  if (v === 2) return { kdfVersion: 2, ctx };
  throw unsupported(what, 'unknown kdf_ver');
}

/**
 * Verifies a session-key JWT (cloud side): derives the key the header asks for from the received
 * ctx and the received payload bytes, and checks the HMAC in constant time. Returns the KDF
 * version so that the caller can enforce its policy (e.g. refuse KDFv1 for a KDFv2 session).
 */
export function verifyWithSessionKey(
  parsed: ParsedJws,
  sessionKey: Uint8Array,
  what = 'JWS',
): SessionJwtKdf {
  if (parsed.header.alg !== 'HS256') throw unsupported(what, 'expected alg HS256');
  const kdf = sessionJwtKdf(parsed, what);
  const key =
    kdf.kdfVersion === 2
      ? deriveKeyV2(sessionKey, kdf.ctx, parsed.payloadBytes)
      : deriveKeyV1(sessionKey, kdf.ctx);
  try {
    verifyHs256(key, parsed, what);
  } finally {
    key.fill(0);
  }
  return kdf;
}
