/**
 * Big-endian byte string <-> BigInt conversions and the little modular arithmetic the RSA and
 * ECDSA code needs (RFC 8017 §4.1 I2OSP / §4.2 OS2IP). BigInt arithmetic is not constant-time;
 * callers that handle secrets say why that is acceptable where they use it.
 */

/** OS2IP: the unsigned big-endian integer in `bytes` (0n for an empty input). */
export function bytesToBigInt(bytes: Uint8Array): bigint {
  if (bytes.length === 0) return 0n;
  return BigInt(`0x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex')}`);
}

/** I2OSP: `x` as exactly `length` big-endian bytes. Throws RangeError if it does not fit. */
export function bigIntToBytes(x: bigint, length: number): Buffer<ArrayBuffer> {
  if (x < 0n) throw new RangeError('negative integer');
  const hex = x.toString(16);
  if (hex.length > length * 2) throw new RangeError(`integer does not fit in ${length} bytes`);
  return Buffer.from(hex.padStart(length * 2, '0'), 'hex');
}

/** `x` as big-endian bytes without leading zero bytes (at least one byte). */
export function bigIntToMinBytes(x: bigint): Buffer<ArrayBuffer> {
  if (x < 0n) throw new RangeError('negative integer');
  const hex = x.toString(16);
  return Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, 'hex');
}

/** Left-pads `bytes` with zeros to `length`; undefined if it is longer than that. */
export function leftPad(bytes: Uint8Array, length: number): Buffer<ArrayBuffer> | undefined {
  if (bytes.length > length) return undefined;
  const out = Buffer.alloc(length);
  out.set(bytes, length - bytes.length);
  return out;
}

export function gcd(a: bigint, b: bigint): bigint {
  let x = a < 0n ? -a : a;
  let y = b < 0n ? -b : b;
  while (y !== 0n) {
    const t = x % y;
    x = y;
    y = t;
  }
  return x;
}

/** a^-1 mod m by the extended Euclidean algorithm; undefined when gcd(a, m) != 1. */
export function modInverse(a: bigint, m: bigint): bigint | undefined {
  let r0 = ((a % m) + m) % m;
  let r1 = m;
  let s0 = 1n;
  let s1 = 0n;
  while (r1 !== 0n) {
    const q = r0 / r1;
    const r2 = r0 - q * r1;
    r0 = r1;
    r1 = r2;
    const s2 = s0 - q * s1;
    s0 = s1;
    s1 = s2;
  }
  if (r0 !== 1n) return undefined;
  return s0 < 0n ? s0 + m : s0;
}
