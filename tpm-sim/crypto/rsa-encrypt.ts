/**
 * RSA encryption schemes the TPM offers in TPM2_RSA_Encrypt / TPM2_RSA_Decrypt (TPM 2.0 Part 3
 * §14.2, §14.3) and uses for secret sharing (Part 1 Annex B.10: salts, duplication seeds and
 * credential seeds are RSAES-OAEP encrypted with labels "SECRET", "DUPLICATE", "IDENTITY"):
 *   RSAES-OAEP (RFC 8017 §7.1), with MGF1 over the same hash as the label hash;
 *   RSAES-PKCS1-v1_5 (RFC 8017 §7.2);
 *   raw RSA without padding (RSAEP/RSADP, RFC 8017 §5.1), the TPM_ALG_NULL scheme.
 * Inputs come from the wire, so every failure returns undefined instead of throwing.
 * Labels are used byte for byte: TPM labels such as "DUPLICATE\0" carry their NUL.
 */
import {
  constants,
  type KeyObject,
  privateDecrypt,
  publicEncrypt,
  type RsaPrivateKey,
} from 'node:crypto';
import { leftPad } from './bigint.ts';
import { type HashInfo, hashInfo } from './hash.ts';
import { modulusBytes } from './rsa-modulus.ts';

/**
 * The node:crypto options for RSAES-OAEP with MGF1 over the label hash (RFC 8017 §7.1). An empty
 * label is passed as none: RFC 8017 §7.1.1 step 2a takes a missing label as the empty string.
 */
function oaepOptions(key: KeyObject, info: HashInfo, label: Uint8Array): RsaPrivateKey {
  return {
    key,
    padding: constants.RSA_PKCS1_OAEP_PADDING,
    oaepHash: info.nodeName,
    ...(label.length > 0 ? { oaepLabel: label } : {}),
  };
}

/**
 * Raw RSA, RSAEP or RSADP (RFC 8017 §5.1.1, §5.1.2), with the input left-padded to the modulus
 * length; undefined if it is longer than that or OpenSSL refuses it (not below n).
 */
function rawRsa(
  op: (options: RsaPrivateKey, input: Uint8Array) => Buffer<ArrayBuffer>,
  key: KeyObject,
  input: Uint8Array,
): Buffer<ArrayBuffer> | undefined {
  const padded = leftPad(input, modulusBytes(key));
  if (padded === undefined) return undefined;
  try {
    return op({ key, padding: constants.RSA_NO_PADDING }, padded);
  } catch {
    return undefined;
  }
}

/** RSAES-OAEP encryption (RFC 8017 §7.1.1); undefined if the message is too long for the key. */
export function oaepEncrypt(
  publicKey: KeyObject,
  hashAlg: number,
  label: Uint8Array,
  message: Uint8Array,
): Buffer<ArrayBuffer> | undefined {
  const info = hashInfo(hashAlg);
  if (info === undefined) return undefined;
  // §7.1.1 step 1b: mLen <= k - 2hLen - 2.
  if (message.length > modulusBytes(publicKey) - 2 * info.digestSize - 2) return undefined;
  return publicEncrypt(oaepOptions(publicKey, info, label), message);
}

/** RSAES-OAEP decryption (RFC 8017 §7.1.2); undefined on any decryption error. */
export function oaepDecrypt(
  privateKey: KeyObject,
  hashAlg: number,
  label: Uint8Array,
  ciphertext: Uint8Array,
): Buffer<ArrayBuffer> | undefined {
  const info = hashInfo(hashAlg);
  if (info === undefined) return undefined;
  try {
    return privateDecrypt(oaepOptions(privateKey, info, label), ciphertext);
  } catch {
    return undefined;
  }
}

/** RSAES-PKCS1-v1_5 encryption (RFC 8017 §7.2.1); undefined if the message is too long. */
export function rsaesEncrypt(
  publicKey: KeyObject,
  message: Uint8Array,
): Buffer<ArrayBuffer> | undefined {
  if (message.length > modulusBytes(publicKey) - 11) return undefined;
  return publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, message);
}

/**
 * RSAES-PKCS1-v1_5 decryption (RFC 8017 §7.2.2); undefined on a decryption error.
 *
 * Node 20 refuses RSA_PKCS1_PADDING in privateDecrypt (CVE-2023-46809, the Marvin timing attack)
 * unless OpenSSL does implicit rejection, which the bundled 3.0 does not. TPM2_RSA_Decrypt must
 * still offer the scheme, so the padding is checked here after a raw RSA operation. This is a
 * padding oracle by construction, as the scheme is in every TPM (a bad padding yields an error
 * code); the check at least scans the whole block instead of stopping at the first mismatch.
 */
export function rsaesDecrypt(
  privateKey: KeyObject,
  ciphertext: Uint8Array,
): Buffer<ArrayBuffer> | undefined {
  const k = modulusBytes(privateKey);
  if (k < 11 || ciphertext.length !== k) return undefined;
  const em = rsaRawDecrypt(privateKey, ciphertext);
  if (em === undefined) return undefined;
  // EM = 0x00 || 0x02 || PS (>= 8 nonzero bytes) || 0x00 || M
  let bad = em[0]! | (em[1]! ^ 0x02);
  let sep = 0;
  for (let i = 2; i < k; i++) {
    const isZero = em[i] === 0 ? 1 : 0;
    if (sep === 0 && isZero === 1) sep = i;
  }
  bad |= sep === 0 ? 1 : 0;
  bad |= sep !== 0 && sep < 10 ? 1 : 0;
  return bad === 0 ? em.subarray(sep + 1) : undefined;
}

/**
 * Raw RSA encryption c = m^e mod n (RFC 8017 §5.1.1), the TPM_ALG_NULL scheme. A message shorter
 * than the modulus is left-padded with zeros; undefined if it is longer or not below n.
 */
export function rsaRawEncrypt(
  publicKey: KeyObject,
  message: Uint8Array,
): Buffer<ArrayBuffer> | undefined {
  return rawRsa(publicEncrypt, publicKey, message);
}

/** Raw RSA decryption m = c^d mod n (RFC 8017 §5.1.2), at the modulus length; undefined if c >= n. */
export function rsaRawDecrypt(
  privateKey: KeyObject,
  ciphertext: Uint8Array,
): Buffer<ArrayBuffer> | undefined {
  return rawRsa(privateDecrypt, privateKey, ciphertext);
}
