/**
 * TPM2_RSA_Encrypt (Part 3 §14.2) and TPM2_RSA_Decrypt (Part 3 §14.3): RSAES-OAEP, RSAES-PKCS1-v1_5
 * and raw RSA (scheme TPM_ALG_NULL) with an RSA key that has the decrypt attribute.
 */
import {
  oaepDecrypt,
  oaepEncrypt,
  rsaesDecrypt,
  rsaesEncrypt,
  rsaRawDecrypt,
  rsaRawEncrypt,
} from '../../crypto/rsa.ts';
import { TPM_ALG, TPMA_OBJECT } from '../../wire/constants.ts';
import { rcHandle, rcParam, TPM_RC } from '../../wire/rc.ts';
import type { Public, RsaParms, Scheme } from '../../wire/structures.ts';
import type { Handler } from '../handler.ts';
import { privateKeyOf, publicKeyOf } from '../key-cache.ts';
import { sensitiveForAuth, type TpmObject } from '../objects.ts';
import { RcError } from '../rc-error.ts';
import { mergeSchemes } from '../schemes.ts';

const A = TPM_ALG;

/**
 * Part 3 §14.2/§14.3: a label, if present, must end in its terminating zero octet, which is part
 * of the OAEP label (as in the TPM's own labels such as "DUPLICATE\0", Part 1 Annex B.10.2).
 * Callers append it themselves (tpm2-tools does); the TPM rejects a label without it with
 * TPM_RC_VALUE for parameter 3 rather than guessing.
 */
function checkLabel(label: Buffer): void {
  if (label.length !== 0 && label[label.length - 1] !== 0)
    throw new RcError(rcParam(TPM_RC.VALUE, 3));
}

/**
 * The encryption scheme (the reference's CryptRsaSelectScheme): the key's scheme unless it is
 * TPM_ALG_NULL, then the caller's (mergeSchemes); both given must agree in scheme and hash, else
 * TPM_RC_SCHEME for inScheme. Both NULL selects raw RSA (Part 3 §14.2: "If the scheme is
 * TPM_ALG_NULL, the message is encrypted without padding"). A key scheme that is no encryption
 * scheme (a sign-and-decrypt key with RSASSA) is TPM_RC_SCHEME too.
 */
function selectScheme(pub: Public, requested: Scheme): Scheme {
  const chosen = mergeSchemes((pub.parameters as RsaParms).scheme, requested);
  if (
    chosen === undefined ||
    (chosen.scheme !== A.OAEP && chosen.scheme !== A.RSAES && chosen.scheme !== A.NULL)
  ) {
    throw new RcError(rcParam(TPM_RC.SCHEME, 2));
  }
  return chosen;
}

/** TPM_RC_KEY unless the object is an RSA key (Part 3 §14.2/§14.3, error table). */
function rsaKey(obj: TpmObject): Public {
  const pub = obj.publicArea;
  if (pub.type !== A.RSA) throw new RcError(rcHandle(TPM_RC.KEY, 1));
  return pub;
}

/** `bytes` without leading zero octets: raw RSA takes the message as a number (Part 3 §14.2). */
function stripLeadingZeros(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length && bytes[i] === 0) i++;
  return bytes.subarray(i);
}

/**
 * Part 3 §14.2. Uses the public part only, so it needs no authorization and works on a
 * public-only object (LoadExternal). A message too long for the scheme, or (raw RSA) not below
 * the modulus, is TPM_RC_VALUE for parameter 1.
 */
export const RSA_Encrypt: Handler<'RSA_Encrypt'> = (ctx, p) => {
  const obj = ctx.handles[0]!.object!;
  const pub = rsaKey(obj);
  if (!(pub.objectAttributes & TPMA_OBJECT.decrypt))
    throw new RcError(rcHandle(TPM_RC.ATTRIBUTES, 1));
  checkLabel(p.label);
  const scheme = selectScheme(pub, p.inScheme);
  const key = publicKeyOf(obj);
  let out: Buffer | undefined;
  if (scheme.scheme === A.OAEP) out = oaepEncrypt(key, scheme.hashAlg, p.label, p.message);
  else if (scheme.scheme === A.RSAES) out = rsaesEncrypt(key, p.message);
  else out = rsaRawEncrypt(key, stripLeadingZeros(p.message));
  if (out === undefined) throw new RcError(rcParam(TPM_RC.VALUE, 1));
  return { response: { outData: out } };
};

/**
 * Part 3 §14.3. The key must be an unrestricted decryption key: a restricted decryption key is a
 * storage parent, whose secrets (seeds, salts) must never come out in clear. The ciphertext must
 * be exactly the modulus size (TPM_RC_SIZE). Any decryption or padding failure is a plain
 * TPM_RC_VALUE, the same code for every cause, so the response says nothing more about why.
 */
export const RSA_Decrypt: Handler<'RSA_Decrypt'> = (ctx, p) => {
  const obj = ctx.handles[0]!.object!;
  const pub = rsaKey(obj);
  const attrs = pub.objectAttributes;
  if (attrs & TPMA_OBJECT.restricted || !(attrs & TPMA_OBJECT.decrypt)) {
    throw new RcError(rcHandle(TPM_RC.ATTRIBUTES, 1));
  }
  sensitiveForAuth(obj); // TPM_RC_AUTH_UNAVAILABLE for a public-only object
  checkLabel(p.label);
  const scheme = selectScheme(pub, p.inScheme);
  if (p.cipherText.length !== (pub.unique as Buffer).length)
    throw new RcError(rcParam(TPM_RC.SIZE, 1));
  const key = privateKeyOf(obj);
  let out: Buffer | undefined;
  if (scheme.scheme === A.OAEP) out = oaepDecrypt(key, scheme.hashAlg, p.label, p.cipherText);
  else if (scheme.scheme === A.RSAES) out = rsaesDecrypt(key, p.cipherText);
  else out = rsaRawDecrypt(key, p.cipherText);
  if (out === undefined) throw new RcError(TPM_RC.VALUE);
  return { response: { message: out } };
};
