import { createCipheriv, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cfbDecrypt, cfbEncrypt } from '../../tpm-sim/crypto/cfb.ts';

const h = (hex: string): Buffer => Buffer.from(hex, 'hex');

describe('AES-CFB128', () => {
  it('matches NIST SP 800-38A F.3.13 (CFB128-AES128.Encrypt)', () => {
    const key = h('2b7e151628aed2a6abf7158809cf4f3c');
    const iv = h('000102030405060708090a0b0c0d0e0f');
    const pt = h('6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51');
    const ct = h('3b3fd92eb72dad20333449f8e83cfb4ac8a64537a0b3a93fcde3cdad9f1ce58b');
    expect(cfbEncrypt(key, iv, pt).toString('hex')).toBe(ct.toString('hex'));
    expect(cfbDecrypt(key, iv, ct).toString('hex')).toBe(pt.toString('hex'));
  });

  it("agrees with node's aes-N-cfb for every key size and many lengths", () => {
    for (const keyLen of [16, 24, 32]) {
      for (const len of [0, 1, 15, 16, 17, 31, 32, 33, 100, 1000]) {
        const key = randomBytes(keyLen);
        const iv = randomBytes(16);
        const data = randomBytes(len);
        const c = createCipheriv(`aes-${keyLen * 8}-cfb`, key, iv);
        const expected = Buffer.concat([c.update(data), c.final()]);
        const ct = cfbEncrypt(key, iv, data);
        expect(ct.toString('hex'), `key ${keyLen} B, ${len} B`).toBe(expected.toString('hex'));
        expect(cfbDecrypt(key, iv, ct).equals(data), `key ${keyLen} B, ${len} B`).toBe(true);
      }
    }
  });

  it('encrypts a partial last block with a prefix of the keystream', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 100 }), fc.nat(), (data, cut) => {
        const key = randomBytes(16);
        const iv = randomBytes(16);
        const n = cut % (data.length + 1);
        const full = cfbEncrypt(key, iv, data);
        expect(full).toHaveLength(data.length);
        expect(cfbEncrypt(key, iv, data.subarray(0, n)).equals(full.subarray(0, n))).toBe(true);
        expect(cfbDecrypt(key, iv, full).equals(Buffer.from(data))).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('rejects bad key and IV sizes', () => {
    expect(() => cfbEncrypt(Buffer.alloc(20), Buffer.alloc(16), Buffer.alloc(1))).toThrow(
      RangeError,
    );
    expect(() => cfbEncrypt(Buffer.alloc(16), Buffer.alloc(12), Buffer.alloc(1))).toThrow(
      RangeError,
    );
    expect(() => cfbDecrypt(Buffer.alloc(0), Buffer.alloc(16), Buffer.alloc(1))).toThrow(
      RangeError,
    );
  });
});
