/**
 * The browser SSO credential `x-ms-RefreshTokenCredential` (prt-protocol §6.3): a JWS, HS256,
 * whose key is derived from the PRT's session key with the header's ctx (KDFv2 hashes the exact
 * payload bytes, §5.2), over `{refresh_token: <PRT>, is_primary, request_nonce, ...}`. It travels
 * as a request header or as a cookie of that name (§6.3 "Transport").
 *
 * The server "checks the signature and that the nonce was issued and is recent. If either check
 * fails, it ignores the header (the user gets an interactive login) rather than returning an
 * error" (§6.3, [OAPXBC 3.2.5.2.1.3]). So nothing here throws at the caller: the answer is
 * `valid`, `stale` (no nonce, or one past its lifetime: ESTS asks for a cookie over a fresh
 * `sso_nonce`, §3 "Browser variant") or `ignored`, with a reason for the server log only.
 */
import {
  isProtocolError,
  PRT_COOKIE_NAME,
  parseCompact,
  verifyWithSessionKey,
} from '../../../protocol/index.ts';
import type { Device, User } from '../../directory/types.ts';
import { isCloudError } from '../../errors.ts';
import type { CloudServices } from '../../services.ts';
import type { PrtClaims } from '../../tokens/claims.ts';
import type { TokenKeys } from '../../tokens/keys.ts';
import { checkNonce } from '../../tokens/nonce.ts';
import { livePrt } from '../live-prt.ts';

/**
 * The longest credential read (a lab cap): a PRT is at most 8 KiB sealed (MAX_SEALED_TOKEN_CHARS),
 * and the cloud takes 16 KiB of headers in all, so a real cookie always fits.
 */
export const MAX_CREDENTIAL_CHARS = 12 * 1024;

/** Compact JWS characters only: anything else is no credential of ours. */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export type CredentialCheck =
  | { readonly kind: 'absent' }
  | { readonly kind: 'ignored'; readonly reason: string }
  | { readonly kind: 'stale'; readonly reason: string }
  | {
      readonly kind: 'valid';
      readonly prt: PrtClaims;
      readonly user: User;
      readonly device: Device;
    };

/**
 * The credential a request presents: the `x-ms-RefreshTokenCredential` header first (what
 * ROADtools' Selenium mode and Himmelblau send), else the cookie of that name (what browsers
 * send). Undefined when there is none; `ambiguous` when the header or the cookie is repeated,
 * which no client does and which is ignored rather than guessed at.
 */
export function presentedCredential(headers: {
  readonly [name: string]: string | string[] | undefined;
}): string | undefined | 'ambiguous' {
  const header = headers[PRT_COOKIE_NAME.toLowerCase()];
  if (header !== undefined) {
    // Node joins a repeated unknown header with ", ", which a compact JWS never contains.
    if (typeof header !== 'string' || header.includes(',')) return 'ambiguous';
    return header.trim();
  }
  const cookie = headers.cookie;
  if (typeof cookie !== 'string') return undefined;
  let found: string | undefined;
  for (const pair of cookie.split(';')) {
    const eq = pair.indexOf('=');
    if (eq === -1) continue;
    // Cookie names are case-sensitive (RFC 6265 §5.4); values may be quoted (§4.1.1).
    if (pair.slice(0, eq).trim() !== PRT_COOKIE_NAME) continue;
    if (found !== undefined) return 'ambiguous';
    found = pair
      .slice(eq + 1)
      .trim()
      .replace(/^"(.*)"$/, '$1');
  }
  return found;
}

/**
 * Checks a presented credential; `nowS` in Unix seconds. Order: shape, then the nonce (a stale
 * or missing nonce is answered with a fresh one without looking further: the nonce is in the
 * clear in the payload, so that answer says nothing the caller did not know), then the PRT, the
 * signature with its KDF version, and the user and device the PRT names.
 */
export async function checkCredential(
  cloud: CloudServices,
  keys: TokenKeys,
  credential: string | undefined | 'ambiguous',
  nowS: number,
): Promise<CredentialCheck> {
  if (credential === undefined) return { kind: 'absent' };
  if (credential === 'ambiguous') return { kind: 'ignored', reason: 'repeated credential' };
  if (credential.length > MAX_CREDENTIAL_CHARS || !COMPACT_JWS.test(credential))
    return { kind: 'ignored', reason: 'not a compact JWS' };
  let parsed: ReturnType<typeof parseCompact>;
  try {
    parsed = parseCompact(credential, {
      maxLength: MAX_CREDENTIAL_CHARS,
      what: PRT_COOKIE_NAME,
    });
  } catch (err) {
    if (isProtocolError(err)) return { kind: 'ignored', reason: 'malformed' };
    throw err;
  }
  if (parsed.header.alg !== 'HS256') return { kind: 'ignored', reason: 'not HS256' };
  const p = parsed.payload as Record<string, unknown>;

  // §6.3: "request_nonce (required by the spec)"; the older time-based form without one is
  // answered like a stale nonce, with a fresh sso_nonce (§3 "Browser variant").
  if (p.request_nonce === undefined) return { kind: 'stale', reason: 'no request_nonce' };
  const nonce = checkNonce(keys.nonce, p.request_nonce, nowS * 1000);
  if (!nonce.ok) {
    return nonce.reason === 'expired'
      ? { kind: 'stale', reason: 'nonce expired' }
      : { kind: 'ignored', reason: `nonce ${nonce.reason}` };
  }

  let prt: PrtClaims | undefined;
  try {
    prt = await livePrt(cloud, keys.prt, p.refresh_token, nowS);
  } catch (err) {
    if (isCloudError(err)) return { kind: 'ignored', reason: `PRT AADSTS${err.aadsts}` };
    throw err;
  }
  if (!prt) return { kind: 'ignored', reason: 'refresh_token is not a PRT of this cloud' };
  const sessionKey = Buffer.from(prt.sk, 'base64');
  try {
    const declared = verifyWithSessionKey(parsed, sessionKey, PRT_COOKIE_NAME).kdfVersion;
    // The KDF version declared when the PRT was issued is enforced, as for §6.1 requests: the
    // lab's PRTs are KDFv2, so a KDFv1 cookie for them is refused (§5.4).
    if (declared !== prt.kdf) return { kind: 'ignored', reason: `kdf ${declared}` };
  } catch (err) {
    if (isProtocolError(err)) return { kind: 'ignored', reason: 'signature' };
    throw err;
  } finally {
    sessionKey.fill(0);
  }

  const device = await cloud.directory.devices.get(prt.did);
  if (!device?.enabled) return { kind: 'ignored', reason: 'device missing or disabled' };
  const user = await cloud.directory.users.get(prt.uid);
  if (!user?.enabled) return { kind: 'ignored', reason: 'user missing or disabled' };
  return { kind: 'valid', prt, user, device };
}
