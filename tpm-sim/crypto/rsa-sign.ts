/**
 * RSA signatures over a digest the caller already computed. TPM2_Sign receives a digest (TPM 2.0
 * Part 3 §20.2), but node:crypto's sign() and verify() always hash their input, so the encodings
 * are built here and only the raw RSA operation is left to OpenSSL:
 *   RSASSA-PKCS1-v1_5: RFC 8017 §8.2 with EMSA-PKCS1-v1_5 (§9.2), via privateEncrypt with
 *     RSA_PKCS1_PADDING (which adds the 00 01 FF..FF 00 block and nothing else);
 *   RSASSA-PSS: RFC 8017 §8.1 with EMSA-PSS (§9.1) and MGF1 over the signing hash, via raw RSA.
 * Verification returns a boolean and never throws on malformed input.
 */
import {
  constants,
  type KeyObject,
  privateDecrypt,
  privateEncrypt,
  publicDecrypt,
  randomBytes,
} from 'node:crypto';
import { leftPad } from './bigint.ts';
import {
  digest,
  type HashInfo,
  hashInfo,
  requireHash,
  TPM_ALG_SHA1,
  TPM_ALG_SHA256,
  TPM_ALG_SHA384,
  TPM_ALG_SHA512,
} from './hash.ts';
import { modulusBits } from './rsa-modulus.ts';

// DER of DigestInfo up to the digest bytes, from RFC 8017 §9.2 Note 1.
const DIGEST_INFO_PREFIX: ReadonlyMap<number, Buffer<ArrayBuffer>> = new Map([
  [TPM_ALG_SHA1, Buffer.from('3021300906052b0e03021a05000414', 'hex')],
  [TPM_ALG_SHA256, Buffer.from('3031300d060960864801650304020105000420', 'hex')],
  [TPM_ALG_SHA384, Buffer.from('3041300d060960864801650304020205000430', 'hex')],
  [TPM_ALG_SHA512, Buffer.from('3051300d060960864801650304020305000440', 'hex')],
]);

function checkDigest(hashAlg: number, digestBytes: Uint8Array): number {
  const { digestSize } = requireHash(hashAlg);
  if (digestBytes.length !== digestSize) {
    throw new RangeError(
      `digest must be ${digestSize} bytes for hash 0x${hashAlg.toString(16)}, got ${digestBytes.length}`,
    );
  }
  return digestSize;
}

/**
 * What both verifiers check before any RSA operation: a hash this module knows, a digest of its
 * size, and a signature of exactly k octets (RFC 8017 §8.1.2 and §8.2.2, step 1). Undefined when
 * any of them fails; throws for a key that is not RSA (the callers turn that into false).
 */
function verifyInputs(
  publicKey: KeyObject,
  hashAlg: number,
  digestBytes: Uint8Array,
  signature: Uint8Array,
): { info: HashInfo; modBits: number; k: number } | undefined {
  const info = hashInfo(hashAlg);
  if (info === undefined || digestBytes.length !== info.digestSize) return undefined;
  const modBits = modulusBits(publicKey);
  const k = Math.ceil(modBits / 8);
  return signature.length === k ? { info, modBits, k } : undefined;
}

/** MGF1 (RFC 8017 §B.2.1): the first `length` bytes of H(seed || u32(0)) || H(seed || u32(1)) || ... */
function mgf1(hashAlg: number, seed: Uint8Array, length: number): Buffer<ArrayBuffer> {
  const { digestSize } = requireHash(hashAlg);
  const out = Buffer.allocUnsafe(Math.ceil(length / digestSize) * digestSize);
  const counter = Buffer.alloc(4);
  for (let i = 0, off = 0; off < length; i++, off += digestSize) {
    counter.writeUInt32BE(i, 0);
    out.set(digest(hashAlg, seed, counter), off);
  }
  return out.subarray(0, length);
}

/** RSASSA-PKCS1-v1_5 signature over `digestBytes` (RFC 8017 §8.2.1 with §9.2 steps 2-6). */
export function rsassaSignDigest(
  privateKey: KeyObject,
  hashAlg: number,
  digestBytes: Uint8Array,
): Buffer<ArrayBuffer> {
  checkDigest(hashAlg, digestBytes);
  const prefix = DIGEST_INFO_PREFIX.get(hashAlg)!;
  const k = Math.ceil(modulusBits(privateKey) / 8);
  // §9.2 step 3: emLen must be at least tLen + 11.
  if (prefix.length + digestBytes.length + 11 > k) {
    throw new RangeError('RSA key too short for this hash in RSASSA-PKCS1-v1_5');
  }
  return privateEncrypt(
    { key: privateKey, padding: constants.RSA_PKCS1_PADDING },
    Buffer.concat([prefix, digestBytes]),
  );
}

/**
 * RSASSA-PSS signature over `digestBytes` (RFC 8017 §8.1.1, EMSA-PSS-ENCODE §9.1.1). The salt is
 * as long as the digest: TPM 2.0 Part 1 Annex B.7 asks for the largest salt FIPS 186-4 allows,
 * and FIPS 186-4 §5.5(e) caps it at the digest length. MGF1 uses the signing hash.
 */
export function rsapssSignDigest(
  privateKey: KeyObject,
  hashAlg: number,
  digestBytes: Uint8Array,
): Buffer<ArrayBuffer> {
  const hLen = checkDigest(hashAlg, digestBytes);
  const modBits = modulusBits(privateKey);
  const k = Math.ceil(modBits / 8);
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  const sLen = hLen;
  if (emLen < hLen + sLen + 2)
    throw new RangeError('RSA key too short for this hash in RSASSA-PSS');

  const salt = randomBytes(sLen);
  const h = digest(hashAlg, Buffer.alloc(8), digestBytes, salt); // H = Hash(0^8 || mHash || salt)
  const dbLen = emLen - hLen - 1;
  // DB = PS || 0x01 || salt, then maskedDB = DB xor MGF1(H, dbLen).
  const db = mgf1(hashAlg, h, dbLen);
  const psLen = dbLen - sLen - 1;
  db[psLen] = db[psLen]! ^ 0x01;
  for (let i = 0; i < sLen; i++) db[psLen + 1 + i] = db[psLen + 1 + i]! ^ salt[i]!;
  db[0] = db[0]! & (0xff >>> (8 * emLen - emBits));

  // EM = maskedDB || H || 0xbc, left-padded to the modulus length for the raw RSA operation
  // (emLen is k - 1 when modBits = 1 mod 8).
  const em = Buffer.alloc(k);
  em.set(db, k - emLen);
  em.set(h, k - emLen + dbLen);
  em[k - 1] = 0xbc;
  return privateDecrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, em);
}

/** Verifies an RSASSA-PKCS1-v1_5 signature over `digestBytes` (RFC 8017 §8.2.2). */
export function rsassaVerifyDigest(
  publicKey: KeyObject,
  hashAlg: number,
  digestBytes: Uint8Array,
  signature: Uint8Array,
): boolean {
  try {
    const prefix = DIGEST_INFO_PREFIX.get(hashAlg);
    if (prefix === undefined || !verifyInputs(publicKey, hashAlg, digestBytes, signature))
      return false;
    const t = publicDecrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, signature);
    return t.equals(Buffer.concat([prefix, digestBytes]));
  } catch {
    return false;
  }
}

/**
 * Verifies an RSASSA-PSS signature over `digestBytes` (RFC 8017 §8.1.2, EMSA-PSS-VERIFY §9.1.2)
 * with MGF1 over the signing hash. Any salt length is accepted: the verifier recovers it from
 * the position of the 0x01 separator, so signatures from signers that use another salt length
 * (some TPMs use the maximum that fits) verify too.
 */
export function rsapssVerifyDigest(
  publicKey: KeyObject,
  hashAlg: number,
  digestBytes: Uint8Array,
  signature: Uint8Array,
): boolean {
  try {
    const inputs = verifyInputs(publicKey, hashAlg, digestBytes, signature);
    if (inputs === undefined) return false;
    const { info, modBits, k } = inputs;
    const hLen = info.digestSize;
    const emBits = modBits - 1;
    const emLen = Math.ceil(emBits / 8);
    if (emLen < hLen + 2) return false;

    const raw = publicDecrypt({ key: publicKey, padding: constants.RSA_NO_PADDING }, signature);
    const full = leftPad(raw, k);
    if (full === undefined) return false;
    for (let i = 0; i < k - emLen; i++) if (full[i] !== 0) return false;
    const em = full.subarray(k - emLen);

    if (em[emLen - 1] !== 0xbc) return false;
    const dbLen = emLen - hLen - 1;
    const maskedDb = em.subarray(0, dbLen);
    const h = em.subarray(dbLen, dbLen + hLen);
    const topMask = 0xff >>> (8 * emLen - emBits);
    if ((maskedDb[0]! & ~topMask) !== 0) return false;

    const db = mgf1(info.alg, h, dbLen);
    for (let i = 0; i < dbLen; i++) db[i] = db[i]! ^ maskedDb[i]!;
    db[0] = db[0]! & topMask;
    let sep = 0;
    while (sep < dbLen && db[sep] === 0) sep++;
    if (sep === dbLen || db[sep] !== 0x01) return false;
    const salt = db.subarray(sep + 1);

    return digest(info.alg, Buffer.alloc(8), digestBytes, salt).equals(h);
  } catch {
    return false;
  }
}
