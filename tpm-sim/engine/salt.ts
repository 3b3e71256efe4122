/**
 * Decrypting a session salt (Part 1 §19.6.10 and Annex B.10.3 / C.6.1): RSA-OAEP with label
 * "SECRET" for an RSA tpmKey, ECDH + KDFe("SECRET") for an ECC tpmKey.
 */

import { ecdhZ } from '../crypto/ecc.ts';
import { hashInfo } from '../crypto/hash.ts';
import { kdfe } from '../crypto/kdf.ts';
import { oaepDecrypt } from '../crypto/rsa-encrypt.ts';
import { unmarshal, WireError } from '../wire/codec.ts';
import { TPM_ALG, TPMA_OBJECT } from '../wire/constants.ts';
import { rcHandle, rcParam, TPM_RC } from '../wire/rc.ts';
import { type EccParms, type EccPoint, TPMS_ECC_POINT } from '../wire/structures.ts';
import { privateKeyOf } from './key-cache.ts';
import { has, type TpmObject } from './objects.ts';
import { RcError } from './rc-error.ts';

const SECRET_LABEL = Buffer.from('SECRET\0', 'latin1');

export function decryptSalt(key: TpmObject, encryptedSalt: Buffer): Buffer {
  const pub = key.publicArea;
  if (!has(pub.objectAttributes, TPMA_OBJECT.decrypt))
    throw new RcError(rcHandle(TPM_RC.ATTRIBUTES, 1));
  const info = hashInfo(pub.nameAlg);
  if (!info) throw new RcError(rcHandle(TPM_RC.HASH, 1));
  if (pub.type === TPM_ALG.RSA) {
    const salt = oaepDecrypt(privateKeyOf(key), pub.nameAlg, SECRET_LABEL, encryptedSalt);
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
    const params = pub.parameters as EccParms;
    const own = pub.unique as EccPoint;
    const z = ecdhZ(params.curveID, key.sensitive!.sensitive, point.x, point.y);
    if (!z) throw new RcError(rcParam(TPM_RC.ECC_POINT, 2));
    return kdfe(pub.nameAlg, z, 'SECRET', point.x, own.x, info.digestSize * 8);
  }
  throw new RcError(rcHandle(TPM_RC.KEY, 1));
}
