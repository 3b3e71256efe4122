/**
 * The encrypted token response (§6.2): the HTTP body of every session-key-signed token request is
 * a compact JWE `{"alg":"dir","enc":"A256GCM","ctx":<b64>}` with an empty encrypted-key part,
 * encrypted under KDFv1(session key, header ctx) (§5.5) [OAPXBC 3.2.5.1.3.2][RT-auth][KAT].
 *
 * Two cipher encodings are seen under the same header, told apart by the IV length (§6.2):
 * - IV 16 bytes, empty tag: AES-256-CBC with PKCS#7 padding, despite `enc:"A256GCM"`. This is the
 *   real Entra sample [KAT][AADI-PRTU][CJWT]. It has NO integrity protection of its own.
 * - IV 12 bytes, 16-byte tag: genuine AES-256-GCM with AAD = the ASCII base64url header segment
 *   (RFC 7516 §5.1 step 14) [RT-auth, ROADtools 3f11d25].
 * What makes Entra choose one or the other is not public; we encrypt GCM by default and can emit
 * CBC to exercise clients. The same format carries the Kerberos `clientKey` of a TGT (§4.3), so
 * the plaintext is returned as bytes; token responses are read with parseJsonObject.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { toBase64Url } from './base64.ts';
import { decodeJweContent, splitCompactJwe } from './compact-jwe.ts';
import { ctxText, newCtx, readCtx } from './ctx.ts';
import { decryptFailed, malformed, unsupported } from './errors.ts';
import { encodeJsonObject, type JsonObject } from './json.ts';
import { DERIVED_KEY_BYTES, deriveKeyV1 } from './kdf.ts';
import { requireSessionKey } from './key-checks.ts';
import { MAX_RESPONSE_JWE_LENGTH } from './limits.ts';

/** 'gcm': genuine AES-256-GCM, 12-byte IV. 'cbc': Entra's AES-256-CBC quirk, 16-byte IV. */
export type ResponseEncoding = 'gcm' | 'cbc';

const GCM_IV_BYTES = 12;
const CBC_IV_BYTES = 16;
const TAG_BYTES = 16;
const AES_BLOCK = 16;
const WHAT = 'response JWE';

/** A response JWE split into its parts, with the encoding its IV length selects. */
export interface ParsedResponseJwe {
  readonly header: JsonObject;
  readonly headerB64: string;
  /** The decoded header ctx: the KDFv1 context for the content key (§5.5). */
  readonly ctx: Buffer;
  readonly iv: Buffer;
  readonly ciphertext: Buffer;
  /** 16 bytes for 'gcm', empty for 'cbc'. */
  readonly tag: Buffer;
  readonly encoding: ResponseEncoding;
}

/** What decryption yields: the plaintext bytes and the facts a caller may want to log or check. */
export interface DecryptedResponse {
  readonly header: JsonObject;
  readonly ctx: Buffer;
  readonly encoding: ResponseEncoding;
  readonly plaintext: Buffer;
}

export interface EncryptResponseOptions {
  /** The server ctx; 24 fresh random bytes by default (§6.2). */
  ctx?: Uint8Array;
  /** 'gcm' (default) or 'cbc' to reproduce the real Entra sample's encoding. */
  encoding?: ResponseEncoding;
  /** A fixed IV (12 bytes for gcm, 16 for cbc), for reproducible tests only. */
  iv?: Uint8Array;
}

export interface DecryptResponseOptions {
  /**
   * Accept the unauthenticated CBC encoding (default true, because real Entra responses use it
   * [KAT]). A client that only talks to a GCM-speaking server can turn it off.
   */
  allowCbc?: boolean;
}

function plaintextBytes(plaintext: string | Uint8Array | JsonObject): Buffer {
  if (typeof plaintext === 'string') return Buffer.from(plaintext, 'utf8');
  if (plaintext instanceof Uint8Array) return Buffer.from(plaintext);
  return encodeJsonObject(plaintext);
}

/**
 * Encrypts a token response to the session key (cloud side, §6.2): header
 * `{"alg":"dir","enc":"A256GCM","ctx":<std b64>}` in Entra's member order, content key
 * KDFv1(sessionKey, ctx). `plaintext` is JSON text, raw bytes or an object to serialize.
 */
export function encryptResponse(
  sessionKey: Uint8Array,
  plaintext: string | Uint8Array | JsonObject,
  options: EncryptResponseOptions = {},
): string {
  requireSessionKey(sessionKey);
  const encoding = options.encoding ?? 'gcm';
  if (encoding !== 'gcm' && encoding !== 'cbc') {
    throw new RangeError("encoding must be 'gcm' or 'cbc'");
  }
  const ctx = options.ctx ?? newCtx();
  const header = { alg: 'dir', enc: 'A256GCM', ctx: ctxText(ctx) };
  const headerB64 = toBase64Url(Buffer.from(JSON.stringify(header), 'utf8'));
  const ivBytes = encoding === 'gcm' ? GCM_IV_BYTES : CBC_IV_BYTES;
  const iv = options.iv ?? randomBytes(ivBytes);
  if (!(iv instanceof Uint8Array) || iv.length !== ivBytes) {
    throw new RangeError(`iv must be ${ivBytes} bytes for ${encoding}`);
  }
  const key = deriveKeyV1(sessionKey, ctx);
  const data = plaintextBytes(plaintext);
  let ciphertext: Buffer;
  let tag: Buffer;
  if (encoding === 'gcm') {
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(headerB64, 'ascii'));
    ciphertext = Buffer.concat([cipher.update(data), cipher.final()]);
    tag = cipher.getAuthTag();
  } else {
    const cipher = createCipheriv('aes-256-cbc', key, iv);
    ciphertext = Buffer.concat([cipher.update(data), cipher.final()]);
    tag = Buffer.alloc(0);
  }
  key.fill(0);
  // Empty second part: "dir" has no encrypted key (RFC 7516 §4.1.1, RFC 7518 §4.5).
  const jwe = `${headerB64}..${toBase64Url(iv)}.${toBase64Url(ciphertext)}.${toBase64Url(tag)}`;
  if (jwe.length > MAX_RESPONSE_JWE_LENGTH) {
    throw new RangeError(
      `plaintext too large: the JWE would exceed ${MAX_RESPONSE_JWE_LENGTH} characters`,
    );
  }
  return jwe;
}

/**
 * Splits and checks a response JWE without decrypting: length cap, 5 parts, header alg dir /
 * enc A256GCM with a standard-base64 ctx of 16..64 bytes, empty encrypted key, and either
 * (IV 12, tag 16) or (IV 16, empty tag, ciphertext a non-empty multiple of 16).
 */
export function parseResponseJwe(jwe: string): ParsedResponseJwe {
  const parts = splitCompactJwe(jwe, WHAT, MAX_RESPONSE_JWE_LENGTH, 'dir');
  const { header, headerB64 } = parts;
  const ctx = readCtx(header, WHAT);
  if (parts.keyB64 !== '') throw malformed(WHAT, 'alg dir requires an empty encrypted key');
  const { iv, ciphertext, tag } = decodeJweContent(parts, WHAT);
  let encoding: ResponseEncoding;
  if (iv.length === GCM_IV_BYTES) {
    if (tag.length !== TAG_BYTES) throw malformed(WHAT, `GCM tag must be ${TAG_BYTES} bytes`);
    encoding = 'gcm';
  } else if (iv.length === CBC_IV_BYTES) {
    if (tag.length !== 0) throw malformed(WHAT, 'CBC encoding has an empty tag');
    if (ciphertext.length === 0 || ciphertext.length % AES_BLOCK !== 0) {
      throw malformed(WHAT, 'CBC ciphertext is not a whole number of blocks');
    }
    encoding = 'cbc';
  } else {
    throw malformed(WHAT, `iv must be ${GCM_IV_BYTES} (GCM) or ${CBC_IV_BYTES} (CBC) bytes`);
  }
  return { header, headerB64, ctx, iv, ciphertext, tag, encoding };
}

function decryptWithKey(parsed: ParsedResponseJwe, key: unknown): DecryptedResponse {
  if (!(key instanceof Uint8Array) || key.length !== DERIVED_KEY_BYTES) {
    throw new RangeError(`the response key must be a ${DERIVED_KEY_BYTES}-byte Uint8Array`);
  }
  let plaintext: Buffer;
  try {
    if (parsed.encoding === 'gcm') {
      const decipher = createDecipheriv('aes-256-gcm', key, parsed.iv, {
        authTagLength: TAG_BYTES,
      });
      decipher.setAAD(Buffer.from(parsed.headerB64, 'ascii'));
      decipher.setAuthTag(parsed.tag);
      plaintext = Buffer.concat([decipher.update(parsed.ciphertext), decipher.final()]);
    } else {
      // PKCS#7 padding is checked by OpenSSL; a bad pad is reported exactly like a bad GCM tag.
      const decipher = createDecipheriv('aes-256-cbc', key, parsed.iv);
      plaintext = Buffer.concat([decipher.update(parsed.ciphertext), decipher.final()]);
    }
  } catch {
    throw decryptFailed(WHAT);
  }
  return { header: parsed.header, ctx: parsed.ctx, encoding: parsed.encoding, plaintext };
}

// Refuses CBC, when asked to, before any key is derived (a TPM round trip for nothing otherwise).
function parsedOf(
  jwe: string | ParsedResponseJwe,
  options: DecryptResponseOptions,
): ParsedResponseJwe {
  const parsed = typeof jwe === 'string' ? parseResponseJwe(jwe) : jwe;
  if (parsed.encoding === 'cbc' && options.allowCbc === false) {
    throw unsupported(WHAT, 'CBC-encoded responses are not accepted');
  }
  return parsed;
}

/**
 * Decrypts a response JWE (client side). `key` is either the 32-byte session key, from which the
 * content key is KDFv1(sessionKey, ctx) (§5.5), or a function returning the 32-byte content key
 * for a ctx (a derived key obtained elsewhere). Any failure to decrypt is ERR_PROTOCOL_DECRYPT.
 */
export function decryptResponse(
  jwe: string | ParsedResponseJwe,
  key: Uint8Array | ((ctx: Buffer) => Uint8Array),
  options: DecryptResponseOptions = {},
): DecryptedResponse {
  if (typeof key !== 'function') requireSessionKey(key);
  const parsed = parsedOf(jwe, options);
  if (typeof key === 'function') return decryptWithKey(parsed, key(Buffer.from(parsed.ctx)));
  const derived = deriveKeyV1(key, parsed.ctx);
  try {
    return decryptWithKey(parsed, derived);
  } finally {
    derived.fill(0);
  }
}

/**
 * Decrypts a response JWE with the content key derived elsewhere, e.g. by a TPM-held session key:
 * `derive(ctx)` must return KDFv1's 32 bytes for that ctx (label "AzureAD-SecureConversation",
 * context = ctx, §5.5, §5.6). Errors thrown by `derive` pass through unchanged.
 */
export async function decryptResponseWith(
  jwe: string | ParsedResponseJwe,
  derive: (ctx: Buffer) => Promise<Uint8Array>,
  options: DecryptResponseOptions = {},
): Promise<DecryptedResponse> {
  if (typeof derive !== 'function') throw new TypeError('derive must be a function');
  const parsed = parsedOf(jwe, options);
  return decryptWithKey(parsed, await derive(Buffer.from(parsed.ctx)));
}
