/**
 * RSA key material: generation, rebuilding a private key from one prime, public keys from (n, e),
 * and deterministic derivation for primary keys. The schemes (rsa-sign.ts, rsa-encrypt.ts) are
 * re-exported here.
 *
 * A TPM keeps only the modulus (TPMT_PUBLIC unique.rsa), the exponent (TPMS_RSA_PARMS, TPM 2.0
 * Part 2 §12.2.3.5, where 0 means 65537) and one prime p (TPM2B_PRIVATE_KEY_RSA in TPMT_SENSITIVE,
 * Part 2 §11.2.4.7 and §12.3.2.4). Everything else is recomputed on load, as the reference
 * implementation's CryptRsaLoadPrivateExponent does.
 */
import {
  checkPrimeSync,
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  type KeyObject,
} from 'node:crypto';
import { promisify } from 'node:util';
import {
  bigIntToBytes,
  bigIntToMinBytes,
  bytesToBigInt,
  gcd,
  leftPad,
  modInverse,
} from './bigint.ts';
import type { ByteStream } from './stream.ts';

// Signature and encryption schemes live in their own modules; this module is the single import
// point for RSA callers.
export {
  oaepDecrypt,
  oaepEncrypt,
  rsaesDecrypt,
  rsaesEncrypt,
  rsaRawDecrypt,
  rsaRawEncrypt,
} from './rsa-encrypt.ts';
export {
  rsapssSignDigest,
  rsapssVerifyDigest,
  rsassaSignDigest,
  rsassaVerifyDigest,
} from './rsa-sign.ts';

export type { ByteStream } from './stream.ts';

export const RSA_DEFAULT_EXPONENT = 65537;

/** The exponent a TPMS_RSA_PARMS.exponent stands for: 0 means 2^16 + 1 (Part 2 §12.2.3.5). */
export function rsaExponentOf(parmsExponent: number): number {
  return parmsExponent === 0 ? RSA_DEFAULT_EXPONENT : parmsExponent;
}

export interface RsaKeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** The modulus, big-endian, exactly ceil(bits/8) bytes. */
  readonly n: Buffer<ArrayBuffer>;
  /** The public exponent, big-endian, no leading zeros. */
  readonly e: Buffer<ArrayBuffer>;
  /** One prime factor of n, big-endian, exactly ceil(bits/16) bytes: what TPMT_SENSITIVE stores. */
  readonly p: Buffer<ArrayBuffer>;
}

export interface RsaKeyObjects {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

const generateKeyPairAsync = promisify(generateKeyPair);

function checkExponent(exponent: number): void {
  // OpenSSL and the TPM both need an odd exponent > 1 that fits TPMS_RSA_PARMS.exponent (u32).
  if (!Number.isInteger(exponent) || exponent < 3 || exponent > 0xffffffff || exponent % 2 === 0) {
    throw new RangeError(`RSA exponent must be an odd integer in [3, 2^32), got ${exponent}`);
  }
}

function checkBits(bits: number): void {
  // Both primes get exactly bits/2 bits, so bits must be even; 512 keeps the |p - q| bound of
  // FIPS 186-4 §B.3.3 (2^(bits/2 - 100)) meaningful.
  if (!Number.isInteger(bits) || bits < 512 || bits > 16384 || bits % 2 !== 0) {
    throw new RangeError(
      `RSA key size must be an even number of bits in [512, 16384], got ${bits}`,
    );
  }
}

function exponentToBigInt(e: number | Uint8Array): bigint {
  return typeof e === 'number' ? BigInt(e) : bytesToBigInt(e);
}

const b64u = (x: bigint): string => bigIntToMinBytes(x).toString('base64url');

/** node:crypto KeyObjects for (n, e); undefined when OpenSSL rejects the numbers. */
function keyObjectsFromFactors(
  n: bigint,
  e: bigint,
  p: bigint,
  q: bigint,
): RsaKeyObjects | undefined {
  const p1 = p - 1n;
  const q1 = q - 1n;
  // d = e^-1 mod lcm(p-1, q-1) (RFC 8017 §3.2; the lcm form is the one FIPS 186-4 §B.3.1 requires).
  const lambda = (p1 / gcd(p1, q1)) * q1;
  const d = modInverse(e, lambda);
  const qi = modInverse(q, p);
  if (d === undefined || qi === undefined) return undefined;
  try {
    const privateKey = createPrivateKey({
      key: {
        kty: 'RSA',
        n: b64u(n),
        e: b64u(e),
        d: b64u(d),
        p: b64u(p),
        q: b64u(q),
        dp: b64u(d % p1),
        dq: b64u(d % q1),
        qi: b64u(qi),
      },
      format: 'jwk',
    });
    return { privateKey, publicKey: createPublicKey(privateKey) };
  } catch {
    return undefined;
  }
}

/** A fresh RSA key pair from OpenSSL (TPM2_Create of an RSA key). */
export async function rsaGenerate(
  bits: number,
  exponent = RSA_DEFAULT_EXPONENT,
): Promise<RsaKeyPair> {
  checkBits(bits);
  checkExponent(exponent);
  const { privateKey, publicKey } = await generateKeyPairAsync('rsa', {
    modulusLength: bits,
    publicExponent: exponent,
  });
  const jwk = privateKey.export({ format: 'jwk' });
  if (jwk.n === undefined || jwk.e === undefined || jwk.p === undefined) {
    throw new Error('OpenSSL returned an RSA key without n, e or p');
  }
  const n = leftPad(Buffer.from(jwk.n, 'base64url'), Math.ceil(bits / 8));
  const p = leftPad(Buffer.from(jwk.p, 'base64url'), Math.ceil(bits / 16));
  if (n === undefined || p === undefined) throw new Error('OpenSSL returned an oversized RSA key');
  return { privateKey, publicKey, n, e: Buffer.from(jwk.e, 'base64url'), p };
}

/**
 * Rebuilds the private key from the modulus, the exponent and one prime, as a TPM does when it
 * loads an RSA object: q = n / p, then d, dP, dQ and qInv. Returns undefined when p does not
 * divide n or the numbers make no RSA key (the caller maps this to TPM_RC_BINDING or
 * TPM_RC_KEY). Primality of p and q is not tested: the sensitive area was either made by this
 * TPM or supplied by the key's owner, who only harms their own key.
 */
export function rsaFromPrime(
  n: Uint8Array,
  e: number | Uint8Array,
  p: Uint8Array,
): RsaKeyObjects | undefined {
  const nn = bytesToBigInt(n);
  const ee = exponentToBigInt(e);
  const pp = bytesToBigInt(p);
  if (pp < 3n || pp >= nn || nn % pp !== 0n || ee < 3n || ee % 2n === 0n) return undefined;
  const qq = nn / pp;
  if (qq < 3n || pp % 2n === 0n || qq % 2n === 0n) return undefined;
  return keyObjectsFromFactors(nn, ee, pp, qq);
}

/** The public key with modulus `n` and exponent `e`; undefined if OpenSSL rejects them. */
export function rsaPublicKey(n: Uint8Array, e: number | Uint8Array): KeyObject | undefined {
  const nn = bytesToBigInt(n);
  const ee = exponentToBigInt(e);
  if (nn === 0n || ee === 0n) return undefined;
  try {
    return createPublicKey({ key: { kty: 'RSA', n: b64u(nn), e: b64u(ee) }, format: 'jwk' });
  } catch {
    return undefined;
  }
}

// ---- Deterministic derivation (primary keys) ----------------------------------------------
//
// Design: a primary key must be a pure function of (hierarchy seed, template, sensitive.data)
// (TPM 2.0 Part 1 §14.4 in rev 1.83; tpm-formulas.md §6), so its primes come from a byte stream
// the caller derives from those inputs. Bit-exact equality with libtpms is not a goal, so this
// uses the simplest search that is both deterministic and fast:
//   1. draw bits/16 bytes; set the top two bits (so p*q has exactly `bits` bits) and the low bit;
//   2. sieve a window of odd candidates c, c+2, ... with the small primes below SIEVE_LIMIT;
//   3. test survivors with gcd(p-1, e) = 1 first, then crypto.checkPrimeSync (OpenSSL's
//      Miller-Rabin with trial division; 2^-64 false-positive bound for random input);
//   4. if the window holds no prime, draw a fresh start from the stream.
// q is found the same way from the next bytes, and is redrawn while |p - q| <= 2^(bits/2 - 100)
// (FIPS 186-4 §B.3.3 step 5.4). Incremental search favours primes after long gaps slightly,
// which is accepted practice (OpenSSL's own probable_prime does it) and no concern for a lab TPM.
// Determinism holds as long as checkPrimeSync never calls a composite prime, whose probability
// is below 2^-64 per candidate.

const SIEVE_LIMIT = 1 << 13;
const SIEVE_WINDOW = 2048; // odd candidates per window; the mean prime gap at 1024 bits is ~710.

let smallPrimes: Uint32Array | undefined;

/** The odd primes below SIEVE_LIMIT (sieve of Eratosthenes, computed once). */
function getSmallPrimes(): Uint32Array {
  if (smallPrimes !== undefined) return smallPrimes;
  const composite = new Uint8Array(SIEVE_LIMIT);
  const found: number[] = [];
  for (let i = 3; i < SIEVE_LIMIT; i += 2) {
    if (composite[i] === 1) continue;
    found.push(i);
    for (let j = i * i; j < SIEVE_LIMIT; j += 2 * i) composite[j] = 1;
  }
  smallPrimes = Uint32Array.from(found);
  return smallPrimes;
}

function findPrime(stream: ByteStream, primeBits: number, e: bigint): bigint {
  const primeBytes = Math.ceil(primeBits / 8);
  const limit = 1n << BigInt(primeBits);
  const topBits = 3n << BigInt(primeBits - 2);
  const primes = getSmallPrimes();
  const sieve = new Uint8Array(SIEVE_WINDOW);
  for (;;) {
    const raw = stream(primeBytes);
    if (raw.length !== primeBytes)
      throw new RangeError('byte stream returned the wrong number of bytes');
    const start = (bytesToBigInt(raw) & (limit - 1n)) | topBits | 1n;

    // sieve[k] = 1 when start + 2k has a small prime factor.
    sieve.fill(0);
    for (const sp of primes) {
      const r = Number(start % BigInt(sp));
      // First k with start + 2k = 0 (mod sp): k = (-r) * 2^-1 mod sp, and 2^-1 = (sp + 1) / 2.
      let k = (((sp - r) % sp) * ((sp + 1) / 2)) % sp;
      for (; k < SIEVE_WINDOW; k += sp) sieve[k] = 1;
    }

    for (let k = 0; k < SIEVE_WINDOW; k++) {
      if (sieve[k] === 1) continue;
      const c = start + BigInt(2 * k);
      if (c >= limit) break;
      if (gcd(c - 1n, e) !== 1n) continue;
      if (checkPrimeSync(c)) return c;
    }
  }
}

/**
 * A deterministic RSA key: the same stream contents, size and exponent always give the same key.
 * Used for primary keys (TPM2_CreatePrimary), whose stream is derived from the hierarchy seed and
 * the template.
 */
export function rsaDerive(
  stream: ByteStream,
  bits: number,
  exponent = RSA_DEFAULT_EXPONENT,
): RsaKeyPair {
  checkBits(bits);
  checkExponent(exponent);
  const e = BigInt(exponent);
  const primeBits = bits / 2;
  const minDistance = 1n << BigInt(primeBits - 100);
  const p = findPrime(stream, primeBits, e);
  let q: bigint;
  do {
    q = findPrime(stream, primeBits, e);
  } while ((p > q ? p - q : q - p) <= minDistance);
  const n = p * q;
  const keys = keyObjectsFromFactors(n, e, p, q);
  // gcd(e, p-1) = gcd(e, q-1) = 1 was enforced, so d and qInv exist.
  if (keys === undefined) throw new Error('derived RSA factors were rejected by OpenSSL');
  return {
    ...keys,
    n: bigIntToBytes(n, Math.ceil(bits / 8)),
    e: bigIntToMinBytes(e),
    p: bigIntToBytes(p, Math.ceil(bits / 16)),
  };
}
