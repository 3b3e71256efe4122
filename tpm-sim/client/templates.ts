/**
 * Object templates (TPMT_PUBLIC with empty unique) for the keys prtlab uses. The storage
 * primaries are the templates tpm2-tools' `tpm2_createprimary -G ecc|rsa` sends (attributes
 * 0x30072, AES-128-CFB), so keys made here and by the tools under the same hierarchy share parents.
 */
import { TPMA_OBJECT as O, TPM_ALG, TPM_ECC_CURVE } from '../wire/constants.ts';
import { type Public, SCHEME_NULL, SYM_NULL } from '../wire/structures.ts';

const EMPTY = Buffer.alloc(0);
const AES128CFB = { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB };
const KEY_BASE = O.fixedTPM | O.fixedParent | O.sensitiveDataOrigin | O.userWithAuth;

export const STORAGE_ATTRIBUTES = KEY_BASE | O.restricted | O.decrypt;

export function eccStoragePrimary(): Public {
  return {
    type: TPM_ALG.ECC,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: STORAGE_ATTRIBUTES,
    authPolicy: EMPTY,
    parameters: {
      symmetric: AES128CFB,
      scheme: SCHEME_NULL,
      curveID: TPM_ECC_CURVE.NIST_P256,
      kdf: SCHEME_NULL,
    },
    unique: { x: EMPTY, y: EMPTY },
  };
}

export function rsaStoragePrimary(): Public {
  return {
    type: TPM_ALG.RSA,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: STORAGE_ATTRIBUTES,
    authPolicy: EMPTY,
    parameters: { symmetric: AES128CFB, scheme: SCHEME_NULL, keyBits: 2048, exponent: 0 },
    unique: EMPTY,
  };
}

/** ECC P-256 ECDSA-SHA256 signing key (tpm2-tools `-G ecc256:ecdsa-sha256`). */
export function eccSigningKey(opts: { attributes?: number } = {}): Public {
  return {
    type: TPM_ALG.ECC,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: opts.attributes ?? KEY_BASE | O.sign,
    authPolicy: EMPTY,
    parameters: {
      symmetric: SYM_NULL,
      scheme: { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 },
      curveID: TPM_ECC_CURVE.NIST_P256,
      kdf: SCHEME_NULL,
    },
    unique: { x: EMPTY, y: EMPTY },
  };
}

/** RSA signing key; scheme RSASSA or RSAPSS with SHA-256, or NULL to choose per signature. */
export function rsaSigningKey(
  opts: { scheme?: number; bits?: number; attributes?: number } = {},
): Public {
  const scheme = opts.scheme ?? TPM_ALG.RSASSA;
  return {
    type: TPM_ALG.RSA,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: opts.attributes ?? KEY_BASE | O.sign,
    authPolicy: EMPTY,
    parameters: {
      symmetric: SYM_NULL,
      scheme: scheme === TPM_ALG.NULL ? SCHEME_NULL : { scheme, hashAlg: TPM_ALG.SHA256 },
      keyBits: opts.bits ?? 2048,
      exponent: 0,
    },
    unique: EMPTY,
  };
}

/** RSA decryption key (OAEP-SHA256 by default, or NULL to choose per call). */
export function rsaDecryptKey(
  opts: { scheme?: number; hashAlg?: number; bits?: number } = {},
): Public {
  const scheme = opts.scheme ?? TPM_ALG.OAEP;
  return {
    type: TPM_ALG.RSA,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: KEY_BASE | O.decrypt,
    authPolicy: EMPTY,
    parameters: {
      symmetric: SYM_NULL,
      scheme:
        scheme === TPM_ALG.NULL
          ? SCHEME_NULL
          : scheme === TPM_ALG.RSAES
            ? { scheme, hashAlg: TPM_ALG.NULL }
            : { scheme, hashAlg: opts.hashAlg ?? TPM_ALG.SHA256 },
      keyBits: opts.bits ?? 2048,
      exponent: 0,
    },
    unique: EMPTY,
  };
}

/** A keyedHash HMAC key; with `data`-supplied keys, clear sensitiveDataOrigin. */
export function hmacKey(opts: { hashAlg?: number; callerData?: boolean } = {}): Public {
  const base = O.fixedTPM | O.fixedParent | O.userWithAuth | O.sign;
  return {
    type: TPM_ALG.KEYEDHASH,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: opts.callerData ? base : base | O.sensitiveDataOrigin,
    authPolicy: EMPTY,
    parameters: { scheme: { scheme: TPM_ALG.HMAC, hashAlg: opts.hashAlg ?? TPM_ALG.SHA256 } },
    unique: EMPTY,
  };
}

/** A sealed data object: keyedHash, neither sign nor decrypt, data from the caller. */
export function sealedData(): Public {
  return {
    type: TPM_ALG.KEYEDHASH,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: O.fixedTPM | O.fixedParent | O.userWithAuth,
    authPolicy: EMPTY,
    parameters: { scheme: SCHEME_NULL },
    unique: EMPTY,
  };
}

/**
 * The authPolicy of the default EK templates: PolicySecret(TPM_RH_ENDORSEMENT) with an empty
 * policyRef (TCG EK Credential Profile 2.0, §B.3.2), i.e. H(H(0^32 || TPM_CC_PolicySecret ||
 * 0x4000000B) || "").
 */
export const EK_AUTH_POLICY = Buffer.from(
  '837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa',
  'hex',
);

/** The EK attributes of both default templates: a storage key only the EK policy can administer. */
export const EK_ATTRIBUTES =
  O.fixedTPM | O.fixedParent | O.sensitiveDataOrigin | O.adminWithPolicy | O.restricted | O.decrypt;

/**
 * TCG EK Credential Profile 2.0 template L-1 (§B.3.3): RSA 2048, AES-128-CFB, unique = 256
 * zero bytes. `tpm2_createek -G rsa` sends exactly this, so CreatePrimary under the endorsement
 * hierarchy gives this TPM's RSA EK.
 */
export function ekRsaTemplate(): Public {
  return {
    type: TPM_ALG.RSA,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: EK_ATTRIBUTES,
    authPolicy: Buffer.from(EK_AUTH_POLICY),
    parameters: { symmetric: AES128CFB, scheme: SCHEME_NULL, keyBits: 2048, exponent: 0 },
    unique: Buffer.alloc(256),
  };
}

/**
 * TCG EK Credential Profile 2.0 template L-2 (§B.3.4): ECC NIST P-256, AES-128-CFB, unique x
 * and y = 32 zero bytes each (`tpm2_createek -G ecc`).
 */
export function ekEccTemplate(): Public {
  return {
    type: TPM_ALG.ECC,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: EK_ATTRIBUTES,
    authPolicy: Buffer.from(EK_AUTH_POLICY),
    parameters: {
      symmetric: AES128CFB,
      scheme: SCHEME_NULL,
      curveID: TPM_ECC_CURVE.NIST_P256,
      kdf: SCHEME_NULL,
    },
    unique: { x: Buffer.alloc(32), y: Buffer.alloc(32) },
  };
}

/** NV indexes of the EK certificates (TCG EK Credential Profile 2.0, §2.2.1.4). */
export const EK_CERT_NV_INDEX = { rsa: 0x01c00002, ecc: 0x01c0000a } as const;

/**
 * An attestation key: ECC P-256, restricted signing with ECDSA-SHA256 (what `tpm2_createak -G ecc
 * -g sha256 -s ecdsa` creates under the EK). Being restricted, it signs only what the TPM
 * generated itself: quotes, certifications, and digests TPM2_Hash ticketed.
 */
export function eccAttestationKey(): Public {
  return eccSigningKey({ attributes: KEY_BASE | O.restricted | O.sign });
}
