/**
 * Hash algorithms the simulator supports, keyed by their TPM_ALG_ID (TPM 2.0 Part 2 §6.3),
 * plus digest, HMAC and constant-time comparison helpers over node:crypto.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const TPM_ALG_SHA1 = 0x0004;
export const TPM_ALG_SHA256 = 0x000b;
export const TPM_ALG_SHA384 = 0x000c;
export const TPM_ALG_SHA512 = 0x000d;

export interface HashInfo {
  /** The TPM_ALG_ID. */
  readonly alg: number;
  /** The algorithm name node:crypto (OpenSSL) knows it by. */
  readonly nodeName: string;
  /** Digest size in bytes. */
  readonly digestSize: number;
  /** Block size in bytes (the HMAC block size B of RFC 2104). */
  readonly blockSize: number;
}

const HASHES: ReadonlyMap<number, HashInfo> = new Map<number, HashInfo>([
  [TPM_ALG_SHA1, { alg: TPM_ALG_SHA1, nodeName: 'sha1', digestSize: 20, blockSize: 64 }],
  [TPM_ALG_SHA256, { alg: TPM_ALG_SHA256, nodeName: 'sha256', digestSize: 32, blockSize: 64 }],
  [TPM_ALG_SHA384, { alg: TPM_ALG_SHA384, nodeName: 'sha384', digestSize: 48, blockSize: 128 }],
  [TPM_ALG_SHA512, { alg: TPM_ALG_SHA512, nodeName: 'sha512', digestSize: 64, blockSize: 128 }],
]);

/** The hash with this TPM_ALG_ID, or undefined if the simulator does not implement it. */
export function hashInfo(alg: number): HashInfo | undefined {
  return HASHES.get(alg);
}

/**
 * Like hashInfo, for callers that have already validated the algorithm: an unknown id here is a
 * bug in the caller, not bad input from the wire.
 */
export function requireHash(alg: number): HashInfo {
  const info = HASHES.get(alg);
  if (info === undefined) {
    throw new RangeError(`unsupported hash algorithm 0x${alg.toString(16).padStart(4, '0')}`);
  }
  return info;
}

/** H_alg(parts[0] || parts[1] || ...). */
export function digest(alg: number, ...parts: Uint8Array[]): Buffer<ArrayBuffer> {
  const h = createHash(requireHash(alg).nodeName);
  for (const part of parts) h.update(part);
  return h.digest();
}

/**
 * HMAC_alg(key, parts[0] || parts[1] || ...). An empty key is valid: unbound, unsalted sessions
 * with an empty authValue use a zero-length HMAC key (TPM 2.0 Part 1 §19.6.5).
 */
export function hmac(alg: number, key: Uint8Array, ...parts: Uint8Array[]): Buffer<ArrayBuffer> {
  const h = createHmac(requireHash(alg).nodeName, key);
  for (const part of parts) h.update(part);
  return h.digest();
}

/**
 * Constant-time equality for secrets such as HMACs and auth values. Unlike
 * crypto.timingSafeEqual it accepts inputs of different lengths (and returns false): lengths
 * come from the wire, and a length mismatch must not throw. Only the length itself can leak.
 */
export function timingSafeEqualBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) {
    // Do the same amount of work as a real comparison of `a`, then fail.
    timingSafeEqual(a, a);
    return false;
  }
  return timingSafeEqual(a, b);
}
