/**
 * `session_key_jwe`: the PRT session key encrypted to the device's transport key (§4.4), built
 * exactly as Entra builds it and read the way clients read it [KAT][CJWT][OAPXBC 3.2.5.1.2.2].
 *
 * - Header: `{"enc":"A256GCM","alg":"RSA-OAEP"}`, in that member order.
 * - Encrypted key: RSA-OAEP with SHA-1 and MGF1-SHA-1 (JOSE "RSA-OAEP") of the 32-byte session key.
 *   The CEK is the session key itself.
 * - IV 12 bytes; the A256GCM plaintext is the single byte 0x20; tag 16 bytes.
 * - The GCM tag is computed over EMPTY additional data, not over the protected header as RFC 7516
 *   §5.1 step 14 requires; the real sample only verifies that way [KAT].
 *
 * Clients only need the encrypted key: "the relevant part of the JWE is the encrypted key section"
 * [OAPXBC 3.2.5.1.2.2]. Checking the GCM payload with the recovered key is optional.
 */
import {
  constants,
  createCipheriv,
  createDecipheriv,
  type KeyObject,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';
import { fromBase64Url, toBase64Url } from './base64.ts';
import { decodeJweContent, splitCompactJwe } from './compact-jwe.ts';
import { decryptFailed, malformed } from './errors.ts';
import type { JsonObject } from './json.ts';
import { requireRsaKey, requireSessionKey, SESSION_KEY_BYTES } from './key-checks.ts';
import { MAX_RSA_BITS, MAX_SESSION_KEY_JWE_LENGTH, MIN_RSA_BITS } from './limits.ts';

/** The protected header exactly as Entra sends it [KAT] (§4.4). */
export const SESSION_KEY_JWE_HEADER = '{"enc":"A256GCM","alg":"RSA-OAEP"}';

/** The one-byte A256GCM plaintext Entra encrypts [KAT][AADI-PRTU] ("always one byte: 32"). */
export const SESSION_KEY_JWE_PAYLOAD = 0x20;

const GCM_IV_BYTES = 12;
const GCM_TAG_BYTES = 16;
// Entra's payload is one byte; the payload is meaningless to clients, so anything much longer is
// not a session_key_jwe we know.
const MAX_PAYLOAD_BYTES = 64;
const WHAT = 'session_key_jwe';

/** A `session_key_jwe` split into its decoded parts (RFC 7516 §7.1 order). */
export interface ParsedSessionKeyJwe {
  readonly header: JsonObject;
  readonly headerB64: string;
  readonly encryptedKey: Buffer;
  readonly iv: Buffer;
  readonly ciphertext: Buffer;
  readonly tag: Buffer;
}

export interface BuildSessionKeyJweOptions {
  /** A fixed 12-byte GCM IV, for reproducible tests only; random by default. */
  iv?: Uint8Array;
}

/**
 * Encrypts `sessionKey` (32 bytes) to the transport public key the way Entra does (§4.4): cloud
 * side, once per PRT issuance. RSA-OAEP pads randomly, so the output differs on every call.
 */
export function buildSessionKeyJwe(
  sessionKey: Uint8Array,
  transportPublicKey: KeyObject,
  options: BuildSessionKeyJweOptions = {},
): string {
  requireSessionKey(sessionKey);
  requireRsaKey(transportPublicKey, 'public');
  const iv = options.iv ?? randomBytes(GCM_IV_BYTES);
  if (!(iv instanceof Uint8Array) || iv.length !== GCM_IV_BYTES) {
    throw new RangeError(`iv must be ${GCM_IV_BYTES} bytes`);
  }
  const encryptedKey = publicEncrypt(
    { key: transportPublicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' },
    sessionKey,
  );
  const cipher = createCipheriv('aes-256-gcm', sessionKey, iv, { authTagLength: GCM_TAG_BYTES });
  // No setAAD: Entra's tag covers empty additional data [KAT].
  const ciphertext = Buffer.concat([
    cipher.update(Buffer.of(SESSION_KEY_JWE_PAYLOAD)),
    cipher.final(),
  ]);
  return [
    toBase64Url(Buffer.from(SESSION_KEY_JWE_HEADER, 'utf8')),
    toBase64Url(encryptedKey),
    toBase64Url(iv),
    toBase64Url(ciphertext),
    toBase64Url(cipher.getAuthTag()),
  ].join('.');
}

/**
 * Splits and checks a `session_key_jwe` without decrypting anything: length cap, 5 parts, header
 * alg RSA-OAEP / enc A256GCM, encrypted key 64..1024 bytes (512..8192-bit RSA), IV 12 bytes,
 * payload at most 64 bytes, tag 16 bytes.
 */
export function parseSessionKeyJwe(jwe: string): ParsedSessionKeyJwe {
  const parts = splitCompactJwe(jwe, WHAT, MAX_SESSION_KEY_JWE_LENGTH, 'RSA-OAEP');
  const { header, headerB64 } = parts;
  const encryptedKey = fromBase64Url(parts.keyB64, { what: `${WHAT} encrypted key` });
  const { iv, ciphertext, tag } = decodeJweContent(parts, WHAT);
  if (encryptedKey.length < MIN_RSA_BITS / 8 || encryptedKey.length > MAX_RSA_BITS / 8) {
    throw malformed(WHAT, 'encrypted key size is not that of a supported RSA key');
  }
  if (iv.length !== GCM_IV_BYTES) throw malformed(WHAT, `iv must be ${GCM_IV_BYTES} bytes`);
  if (ciphertext.length > MAX_PAYLOAD_BYTES) {
    throw malformed(WHAT, `ciphertext longer than ${MAX_PAYLOAD_BYTES} bytes`);
  }
  if (tag.length !== GCM_TAG_BYTES) throw malformed(WHAT, `tag must be ${GCM_TAG_BYTES} bytes`);
  return { header, headerB64, encryptedKey, iv, ciphertext, tag };
}

/**
 * Decrypts the A256GCM payload with a recovered session key, with EMPTY additional data [KAT].
 * Entra's payload is the byte 0x20. A bad tag is ERR_PROTOCOL_DECRYPT.
 */
export function openSessionKeyJwePayload(
  parsed: ParsedSessionKeyJwe,
  sessionKey: Uint8Array,
): Buffer {
  requireSessionKey(sessionKey);
  try {
    const decipher = createDecipheriv('aes-256-gcm', sessionKey, parsed.iv, {
      authTagLength: GCM_TAG_BYTES,
    });
    decipher.setAuthTag(parsed.tag);
    return Buffer.concat([decipher.update(parsed.ciphertext), decipher.final()]);
  } catch {
    throw decryptFailed(WHAT);
  }
}

export interface UnwrapOptions {
  /** Also check the GCM tag with the recovered key (clients normally skip it, §4.4). */
  verifyPayload?: boolean;
}

function finishUnwrap(
  parsed: ParsedSessionKeyJwe,
  recovered: unknown,
  options: UnwrapOptions,
): Buffer {
  if (!(recovered instanceof Uint8Array)) throw new TypeError('decrypt must return a Uint8Array');
  if (recovered.length !== SESSION_KEY_BYTES) throw decryptFailed(WHAT);
  const sessionKey = Buffer.from(recovered);
  if (options.verifyPayload === true) {
    try {
      openSessionKeyJwePayload(parsed, sessionKey);
    } catch (err) {
      // A key that fails its own check is not handed out, and not left behind either.
      sessionKey.fill(0);
      throw err;
    }
  }
  return sessionKey;
}

function parsedOf(jwe: string | ParsedSessionKeyJwe): ParsedSessionKeyJwe {
  return typeof jwe === 'string' ? parseSessionKeyJwe(jwe) : jwe;
}

/**
 * Recovers the session key with a caller-supplied RSA-OAEP (SHA-1) decryption of the encrypted
 * key, so a TPM-held transport key can do it (§1.2, §5.6). Errors thrown by `decrypt` pass through
 * unchanged (they belong to the caller's domain, e.g. a TpmError); a result that is not 32 bytes
 * is ERR_PROTOCOL_DECRYPT.
 */
export async function unwrapSessionKeyJweWith(
  jwe: string | ParsedSessionKeyJwe,
  decrypt: (encryptedKey: Buffer) => Promise<Uint8Array>,
  options: UnwrapOptions = {},
): Promise<Buffer> {
  if (typeof decrypt !== 'function') throw new TypeError('decrypt must be a function');
  const parsed = parsedOf(jwe);
  const recovered = await decrypt(Buffer.from(parsed.encryptedKey));
  return finishUnwrap(parsed, recovered, options);
}

/**
 * Recovers the session key with a node transport private key. Every RSA failure (wrong key, bad
 * padding, wrong size) is the same generic ERR_PROTOCOL_DECRYPT.
 */
export function unwrapSessionKeyJwe(
  jwe: string | ParsedSessionKeyJwe,
  transportPrivateKey: KeyObject,
  options: UnwrapOptions = {},
): Buffer {
  const bits = requireRsaKey(transportPrivateKey, 'private');
  const parsed = parsedOf(jwe);
  if (parsed.encryptedKey.length !== Math.ceil(bits / 8)) throw decryptFailed(WHAT);
  let recovered: Buffer;
  try {
    recovered = privateDecrypt(
      { key: transportPrivateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' },
      parsed.encryptedKey,
    );
  } catch {
    throw decryptFailed(WHAT);
  }
  return finishUnwrap(parsed, recovered, options);
}
