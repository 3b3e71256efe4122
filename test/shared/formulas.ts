/**
 * The TPM's encodings and formulas (tpm-formulas.md), written out with node:crypto alone so that
 * tests check the engine against an independent computation. SHA-256 throughout.
 */
import { createCipheriv, createHash, createHmac } from 'node:crypto';
import { marshal } from '../../tpm-sim/wire/codec.ts';
import { type Public, TPMT_PUBLIC } from '../../tpm-sim/wire/structures.ts';

const EMPTY = Buffer.alloc(0);

export function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v, 0);
  return b;
}

export function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0, 0);
  return b;
}

/** A TPM2B: u16 size, then the bytes. */
export function tpm2b(b: Buffer): Buffer {
  return Buffer.concat([u16(b.length), b]);
}

export function sha256(...parts: Buffer[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

export function hmac256(key: Buffer, ...parts: Buffer[]): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** A KDF label: the string with its terminating zero. */
export function label(s: string): Buffer {
  return Buffer.from(`${s}\0`, 'latin1');
}

/** KDFa with HMAC-SHA-256 (Part 1 §11.4.10.2). */
export function kdfa(key: Buffer, lab: string, u: Buffer, v: Buffer, bits: number): Buffer {
  const out: Buffer[] = [];
  for (let i = 1; out.length * 256 < bits; i++) {
    out.push(hmac256(key, u32(i), label(lab), u, v, u32(bits)));
  }
  return Buffer.concat(out).subarray(0, bits / 8);
}

/** The keys that protect a blob under a SHA-256 / AES-128 parent (Part 1 §22.3, §23.3.2). */
export function protectionKeysRef(seed: Buffer, name: Buffer): { symKey: Buffer; hmacKey: Buffer } {
  return {
    symKey: kdfa(seed, 'STORAGE', name, EMPTY, 128),
    hmacKey: kdfa(seed, 'INTEGRITY', EMPTY, EMPTY, 256),
  };
}

/** Name = nameAlg || H(TPMT_PUBLIC) for a SHA-256 object (Part 1 §16). */
export function nameOf(pub: Public): Buffer {
  return Buffer.concat([u16(0x000b), sha256(marshal(TPMT_PUBLIC, pub))]);
}

/**
 * The private blob of Part 1 §22 for a SHA-256 / AES-128 parent:
 * TPM2B(HMAC(hmacKey, TPM2B(iv) || enc || name)) || TPM2B(iv) || enc, enc = AES-CFB(symKey, iv).
 */
export function wrapRef(seed: Buffer, name: Buffer, sens2B: Buffer, iv: Buffer): Buffer {
  const { symKey, hmacKey } = protectionKeysRef(seed, name);
  const c = createCipheriv('aes-128-cfb', symKey, iv);
  const enc = Buffer.concat([c.update(sens2B), c.final()]);
  const ivField = tpm2b(iv);
  return Buffer.concat([tpm2b(hmac256(hmacKey, ivField, enc, name)), ivField, enc]);
}
