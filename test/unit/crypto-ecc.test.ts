import { createECDH } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bigIntToBytes, bytesToBigInt } from '../../tpm-sim/crypto/bigint.ts';
import {
  eccCurve,
  eccDerivePrivate,
  eccFromPrivate,
  eccGenerate,
  eccPublicKey,
  ecdhEphemeral,
  ecdhZ,
  requireCurve,
  TPM_ECC_NIST_P256,
  TPM_ECC_NIST_P384,
} from '../../tpm-sim/crypto/ecc.ts';
import type { ByteStream } from '../../tpm-sim/crypto/stream.ts';
import { CURVES, testStream } from '../shared/crypto.ts';

describe('curve table', () => {
  it('has the TPM ids and the orders @noble/curves uses', () => {
    expect([TPM_ECC_NIST_P256, TPM_ECC_NIST_P384]).toEqual([0x0003, 0x0004]);
    for (const c of CURVES) {
      const curve = eccCurve(c.id)!;
      expect(curve.byteLength).toBe(c.len);
      expect(curve.opensslName).toBe(c.openssl);
      expect(curve.n).toBe(c.noble.Point.CURVE().n);
      expect(curve.orderBits).toBe(curve.n.toString(2).length);
    }
    expect(eccCurve(0x0005)).toBeUndefined();
    expect(() => requireCurve(0x0010)).toThrow(RangeError);
  });
});

describe('ECC keys', () => {
  it('eccGenerate gives consistent d, x, y and KeyObjects', () => {
    for (const c of CURVES) {
      const k = eccGenerate(c.id);
      expect([k.d.length, k.x.length, k.y.length]).toEqual([c.len, c.len, c.len]);
      const jwk = k.privateKey.export({ format: 'jwk' });
      expect(Buffer.from(jwk.d!, 'base64url').equals(k.d)).toBe(true);
      const pubJwk = k.publicKey.export({ format: 'jwk' });
      expect(Buffer.from(pubJwk.x!, 'base64url').equals(k.x)).toBe(true);
      expect(Buffer.from(pubJwk.y!, 'base64url').equals(k.y)).toBe(true);
      // An independent implementation agrees on the public point.
      const noblePub = Buffer.from(c.noble.getPublicKey(k.d, false));
      expect(noblePub.equals(Buffer.concat([Buffer.of(4), k.x, k.y]))).toBe(true);
    }
  });

  it('eccFromPrivate recomputes the public point', () => {
    for (const c of CURVES) {
      const k = eccGenerate(c.id);
      const again = eccFromPrivate(c.id, k.d)!;
      expect(again.x.equals(k.x) && again.y.equals(k.y)).toBe(true);
      expect(again.publicKey.export({ format: 'jwk' })).toEqual(
        k.publicKey.export({ format: 'jwk' }),
      );
      // d = 1 gives the base point; a short d (leading zeros dropped) is accepted.
      const one = eccFromPrivate(c.id, Buffer.of(1))!;
      expect(one.d.equals(bigIntToBytes(1n, c.len))).toBe(true);
      expect(bytesToBigInt(one.x)).toBe(c.noble.Point.BASE.toAffine().x);
    }
  });

  it('eccFromPrivate rejects scalars outside [1, n-1]', () => {
    for (const c of CURVES) {
      const n = requireCurve(c.id).n;
      expect(eccFromPrivate(c.id, Buffer.alloc(c.len))).toBeUndefined();
      expect(eccFromPrivate(c.id, bigIntToBytes(n, c.len))).toBeUndefined();
      expect(eccFromPrivate(c.id, bigIntToBytes(n + 1n, c.len))).toBeUndefined();
      expect(eccFromPrivate(c.id, Buffer.alloc(c.len + 1, 1))).toBeUndefined();
      expect(eccFromPrivate(c.id, bigIntToBytes(n - 1n, c.len))).toBeDefined();
    }
  });

  it('eccPublicKey accepts points on the curve only', () => {
    for (const c of CURVES) {
      const k = eccGenerate(c.id);
      const pub = eccPublicKey(c.id, k.x, k.y)!;
      expect(pub.export({ format: 'jwk' })).toEqual(k.publicKey.export({ format: 'jwk' }));
      const badY = Buffer.from(k.y);
      badY[c.len - 1] = badY[c.len - 1]! ^ 1;
      expect(eccPublicKey(c.id, k.x, badY)).toBeUndefined();
      expect(eccPublicKey(c.id, Buffer.alloc(c.len), Buffer.alloc(c.len))).toBeUndefined();
      expect(eccPublicKey(c.id, Buffer.concat([Buffer.of(0), k.x]), k.y)).toBeUndefined();
    }
  });

  it('eccPublicKey restores leading zeros of a short coordinate', () => {
    let k = eccGenerate(TPM_ECC_NIST_P256);
    while (k.x[0] !== 0) k = eccGenerate(TPM_ECC_NIST_P256);
    const pub = eccPublicKey(TPM_ECC_NIST_P256, k.x.subarray(1), k.y);
    expect(pub?.export({ format: 'jwk' })).toEqual(k.publicKey.export({ format: 'jwk' }));
  });
});

describe('eccDerivePrivate', () => {
  it('is deterministic in the stream', () => {
    for (const c of CURVES) {
      const a = eccDerivePrivate(testStream('seed-1'), c.id);
      const b = eccDerivePrivate(testStream('seed-1'), c.id);
      const other = eccDerivePrivate(testStream('seed-2'), c.id);
      expect(a).toHaveLength(c.len);
      expect(a.equals(b)).toBe(true);
      expect(a.equals(other)).toBe(false);
      expect(eccFromPrivate(c.id, a)).toBeDefined();
    }
  });

  it('computes (int(orderBytes + 8 bytes) mod (n - 1)) + 1', () => {
    for (const c of CURVES) {
      const n = requireCurve(c.id).n;
      const want = c.len + 8;
      const fixed =
        (value: bigint): ByteStream =>
        (nBytes) => {
          expect(nBytes).toBe(want);
          return bigIntToBytes(value, nBytes);
        };
      expect(bytesToBigInt(eccDerivePrivate(fixed(0n), c.id))).toBe(1n);
      expect(bytesToBigInt(eccDerivePrivate(fixed(n - 1n), c.id))).toBe(1n);
      expect(bytesToBigInt(eccDerivePrivate(fixed(n - 2n), c.id))).toBe(n - 1n);
      const max = (1n << BigInt(8 * want)) - 1n;
      expect(bytesToBigInt(eccDerivePrivate(fixed(max), c.id))).toBe((max % (n - 1n)) + 1n);
    }
  });
});

describe('ECDH', () => {
  it("ecdhZ matches node's ECDH computeSecret", () => {
    for (const c of CURVES) {
      const tpmKey = eccGenerate(c.id);
      const peer = createECDH(c.openssl);
      const peerPub = peer.generateKeys();
      const z = ecdhZ(c.id, tpmKey.d, peerPub.subarray(1, 1 + c.len), peerPub.subarray(1 + c.len))!;
      expect(z).toHaveLength(c.len);
      expect(z.equals(peer.computeSecret(Buffer.concat([Buffer.of(4), tpmKey.x, tpmKey.y])))).toBe(
        true,
      );
    }
  });

  it('ecdhEphemeral gives the Z the key owner computes', () => {
    for (const c of CURVES) {
      const tpmKey = eccGenerate(c.id);
      const { z, ephemeral } = ecdhEphemeral(c.id, tpmKey.x, tpmKey.y)!;
      expect(ephemeral.x).toHaveLength(c.len);
      expect(ecdhZ(c.id, tpmKey.d, ephemeral.x, ephemeral.y)!.equals(z)).toBe(true);
      const again = ecdhEphemeral(c.id, tpmKey.x, tpmKey.y)!;
      expect(again.z.equals(z)).toBe(false);
    }
  });

  it('rejects points off the curve and bad scalars', () => {
    for (const c of CURVES) {
      const k = eccGenerate(c.id);
      const badY = Buffer.from(k.y);
      badY[0] = badY[0]! ^ 0x80;
      expect(ecdhZ(c.id, k.d, k.x, badY)).toBeUndefined();
      expect(ecdhEphemeral(c.id, k.x, badY)).toBeUndefined();
      expect(ecdhZ(c.id, Buffer.alloc(c.len), k.x, k.y)).toBeUndefined();
      expect(ecdhZ(c.id, k.d, Buffer.alloc(c.len + 1), k.y)).toBeUndefined();
    }
  });
});
