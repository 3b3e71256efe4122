/**
 * TPM2_Sign (Part 3 §20.2) and TPM2_VerifySignature (Part 3 §20.1): RSASSA-PKCS1-v1_5,
 * RSASSA-PSS, ECDSA (P-256, P-384) and HMAC over a digest the caller computed.
 *
 * Sign is the hottest command of the TPM (an agent signs a token with an ECDSA P-256 key on every
 * request), so its ECDSA path does no per-call parsing: the key's scalar comes from the object's
 * key cache and the nonce work is amortised by the ECDSA module.
 */
import { ecdsaSignDigest, ecdsaVerifyDigest } from '../../crypto/ecc.ts';
import { hmac, timingSafeEqualBytes } from '../../crypto/hash.ts';
import {
  rsapssSignDigest,
  rsapssVerifyDigest,
  rsassaSignDigest,
  rsassaVerifyDigest,
} from '../../crypto/rsa.ts';
import { TPM_ALG, TPM_RH, TPM_ST, TPMA_OBJECT } from '../../wire/constants.ts';
import { rcHandle, rcParam, TPM_RC } from '../../wire/rc.ts';
import {
  DIGEST_SIZE,
  type EccParms,
  type EccPoint,
  type Ha,
  type KeyedHashParms,
  type Public,
  type RsaParms,
  type Scheme,
  type Signature,
  type SignatureEcc,
  type SignatureRsa,
  type Ticket,
} from '../../wire/structures.ts';
import type { Handler } from '../handler.ts';
import { eccScalarOf, privateKeyOf, publicKeyOf } from '../key-cache.ts';
import { sensitiveForAuth, type TpmObject } from '../objects.ts';
import { RcError } from '../rc-error.ts';
import { mergeSchemes } from '../schemes.ts';
import { makeTicket, nullTicketOf } from '../tickets.ts';
import type { Tpm } from '../tpm.ts';
import { isHierarchyOrNull, isValidHashCheck } from './hash.ts';

const A = TPM_ALG;

/** The scheme in the key's public parameters; undefined for a symmetric cipher key. */
function keyScheme(pub: Public): Scheme | undefined {
  switch (pub.type) {
    case A.RSA:
      return (pub.parameters as RsaParms).scheme;
    case A.ECC:
      return (pub.parameters as EccParms).scheme;
    case A.KEYEDHASH:
      return (pub.parameters as KeyedHashParms).scheme;
    default:
      return undefined;
  }
}

/** The signature schemes each key type can produce (Part 2, TPMS_RSA_PARMS / TPMS_ECC_PARMS / TPMS_KEYEDHASH_PARMS schemes). */
function schemeFitsKey(type: number, scheme: number): boolean {
  switch (type) {
    case A.RSA:
      return scheme === A.RSASSA || scheme === A.RSAPSS;
    case A.ECC:
      return scheme === A.ECDSA;
    case A.KEYEDHASH:
      return scheme === A.HMAC;
    default:
      return false;
  }
}

/**
 * The signing scheme (Part 3 §20.2, and the reference's CryptSelectSignScheme): the key's own
 * scheme unless it is TPM_ALG_NULL, in which case the caller's (mergeSchemes). Both NULL (no key
 * type signs with TPM_ALG_NULL), a disagreement, or a scheme the key type cannot produce is
 * TPM_RC_SCHEME for inScheme (parameter 2).
 */
export function selectSignScheme(pub: Public, requested: Scheme): Scheme {
  const own = keyScheme(pub);
  const chosen = own === undefined ? undefined : mergeSchemes(own, requested);
  if (chosen === undefined || !schemeFitsKey(pub.type, chosen.scheme)) {
    throw new RcError(rcParam(TPM_RC.SCHEME, 2));
  }
  return chosen;
}

/**
 * Part 3 §20.2: a restricted key signs only digests the TPM made itself (a valid HASHCHECK
 * ticket over exactly this digest, for this hash), so it cannot be made to sign a forged
 * attestation. A ticket that is present (non-empty) is checked for any key, as the reference
 * does; without one an unrestricted key still needs a digest of the scheme hash's size.
 */
function checkValidation(
  tpm: Tpm,
  obj: TpmObject,
  ticket: Ticket,
  hashAlg: number,
  digest: Buffer,
): void {
  // TPMT_TK_HASHCHECK (Part 2 §10.7): the tag is fixed and the hierarchy is TPMI_RH_HIERARCHY+.
  if (ticket.tag !== TPM_ST.HASHCHECK) throw new RcError(rcParam(TPM_RC.TAG, 3));
  if (!isHierarchyOrNull(ticket.hierarchy)) throw new RcError(rcParam(TPM_RC.VALUE, 3));
  const restricted = (obj.publicArea.objectAttributes & TPMA_OBJECT.restricted) !== 0;
  if (ticket.digest.length !== 0 || restricted) {
    if (!isValidHashCheck(tpm, ticket, hashAlg, digest))
      throw new RcError(rcParam(TPM_RC.TICKET, 3));
  } else if (digest.length !== DIGEST_SIZE[hashAlg]) {
    throw new RcError(rcParam(TPM_RC.SIZE, 1));
  }
}

function rsaSignature(obj: TpmObject, scheme: Scheme, digest: Buffer): Signature {
  const key = privateKeyOf(obj);
  let sig: Buffer;
  try {
    sig =
      scheme.scheme === A.RSASSA
        ? rsassaSignDigest(key, scheme.hashAlg, digest)
        : rsapssSignDigest(key, scheme.hashAlg, digest);
  } catch (err) {
    // The key is too short for this hash in this encoding (e.g. PSS with SHA-512 and RSA-1024):
    // Part 3 §20.2 "the value to sign is larger than allowed for the type of keyHandle".
    if (err instanceof RangeError) throw new RcError(TPM_RC.VALUE);
    throw err;
  }
  const body: SignatureRsa = { hash: scheme.hashAlg, sig };
  return { sigAlg: scheme.scheme, signature: body };
}

/**
 * The signature of `digest` with `obj` under `scheme` (already selected and checked against the
 * key): ECDSA r and s at the size of the curve order, RSASSA or RSAPSS, or an HMAC "signature"
 * HMAC_hashAlg(key, digest) (Part 2 §11.3.4 TPMU_SIGNATURE).
 */
export function produceSignature(obj: TpmObject, scheme: Scheme, digest: Buffer): Signature {
  const pub = obj.publicArea;
  const hashAlg = scheme.hashAlg;
  switch (scheme.scheme) {
    case A.ECDSA: {
      const { r, s } = ecdsaSignDigest(
        (pub.parameters as EccParms).curveID,
        eccScalarOf(obj),
        digest,
      );
      const body: SignatureEcc = { hash: hashAlg, signatureR: r, signatureS: s };
      return { sigAlg: A.ECDSA, signature: body };
    }
    case A.HMAC: {
      const body: Ha = { hashAlg, digest: hmac(hashAlg, sensitiveForAuth(obj).sensitive, digest) };
      return { sigAlg: A.HMAC, signature: body };
    }
    default:
      return rsaSignature(obj, scheme, digest);
  }
}

/** A key that can sign: the sign attribute and not a symmetric cipher (TPM_RC_KEY otherwise). */
export function isSigningKey(pub: Public): boolean {
  return (pub.objectAttributes & TPMA_OBJECT.sign) !== 0 && pub.type !== A.SYMCIPHER;
}

/**
 * Part 3 §20.2. Error order as in the reference: the key (TPM_RC_KEY for handle 1), the scheme
 * (parameter 2), the ticket or the digest size (parameters 3 and 1), then the signature itself.
 */
export const Sign: Handler<'Sign'> = (ctx, p) => {
  const obj = ctx.handles[0]!.object!;
  const pub = obj.publicArea;
  if (!isSigningKey(pub)) throw new RcError(rcHandle(TPM_RC.KEY, 1));
  sensitiveForAuth(obj);
  const scheme = selectSignScheme(pub, p.inScheme);
  checkValidation(ctx.tpm, obj, p.validation, scheme.hashAlg, p.digest);
  return { response: { signature: produceSignature(obj, scheme, p.digest) } };
};

/**
 * TPMT_TK_VERIFIED (Part 2 §10.7): HMAC_nameAlg(proof(hierarchy), TPM_ST_VERIFIED || digest ||
 * keyName), with the nameAlg of the key that verified (the first two octets of keyName), so a
 * policy command that later checks the ticket (TPM2_PolicyAuthorize) can recompute it from the
 * key's Name alone. A NULL ticket for the NULL hierarchy or a key without a nameAlg.
 */
export function verifiedTicket(
  tpm: Tpm,
  hierarchy: number,
  nameAlg: number,
  digest: Uint8Array,
  keyName: Uint8Array,
): Ticket {
  if (hierarchy === TPM_RH.NULL || nameAlg === A.NULL) return nullTicketOf(TPM_ST.VERIFIED);
  return makeTicket(tpm, TPM_ST.VERIFIED, hierarchy, nameAlg, digest, keyName);
}

/** Verifies `sig` over `digest` with `obj`'s public key; TPM_RC_SCHEME when the types do not match. */
function signatureValid(obj: TpmObject, digest: Buffer, sig: Signature): boolean {
  const pub = obj.publicArea;
  switch (pub.type) {
    case A.RSA: {
      if (sig.sigAlg !== A.RSASSA && sig.sigAlg !== A.RSAPSS) break;
      const body = sig.signature as SignatureRsa;
      const key = publicKeyOf(obj);
      return sig.sigAlg === A.RSASSA
        ? rsassaVerifyDigest(key, body.hash, digest, body.sig)
        : rsapssVerifyDigest(key, body.hash, digest, body.sig);
    }
    case A.ECC: {
      if (sig.sigAlg !== A.ECDSA) break;
      const body = sig.signature as SignatureEcc;
      const point = pub.unique as EccPoint;
      const { curveID } = pub.parameters as EccParms;
      return ecdsaVerifyDigest(curveID, point.x, point.y, digest, body.signatureR, body.signatureS);
    }
    case A.KEYEDHASH: {
      if (sig.sigAlg !== A.HMAC) break;
      // Verifying an HMAC needs the key itself (the reference answers TPM_RC_HANDLE without it).
      if (obj.sensitive === undefined) throw new RcError(rcParam(TPM_RC.HANDLE, 2));
      const body = sig.signature as Ha;
      // A key with a scheme verifies only its own hash, so a weaker one cannot be slipped in.
      const own = (pub.parameters as KeyedHashParms).scheme;
      if (own.scheme !== A.NULL && own.hashAlg !== body.hashAlg) return false;
      return timingSafeEqualBytes(hmac(body.hashAlg, obj.sensitive.sensitive, digest), body.digest);
    }
  }
  throw new RcError(rcParam(TPM_RC.SCHEME, 2));
}

/**
 * Part 3 §20.1. The key needs the sign attribute (TPM_RC_ATTRIBUTES for handle 1) and may be
 * public-only (LoadExternal). A NULL signature or one that does not verify is TPM_RC_SIGNATURE,
 * a signature of another key type TPM_RC_SCHEME, both for parameter 2. On success the ticket
 * records that this key signed this digest.
 */
export const VerifySignature: Handler<'VerifySignature'> = (ctx, p) => {
  const obj = ctx.handles[0]!.object!;
  const pub = obj.publicArea;
  if (!(pub.objectAttributes & TPMA_OBJECT.sign)) throw new RcError(rcHandle(TPM_RC.ATTRIBUTES, 1));
  if (p.signature.sigAlg === A.NULL) throw new RcError(rcParam(TPM_RC.SIGNATURE, 2));
  if (!signatureValid(obj, p.digest, p.signature)) throw new RcError(rcParam(TPM_RC.SIGNATURE, 2));
  return {
    response: {
      validation: verifiedTicket(ctx.tpm, obj.hierarchy, pub.nameAlg, p.digest, obj.name),
    },
  };
};
