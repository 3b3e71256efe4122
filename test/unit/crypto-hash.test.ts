import { createHash, createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  digest,
  hashInfo,
  hmac,
  requireHash,
  TPM_ALG_SHA1,
  TPM_ALG_SHA256,
  TPM_ALG_SHA384,
  TPM_ALG_SHA512,
  timingSafeEqualBytes,
} from '../../tpm-sim/crypto/hash.ts';

const ALGS = [
  [TPM_ALG_SHA1, 'sha1', 20, 64],
  [TPM_ALG_SHA256, 'sha256', 32, 64],
  [TPM_ALG_SHA384, 'sha384', 48, 128],
  [TPM_ALG_SHA512, 'sha512', 64, 128],
] as const;

describe('hashInfo', () => {
  it('maps the TPM_ALG ids to node names and sizes', () => {
    expect([TPM_ALG_SHA1, TPM_ALG_SHA256, TPM_ALG_SHA384, TPM_ALG_SHA512]).toEqual([
      0x0004, 0x000b, 0x000c, 0x000d,
    ]);
    for (const [alg, nodeName, digestSize, blockSize] of ALGS) {
      expect(hashInfo(alg)).toEqual({ alg, nodeName, digestSize, blockSize });
    }
  });

  it('returns undefined for unknown or unsupported algorithms', () => {
    for (const alg of [
      0x0000, 0x0010 /* TPM_ALG_NULL */, 0x0012 /* SM3_256 */, 0x0027 /* SHA3_256 */,
    ]) {
      expect(hashInfo(alg)).toBeUndefined();
    }
    expect(() => requireHash(0x0010)).toThrow(RangeError);
    expect(() => digest(0x0010, Buffer.alloc(1))).toThrow(RangeError);
    expect(() => hmac(0x0010, Buffer.alloc(1))).toThrow(RangeError);
  });
});

describe('digest', () => {
  it('hashes the concatenation of its parts', () => {
    const parts = [randomBytes(7), Buffer.alloc(0), randomBytes(100)];
    for (const [alg, nodeName, digestSize] of ALGS) {
      const out = digest(alg, ...parts);
      expect(out.length).toBe(digestSize);
      expect(out.equals(createHash(nodeName).update(Buffer.concat(parts)).digest())).toBe(true);
    }
  });

  it('matches the FIPS 180-2 SHA-256 "abc" answer', () => {
    expect(digest(TPM_ALG_SHA256, Buffer.from('abc')).toString('hex')).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });
});

describe('hmac', () => {
  it('matches RFC 4231 test case 1 (HMAC-SHA-256)', () => {
    expect(
      hmac(TPM_ALG_SHA256, Buffer.alloc(20, 0x0b), Buffer.from('Hi There')).toString('hex'),
    ).toBe('b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7');
  });

  it('accepts an empty key and splits the message over parts', () => {
    const parts = [randomBytes(32), randomBytes(32), Buffer.of(0x01)];
    for (const [alg, nodeName] of ALGS) {
      const expected = createHmac(nodeName, Buffer.alloc(0)).update(Buffer.concat(parts)).digest();
      expect(hmac(alg, Buffer.alloc(0), ...parts).equals(expected)).toBe(true);
    }
  });
});

describe('timingSafeEqualBytes', () => {
  it('compares equal-length inputs', () => {
    const a = randomBytes(32);
    const b = Buffer.from(a);
    expect(timingSafeEqualBytes(a, b)).toBe(true);
    b[31] = b[31]! ^ 1;
    expect(timingSafeEqualBytes(a, b)).toBe(false);
    expect(timingSafeEqualBytes(Buffer.alloc(0), new Uint8Array(0))).toBe(true);
  });

  it('returns false instead of throwing when lengths differ', () => {
    const a = randomBytes(32);
    expect(timingSafeEqualBytes(a, a.subarray(0, 31))).toBe(false);
    expect(timingSafeEqualBytes(Buffer.alloc(0), a)).toBe(false);
  });
});
