import { createHash, randomBytes, sign, verify } from 'node:crypto';
import { p256 } from '@noble/curves/nist.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bigIntToBytes } from '../../tpm-sim/crypto/bigint.ts';
import {
  eccGenerate,
  ecdsaSignDigest,
  ecdsaVerifyDigest,
  requireCurve,
  TPM_ECC_NIST_P256,
  TPM_ECC_NIST_P384,
} from '../../tpm-sim/crypto/ecc.ts';
import { CURVES } from '../shared/crypto.ts';

function flipBit(b: Buffer, bit = 0): Buffer {
  const out = Buffer.from(b);
  out[out.length - 1 - (bit >> 3)] = out[out.length - 1 - (bit >> 3)]! ^ (1 << (bit & 7));
  return out;
}

describe('ecdsaSignDigest', () => {
  for (const c of CURVES) {
    it(`signs digests that node:crypto and @noble/curves verify (${c.hash})`, () => {
      const key = eccGenerate(c.id);
      for (let i = 0; i < 20; i++) {
        const msg = randomBytes(1 + i * 7);
        const digest = createHash(c.hash).update(msg).digest();
        const { r, s } = ecdsaSignDigest(c.id, key.d, digest);
        expect([r.length, s.length]).toEqual([c.len, c.len]);
        const sig = Buffer.concat([r, s]);
        expect(verify(c.hash, msg, { key: key.publicKey, dsaEncoding: 'ieee-p1363' }, sig)).toBe(
          true,
        );
        expect(
          c.noble.verify(sig, digest, Buffer.concat([Buffer.of(4), key.x, key.y]), {
            prehash: false,
            lowS: false,
          }),
        ).toBe(true);
        expect(ecdsaVerifyDigest(c.id, key.x, key.y, digest, r, s)).toBe(true);
      }
    });
  }

  it('uses the leftmost order bits of longer digests and all of shorter ones', () => {
    const cases = [
      { curve: TPM_ECC_NIST_P256, hash: 'sha512' },
      { curve: TPM_ECC_NIST_P256, hash: 'sha384' },
      { curve: TPM_ECC_NIST_P384, hash: 'sha256' },
      { curve: TPM_ECC_NIST_P384, hash: 'sha1' },
    ];
    for (const { curve, hash } of cases) {
      const key = eccGenerate(curve);
      const msg = randomBytes(50);
      const { r, s } = ecdsaSignDigest(curve, key.d, createHash(hash).update(msg).digest());
      const ok = verify(
        hash,
        msg,
        { key: key.publicKey, dsaEncoding: 'ieee-p1363' },
        Buffer.concat([r, s]),
      );
      expect(ok, `${hash} on curve ${curve}`).toBe(true);
    }
  });

  it('gives a new signature each time (random nonce)', () => {
    const key = eccGenerate(TPM_ECC_NIST_P256);
    const digest = randomBytes(32);
    const a = ecdsaSignDigest(TPM_ECC_NIST_P256, key.d, digest);
    const b = ecdsaSignDigest(TPM_ECC_NIST_P256, key.d, digest);
    expect(a.r.equals(b.r)).toBe(false);
  });

  it('holds for random messages across several nonce-pool refills (property)', () => {
    const key = eccGenerate(TPM_ECC_NIST_P256);
    const pub = Buffer.concat([Buffer.of(4), key.x, key.y]);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (msg) => {
        const digest = createHash('sha256').update(msg).digest();
        const { r, s } = ecdsaSignDigest(TPM_ECC_NIST_P256, key.d, digest);
        const sig = Buffer.concat([r, s]);
        expect(verify('sha256', msg, { key: key.publicKey, dsaEncoding: 'ieee-p1363' }, sig)).toBe(
          true,
        );
        expect(p256.verify(sig, digest, pub, { prehash: false, lowS: false })).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('rejects private keys outside [1, n-1]', () => {
    for (const c of CURVES) {
      const n = requireCurve(c.id).n;
      const digest = randomBytes(32);
      expect(() => ecdsaSignDigest(c.id, Buffer.alloc(c.len), digest)).toThrow(RangeError);
      expect(() => ecdsaSignDigest(c.id, bigIntToBytes(n, c.len), digest)).toThrow(RangeError);
      expect(() => ecdsaSignDigest(c.id, Buffer.alloc(c.len + 1, 1), digest)).toThrow(RangeError);
    }
    expect(() => ecdsaSignDigest(0x0010, Buffer.of(1), randomBytes(32))).toThrow(RangeError);
  });
});

describe('ecdsaVerifyDigest', () => {
  for (const c of CURVES) {
    it(`verifies node:crypto signatures and rejects tampering (${c.hash})`, () => {
      const key = eccGenerate(c.id);
      const msg = randomBytes(64);
      const digest = createHash(c.hash).update(msg).digest();
      const sig = sign(c.hash, msg, { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
      const r = sig.subarray(0, c.len);
      const s = sig.subarray(c.len);
      expect(ecdsaVerifyDigest(c.id, key.x, key.y, digest, r, s)).toBe(true);

      expect(ecdsaVerifyDigest(c.id, key.x, key.y, digest, flipBit(r), s)).toBe(false);
      expect(ecdsaVerifyDigest(c.id, key.x, key.y, digest, r, flipBit(s, 9))).toBe(false);
      expect(ecdsaVerifyDigest(c.id, key.x, key.y, flipBit(digest, 3), r, s)).toBe(false);
      const other = eccGenerate(c.id);
      expect(ecdsaVerifyDigest(c.id, other.x, other.y, digest, r, s)).toBe(false);
      // The same signature verifies only on its own curve.
      const otherCurve = c.id === TPM_ECC_NIST_P256 ? TPM_ECC_NIST_P384 : TPM_ECC_NIST_P256;
      expect(ecdsaVerifyDigest(otherCurve, key.x, key.y, digest, r, s)).toBe(false);
    });

    it(`returns false for malformed input without throwing (${c.hash})`, () => {
      const key = eccGenerate(c.id);
      const digest = randomBytes(c.len);
      const { r, s } = ecdsaSignDigest(c.id, key.d, digest);
      const n = requireCurve(c.id).n;
      const zero = Buffer.alloc(c.len);
      expect(ecdsaVerifyDigest(c.id, key.x, flipBit(key.y), digest, r, s)).toBe(false);
      expect(ecdsaVerifyDigest(c.id, key.x, key.y, digest, zero, s)).toBe(false);
      expect(ecdsaVerifyDigest(c.id, key.x, key.y, digest, r, zero)).toBe(false);
      expect(ecdsaVerifyDigest(c.id, key.x, key.y, digest, r, bigIntToBytes(n, c.len))).toBe(false);
      expect(
        ecdsaVerifyDigest(c.id, key.x, key.y, digest, Buffer.concat([Buffer.of(1), r]), s),
      ).toBe(false);
      expect(ecdsaVerifyDigest(c.id, key.x, key.y, Buffer.alloc(0), r, s)).toBe(false);
      expect(ecdsaVerifyDigest(0x0010, key.x, key.y, digest, r, s)).toBe(false);
      // High-S signatures are valid ECDSA and the TPM accepts them.
      const highS = bigIntToBytes(n - BigInt(`0x${s.toString('hex')}`), c.len);
      expect(ecdsaVerifyDigest(c.id, key.x, key.y, digest, r, highS)).toBe(true);
    });
  }

  it('accepts r and s that lost leading zeros', () => {
    const key = eccGenerate(TPM_ECC_NIST_P256);
    let sig: { r: Buffer; s: Buffer };
    let digest: Buffer;
    do {
      digest = randomBytes(32);
      sig = ecdsaSignDigest(TPM_ECC_NIST_P256, key.d, digest);
    } while (sig.r[0] !== 0);
    expect(
      ecdsaVerifyDigest(TPM_ECC_NIST_P256, key.x, key.y, digest, sig.r.subarray(1), sig.s),
    ).toBe(true);
  });
});
