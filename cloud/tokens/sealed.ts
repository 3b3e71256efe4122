/**
 * Self-contained, opaque tokens (DESIGN "Beyond one machine": tokens carry their state, the
 * server keeps a record only for revocation). A token is its claims as JSON, sealed with
 * AES-256-GCM; the kind is bound as associated data, so a refresh token can never be opened as a
 * PRT even under the same key.
 *
 *   token = prefix || b64url( iv(12) || ciphertext || tag(16) )
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

export type SealedKind = 'prt' | 'refresh_token' | 'auth_code';

/** Opaque prefixes, so a token's kind shows in logs without opening it (Entra's look like "0.A..."). */
const PREFIX: Record<SealedKind, string> = { prt: '1.P', refresh_token: '1.R', auth_code: '1.C' };
const IV = 12;
const TAG = 16;
/** Refuse anything longer before decoding (parsers of untrusted input are bounded). */
export const MAX_SEALED_TOKEN_CHARS = 8192;

export function seal(key: Buffer, kind: SealedKind, claims: object): string {
  const iv = randomBytes(IV);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(kind));
  const body = Buffer.concat([c.update(JSON.stringify(claims), 'utf8'), c.final()]);
  return PREFIX[kind] + Buffer.concat([iv, body, c.getAuthTag()]).toString('base64url');
}

/** The claims, or undefined for anything this cloud did not seal as this kind (no reason given: no oracle). */
export function open(
  key: Buffer,
  kind: SealedKind,
  token: unknown,
): Record<string, unknown> | undefined {
  if (typeof token !== 'string' || token.length > MAX_SEALED_TOKEN_CHARS) return undefined;
  const prefix = PREFIX[kind];
  if (!token.startsWith(prefix)) return undefined;
  const b64 = token.slice(prefix.length);
  if (!/^[A-Za-z0-9_-]+$/.test(b64)) return undefined;
  const raw = Buffer.from(b64, 'base64url');
  if (raw.length < IV + TAG + 2) return undefined;
  try {
    const d = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV));
    d.setAAD(Buffer.from(kind));
    d.setAuthTag(raw.subarray(raw.length - TAG));
    const plain = Buffer.concat([d.update(raw.subarray(IV, raw.length - TAG)), d.final()]);
    const claims = JSON.parse(plain.toString('utf8')) as unknown;
    return claims !== null && typeof claims === 'object' && !Array.isArray(claims)
      ? (claims as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
