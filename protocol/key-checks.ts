/**
 * Argument checks for keys handed in by callers. A wrong key is a caller bug, never hostile
 * input, so these throw TypeError/RangeError rather than a ProtocolError.
 */
import type { KeyObject } from 'node:crypto';
import { MAX_RSA_BITS, MIN_RSA_BITS } from './limits.ts';

/** Session keys are 32 random bytes [KAT][CJWT] (§1.2). */
export const SESSION_KEY_BYTES = 32;

export function requireSessionKey(sessionKey: unknown): asserts sessionKey is Uint8Array {
  if (!(sessionKey instanceof Uint8Array) || sessionKey.length !== SESSION_KEY_BYTES) {
    throw new RangeError(`session key must be a ${SESSION_KEY_BYTES}-byte Uint8Array`);
  }
}

/** An RSA KeyObject of the given type, 512..8192 bits; returns its modulus size in bits. */
export function requireRsaKey(key: unknown, type: 'public' | 'private'): number {
  if (
    typeof key !== 'object' ||
    key === null ||
    !('asymmetricKeyType' in key) ||
    (key as KeyObject).asymmetricKeyType !== 'rsa' ||
    (key as KeyObject).type !== type
  ) {
    throw new TypeError(`expected an RSA ${type} KeyObject`);
  }
  const bits = (key as KeyObject).asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) {
    throw new RangeError(`RSA key must be ${MIN_RSA_BITS}..${MAX_RSA_BITS} bits`);
  }
  return bits;
}
