/**
 * The TPM side of duplication: what TPM2_Import (Part 3 §13.3) must undo (Part 1 §23.3
 * "Duplication", §23.3.2.2 inner wrapper, §23.3.2.3 outer wrapper; tpm-formulas.md §5).
 *
 *   seed         = secret-share(inSymSeed) with label "DUPLICATE" (Part 1 Annex B.10 / C.6)
 *   outer:  duplicate = TPM2B_DIGEST(HMAC_pNameAlg(hmacKey, dupSensitive || Name)) || dupSensitive
 *           encSensitive = AES-CFB(symKey, IV = 0, dupSensitive), keys as in protected storage
 *   inner:  encSensitive = AES-CFB(encryptionKey, IV = 0, TPM2B_DIGEST(innerIntegrity) || sens2B)
 *           innerIntegrity = H_objNameAlg(sens2B || Name)
 *
 * Both wrappers are optional: no inSymSeed means no outer wrapper, symmetricAlg NULL means no
 * inner one. Every integrity value is checked before the bytes it covers are parsed.
 */
import { cfbDecrypt } from '../crypto/cfb.ts';
import { digest, requireHash, timingSafeEqualBytes } from '../crypto/hash.ts';
import { unmarshal } from '../wire/codec.ts';
import { TPM_ALG } from '../wire/constants.ts';
import { rcHandle, rcParam, TPM_RC } from '../wire/rc.ts';
import {
  type EccPoint,
  type Public,
  type RsaParms,
  type Sensitive,
  type SymDef,
  TPMS_ECC_POINT,
  TPMT_SENSITIVE,
} from '../wire/structures.ts';
import type { TpmObject } from './objects.ts';
import { parsing, RcError } from './rc-error.ts';
import { eccSecret, rsaSecret } from './secret-sharing.ts';
import { AES_BLOCK_BYTES, openOuterWrapper, protectionSymDef } from './storage.ts';

const ZERO_IV = Buffer.alloc(AES_BLOCK_BYTES);

/**
 * inSymSeed -> seed (Part 1 Annex B.10 for RSA, Annex C.6 for ECC; libtpms
 * CryptSecretDecrypt). RSA: RSAES-OAEP with the parent's nameAlg (a storage parent has no scheme
 * of its own) and label "DUPLICATE\0". ECC: inSymSeed is the ephemeral point Qe, and
 * seed = KDFe(nameAlg, x(d * Qe), "DUPLICATE", Qe.x, parent.x, digestBits). `param` is the
 * parameter number of inSymSeed (4 in TPM2_Import).
 */
export function decryptSeed(parent: TpmObject, inSymSeed: Buffer, param: number): Buffer {
  const pub = parent.publicArea;
  const { digestSize } = requireHash(pub.nameAlg);
  if (pub.type === TPM_ALG.RSA) {
    const modulusBytes = (pub.parameters as RsaParms).keyBits / 8;
    if (inSymSeed.length !== modulusBytes) throw new RcError(rcParam(TPM_RC.SIZE, param));
    const seed = rsaSecret(parent, 'DUPLICATE', inSymSeed);
    // A seed longer than the nameAlg digest is refused like libtpms does (TPM_RC_VALUE).
    if (seed === undefined || seed.length > digestSize)
      throw new RcError(rcParam(TPM_RC.VALUE, param));
    return seed;
  }
  if (pub.type === TPM_ALG.ECC) {
    const point: EccPoint = parsing(param, () => unmarshal(TPMS_ECC_POINT, inSymSeed));
    const seed = eccSecret(parent, point, 'DUPLICATE');
    if (seed === undefined) throw new RcError(rcParam(TPM_RC.ECC_POINT, param));
    return seed;
  }
  // A symmetric parent cannot do key exchange (Part 3 §13.3: TPM_RC_TYPE for parentHandle).
  throw new RcError(rcHandle(TPM_RC.TYPE, 1));
}

export interface DuplicateInput {
  /** The new parent's public area: its nameAlg and symmetric definition key the outer wrapper. */
  readonly parent: Public;
  /** The outer-wrapper seed; empty when the blob has no outer wrapper. */
  readonly seed: Uint8Array;
  /** Name(objectPublic). */
  readonly name: Uint8Array;
  readonly duplicate: Uint8Array;
  /** TPM2_Import symmetricAlg: NULL when there is no inner wrapper. */
  readonly symmetricAlg: SymDef;
  readonly encryptionKey: Uint8Array;
  /** objectPublic.nameAlg: the inner integrity hash. */
  readonly objectNameAlg: number;
  /** Parameter number of `duplicate` (3 in TPM2_Import). */
  readonly param: number;
}

/**
 * The duplication blob -> TPMT_SENSITIVE (libtpms DuplicateToSensitive). A bad outer HMAC or a
 * bad inner integrity digest is TPM_RC_INTEGRITY on `duplicate` (0x3DF in TPM2_Import, as swtpm
 * answers); a structure that does not unmarshal gets its unmarshalling code on `duplicate`.
 */
export function unwrapDuplicate(input: DuplicateInput): Sensitive {
  const { param, name } = input;
  let data: Uint8Array = input.duplicate;

  if (input.seed.length > 0) {
    // Outer wrapper (Part 1 §23.3.2.3): HMAC over the encrypted bytes first, then decrypt.
    const { keys, protectedPart } = openOuterWrapper(
      input.parent.nameAlg,
      input.seed,
      name,
      protectionSymDef(input.parent).keyBits,
      data,
      param,
    );
    data = cfbDecrypt(keys.symKey, ZERO_IV, protectedPart);
  }

  if (input.symmetricAlg.algorithm !== TPM_ALG.NULL) {
    // Inner wrapper (Part 1 §23.3.2.2): always CFB with a zero IV, whatever mode was named,
    // like libtpms. The key length was checked against keyBits by the caller.
    const clear = cfbDecrypt(input.encryptionKey, ZERO_IV, data);
    // The digest's size field is itself encrypted: with the wrong key it is noise, which is an
    // integrity failure, not a format error (libtpms would answer its unmarshalling code here).
    if (clear.length < 2) throw new RcError(rcParam(TPM_RC.INTEGRITY, param));
    const digestLen = clear.readUInt16BE(0);
    if (digestLen > clear.length - 2) throw new RcError(rcParam(TPM_RC.INTEGRITY, param));
    const innerIntegrity = clear.subarray(2, 2 + digestLen);
    const sens2B = clear.subarray(2 + digestLen);
    const expected = digest(input.objectNameAlg, sens2B, name);
    if (!timingSafeEqualBytes(expected, innerIntegrity))
      throw new RcError(rcParam(TPM_RC.INTEGRITY, param));
    data = sens2B;
  }

  // TPM2B_SENSITIVE: the size must cover exactly what is left (libtpms: TPM_RC_SIZE).
  if (data.length < 2) throw new RcError(rcParam(TPM_RC.INSUFFICIENT, param));
  const size = (data[0]! << 8) | data[1]!;
  if (size + 2 !== data.length) throw new RcError(rcParam(TPM_RC.SIZE, param));
  return parsing(param, () => unmarshal(TPMT_SENSITIVE, data.subarray(2)));
}
