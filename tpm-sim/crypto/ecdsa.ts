/**
 * ECDSA over a digest the caller already computed (TPM2_Sign receives a digest: TPM 2.0 Part 3
 * §20.2). node:crypto cannot do this: its sign()
 * and verify() always hash their input, even with a null algorithm.
 *
 * Signing (FIPS 186-4 §6.4): OpenSSL draws the nonce k and computes R = kG in one native call
 * (ECDH generateKeys), and the rest is a few BigInt operations:
 *   r = x(R) mod n,  s = k^-1 (z + r d) mod n,  z = the leftmost orderBits bits of the digest.
 * Signing is on the TPM's hottest path, so (k^-1, r) pairs are precomputed in batches per curve:
 * one modular inversion per batch thanks to Montgomery's trick, leaving two multiplications and
 * one reduction per signature.
 *
 * BigInt arithmetic is not constant-time: the time of the multiplications and reductions depends
 * on d and k^-1, and a precise local timing observer could in principle learn nonce bits, the
 * kind of leak TPM-FAIL exploited on real chips. This is acceptable here because this is a lab
 * TPM whose keys protect lab tokens, its threat model is token theft and replay rather than a
 * co-resident timing attacker, and the secret-dependent part of each signature is three
 * arithmetic operations on full-size numbers (k itself comes from OpenSSL's constant-time
 * scalar multiplication). Do not use this code for production keys.
 *
 * Verification uses @noble/curves (prehash off, high-S accepted, as the TPM accepts both).
 */
import { createECDH, type ECDH } from 'node:crypto';
import { p256, p384 } from '@noble/curves/nist.js';
import { bigIntToBytes, bytesToBigInt, leftPad, modInverse } from './bigint.ts';
import {
  type EccCurve,
  eccCurve,
  encodePoint,
  requireCurve,
  TPM_ECC_NIST_P256,
  TPM_ECC_NIST_P384,
} from './curves.ts';

export interface EcdsaSignature {
  /** r, exactly the curve's byteLength bytes. */
  readonly r: Buffer<ArrayBuffer>;
  /** s, exactly the curve's byteLength bytes. */
  readonly s: Buffer<ArrayBuffer>;
}

interface NoncePool {
  readonly ecdh: ECDH;
  readonly batch: number;
  kinv: bigint[];
  r: bigint[];
  next: number;
}

// Batch sizes trade the pause of one refill against the cost of the inversion it amortizes:
// a P-256 nonce costs ~10 us and an inversion ~17 us, a P-384 nonce ~0.5 ms.
const BATCH: ReadonlyMap<number, number> = new Map([
  [TPM_ECC_NIST_P256, 64],
  [TPM_ECC_NIST_P384, 8],
]);

const pools = new Map<number, NoncePool>();

function pool(curve: EccCurve): NoncePool {
  let p = pools.get(curve.id);
  if (p === undefined) {
    p = {
      ecdh: createECDH(curve.opensslName),
      batch: BATCH.get(curve.id) ?? 8,
      kinv: [],
      r: [],
      next: 0,
    };
    pools.set(curve.id, p);
  }
  return p;
}

function refill(curve: EccCurve, p: NoncePool): void {
  const { n, byteLength } = curve;
  const ks: bigint[] = [];
  const rs: bigint[] = [];
  while (ks.length < p.batch) {
    // generateKeys() draws k uniformly from [1, n-1] and returns R = kG as 0x04 || x || y.
    const point = p.ecdh.generateKeys();
    const r = bytesToBigInt(point.subarray(1, 1 + byteLength)) % n;
    if (r === 0n) continue; // FIPS 186-4 §6.4: r = 0 needs a new k.
    ks.push(bytesToBigInt(p.ecdh.getPrivateKey()));
    rs.push(r);
  }
  // Montgomery's batch inversion: prefix[i] = k_0 * ... * k_i; one inversion of the full
  // product, then walk back: k_i^-1 = (k_0..k_i)^-1 * (k_0..k_{i-1}).
  const count = ks.length;
  const prefix: bigint[] = new Array(count);
  let acc = 1n;
  for (let i = 0; i < count; i++) {
    acc = (acc * ks[i]!) % n;
    prefix[i] = acc;
  }
  // n is prime and every k is in [1, n-1], so the product is invertible.
  let inv = modInverse(acc, n)!;
  const kinv: bigint[] = new Array(count);
  for (let i = count - 1; i > 0; i--) {
    kinv[i] = (inv * prefix[i - 1]!) % n;
    inv = (inv * ks[i]!) % n;
  }
  kinv[0] = inv;
  p.kinv = kinv;
  p.r = rs;
  p.next = 0;
}

/** z: the leftmost min(orderBits, digest bits) bits of the digest as an integer (FIPS 186-4 §6.4). */
function digestToZ(curve: EccCurve, digestBytes: Uint8Array): bigint {
  const z = bytesToBigInt(digestBytes);
  const excess = digestBytes.length * 8 - curve.orderBits;
  return excess > 0 ? z >> BigInt(excess) : z;
}

/**
 * An ECDSA signature over `digestBytes` with private scalar `d` (big-endian, at most the curve
 * size). Throws RangeError for an unsupported curve or d outside [1, n-1]: both are caller bugs,
 * as loaded keys were validated by eccFromPrivate.
 */
export function ecdsaSignDigest(
  curveId: number,
  d: Uint8Array,
  digestBytes: Uint8Array,
): EcdsaSignature {
  const curve = requireCurve(curveId);
  const { n, byteLength } = curve;
  const dd = bytesToBigInt(d);
  if (d.length > byteLength || dd < 1n || dd >= n)
    throw new RangeError('ECDSA private key out of range');
  const z = digestToZ(curve, digestBytes);
  const p = pool(curve);
  for (;;) {
    if (p.next >= p.kinv.length) refill(curve, p);
    const i = p.next++;
    const kinv = p.kinv[i]!;
    const r = p.r[i]!;
    // Drop the used nonce: k^-1 together with the published (r, s) would reveal d.
    p.kinv[i] = 0n;
    const s = (kinv * (z + r * dd)) % n;
    if (s !== 0n) return { r: bigIntToBytes(r, byteLength), s: bigIntToBytes(s, byteLength) };
  }
}

const NOBLE = new Map([
  [TPM_ECC_NIST_P256, p256],
  [TPM_ECC_NIST_P384, p384],
]);

/**
 * Verifies an ECDSA signature (r, s) over `digestBytes` for the public point (x, y). Coordinates
 * and r, s shorter than the curve size are taken as having lost leading zeros. Returns false for
 * any malformed input (unknown curve, point not on the curve, r or s out of range); never throws.
 */
export function ecdsaVerifyDigest(
  curveId: number,
  x: Uint8Array,
  y: Uint8Array,
  digestBytes: Uint8Array,
  r: Uint8Array,
  s: Uint8Array,
): boolean {
  const curve = eccCurve(curveId);
  const impl = NOBLE.get(curveId);
  if (curve === undefined || impl === undefined) return false;
  const len = curve.byteLength;
  const point = encodePoint(curve, x, y);
  const pr = leftPad(r, len);
  const ps = leftPad(s, len);
  if (point === undefined || pr === undefined || ps === undefined) return false;
  try {
    return impl.verify(Buffer.concat([pr, ps]), digestBytes, point, {
      prehash: false,
      lowS: false,
    });
  } catch {
    return false;
  }
}
