/**
 * How reports show a token or secret: never the value, only the first 12 hex digits of its
 * SHA-256, enough to tell two tokens apart and to match a report against a log.
 */
import { createHash } from 'node:crypto';

export function fingerprint(secret: string | Uint8Array): string {
  return createHash('sha256').update(secret).digest('hex').slice(0, 12);
}

/** The payload of a JWT, or undefined when it is not one (tokens of this lab are JWTs or sealed). */
export function jwtClaims(token: string): Record<string, unknown> | undefined {
  const part = token.split('.')[1];
  if (part === undefined) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof claims === 'object' && claims !== null ? claims : undefined;
  } catch {
    return undefined;
  }
}
