/**
 * BCRYPT_RSAKEY_BLOB with magic "RSA1" (BCRYPT_RSAPUBLIC_MAGIC): how Windows encodes the transport
 * key in the DRS registration body (`TransportKey` = b64 of the blob) and the WHfB key (`kngc`)
 * [HB-spec][RT-dev] (§1.3, §1.2). Layout:
 *
 *   "RSA1" | u32 LE BitLength | u32 LE cbPublicExp | u32 LE cbModulus | u32 LE cbPrime1 (0)
 *        | u32 LE cbPrime2 (0) | public exponent (BE, minimal) | modulus (BE, minimal)
 *
 * A public blob carries no primes, so both prime lengths must be 0 and nothing may follow the
 * modulus.
 */
import { createPublicKey, type JsonWebKey, KeyObject } from 'node:crypto';
import { fromBase64 } from './base64.ts';
import { malformed, tooLarge } from './errors.ts';
import { MAX_RSA_BITS, MAX_RSA_BLOB_BYTES, MIN_RSA_BITS } from './limits.ts';

/** "RSA1" read as a u32 LE: BCRYPT_RSAPUBLIC_MAGIC (bcrypt.h). */
export const BCRYPT_RSAPUBLIC_MAGIC = 0x31415352;

const HEADER_BYTES = 24;
// Exponents wider than 64 bits are legal in the structure but never used; 65537 takes 3 bytes.
const MAX_EXPONENT_BYTES = 8;
const WHAT = 'BCRYPT_RSAKEY_BLOB';

/** A parsed RSA1 blob: the key plus the exact fields it came from. */
export interface ParsedRsaBlob {
  readonly publicKey: KeyObject;
  readonly bits: number;
  /** Big-endian, minimal length. */
  readonly exponent: Buffer;
  /** Big-endian, minimal length. */
  readonly modulus: Buffer;
}

function bitLength(bigEndian: Uint8Array): number {
  let i = 0;
  while (i < bigEndian.length && bigEndian[i] === 0) i++;
  if (i === bigEndian.length) return 0;
  return (bigEndian.length - i - 1) * 8 + (32 - Math.clz32(bigEndian[i]!));
}

function stripLeadingZeros(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  return bytes.subarray(i);
}

function rsaJwkOf(key: KeyObject | JsonWebKey): { n: string; e: string } {
  if (key instanceof KeyObject) {
    if (key.asymmetricKeyType !== 'rsa' || key.type === 'secret') {
      throw new TypeError('expected an RSA public or private KeyObject');
    }
    // A private KeyObject exports only its public half here: n and e.
    const jwk = (key.type === 'private' ? createPublicKey(key) : key).export({ format: 'jwk' });
    return { n: jwk.n!, e: jwk.e! };
  }
  if (typeof key !== 'object' || key === null || key.kty !== 'RSA') {
    throw new TypeError('expected an RSA KeyObject or an RSA JWK');
  }
  if (typeof key.n !== 'string' || typeof key.e !== 'string') {
    throw new TypeError('RSA JWK needs n and e');
  }
  // Let OpenSSL validate the numbers, then re-export to get canonical base64url.
  const jwk = createPublicKey({ key: { kty: 'RSA', n: key.n, e: key.e }, format: 'jwk' }).export({
    format: 'jwk',
  });
  return { n: jwk.n!, e: jwk.e! };
}

/** Encodes an RSA public key (KeyObject, public or private, or a JWK) as an RSA1 blob. */
export function encodeRsaBlob(key: KeyObject | JsonWebKey): Buffer {
  const jwk = rsaJwkOf(key);
  const modulus = stripLeadingZeros(Buffer.from(jwk.n, 'base64url'));
  const exponent = stripLeadingZeros(Buffer.from(jwk.e, 'base64url'));
  const bits = bitLength(modulus);
  if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) {
    throw new RangeError(`RSA key must be ${MIN_RSA_BITS}..${MAX_RSA_BITS} bits, got ${bits}`);
  }
  if (exponent.length > MAX_EXPONENT_BYTES) throw new RangeError('RSA public exponent too large');
  const out = Buffer.alloc(HEADER_BYTES + exponent.length + modulus.length);
  out.writeUInt32LE(BCRYPT_RSAPUBLIC_MAGIC, 0);
  out.writeUInt32LE(bits, 4);
  out.writeUInt32LE(exponent.length, 8);
  out.writeUInt32LE(modulus.length, 12);
  // cbPrime1 and cbPrime2 (offsets 16 and 20) stay 0: a public blob.
  out.set(exponent, HEADER_BYTES);
  out.set(modulus, HEADER_BYTES + exponent.length);
  return out;
}

/**
 * Parses an RSA1 blob from untrusted input, failing closed (ERR_PROTOCOL_MALFORMED) unless: the
 * magic is RSA1; BitLength is 512..8192; both prime lengths are 0; the exponent is 1..8 bytes,
 * minimal, odd and at least 3; the modulus is minimal, odd, exactly BitLength bits long and
 * ceil(BitLength/8) bytes; and the blob ends right after the modulus.
 */
export function parseRsaBlob(blob: Uint8Array): ParsedRsaBlob {
  if (!(blob instanceof Uint8Array)) throw new TypeError(`${WHAT}: expected a Uint8Array`);
  if (blob.length > MAX_RSA_BLOB_BYTES) throw tooLarge(WHAT, blob.length, MAX_RSA_BLOB_BYTES);
  if (blob.length < HEADER_BYTES) throw malformed(WHAT, 'shorter than its header');
  const buf = Buffer.from(blob.buffer, blob.byteOffset, blob.length);
  if (buf.readUInt32LE(0) !== BCRYPT_RSAPUBLIC_MAGIC) throw malformed(WHAT, 'magic is not RSA1');
  const bits = buf.readUInt32LE(4);
  const cbExp = buf.readUInt32LE(8);
  const cbMod = buf.readUInt32LE(12);
  if (buf.readUInt32LE(16) !== 0 || buf.readUInt32LE(20) !== 0) {
    throw malformed(WHAT, 'a public blob has no primes');
  }
  if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) {
    throw malformed(WHAT, `BitLength must be ${MIN_RSA_BITS}..${MAX_RSA_BITS}`);
  }
  if (cbExp < 1 || cbExp > MAX_EXPONENT_BYTES) throw malformed(WHAT, 'bad exponent length');
  if (cbMod !== Math.ceil(bits / 8)) {
    throw malformed(WHAT, 'modulus length does not match BitLength');
  }
  // Both lengths are now small, so the sum cannot overflow.
  if (buf.length !== HEADER_BYTES + cbExp + cbMod) {
    throw malformed(WHAT, 'length does not match its fields');
  }
  const exponent = Buffer.from(buf.subarray(HEADER_BYTES, HEADER_BYTES + cbExp));
  const modulus = Buffer.from(buf.subarray(HEADER_BYTES + cbExp));
  if (exponent[0] === 0 || modulus[0] === 0) {
    throw malformed(WHAT, 'numbers must be minimal length');
  }
  if (bitLength(modulus) !== bits) throw malformed(WHAT, 'modulus is not BitLength bits long');
  if ((modulus[cbMod - 1]! & 1) === 0) throw malformed(WHAT, 'modulus is even');
  if ((exponent[cbExp - 1]! & 1) === 0 || (cbExp === 1 && exponent[0]! < 3)) {
    throw malformed(WHAT, 'public exponent must be odd and at least 3');
  }
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({
      key: { kty: 'RSA', n: modulus.toString('base64url'), e: exponent.toString('base64url') },
      format: 'jwk',
    });
  } catch {
    throw malformed(WHAT, 'not a usable RSA public key');
  }
  return { publicKey, bits, exponent, modulus };
}

// Longest base64 text of a MAX_RSA_BLOB_BYTES blob.
const MAX_BLOB_B64 = Math.ceil(MAX_RSA_BLOB_BYTES / 3) * 4;

/** Parses the DRS `TransportKey` field: standard base64 of an RSA1 blob (§1.3, §2). */
export function parseRsaBlobBase64(text: string): ParsedRsaBlob {
  if (typeof text !== 'string') throw new TypeError(`${WHAT}: expected a string`);
  if (text.length > MAX_BLOB_B64) throw tooLarge(WHAT, text.length, MAX_BLOB_B64);
  return parseRsaBlob(fromBase64(text, WHAT));
}
