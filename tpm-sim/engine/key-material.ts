/**
 * Key material for objects: making the sensitive area and the public `unique` field from a
 * template (TPM2_Create, TPM2_CreatePrimary: Part 3 §12.1, §24.1; Part 1 §27.2.5
 * sensitiveDataOrigin), and checking that a sensitive area really belongs to a public area
 * (TPM2_Load, TPM2_LoadExternal, TPM2_Import: Part 3 §12.2-12.3, §13.3, TPM_RC_BINDING).
 *
 * What a TPMT_SENSITIVE holds (Part 2 §12.3.2.4): RSA one prime p, ECC the scalar d,
 * KEYEDHASH the HMAC key or sealed data, SYMCIPHER the AES key. seedValue is kept by storage
 * parents (it seeds their children's protection keys, Part 1 §22) and by symmetric objects, where
 * it also blinds `unique`; other asymmetric keys have an empty seedValue (tpm-formulas.md §4).
 */
import { randomBytes } from 'node:crypto';
import { bytesToBigInt } from '../crypto/bigint.ts';
import {
  eccDerivePrivate,
  eccFromPrivate,
  eccGenerate,
  eccHasPoint,
  eccPublicKey,
  requireCurve,
} from '../crypto/ecc.ts';
import { digest, hashInfo, hmac, requireHash, timingSafeEqualBytes } from '../crypto/hash.ts';
import { rsaDerive, rsaExponentOf } from '../crypto/rsa.ts';
import type { ByteStream } from '../crypto/stream.ts';
import { TPM_ALG, TPMA_OBJECT } from '../wire/constants.ts';
import { rcParam, TPM_RC } from '../wire/rc.ts';
import type {
  EccParms,
  EccPoint,
  KeyedHashParms,
  Public,
  RsaParms,
  Sensitive,
  SensitiveCreate,
  SymCipherParms,
} from '../wire/structures.ts';
import { isParentTemplate, validRsaExponent } from './attributes.ts';
import { eccKeyCache } from './key-cache.ts';
import { has, type KeyCache } from './objects.ts';
import { RcError } from './rc-error.ts';

const A = TPM_ALG;

export interface CreatedObject {
  /** The template with `unique` filled in. */
  readonly publicArea: Public;
  readonly sensitive: Sensitive;
  /** The KeyObjects of an RSA or ECC key, as generation made them (for makeObject). */
  readonly keys?: KeyCache;
}

export interface CreateOptions {
  /** Primary objects: every secret byte comes from this stream (see primaryStream). */
  readonly derive?: ByteStream;
  /** The parameter number of inSensitive, for its size errors (1 in Create and CreatePrimary). */
  readonly sensitiveParam?: number;
}

// ---- primary derivation --------------------------------------------------------------------

const PRIMARY_LABEL = Buffer.from('Primary Object Creation\0', 'latin1');
/**
 * The `bits` field of the primary KDFa: 2^32 - 8, the largest whole number of bytes a u32 can
 * express. The stream is read block by block, so no output of this size is ever computed.
 */
const PRIMARY_STREAM_BITS = 0xfffffff8;

/**
 * The byte stream a primary object is derived from (Part 3 §24.1; Part 1 §14.4 primary seeds;
 * tpm-formulas.md §6). It is exactly the output of
 *
 *   KDFa(nameAlg, hierarchySeed, "Primary Object Creation", Name(template), sensitive.data,
 *        2^32 - 8)
 *
 * read from the front: block i = HMAC_nameAlg(seed, u32(i) || "Primary Object Creation\0" ||
 * Name(template) || sensitive.data || u32(2^32 - 8)), i = 1, 2, ..., each call returning the next
 * bytes. Name(template) is over the template as sent, `unique` included. The key is drawn first
 * (ECC: eccDerivePrivate; RSA: rsaDerive's prime search; symmetric: the key bytes), then
 * seedValue when the object keeps one. So the same seed, template and data always give the same
 * object, and userAuth, outsideInfo, creationPCR and time do not enter. libtpms uses a CTR-DRBG
 * seeded from the same inputs instead; keys need not match swtpm's bit for bit.
 */
export function primaryStream(
  nameAlg: number,
  hierarchySeed: Uint8Array,
  templateName: Uint8Array,
  data: Uint8Array,
): ByteStream {
  const { digestSize } = requireHash(nameAlg);
  const tail = Buffer.alloc(PRIMARY_LABEL.length + templateName.length + data.length + 4);
  tail.set(PRIMARY_LABEL, 0);
  tail.set(templateName, PRIMARY_LABEL.length);
  tail.set(data, PRIMARY_LABEL.length + templateName.length);
  tail.writeUInt32BE(PRIMARY_STREAM_BITS, tail.length - 4);
  const maxBlocks = Math.floor(PRIMARY_STREAM_BITS / 8 / digestSize);
  const counter = Buffer.alloc(4);
  let block = 0;
  let pool: Buffer = Buffer.alloc(0);
  return (nBytes: number): Uint8Array => {
    const parts: Buffer[] = [pool];
    let have = pool.length;
    while (have < nBytes) {
      block++;
      if (block > maxBlocks) throw new RangeError('primary derivation stream exhausted');
      counter.writeUInt32BE(block, 0);
      const k = hmac(nameAlg, hierarchySeed, counter, tail);
      parts.push(k);
      have += k.length;
    }
    const all = Buffer.concat(parts);
    pool = all.subarray(nBytes);
    return Buffer.from(all.subarray(0, nBytes));
  };
}

// ---- creation ------------------------------------------------------------------------------

/** The hash that sizes a keyedHash key: the scheme's, or nameAlg for a data object. */
function keyedHashAlg(pub: Public): number {
  const s = (pub.parameters as KeyedHashParms).scheme;
  return s.scheme === A.HMAC || s.scheme === A.XOR ? s.hashAlg : pub.nameAlg;
}

/**
 * unique of a symmetric object (KEYEDHASH, SYMCIPHER): a commitment to the key that does not
 * reveal it. H(seedValue || sensitive) in general; HMAC(seedValue, sensitive) for a parent
 * (restricted decrypt), as the reference implementation's CryptComputeSymmetricUnique does.
 */
export function symmetricUnique(pub: Public, seedValue: Uint8Array, sensitive: Uint8Array): Buffer {
  return isParentTemplate(pub)
    ? hmac(pub.nameAlg, seedValue, sensitive)
    : digest(pub.nameAlg, seedValue, sensitive);
}

/**
 * Makes the sensitive area for a template that passed checkCreateTemplate, and fills in
 * `unique`. Caller data (inSensitive.data) is used only for symmetric objects whose
 * sensitiveDataOrigin is CLEAR; otherwise secrets come from the RNG, or from `derive` for a
 * primary object. Errors: TPM_RC_SIZE (keyed-hash key longer than the hash block, Part 3 §12.1)
 * and TPM_RC_KEY_SIZE (AES key not of keyBits) on inSensitive.
 */
export async function createSensitive(
  template: Public,
  inSensitive: SensitiveCreate,
  opts: CreateOptions = {},
): Promise<CreatedObject> {
  const { derive } = opts;
  const sensParam = opts.sensitiveParam ?? 1;
  const draw = (n: number): Buffer => (derive ? Buffer.from(derive(n)) : randomBytes(n));
  const nameDigest = requireHash(template.nameAlg).digestSize;
  const callerData = has(template.objectAttributes, TPMA_OBJECT.sensitiveDataOrigin)
    ? undefined
    : inSensitive.data;
  const authValue = Buffer.from(inSensitive.userAuth);
  const keepSeed = isParentTemplate(template);

  switch (template.type) {
    case A.RSA: {
      const parms = template.parameters as RsaParms;
      const e = rsaExponentOf(parms.exponent);
      // Ordinary keys use the same sieve-and-test prime search as primaries, over fresh random
      // bytes: for RSA-2048 it takes about a third of OpenSSL's own key generation here (median
      // ~40 ms against ~120 ms), with primality still decided by OpenSSL (checkPrime).
      const key = rsaDerive(derive ?? randomBytes, parms.keyBits, e);
      const seedValue = keepSeed ? draw(nameDigest) : Buffer.alloc(0);
      return {
        publicArea: { ...template, unique: key.n },
        sensitive: { sensitiveType: A.RSA, authValue, seedValue, sensitive: key.p },
        keys: { privateKey: key.privateKey, publicKey: key.publicKey },
      };
    }
    case A.ECC: {
      const curve = (template.parameters as EccParms).curveID;
      const key = derive
        ? eccFromPrivate(curve, eccDerivePrivate(derive, curve))
        : eccGenerate(curve);
      // eccDerivePrivate always lands in [1, n-1], so the key exists.
      if (key === undefined) throw new Error('derived ECC scalar out of range');
      const seedValue = keepSeed ? draw(nameDigest) : Buffer.alloc(0);
      return {
        publicArea: { ...template, unique: { x: key.x, y: key.y } },
        sensitive: { sensitiveType: A.ECC, authValue, seedValue, sensitive: key.d },
        keys: eccKeyCache(key),
      };
    }
    case A.KEYEDHASH: {
      const hashAlg = keyedHashAlg(template);
      const info = requireHash(hashAlg);
      let bits: Buffer;
      if (callerData !== undefined) {
        // An HMAC or XOR key longer than the hash block would be hashed down by HMAC and so be
        // weaker than it looks (Part 3 §12.1 TPM_RC_SIZE); sealed data only has the 128-byte cap
        // of TPM2B_SENSITIVE_DATA, enforced when it was unmarshalled.
        const isKey =
          has(template.objectAttributes, TPMA_OBJECT.sign) ||
          has(template.objectAttributes, TPMA_OBJECT.decrypt);
        if (isKey && callerData.length > info.blockSize)
          throw new RcError(rcParam(TPM_RC.SIZE, sensParam));
        bits = Buffer.from(callerData);
      } else {
        bits = draw(info.digestSize);
      }
      const seedValue = draw(nameDigest);
      return {
        publicArea: { ...template, unique: symmetricUnique(template, seedValue, bits) },
        sensitive: { sensitiveType: A.KEYEDHASH, authValue, seedValue, sensitive: bits },
      };
    }
    case A.SYMCIPHER: {
      const keyBytes = (template.parameters as SymCipherParms).sym.keyBits / 8;
      let key: Buffer;
      if (callerData !== undefined) {
        if (callerData.length !== keyBytes) throw new RcError(rcParam(TPM_RC.KEY_SIZE, sensParam));
        key = Buffer.from(callerData);
      } else {
        key = draw(keyBytes);
      }
      const seedValue = draw(nameDigest);
      return {
        publicArea: { ...template, unique: symmetricUnique(template, seedValue, key) },
        sensitive: { sensitiveType: A.SYMCIPHER, authValue, seedValue, sensitive: key },
      };
    }
    default:
      throw new RcError(rcParam(TPM_RC.TYPE, 2));
  }
}

// ---- validation ----------------------------------------------------------------------------

export interface Blame {
  /** Parameter number of the public area. */
  readonly pub: number;
  /** Parameter number of the sensitive area (or private blob). */
  readonly sens: number;
}

const MAX_SEALED_DATA = 128;

/**
 * Checks the key material of an object that is being loaded, imported or loaded externally
 * (Part 3 §12.2, §12.3, §13.3; the reference implementation's CryptValidateKeys):
 *  - with a sensitive area, that it is of the public area's type (TPM_RC_TYPE), that its sizes
 *    fit (TPM_RC_SIZE, TPM_RC_KEY_SIZE), and that it is the private half of `unique`
 *    (TPM_RC_BINDING, unnumbered): RSA p divides n; ECC d*G = (x, y); KEYEDHASH/SYMCIPHER unique equals
 *    symmetricUnique(seedValue, key);
 *  - without one (public-only), that `unique` is a usable key (TPM_RC_KEY; TPM_RC_ECC_POINT for
 *    a point off the curve).
 * With nameAlg TPM_ALG_NULL (no Name to protect) the binding of symmetric and ECC keys is not
 * checked, as in the reference implementation; RSA's always is, since p is useless without it.
 *
 * Returns the ECC KeyObjects the checks built (the key pair once its binding was checked, or the
 * public key of a public-only object), for makeObject to keep; undefined otherwise.
 */
export function checkKeyMaterial(
  pub: Public,
  sensitive: Sensitive | undefined,
  blame: Blame,
): KeyCache | undefined {
  // Typed explicitly so that the compiler knows a call never returns and narrows after it.
  const fail: (rc: number, param: number) => never = (rc, param) => {
    throw new RcError(rcParam(rc, param));
  };
  // TPM_RC_BINDING names no parameter: the pair is wrong, not one half (0x0A5, as libtpms).
  const unbound: () => never = () => {
    throw new RcError(TPM_RC.BINDING);
  };
  const nameInfo = hashInfo(pub.nameAlg);
  const digestSize = nameInfo?.digestSize ?? 0;
  let keys: KeyCache | undefined;
  if (sensitive !== undefined) {
    if (sensitive.sensitiveType !== pub.type) fail(TPM_RC.TYPE, blame.sens);
    if (digestSize > 0 && sensitive.authValue.length > digestSize) fail(TPM_RC.SIZE, blame.sens);
    if (digestSize > 0 && sensitive.seedValue.length > digestSize)
      fail(TPM_RC.KEY_SIZE, blame.sens);
  }

  switch (pub.type) {
    case A.RSA: {
      const parms = pub.parameters as RsaParms;
      const n = pub.unique as Buffer;
      const keyBytes = parms.keyBits / 8;
      // The modulus has exactly keyBits bits (all supported sizes are multiples of 8).
      if (n.length !== keyBytes || n[0]! < 0x80) fail(TPM_RC.KEY, blame.pub);
      if (!validRsaExponent(parms.exponent)) fail(TPM_RC.VALUE, blame.pub);
      if (sensitive !== undefined) {
        const p = sensitive.sensitive;
        if (p.length * 2 !== keyBytes || p[0]! < 0x80) fail(TPM_RC.KEY_SIZE, blame.sens);
        // Binding: p must be a proper factor of n (its cofactor is then of the same size).
        const pp = bytesToBigInt(p);
        const nn = bytesToBigInt(n);
        if (pp < 3n || nn % pp !== 0n) unbound();
      }
      break;
    }
    case A.ECC: {
      const curveId = (pub.parameters as EccParms).curveID;
      const curve = requireCurve(curveId);
      const point = pub.unique as EccPoint;
      if (sensitive === undefined) {
        if (point.x.length !== curve.byteLength || point.y.length !== curve.byteLength)
          fail(TPM_RC.KEY, blame.pub);
        if (nameInfo !== undefined) {
          const publicKey = eccPublicKey(curveId, point.x, point.y);
          if (publicKey === undefined) fail(TPM_RC.ECC_POINT, blame.pub);
          keys = { publicKey };
        }
      } else {
        const key = eccFromPrivate(curveId, sensitive.sensitive);
        if (key === undefined) fail(TPM_RC.KEY_SIZE, blame.sens);
        if (nameInfo !== undefined) {
          if (!eccHasPoint(curveId, key, point)) unbound();
          keys = eccKeyCache(key);
        }
      }
      break;
    }
    case A.KEYEDHASH:
    case A.SYMCIPHER: {
      const unique = pub.unique as Buffer;
      if (sensitive === undefined) {
        if (unique.length !== digestSize) fail(TPM_RC.KEY, blame.pub);
        break;
      }
      const key = sensitive.sensitive;
      if (pub.type === A.SYMCIPHER) {
        if (key.length * 8 !== (pub.parameters as SymCipherParms).sym.keyBits)
          fail(TPM_RC.KEY_SIZE, blame.sens);
      } else {
        const s = (pub.parameters as KeyedHashParms).scheme;
        const max = s.scheme === A.NULL ? MAX_SEALED_DATA : requireHash(s.hashAlg).blockSize;
        if (key.length > max) fail(TPM_RC.KEY_SIZE, blame.sens);
      }
      if (nameInfo !== undefined) {
        if (sensitive.seedValue.length !== digestSize) fail(TPM_RC.KEY_SIZE, blame.sens);
        const expected = symmetricUnique(pub, sensitive.seedValue, key);
        if (!timingSafeEqualBytes(expected, unique)) unbound();
      }
      break;
    }
    default:
      fail(TPM_RC.TYPE, blame.pub);
  }

  // A parent's seedValue keys its children's protection: at least half a digest of entropy.
  if (sensitive !== undefined && nameInfo !== undefined && isParentTemplate(pub)) {
    const len = sensitive.seedValue.length;
    if (len < digestSize / 2 || len > digestSize) fail(TPM_RC.SIZE, blame.sens);
  }
  return keys;
}
