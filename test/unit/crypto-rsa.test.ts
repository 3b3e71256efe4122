import {
  checkPrimeSync,
  constants,
  createHash,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  sign,
  verify,
} from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { bigIntToBytes, bytesToBigInt } from '../../tpm-sim/crypto/bigint.ts';
import {
  TPM_ALG_SHA1,
  TPM_ALG_SHA256,
  TPM_ALG_SHA384,
  TPM_ALG_SHA512,
} from '../../tpm-sim/crypto/hash.ts';
import {
  oaepDecrypt,
  oaepEncrypt,
  type RsaKeyPair,
  rsaDerive,
  rsaesDecrypt,
  rsaesEncrypt,
  rsaFromPrime,
  rsaGenerate,
  rsaPublicKey,
  rsapssSignDigest,
  rsapssVerifyDigest,
  rsaRawDecrypt,
  rsaRawEncrypt,
  rsassaSignDigest,
  rsassaVerifyDigest,
} from '../../tpm-sim/crypto/rsa.ts';
import { testStream } from '../shared/crypto.ts';

const HASHES = [
  [TPM_ALG_SHA1, 'sha1', 20],
  [TPM_ALG_SHA256, 'sha256', 32],
  [TPM_ALG_SHA384, 'sha384', 48],
  [TPM_ALG_SHA512, 'sha512', 64],
] as const;

let key: RsaKeyPair;
beforeAll(async () => {
  key = await rsaGenerate(2048);
});

describe('rsaGenerate', () => {
  it('returns n, e and p at their fixed sizes, consistent with the KeyObjects', () => {
    expect(key.n).toHaveLength(256);
    expect(key.n[0]! & 0x80).toBe(0x80);
    expect(key.p).toHaveLength(128);
    expect(key.e.toString('hex')).toBe('010001');
    const jwk = key.publicKey.export({ format: 'jwk' });
    expect(Buffer.from(jwk.n!, 'base64url').equals(key.n)).toBe(true);
    const n = bytesToBigInt(key.n);
    const p = bytesToBigInt(key.p);
    expect(n % p).toBe(0n);
    expect(checkPrimeSync(p)).toBe(true);
  });

  it('rejects bad sizes and exponents', async () => {
    await expect(rsaGenerate(2047)).rejects.toThrow(RangeError);
    await expect(rsaGenerate(2048, 65536)).rejects.toThrow(RangeError);
  });
});

describe('rsaFromPrime and rsaPublicKey', () => {
  it('rebuild a private key that works with the original public key', () => {
    const rebuilt = rsaFromPrime(key.n, key.e, key.p)!;
    expect(rebuilt.publicKey.export({ format: 'jwk' })).toEqual(
      key.publicKey.export({ format: 'jwk' }),
    );
    const msg = randomBytes(40);
    expect(verify('sha256', msg, key.publicKey, sign('sha256', msg, rebuilt.privateKey))).toBe(
      true,
    );
    const ct = publicEncrypt({ key: key.publicKey, oaepHash: 'sha256' }, msg);
    expect(privateDecrypt({ key: rebuilt.privateKey, oaepHash: 'sha256' }, ct).equals(msg)).toBe(
      true,
    );
    // The other prime and a numeric exponent work as well.
    const q = bigIntToBytes(bytesToBigInt(key.n) / bytesToBigInt(key.p), 128);
    const fromQ = rsaFromPrime(key.n, 65537, q)!;
    expect(verify('sha256', msg, key.publicKey, sign('sha256', msg, fromQ.privateKey))).toBe(true);
  });

  it('rsaFromPrime returns undefined when p does not divide n', () => {
    const p = bytesToBigInt(key.p);
    expect(rsaFromPrime(key.n, key.e, bigIntToBytes(p + 2n, 128))).toBeUndefined();
    expect(rsaFromPrime(key.n, key.e, Buffer.of(1))).toBeUndefined();
    expect(rsaFromPrime(key.n, key.e, Buffer.alloc(0))).toBeUndefined();
    expect(rsaFromPrime(key.n, key.e, key.n)).toBeUndefined();
    expect(rsaFromPrime(key.n, 4, key.p)).toBeUndefined();
  });

  it('rsaPublicKey builds the public key from n and e', () => {
    const pub = rsaPublicKey(key.n, key.e)!;
    expect(pub.export({ format: 'jwk' })).toEqual(key.publicKey.export({ format: 'jwk' }));
    expect(rsaPublicKey(key.n, 65537)!.export({ format: 'jwk' })).toEqual(
      pub.export({ format: 'jwk' }),
    );
    expect(rsaPublicKey(Buffer.alloc(0), 65537)).toBeUndefined();
  });
});

describe('RSASSA-PKCS1-v1_5 over a digest', () => {
  it('equals node:crypto sign() and verifies with verify()', () => {
    for (const [alg, name] of HASHES) {
      const msg = randomBytes(100);
      const sig = rsassaSignDigest(key.privateKey, alg, createHash(name).update(msg).digest());
      expect(sig.equals(sign(name, msg, key.privateKey)), name).toBe(true);
      expect(
        verify(name, msg, { key: key.publicKey, padding: constants.RSA_PKCS1_PADDING }, sig),
        name,
      ).toBe(true);
    }
  });

  it('rsassaVerifyDigest accepts good and rejects bad signatures', () => {
    for (const [alg, name] of HASHES) {
      const msg = randomBytes(33);
      const digest = createHash(name).update(msg).digest();
      const sig = sign(name, msg, key.privateKey);
      expect(rsassaVerifyDigest(key.publicKey, alg, digest, sig), name).toBe(true);
      const bad = Buffer.from(sig);
      bad[100] = bad[100]! ^ 1;
      expect(rsassaVerifyDigest(key.publicKey, alg, digest, bad), name).toBe(false);
      const otherDigest = Buffer.from(digest);
      otherDigest[0] = otherDigest[0]! ^ 1;
      expect(rsassaVerifyDigest(key.publicKey, alg, otherDigest, sig), name).toBe(false);
      expect(rsassaVerifyDigest(key.publicKey, alg, digest, sig.subarray(1)), name).toBe(false);
    }
    const digest = createHash('sha256').update('x').digest();
    const sig = rsassaSignDigest(key.privateKey, TPM_ALG_SHA256, digest);
    // Right digest bytes under the wrong hash id, an unknown hash, an oversized signature.
    expect(rsassaVerifyDigest(key.publicKey, TPM_ALG_SHA1, digest.subarray(0, 20), sig)).toBe(
      false,
    );
    expect(rsassaVerifyDigest(key.publicKey, 0x0010, digest, sig)).toBe(false);
    expect(rsassaVerifyDigest(key.publicKey, TPM_ALG_SHA256, digest, Buffer.alloc(256, 0xff))).toBe(
      false,
    );
  });

  it('rejects a digest of the wrong size as a caller bug', () => {
    expect(() => rsassaSignDigest(key.privateKey, TPM_ALG_SHA256, Buffer.alloc(20))).toThrow(
      RangeError,
    );
  });
});

describe('RSASSA-PSS over a digest', () => {
  it('verifies with node:crypto using a salt as long as the digest', () => {
    for (const [alg, name, size] of HASHES) {
      const msg = randomBytes(100);
      const sig = rsapssSignDigest(key.privateKey, alg, createHash(name).update(msg).digest());
      const opts = { key: key.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING };
      expect(verify(name, msg, { ...opts, saltLength: size }, sig), name).toBe(true);
      expect(verify(name, msg, { ...opts, saltLength: size + 1 }, sig), name).toBe(false);
    }
  });

  it('rsapssVerifyDigest accepts any salt length and rejects tampering', () => {
    for (const [alg, name] of HASHES) {
      const msg = randomBytes(50);
      const digest = createHash(name).update(msg).digest();
      for (const saltLength of [0, 20, constants.RSA_PSS_SALTLEN_MAX_SIGN]) {
        const sig = sign(name, msg, {
          key: key.privateKey,
          padding: constants.RSA_PKCS1_PSS_PADDING,
          saltLength,
        });
        expect(
          rsapssVerifyDigest(key.publicKey, alg, digest, sig),
          `${name} salt ${saltLength}`,
        ).toBe(true);
        const bad = Buffer.from(sig);
        bad[255] = bad[255]! ^ 0x10;
        expect(
          rsapssVerifyDigest(key.publicKey, alg, digest, bad),
          `${name} salt ${saltLength}`,
        ).toBe(false);
      }
      const own = rsapssSignDigest(key.privateKey, alg, digest);
      expect(rsapssVerifyDigest(key.publicKey, alg, digest, own)).toBe(true);
      const otherDigest = Buffer.from(digest);
      otherDigest[1] = otherDigest[1]! ^ 4;
      expect(rsapssVerifyDigest(key.publicKey, alg, otherDigest, own)).toBe(false);
      // A PKCS#1 v1.5 signature is not a PSS signature.
      expect(rsapssVerifyDigest(key.publicKey, alg, digest, sign(name, msg, key.privateKey))).toBe(
        false,
      );
    }
    const digest = randomBytes(32);
    expect(rsapssVerifyDigest(key.publicKey, TPM_ALG_SHA256, digest, Buffer.alloc(256))).toBe(
      false,
    );
    expect(rsapssVerifyDigest(key.publicKey, TPM_ALG_SHA256, digest, Buffer.alloc(256, 0xff))).toBe(
      false,
    );
    expect(rsapssVerifyDigest(key.publicKey, TPM_ALG_SHA256, digest, Buffer.alloc(10))).toBe(false);
    expect(rsapssVerifyDigest(key.publicKey, 0x0010, digest, Buffer.alloc(256))).toBe(false);
  });
});

describe('RSAES-OAEP', () => {
  const labels = [Buffer.alloc(0), Buffer.from('DUPLICATE\0', 'latin1')];

  it('interoperates with node:crypto in both directions (SHA-1 and SHA-256)', () => {
    for (const [alg, name] of [HASHES[0], HASHES[1]]) {
      for (const label of labels) {
        const msg = randomBytes(32);
        const opts = { oaepHash: name, ...(label.length > 0 ? { oaepLabel: label } : {}) };
        const ours = oaepEncrypt(key.publicKey, alg, label, msg)!;
        expect(privateDecrypt({ key: key.privateKey, ...opts }, ours).equals(msg), name).toBe(true);
        const theirs = publicEncrypt({ key: key.publicKey, ...opts }, msg);
        expect(oaepDecrypt(key.privateKey, alg, label, theirs)?.equals(msg), name).toBe(true);
      }
    }
  });

  it('fails cleanly on a wrong label or hash, garbage or an oversized message', () => {
    const label = Buffer.from('SECRET\0', 'latin1');
    const ct = oaepEncrypt(key.publicKey, TPM_ALG_SHA256, label, randomBytes(32))!;
    expect(
      oaepDecrypt(key.privateKey, TPM_ALG_SHA256, Buffer.from('SECRET', 'latin1'), ct),
    ).toBeUndefined();
    expect(oaepDecrypt(key.privateKey, TPM_ALG_SHA1, label, ct)).toBeUndefined();
    expect(oaepDecrypt(key.privateKey, TPM_ALG_SHA256, label, randomBytes(256))).toBeUndefined();
    expect(oaepDecrypt(key.privateKey, TPM_ALG_SHA256, label, Buffer.alloc(300))).toBeUndefined();
    expect(oaepDecrypt(key.privateKey, 0x0010, label, ct)).toBeUndefined();
    // mLen <= k - 2hLen - 2 = 190 for SHA-256.
    expect(oaepEncrypt(key.publicKey, TPM_ALG_SHA256, label, Buffer.alloc(190))).toBeDefined();
    expect(oaepEncrypt(key.publicKey, TPM_ALG_SHA256, label, Buffer.alloc(191))).toBeUndefined();
  });
});

describe('RSAES-PKCS1-v1_5 and raw RSA', () => {
  it('round-trips RSAES with node:crypto encryption', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 245 }), (msg) => {
        const theirs = publicEncrypt(
          { key: key.publicKey, padding: constants.RSA_PKCS1_PADDING },
          msg,
        );
        expect(rsaesDecrypt(key.privateKey, theirs)?.equals(Buffer.from(msg))).toBe(true);
        const ours = rsaesEncrypt(key.publicKey, msg)!;
        expect(rsaesDecrypt(key.privateKey, ours)?.equals(Buffer.from(msg))).toBe(true);
      }),
      { numRuns: 20 },
    );
    expect(rsaesEncrypt(key.publicKey, Buffer.alloc(246))).toBeUndefined();
  });

  it('rsaesDecrypt rejects malformed padding', () => {
    const block = (head: number[], psLen: number, msg: Buffer): Buffer =>
      Buffer.concat([Buffer.from(head), Buffer.alloc(psLen, 0x5a), Buffer.of(0), msg]);
    const msg = Buffer.from('secret');
    const good = block([0, 2], 256 - 3 - msg.length, msg);
    expect(rsaesDecrypt(key.privateKey, rsaRawEncrypt(key.publicKey, good)!)?.equals(msg)).toBe(
      true,
    );
    const wrongType = block([0, 1], 256 - 3 - msg.length, msg);
    expect(rsaesDecrypt(key.privateKey, rsaRawEncrypt(key.publicKey, wrongType)!)).toBeUndefined();
    const shortPs = block([0, 2], 7, Buffer.alloc(256 - 10, 0x41)); // PS must be >= 8 bytes
    expect(rsaesDecrypt(key.privateKey, rsaRawEncrypt(key.publicKey, shortPs)!)).toBeUndefined();
    const noSeparator = Buffer.concat([Buffer.of(0, 2), Buffer.alloc(254, 0x5a)]);
    expect(
      rsaesDecrypt(key.privateKey, rsaRawEncrypt(key.publicKey, noSeparator)!),
    ).toBeUndefined();
    expect(rsaesDecrypt(key.privateKey, Buffer.alloc(255))).toBeUndefined();
  });

  it('raw RSA round-trips, left-pads short input and rejects c >= n', () => {
    const m = randomBytes(100);
    const c = rsaRawEncrypt(key.publicKey, m)!;
    expect(c).toHaveLength(256);
    const back = rsaRawDecrypt(key.privateKey, c)!;
    expect(back.equals(Buffer.concat([Buffer.alloc(156), m]))).toBe(true);
    // Consistent with the textbook formula: c = m^e mod n.
    expect(
      rsaRawEncrypt(key.publicKey, Buffer.of(2))!.equals(
        bigIntToBytes(2n ** 65537n % bytesToBigInt(key.n), 256),
      ),
    ).toBe(true);
    expect(rsaRawEncrypt(key.publicKey, Buffer.alloc(256, 0xff))).toBeUndefined();
    expect(rsaRawEncrypt(key.publicKey, Buffer.alloc(257))).toBeUndefined();
    expect(rsaRawDecrypt(key.privateKey, Buffer.alloc(256, 0xff))).toBeUndefined();
  });
});

describe('rsaDerive', () => {
  it('is deterministic in the stream and gives a valid key', () => {
    const a = rsaDerive(testStream('primary seed A'), 2048);
    const b = rsaDerive(testStream('primary seed A'), 2048);
    const c = rsaDerive(testStream('primary seed B'), 2048);
    expect(a.n.equals(b.n) && a.p.equals(b.p)).toBe(true);
    expect(a.n.equals(c.n)).toBe(false);

    expect(a.n).toHaveLength(256);
    expect(a.n[0]! & 0x80).toBe(0x80);
    expect(a.p).toHaveLength(128);
    expect(a.e.toString('hex')).toBe('010001');
    const n = bytesToBigInt(a.n);
    const p = bytesToBigInt(a.p);
    const q = n / p;
    expect(p * q).toBe(n);
    for (const f of [p, q]) {
      expect(checkPrimeSync(f)).toBe(true);
      expect((f - 1n) % 65537n).not.toBe(0n);
      expect(f >> 1022n).toBe(3n); // the top two bits of each 1024-bit prime are set
    }
    const diff = p > q ? p - q : q - p;
    expect(diff > 1n << 924n).toBe(true);

    const digest = createHash('sha256').update('x').digest();
    const sig = rsassaSignDigest(a.privateKey, TPM_ALG_SHA256, digest);
    expect(rsassaVerifyDigest(a.publicKey, TPM_ALG_SHA256, digest, sig)).toBe(true);
    // The stored prime rebuilds the same key, as a later Load would.
    expect(rsaFromPrime(a.n, a.e, a.p)!.publicKey.export({ format: 'jwk' })).toEqual(
      a.publicKey.export({ format: 'jwk' }),
    );
  });

  it('honours the exponent and the requested size', () => {
    const k = rsaDerive(testStream('exponent 3'), 1024, 3);
    expect(k.e.toString('hex')).toBe('03');
    expect(k.n).toHaveLength(128);
    const p = bytesToBigInt(k.p);
    expect((p - 1n) % 3n).not.toBe(0n);
    expect(() => rsaDerive(testStream('x'), 2049)).toThrow(RangeError);
    expect(() => rsaDerive(testStream('x'), 2048, 2)).toThrow(RangeError);
    expect(() => rsaDerive(() => Buffer.alloc(3), 2048)).toThrow(RangeError);
  });
});
