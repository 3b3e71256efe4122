/**
 * Reading a compact JWE (RFC 7516 §7.1), the part both PRT-protocol JWEs share: the encrypted
 * token response (§6.2, alg `dir`) and `session_key_jwe` (§4.4, alg `RSA-OAEP`). Both use
 * enc A256GCM and neither accepts `crit` or `zip`. What each format requires of its encrypted key,
 * IV, ciphertext and tag stays with that format.
 */
import { fromBase64Url } from './base64.ts';
import { malformed, tooLarge, unsupported } from './errors.ts';
import { type JsonObject, parseJsonObject } from './json.ts';

/** A compact JWE cut into its five segments, with the header decoded and checked. */
export interface CompactJweParts {
  readonly header: JsonObject;
  readonly headerB64: string;
  readonly keyB64: string;
  readonly ivB64: string;
  readonly ciphertextB64: string;
  readonly tagB64: string;
}

/**
 * Checks, in this order: a string, at most `maxLength` characters, 5 parts, a header that is a
 * base64url JSON object with alg `alg` and enc A256GCM, and no `crit` or `zip` member.
 */
export function splitCompactJwe(
  jwe: string,
  what: string,
  maxLength: number,
  alg: string,
): CompactJweParts {
  if (typeof jwe !== 'string') throw new TypeError(`${what}: expected a string`);
  if (jwe.length > maxLength) throw tooLarge(what, jwe.length, maxLength);
  const parts = jwe.split('.');
  if (parts.length !== 5) throw malformed(what, `expected 5 parts, got ${parts.length}`);
  const [headerB64, keyB64, ivB64, ciphertextB64, tagB64] = parts as [
    string,
    string,
    string,
    string,
    string,
  ];
  const header = parseJsonObject(
    fromBase64Url(headerB64, { what: `${what} header` }),
    `${what} header`,
  );
  if (header.alg !== alg || header.enc !== 'A256GCM') {
    throw unsupported(what, `expected alg ${alg} and enc A256GCM`);
  }
  if (Object.hasOwn(header, 'crit') || Object.hasOwn(header, 'zip')) {
    throw unsupported(what, 'crit and zip are not supported');
  }
  return { header, headerB64, keyB64, ivB64, ciphertextB64, tagB64 };
}

/** Decodes the IV, ciphertext and tag segments, in that order; their sizes are the caller's. */
export function decodeJweContent(
  parts: CompactJweParts,
  what: string,
): { iv: Buffer; ciphertext: Buffer; tag: Buffer } {
  const iv = fromBase64Url(parts.ivB64, { what: `${what} iv` });
  const ciphertext = fromBase64Url(parts.ciphertextB64, { what: `${what} ciphertext` });
  const tag = fromBase64Url(parts.tagB64, { what: `${what} tag` });
  return { iv, ciphertext, tag };
}
