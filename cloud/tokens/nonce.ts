/**
 * srv_challenge nonces (prt-protocol §3): the server must recognise its own nonces without storing
 * them, so a nonce is a MAC over its issue time and random bytes. A nonce may be reused within its
 * lifetime (clients cache one, [RT-async]); replay of an identical signed request is stopped by
 * the replay cache instead.
 *
 *   nonce = b64url( 0x01 || u64 issuedAt ms || 16 random bytes || HMAC-SHA256(key, the above)[0..16] )
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const VERSION = 1;
const BODY = 1 + 8 + 16;
const MAC = 16;
/** Default lifetime: 5 minutes (the issue's choice; Entra's own lifetime is undocumented). */
export const NONCE_LIFETIME_MS = 5 * 60 * 1000;
/** Clock skew tolerated for a nonce "from the future" (several cloud processes, one clock here). */
const SKEW_MS = 30 * 1000;

export type NonceCheck =
  | { ok: true; issuedAt: number }
  | { ok: false; reason: 'malformed' | 'forged' | 'expired' };

function mac(key: Buffer, body: Buffer): Buffer {
  return createHmac('sha256', key).update(body).digest().subarray(0, MAC);
}

export function issueNonce(key: Buffer, now: number = Date.now()): string {
  const body = Buffer.alloc(BODY);
  body[0] = VERSION;
  body.writeBigUInt64BE(BigInt(now), 1);
  randomBytes(16).copy(body, 9);
  return Buffer.concat([body, mac(key, body)]).toString('base64url');
}

export function checkNonce(
  key: Buffer,
  nonce: unknown,
  now: number = Date.now(),
  lifetimeMs: number = NONCE_LIFETIME_MS,
): NonceCheck {
  // b64url, padding optional ([OAPXBC 3.2.5.1.1.2]); exact length only.
  if (typeof nonce !== 'string' || !/^[A-Za-z0-9_-]{55}={0,2}$/.test(nonce))
    return { ok: false, reason: 'malformed' };
  const raw = Buffer.from(nonce.replace(/=+$/, ''), 'base64url');
  if (raw.length !== BODY + MAC || raw[0] !== VERSION) return { ok: false, reason: 'malformed' };
  const body = raw.subarray(0, BODY);
  if (!timingSafeEqual(mac(key, body), raw.subarray(BODY))) return { ok: false, reason: 'forged' };
  const issuedAt = Number(body.readBigUInt64BE(1));
  if (issuedAt > now + SKEW_MS || now - issuedAt > lifetimeMs)
    return { ok: false, reason: 'expired' };
  return { ok: true, issuedAt };
}
