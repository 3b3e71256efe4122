/**
 * node:crypto keys for loaded objects, built on first use and kept in `obj.keys`. A command that
 * already holds them for the object it loads (CreatePrimary from key generation, Load and
 * LoadExternal from checkKeyMaterial) hands them over instead, so they are never built twice.
 *
 * A TPM stores only what Part 2 §12.2.3.2 / §12.3.2.4 define: the RSA modulus and exponent plus
 * one prime, the ECC point plus the scalar d, the HMAC key bytes. Turning those into OpenSSL keys
 * costs far more than the operation itself (an RSA private key needs q, d, dP, dQ and qInv; a
 * JWK import re-parses everything), so each object pays it once and every later command reuses
 * the result. The cache lives on the object, so it disappears with it (FlushContext, power
 * loss) and a re-loaded context rebuilds it.
 *
 * ECDSA signing does not go through a KeyObject at all (node:crypto always hashes its input,
 * while TPM2_Sign receives a digest), so ECC objects also expose their validated scalar.
 */
import type { KeyObject } from 'node:crypto';
import { bytesToBigInt } from '../crypto/bigint.ts';
import {
  type EccKeyPair,
  eccCurve,
  eccFromPrivate,
  eccHasPoint,
  eccPublicKey,
} from '../crypto/ecc.ts';
import { rsaExponentOf, rsaFromPrime, rsaPublicKey } from '../crypto/rsa.ts';
import { TPM_ALG } from '../wire/constants.ts';
import { rcHandle, TPM_RC } from '../wire/rc.ts';
import type { EccParms, EccPoint, RsaParms } from '../wire/structures.ts';
import type { KeyCache, TpmObject } from './objects.ts';
import { RcError } from './rc-error.ts';

function cacheOf(obj: TpmObject): KeyCache {
  let keys = obj.keys;
  if (keys === undefined) {
    keys = {};
    obj.keys = keys;
  }
  return keys;
}

function rsaExponent(obj: TpmObject): number {
  return rsaExponentOf((obj.publicArea.parameters as RsaParms).exponent);
}

/**
 * The cache entries for an ECC key pair whose point was checked against the object's public area:
 * with `d` set, eccScalarOf knows the range and binding checks are done.
 */
export function eccKeyCache(pair: EccKeyPair): KeyCache {
  return { privateKey: pair.privateKey, publicKey: pair.publicKey, d: bytesToBigInt(pair.d) };
}

/**
 * The sensitive area, or TPM_RC_HANDLE: the object was loaded without its private part
 * (LoadExternal of a public area), so its sensitive portion "is not loaded" in the spec's words
 * (e.g. Part 3 §11.1 for a salt key).
 */
function sensitiveOf(obj: TpmObject, handleNumber: number): Buffer {
  const s = obj.sensitive;
  if (s === undefined)
    throw new RcError(rcHandle(TPM_RC.HANDLE, handleNumber), 'no private part loaded');
  return s.sensitive;
}

/**
 * The ECC scalar d, checked once: in [1, n-1] and d·G equal to the public point. A mismatch is
 * TPM_RC_BINDING ("public and private portions of the key are not properly bound", Part 3 §20.2).
 * Building the KeyObjects here comes for free with the check, so they are cached too.
 */
function loadEcc(obj: TpmObject, keys: KeyCache, handleNumber: number): void {
  const d = sensitiveOf(obj, handleNumber);
  const { curveID } = obj.publicArea.parameters as EccParms;
  if (eccCurve(curveID) === undefined) throw new RcError(rcHandle(TPM_RC.CURVE, handleNumber));
  const pair = eccFromPrivate(curveID, d);
  if (pair === undefined || !eccHasPoint(curveID, pair, obj.publicArea.unique as EccPoint)) {
    throw new RcError(rcHandle(TPM_RC.BINDING, handleNumber));
  }
  Object.assign(keys, eccKeyCache(pair));
}

/**
 * The private key of an RSA or ECC object. Throws TPM_RC_HANDLE when only the public part is
 * loaded, TPM_RC_BINDING when the private part does not belong to the public one, TPM_RC_KEY
 * for other object types. `handleNumber` is the position of the object in the command's handle
 * area, for the response code.
 */
export function privateKeyOf(obj: TpmObject, handleNumber = 1): KeyObject {
  const keys = cacheOf(obj);
  if (keys.privateKey !== undefined) return keys.privateKey;
  const pub = obj.publicArea;
  if (pub.type === TPM_ALG.RSA) {
    const p = sensitiveOf(obj, handleNumber);
    // rsaFromPrime recomputes q = n / p and the CRT values; a p that does not divide n fails.
    const pair = rsaFromPrime(pub.unique as Buffer, rsaExponent(obj), p);
    if (pair === undefined) throw new RcError(rcHandle(TPM_RC.BINDING, handleNumber));
    keys.privateKey = pair.privateKey;
    keys.publicKey = pair.publicKey;
    return pair.privateKey;
  }
  if (pub.type === TPM_ALG.ECC) {
    loadEcc(obj, keys, handleNumber);
    return keys.privateKey!;
  }
  throw new RcError(rcHandle(TPM_RC.KEY, handleNumber), 'not an asymmetric key');
}

/**
 * The public key of an RSA or ECC object (the private part is not needed). Throws TPM_RC_KEY
 * when OpenSSL rejects the public area (a point off the curve, a zero modulus) or the object is
 * not asymmetric.
 */
export function publicKeyOf(obj: TpmObject, handleNumber = 1): KeyObject {
  const keys = cacheOf(obj);
  if (keys.publicKey !== undefined) return keys.publicKey;
  const pub = obj.publicArea;
  let key: KeyObject | undefined;
  if (pub.type === TPM_ALG.RSA) {
    key = rsaPublicKey(pub.unique as Buffer, rsaExponent(obj));
  } else if (pub.type === TPM_ALG.ECC) {
    const point = pub.unique as EccPoint;
    key = eccPublicKey((pub.parameters as EccParms).curveID, point.x, point.y);
  }
  if (key === undefined)
    throw new RcError(rcHandle(TPM_RC.KEY, handleNumber), 'unusable public key');
  keys.publicKey = key;
  return key;
}

/**
 * The ECC private scalar d as stored in the sensitive area, for ecdsaSignDigest and ECDH. The
 * range and binding checks run on the first call only; later calls are a field read, which
 * matters because ECDSA signing is the TPM's hottest path.
 */
export function eccScalarOf(obj: TpmObject, handleNumber = 1): Buffer {
  const keys = cacheOf(obj);
  if (keys.d === undefined) {
    if (obj.publicArea.type !== TPM_ALG.ECC)
      throw new RcError(rcHandle(TPM_RC.KEY, handleNumber), 'not an ECC key');
    loadEcc(obj, keys, handleNumber);
  }
  return obj.sensitive!.sensitive;
}
