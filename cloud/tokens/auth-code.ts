/**
 * Authorization codes (RFC 6749 §4.1.2) from the browser SSO path: `/authorize` accepts a PRT
 * cookie (prt-protocol §6.3) and answers a code; the token endpoint redeems it once. A code is
 * sealed like the other tokens (sealed.ts, kind `auth_code`), so it carries what it was issued
 * for: the client, the exact redirect URI, the user, the device and the PRT session the cookie
 * proved, the v1 resource or v2 scope, and the PKCE challenge (RFC 7636 §4.4).
 *
 * Single use is a property of the process, not of the token: `UsedCodes` remembers every code
 * redeemed until it expires. So that a restart cannot make a redeemed code good again, codes are
 * sealed under a key made for the process (`newAuthCodeKey`), never derived from the master key:
 * a restart voids the codes outstanding, which costs a user one more sign-in at most.
 */
import { randomBytes } from 'node:crypto';
import { open, seal } from './sealed.ts';

/**
 * Ten minutes: RFC 6749 §4.1.2 recommends at most 10 minutes, and Microsoft's authorization code
 * flow documentation says Entra's codes are short-lived, "typically expiring after about 10
 * minutes" (learn.microsoft.com, "Microsoft identity platform and OAuth 2.0 authorization code
 * flow"). The exact figure is the lab's choice within that.
 */
export const AUTH_CODE_LIFETIME_S = 10 * 60;

export interface AuthCodeClaims {
  jti: string;
  tid: string;
  uid: string;
  /** The device the PRT cookie proved (the PRT carries it). */
  did: string;
  /** The PRT session id: a revoked PRT voids the code too. */
  sid: string;
  /** The client (app id) the code was issued to. */
  client: string;
  /** The redirect URI exactly as the authorize request sent it (RFC 6749 §4.1.3). */
  redirectUri: string;
  /** The authorize endpoint's version: 1 (`resource`) or 2 (`scope`). */
  ver: 1 | 2;
  resource?: string;
  scope?: string;
  /** The RFC 7636 S256 code challenge, when the request had one. */
  cc?: string;
  authTime: number;
  amr: string[];
  iat: number;
  exp: number;
}

const isStr = (v: unknown, max = 512): v is string =>
  typeof v === 'string' && v.length > 0 && v.length <= max;
const isNum = (v: unknown): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function parseAuthCode(c: Record<string, unknown>): AuthCodeClaims | undefined {
  const ok =
    isStr(c.jti) &&
    isStr(c.tid) &&
    isStr(c.uid) &&
    isStr(c.did) &&
    isStr(c.sid) &&
    isStr(c.client) &&
    isStr(c.redirectUri) &&
    (c.ver === 1 || c.ver === 2) &&
    (c.resource === undefined || isStr(c.resource)) &&
    (c.scope === undefined || isStr(c.scope, 2048)) &&
    (c.cc === undefined || isStr(c.cc, 128)) &&
    isNum(c.authTime) &&
    Array.isArray(c.amr) &&
    c.amr.length <= 16 &&
    c.amr.every((a) => isStr(a)) &&
    isNum(c.iat) &&
    isNum(c.exp);
  return ok ? (c as unknown as AuthCodeClaims) : undefined;
}

/** A fresh AES-256-GCM key for this process's codes. */
export function newAuthCodeKey(): Buffer {
  return randomBytes(32);
}

export function sealAuthCode(key: Buffer, claims: AuthCodeClaims): string {
  return seal(key, 'auth_code', claims);
}

/** The code's claims if this process issued it (expiry and binding are the caller's checks). */
export function openAuthCode(key: Buffer, code: unknown): AuthCodeClaims | undefined {
  const c = open(key, 'auth_code', code);
  return c && parseAuthCode(c);
}

/**
 * The codes already redeemed, each kept until it expires (a code past its lifetime is refused
 * for that anyway). RFC 6749 §4.1.2: a code used twice MUST be refused, and the tokens issued
 * from it SHOULD be revoked, so each entry remembers the refresh token its redemption issued.
 * Bounded: when full (and nothing has expired), new redemptions are refused rather than old
 * entries forgotten, which would make those codes redeemable again (fail closed).
 */
export class UsedCodes {
  readonly #used = new Map<
    string,
    { expiresAt: number; refreshTokenId?: string; reused?: boolean }
  >();
  readonly #max: number;

  /** @param max entries at most: codes redeemed within one code lifetime. */
  constructor(max = 100_000) {
    this.#max = max;
  }

  #sweep(now: number): void {
    for (const [jti, e] of this.#used) if (e.expiresAt <= now) this.#used.delete(jti);
  }

  /**
   * Marks the code `jti` redeemed; false if it already was (or the set is full). Synchronous, so
   * two redemptions racing for one code cannot both pass.
   */
  claim(jti: string, expiresAt: number, now: number): boolean {
    if (this.#used.has(jti)) return false;
    if (this.#used.size >= this.#max) {
      this.#sweep(now);
      if (this.#used.size >= this.#max) return false;
    }
    this.#used.set(jti, { expiresAt });
    return true;
  }

  /**
   * Records the refresh token the redemption of `jti` issued. True when the code was presented
   * again meanwhile: the caller revokes the token it just issued.
   */
  attach(jti: string, refreshTokenId: string): boolean {
    const e = this.#used.get(jti);
    if (!e) return false;
    e.refreshTokenId = refreshTokenId;
    return e.reused === true;
  }

  /**
   * Notes a second presentation of the redeemed code `jti`; the refresh token its redemption
   * issued, when it has issued one yet (else attach() reports the reuse).
   */
  reuse(jti: string): string | undefined {
    const e = this.#used.get(jti);
    if (!e) return undefined;
    e.reused = true;
    return e.refreshTokenId;
  }

  get size(): number {
    return this.#used.size;
  }
}
