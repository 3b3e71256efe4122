/**
 * Decrypting a session salt (Part 1 §19.6.10 and Annex B.10.3 / C.6.1): RSA-OAEP with label
 * "SECRET" for an RSA tpmKey, ECDH + KDFe("SECRET") for an ECC tpmKey (secret-sharing.ts).
 */

import { hashInfo } from '../crypto/hash.ts';
import { unmarshal, WireError } from '../wire/codec.ts';
import { TPM_ALG, TPMA_OBJECT } from '../wire/constants.ts';
import { rcHandle, rcParam, TPM_RC } from '../wire/rc.ts';
import { type EccPoint, TPMS_ECC_POINT } from '../wire/structures.ts';
import { has, type TpmObject } from './objects.ts';
import { RcError } from './rc-error.ts';
import { eccSecret, rsaSecret } from './secret-sharing.ts';

export function decryptSalt(key: TpmObject, encryptedSalt: Buffer): Buffer {
  const pub = key.publicArea;
  if (!has(pub.objectAttributes, TPMA_OBJECT.decrypt))
    throw new RcError(rcHandle(TPM_RC.ATTRIBUTES, 1));
  const info = hashInfo(pub.nameAlg);
  if (!info) throw new RcError(rcHandle(TPM_RC.HASH, 1));
  if (pub.type === TPM_ALG.RSA) {
    const salt = rsaSecret(key, 'SECRET', encryptedSalt);
    if (!salt) throw new RcError(rcParam(TPM_RC.VALUE, 2));
    return salt;
  }
  if (pub.type === TPM_ALG.ECC) {
    let point: EccPoint;
    try {
      point = unmarshal(TPMS_ECC_POINT, encryptedSalt);
    } catch (err) {
      if (err instanceof WireError) throw new RcError(rcParam(TPM_RC.ECC_POINT, 2));
      throw err;
    }
    const salt = eccSecret(key, point, 'SECRET');
    if (!salt) throw new RcError(rcParam(TPM_RC.ECC_POINT, 2));
    return salt;
  }
  throw new RcError(rcHandle(TPM_RC.KEY, 1));
}
