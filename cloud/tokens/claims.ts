/**
 * What the cloud's opaque tokens hold. A PRT carries the session key (prt-protocol §10: "the
 * session key is embedded in the PRT"), so the cloud needs no session table to check a
 * PRT-signed request; refresh tokens carry their binding to a device and a PRT session.
 */
import { open, type SealedKind, seal } from './sealed.ts';

export interface PrtClaims {
  /** PRT session id: stays the same across renewals (same session key). */
  sid: string;
  tid: string;
  uid: string;
  did: string;
  /** The 32-byte session key, base64. */
  sk: string;
  /** The KDF version declared at issuance (kdf_ver in the PRT request header), then enforced. */
  kdf: 1 | 2;
  /** Seconds since the epoch. */
  authTime: number;
  amr: string[];
  iat: number;
  exp: number;
}

export interface RefreshTokenClaims {
  jti: string;
  tid: string;
  uid: string;
  /** The client (app id) the token was issued to. */
  client: string;
  /** v1 resource or v2 scope string it was issued for. */
  resource?: string;
  scope?: string;
  /** Device the token was issued on, when known. */
  did?: string;
  /**
   * Present when the token is bound: usable only in a request signed with this PRT session's key.
   * The session key and its KDF version travel sealed inside the token, like the PRT's, so the
   * cloud needs no session table to check the redemption's signature.
   */
  bound?: { did: string; sid: string; sk: string; kdf: 1 | 2 };
  authTime: number;
  amr: string[];
  iat: number;
  exp: number;
}

const isStr = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 512;
const isNum = (v: unknown): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isStrList = (v: unknown): v is string[] =>
  Array.isArray(v) && v.length <= 16 && v.every(isStr);

function parsePrt(c: Record<string, unknown>): PrtClaims | undefined {
  const ok =
    isStr(c.sid) &&
    isStr(c.tid) &&
    isStr(c.uid) &&
    isStr(c.did) &&
    isStr(c.sk) &&
    (c.kdf === 1 || c.kdf === 2) &&
    isNum(c.authTime) &&
    isStrList(c.amr) &&
    isNum(c.iat) &&
    isNum(c.exp);
  return ok ? (c as unknown as PrtClaims) : undefined;
}

function parseRefresh(c: Record<string, unknown>): RefreshTokenClaims | undefined {
  const b = c.bound as Record<string, unknown> | undefined;
  const ok =
    isStr(c.jti) &&
    isStr(c.tid) &&
    isStr(c.uid) &&
    isStr(c.client) &&
    (c.resource === undefined || isStr(c.resource)) &&
    (c.scope === undefined || isStr(c.scope)) &&
    (c.did === undefined || isStr(c.did)) &&
    (b === undefined ||
      (typeof b === 'object' &&
        b !== null &&
        isStr(b.did) &&
        isStr(b.sid) &&
        isStr(b.sk) &&
        (b.kdf === 1 || b.kdf === 2))) &&
    isNum(c.authTime) &&
    isStrList(c.amr) &&
    isNum(c.iat) &&
    isNum(c.exp);
  return ok ? (c as unknown as RefreshTokenClaims) : undefined;
}

const KIND: Record<'prt' | 'refresh_token', SealedKind> = {
  prt: 'prt',
  refresh_token: 'refresh_token',
};

export function sealPrt(key: Buffer, claims: PrtClaims): string {
  return seal(key, KIND.prt, claims);
}

/** The PRT's claims if this cloud issued it and it is well-formed (expiry is the caller's check). */
export function openPrt(key: Buffer, token: unknown): PrtClaims | undefined {
  const c = open(key, KIND.prt, token);
  return c && parsePrt(c);
}

export function sealRefreshToken(key: Buffer, claims: RefreshTokenClaims): string {
  return seal(key, KIND.refresh_token, claims);
}

export function openRefreshToken(key: Buffer, token: unknown): RefreshTokenClaims | undefined {
  const c = open(key, KIND.refresh_token, token);
  return c && parseRefresh(c);
}
