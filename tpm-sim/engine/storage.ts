/**
 * Protected storage (TPM 2.0 Part 1 §22 "Protected Storage", §23 "Protected Storage Hierarchy";
 * tpm-formulas.md §4): how a child's sensitive area leaves the TPM as a TPM2B_PRIVATE blob under
 * its parent, and how it comes back.
 *
 *   seed         = parent.sensitive.seedValue
 *   symKey       = KDFa(parent.nameAlg, seed, "STORAGE", Name(child), {}, parent.sym.keyBits)
 *   hmacKey      = KDFa(parent.nameAlg, seed, "INTEGRITY", {}, {}, digestBits(parent.nameAlg))
 *   encSensitive = AES-CFB(symKey, iv, TPM2B_SENSITIVE)
 *   outerHMAC    = HMAC_parent.nameAlg(hmacKey, TPM2B_IV(iv) || encSensitive || Name(child))
 *   TPM2B_PRIVATE content = TPM2B_DIGEST(outerHMAC) || TPM2B_IV(iv) || encSensitive
 *
 * This is the layout libtpms uses (checked byte for byte against a swtpm-made blob), so a blob
 * is bound to the parent's seedValue and to the child's Name: another TPM, another parent or a
 * changed public area all fail the integrity check. The duplication (Import) outer wrapper uses
 * the same keys with a seed sent by the caller and no IV (duplication.ts).
 */
import { randomBytes } from 'node:crypto';
import { cfbDecrypt, cfbEncrypt } from '../crypto/cfb.ts';
import { hmac, requireHash, timingSafeEqualBytes } from '../crypto/hash.ts';
import { kdfa } from '../crypto/kdf.ts';
import { Reader, WireError, Writer } from '../wire/codec.ts';
import { TPM_ALG } from '../wire/constants.ts';
import { TPM_RC } from '../wire/rc.ts';
import {
  type EccParms,
  type Public,
  type RsaParms,
  type Sensitive,
  type SymCipherParms,
  type SymDef,
  TPM2B_DIGEST,
  TPM2B_IV,
  TPMT_SENSITIVE,
} from '../wire/structures.ts';
import type { TpmObject } from './objects.ts';
import { parsing, RcError, rcFor } from './rc-error.ts';

/** AES has one block size whatever the key size (FIPS 197); the storage IV is one block. */
export const AES_BLOCK_BYTES = 16;

/**
 * The symmetric definition a storage parent protects its children with: TPMS_RSA_PARMS /
 * TPMS_ECC_PARMS.symmetric, or TPMS_SYMCIPHER_PARMS.sym (Part 2 §12.2.3).
 */
export function protectionSymDef(parent: Public): SymDef {
  switch (parent.type) {
    case TPM_ALG.RSA:
      return (parent.parameters as RsaParms).symmetric;
    case TPM_ALG.ECC:
      return (parent.parameters as EccParms).symmetric;
    case TPM_ALG.SYMCIPHER:
      return (parent.parameters as SymCipherParms).sym;
    default:
      return { algorithm: TPM_ALG.NULL, keyBits: 0, mode: 0 };
  }
}

export interface ProtectionKeys {
  readonly symKey: Buffer;
  readonly hmacKey: Buffer;
}

/**
 * The outer-wrapper keys (Part 1 §22, symmetric protection and integrity; the same equations
 * serve duplication, Part 1 §23.3.2.3): both derive from one seed with the parent's
 * nameAlg; only the encryption key depends on the child's Name.
 */
export function protectionKeys(
  hashAlg: number,
  seed: Uint8Array,
  name: Uint8Array,
  symKeyBits: number,
): ProtectionKeys {
  const { digestSize } = requireHash(hashAlg);
  return {
    symKey: kdfa(hashAlg, seed, 'STORAGE', name, Buffer.alloc(0), symKeyBits),
    hmacKey: kdfa(hashAlg, seed, 'INTEGRITY', Buffer.alloc(0), Buffer.alloc(0), digestSize * 8),
  };
}

/**
 * Opens the outer wrapper both protected storage (Part 1 §22) and duplication (§23.3.2.3) use:
 * blob = TPM2B_DIGEST(outerHMAC) || protected, outerHMAC = HMAC_hashAlg(hmacKey, protected ||
 * Name). The HMAC is checked first, over the bytes as received and in constant time, so nothing
 * is decrypted or parsed from a blob made under other keys. Errors carry parameter `param`
 * (unnumbered without one): the unmarshalling code for a blob too short to hold its HMAC, else
 * TPM_RC_INTEGRITY. Returns the keys and the still encrypted protected bytes.
 */
export function openOuterWrapper(
  hashAlg: number,
  seed: Uint8Array,
  name: Uint8Array,
  symKeyBits: number,
  blob: Uint8Array,
  param: number | undefined,
): { keys: ProtectionKeys; protectedPart: Uint8Array } {
  const r = new Reader(blob);
  const outerHmac = parsing(param, () => TPM2B_DIGEST.read(r));
  const protectedPart = r.rest();
  const keys = protectionKeys(hashAlg, seed, name, symKeyBits);
  const expected = hmac(hashAlg, keys.hmacKey, protectedPart, name);
  if (!timingSafeEqualBytes(expected, outerHmac)) {
    throw new RcError(rcFor(TPM_RC.INTEGRITY, param));
  }
  return { keys, protectedPart };
}

function storageParams(parent: TpmObject): { seed: Buffer; hashAlg: number; keyBits: number } {
  const sym = protectionSymDef(parent.publicArea);
  const seed = parent.sensitive?.seedValue;
  // Callers check that the parent is a loaded storage parent (Part 3 §12.1, §12.2: TPM_RC_TYPE)
  // before they get here, so a missing seed or cipher is a bug, not bad input.
  if (sym.algorithm !== TPM_ALG.AES || seed === undefined || seed.length === 0) {
    throw new Error('protected storage needs a storage parent with a seed and an AES cipher');
  }
  return { seed, hashAlg: parent.publicArea.nameAlg, keyBits: sym.keyBits };
}

/** TPM2B_SENSITIVE: u16 size || TPMT_SENSITIVE (Part 2 §12.3.3). */
export function marshalSensitive2B(sensitive: Sensitive): Buffer {
  const w = new Writer(256);
  const done = w.sizeU16();
  TPMT_SENSITIVE.write(w, sensitive);
  done();
  return w.finish();
}

/**
 * TPM2_Create / TPM2_Import output: the child's sensitive area wrapped under `parent` (Part 1
 * §22, Part 3 §12.1). Returns the content of TPM2B_PRIVATE (without its own size). `iv` is
 * random except in tests that rebuild a known blob.
 */
export function wrapPrivate(
  parent: TpmObject,
  childName: Uint8Array,
  sensitive: Sensitive,
  iv: Uint8Array = randomBytes(AES_BLOCK_BYTES),
): Buffer {
  const { seed, hashAlg, keyBits } = storageParams(parent);
  const keys = protectionKeys(hashAlg, seed, childName, keyBits);
  const ivField = Buffer.alloc(2 + iv.length);
  ivField.writeUInt16BE(iv.length, 0);
  ivField.set(iv, 2);
  const enc = cfbEncrypt(keys.symKey, iv, marshalSensitive2B(sensitive));
  const mac = hmac(hashAlg, keys.hmacKey, ivField, enc, childName);
  const w = new Writer(2 + mac.length + ivField.length + enc.length);
  TPM2B_DIGEST.write(w, mac);
  w.bytes(ivField).bytes(enc);
  return w.finish();
}

/**
 * TPM2_Load's unwrap (Part 3 §12.2; Part 1 §22): the integrity HMAC is checked first
 * (openOuterWrapper), so nothing is decrypted or parsed from a blob this parent did not make.
 * Errors: TPM_RC_INTEGRITY (bad HMAC: another TPM, another parent, another public area, a changed
 * byte), unmarshalling codes for a blob too short to hold its HMAC, TPM_RC_VALUE for an IV that
 * is not one AES block, TPM_RC_SENSITIVE when the decrypted area does not unmarshal exactly
 * (format-zero, so it carries no parameter number). `param` is the number of the private-blob
 * parameter (1 for TPM2_Load); without it the codes are unnumbered.
 */
export function unwrapPrivate(
  parent: TpmObject,
  childName: Uint8Array,
  blob: Uint8Array,
  param?: number,
): Sensitive {
  const { seed, hashAlg, keyBits } = storageParams(parent);
  const { keys, protectedPart } = openOuterWrapper(hashAlg, seed, childName, keyBits, blob, param);

  // From here on the bytes are ours: only a blob this TPM made under this parent gets here.
  const inner = new Reader(protectedPart);
  const iv = parsing(param, () => TPM2B_IV.read(inner));
  if (iv.length !== AES_BLOCK_BYTES) throw new RcError(rcFor(TPM_RC.VALUE, param));
  const clear = cfbDecrypt(keys.symKey, iv, inner.rest());
  return readSensitive2B(clear, TPM_RC.SENSITIVE);
}

/**
 * TPM2B_SENSITIVE from decrypted bytes: the size must cover the rest exactly and TPMT_SENSITIVE
 * must fill it (Part 2 §12.3.3). Any failure is `rc`.
 */
export function readSensitive2B(bytes: Uint8Array, rc: number): Sensitive {
  if (bytes.length < 2) throw new RcError(rc);
  const size = (bytes[0]! << 8) | bytes[1]!;
  if (size + 2 !== bytes.length) throw new RcError(rc);
  const r = new Reader(bytes, 2);
  try {
    const sensitive = TPMT_SENSITIVE.read(r);
    if (r.remaining !== 0) throw new RcError(rc);
    return sensitive;
  } catch (err) {
    if (err instanceof WireError) throw new RcError(rc);
    throw err;
  }
}
