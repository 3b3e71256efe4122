/**
 * The modulus size of an RSA KeyObject, which both scheme modules (rsa-encrypt.ts, rsa-sign.ts)
 * size their encodings by (RFC 8017 §7 and §8: k, the modulus length in octets).
 */
import type { KeyObject } from 'node:crypto';

/** The modulus length in bits; TypeError for a key that is not RSA. */
export function modulusBits(key: KeyObject): number {
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (key.asymmetricKeyType !== 'rsa' || bits === undefined) throw new TypeError('not an RSA key');
  return bits;
}

/** k, the modulus length in octets (RFC 8017 §2). */
export function modulusBytes(key: KeyObject): number {
  return Math.ceil(modulusBits(key) / 8);
}
