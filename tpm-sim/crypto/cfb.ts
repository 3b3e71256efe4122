/**
 * AES in CFB mode with a 128-bit feedback segment (NIST SP 800-38A §6.3), the only symmetric mode
 * the TPM uses for parameter encryption (TPM 2.0 Part 1 §21.3), protected storage (Part 1 §22)
 * and duplication blobs (Part 1 §23.3). CFB is a stream mode: no padding, and a partial last
 * block uses only a prefix of the keystream, so output length always equals input length.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';

const AES_BLOCK = 16;

function cipherName(key: Uint8Array, iv: Uint8Array): string {
  if (key.length !== 16 && key.length !== 24 && key.length !== 32) {
    throw new RangeError(`AES key must be 16, 24 or 32 bytes, got ${key.length}`);
  }
  if (iv.length !== AES_BLOCK) {
    throw new RangeError(`AES-CFB IV must be ${AES_BLOCK} bytes, got ${iv.length}`);
  }
  // OpenSSL's "aes-N-cfb" is CFB-128; "aes-N-cfb8" and "-cfb1" are the other segment sizes.
  return `aes-${key.length * 8}-cfb`;
}

/** AES-CFB128 encryption of `data` of any length (an empty input gives an empty output). */
export function cfbEncrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Buffer<ArrayBuffer> {
  const c = createCipheriv(cipherName(key, iv), key, iv);
  const head = c.update(data);
  const tail = c.final();
  return tail.length === 0 ? head : Buffer.concat([head, tail]);
}

/** AES-CFB128 decryption of `data` of any length. */
export function cfbDecrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Buffer<ArrayBuffer> {
  const d = createDecipheriv(cipherName(key, iv), key, iv);
  const head = d.update(data);
  const tail = d.final();
  return tail.length === 0 ? head : Buffer.concat([head, tail]);
}
