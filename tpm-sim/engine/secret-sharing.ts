/**
 * Secret sharing with a TPM key (Part 1 Annex B.10 for RSA, Annex C.6 for ECC; the reference's
 * CryptSecretDecrypt): how the TPM recovers a secret a caller sent under one of its keys. Session
 * salts use the label "SECRET" (salt.ts), duplication seeds "DUPLICATE" (duplication.ts); each
 * caller checks sizes and picks its own response codes.
 */
import { ecdhZ } from '../crypto/ecc.ts';
import { requireHash } from '../crypto/hash.ts';
import { kdfe } from '../crypto/kdf.ts';
import { oaepDecrypt } from '../crypto/rsa.ts';
import type { EccParms, EccPoint } from '../wire/structures.ts';
import { privateKeyOf } from './key-cache.ts';
import type { TpmObject } from './objects.ts';

/**
 * RSA (Annex B.10.3): RSAES-OAEP with the key's nameAlg and the label including its terminating
 * NUL. Undefined when decryption fails. Key errors (no private part, TPM_RC_BINDING) come from
 * privateKeyOf.
 */
export function rsaSecret(
  key: TpmObject,
  label: string,
  encrypted: Uint8Array,
): Buffer | undefined {
  const oaepLabel = Buffer.from(`${label}\0`, 'latin1');
  return oaepDecrypt(privateKeyOf(key), key.publicArea.nameAlg, oaepLabel, encrypted);
}

/**
 * ECC (Annex C.6.1, one-pass Diffie-Hellman): secret = KDFe(nameAlg, x(d·Qe), label, Qe.x, Qs.x,
 * digest bits of nameAlg), where Qe is the caller's ephemeral point and Qs the key's public
 * point. Undefined when Qe is not on the key's curve. The key must have its private part.
 */
export function eccSecret(key: TpmObject, qe: EccPoint, label: string): Buffer | undefined {
  const pub = key.publicArea;
  const z = ecdhZ((pub.parameters as EccParms).curveID, key.sensitive!.sensitive, qe.x, qe.y);
  if (z === undefined) return undefined;
  const own = pub.unique as EccPoint;
  return kdfe(pub.nameAlg, z, label, qe.x, own.x, requireHash(pub.nameAlg).digestSize * 8);
}
