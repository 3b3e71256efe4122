/**
 * Compact JWS (RFC 7515 §7.1) as the PRT protocol uses it: HS256 under a session-derived key
 * (§6.1, §6.3) and RS256 under the device key (§4.2, x-ms-DeviceCredential).
 *
 * A parsed token keeps the exact segments and bytes that arrived. KDFv2 hashes the raw payload
 * bytes and every signature covers the received segments, so nothing here ever re-serializes
 * received JSON (§5.2).
 */
import { constants, createHmac, type KeyObject, sign, timingSafeEqual, verify } from 'node:crypto';
import { fromBase64, fromBase64Url, toBase64Url } from './base64.ts';
import { malformed, signatureFailed, tooLarge, unsupported } from './errors.ts';
import { encodeJsonObject, type JsonObject, parseJsonObject } from './json.ts';
import { requireRsaKey } from './key-checks.ts';
import { MAX_CERT_DER_BYTES, MAX_JWT_LENGTH, MAX_X5C_CERTS } from './limits.ts';

/** A compact JWS as received: decoded JSON plus the exact bytes it came from. */
export interface ParsedJws {
  readonly header: JsonObject;
  readonly payload: JsonObject;
  /** The three segments exactly as received. */
  readonly headerB64: string;
  readonly payloadB64: string;
  readonly signatureB64: string;
  /** The decoded header and payload JSON bytes (KDFv2 hashes `payloadBytes`, §5.2). */
  readonly headerBytes: Buffer;
  readonly payloadBytes: Buffer;
  readonly signature: Buffer;
  /** ASCII(headerB64 || '.' || payloadB64), what the signature covers (RFC 7515 §5.1). */
  readonly signingInput: Buffer;
}

export interface ParseCompactOptions {
  /** A lower cap than MAX_JWT_LENGTH (never a higher one). */
  maxLength?: number;
  /** Name used in error messages, e.g. 'request' or 'x-ms-RefreshTokenCredential'. */
  what?: string;
}

/**
 * Parses a compact JWS without verifying it. Fails closed with a coded ProtocolError on: length
 * over the cap, a part count other than 3, non-canonical base64url, JSON that is not an object,
 * a header without a string `alg`, or any `crit` header (RFC 7515 §4.1.11: we understand no
 * extensions, so a critical one must be rejected).
 */
export function parseCompact(token: string, options: ParseCompactOptions = {}): ParsedJws {
  const what = options.what ?? 'JWS';
  const max = options.maxLength ?? MAX_JWT_LENGTH;
  if (!Number.isInteger(max) || max <= 0 || max > MAX_JWT_LENGTH) {
    throw new RangeError(`maxLength must be an integer in 1..${MAX_JWT_LENGTH}`);
  }
  if (typeof token !== 'string') throw new TypeError(`${what}: expected a string`);
  if (token.length > max) throw tooLarge(what, token.length, max);
  const parts = token.split('.');
  if (parts.length !== 3) throw malformed(what, `expected 3 parts, got ${parts.length}`);
  const [headerB64, payloadB64, signatureB64] = parts as [string, string, string];

  const headerBytes = fromBase64Url(headerB64, { what: `${what} header` });
  const payloadBytes = fromBase64Url(payloadB64, { what: `${what} payload` });
  const signature = fromBase64Url(signatureB64, { what: `${what} signature` });
  const header = parseJsonObject(headerBytes, `${what} header`);
  const payload = parseJsonObject(payloadBytes, `${what} payload`);
  if (typeof header.alg !== 'string') throw malformed(what, 'header alg missing or not a string');
  if (Object.hasOwn(header, 'crit')) throw unsupported(what, 'critical header extensions');

  return {
    header,
    payload,
    headerB64,
    payloadB64,
    signatureB64,
    headerBytes,
    payloadBytes,
    signature,
    signingInput: Buffer.from(`${headerB64}.${payloadB64}`, 'ascii'),
  };
}

/**
 * A JWS payload to sign: an object (serialized once with JSON.stringify) or the exact UTF-8 JSON
 * bytes. Pass bytes when the key depends on them (KDFv2, §5.2) so both use the same serialization.
 */
export type JwsPayload = JsonObject | Uint8Array;

/** The pieces of a JWS before signing: segments and the signing input. */
export interface JwsSigningInput {
  readonly headerB64: string;
  readonly payloadB64: string;
  readonly payloadBytes: Buffer;
  readonly signingInput: Buffer;
}

/**
 * Builds the signing input for `header` (whose `alg` must be `alg` or absent, in which case it is
 * put first) and `payload`. Payload bytes given as such must hold a JSON object.
 */
export function jwsSigningInput(
  alg: string,
  header: JsonObject,
  payload: JwsPayload,
): JwsSigningInput {
  if (typeof header !== 'object' || header === null) {
    throw new TypeError('header must be an object');
  }
  if (header.alg !== undefined && header.alg !== alg) {
    throw new TypeError(`header alg must be ${alg}, got ${String(header.alg)}`);
  }
  const headerBytes = encodeJsonObject(header.alg === undefined ? { alg, ...header } : header);
  let payloadBytes: Buffer;
  if (payload instanceof Uint8Array) {
    payloadBytes = Buffer.from(payload);
    // Our own bytes, so a non-object is a caller bug, not hostile input.
    try {
      parseJsonObject(payloadBytes, 'payload');
    } catch {
      throw new TypeError('payload bytes must be UTF-8 JSON holding an object');
    }
  } else {
    payloadBytes = encodeJsonObject(payload);
  }
  const headerB64 = toBase64Url(headerBytes);
  const payloadB64 = toBase64Url(payloadBytes);
  return {
    headerB64,
    payloadB64,
    payloadBytes,
    signingInput: Buffer.from(`${headerB64}.${payloadB64}`, 'ascii'),
  };
}

// Refuses to produce what every parser here would refuse to read.
function compact(input: JwsSigningInput, signature: Uint8Array): string {
  const token = `${input.headerB64}.${input.payloadB64}.${toBase64Url(signature)}`;
  if (token.length > MAX_JWT_LENGTH) {
    throw new RangeError(`the JWS would exceed ${MAX_JWT_LENGTH} characters`);
  }
  return token;
}

// RFC 7518 §3.2: an HS256 key must be at least as long as the hash output.
const MIN_HMAC_KEY_BYTES = 32;

function requireHmacKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length < MIN_HMAC_KEY_BYTES) {
    throw new RangeError(`HS256 key must be a Uint8Array of at least ${MIN_HMAC_KEY_BYTES} bytes`);
  }
}

/** Signs with HMAC-SHA256 (RFC 7518 §3.2) and returns the compact JWS. */
export function signHs256(key: Uint8Array, header: JsonObject, payload: JwsPayload): string {
  requireHmacKey(key);
  const input = jwsSigningInput('HS256', header, payload);
  return compact(input, createHmac('sha256', key).update(input.signingInput).digest());
}

/**
 * Verifies an HS256 JWS in constant time over the received signing input. A header alg other than
 * HS256 is ERR_PROTOCOL_UNSUPPORTED (never "none", never a downgrade); a bad MAC is
 * ERR_PROTOCOL_SIGNATURE with a generic message.
 */
export function verifyHs256(key: Uint8Array, parsed: ParsedJws, what = 'JWS'): void {
  requireHmacKey(key);
  if (parsed.header.alg !== 'HS256') throw unsupported(what, 'expected alg HS256');
  const mac = createHmac('sha256', key).update(parsed.signingInput).digest();
  if (parsed.signature.length !== mac.length || !timingSafeEqual(mac, parsed.signature)) {
    throw signatureFailed(what);
  }
}

/** Signs with RSASSA-PKCS1-v1_5 SHA-256 (RFC 7518 §3.3), as the device key does (§4.2). */
export function signRs256(privateKey: KeyObject, header: JsonObject, payload: JwsPayload): string {
  requireRsaKey(privateKey, 'private');
  const input = jwsSigningInput('RS256', header, payload);
  const signature = sign('sha256', input.signingInput, {
    key: privateKey,
    padding: constants.RSA_PKCS1_PADDING,
  });
  return compact(input, signature);
}

/**
 * RS256 with the signature made elsewhere, e.g. by a TPM-held device key: `signer` receives the
 * signing input and returns the PKCS#1 v1.5 SHA-256 signature. Signer errors pass through as-is.
 */
export async function signRs256With(
  signer: (signingInput: Buffer) => Promise<Uint8Array>,
  header: JsonObject,
  payload: JwsPayload,
): Promise<string> {
  if (typeof signer !== 'function') throw new TypeError('signer must be a function');
  const input = jwsSigningInput('RS256', header, payload);
  const signature = await signer(input.signingInput);
  if (!(signature instanceof Uint8Array)) throw new TypeError('signer must return a Uint8Array');
  return compact(input, signature);
}

/**
 * Verifies an RS256 JWS with `publicKey` (e.g. from the x5c certificate, §4.2). A header alg other
 * than RS256 is ERR_PROTOCOL_UNSUPPORTED; any verification failure is ERR_PROTOCOL_SIGNATURE.
 */
export function verifyRs256(publicKey: KeyObject, parsed: ParsedJws, what = 'JWS'): void {
  const modulusBits = requireRsaKey(publicKey, 'public');
  if (parsed.header.alg !== 'RS256') throw unsupported(what, 'expected alg RS256');
  // RFC 8017 §8.2.2 step 1: the signature is exactly as long as the modulus.
  if (parsed.signature.length !== Math.ceil(modulusBits / 8)) throw signatureFailed(what);
  let ok = false;
  try {
    ok = verify(
      'sha256',
      parsed.signingInput,
      { key: publicKey, padding: constants.RSA_PKCS1_PADDING },
      parsed.signature,
    );
  } catch {
    ok = false;
  }
  if (!ok) throw signatureFailed(what);
}

// Longest base64 text of a MAX_CERT_DER_BYTES certificate.
const MAX_CERT_B64 = Math.ceil(MAX_CERT_DER_BYTES / 3) * 4;

/**
 * The DER certificates of an `x5c` header. RFC 7515 §4.1.6 makes it an array of standard-base64
 * strings (and [HB] sends one); ROADtools and AADInternals send a single string, which Entra
 * accepts, so both forms are read (§4.2, §10). The leaf comes first.
 */
export function x5cOf(header: JsonObject, what = 'JWS'): Buffer[] {
  const x5c = header.x5c;
  let items: unknown[];
  if (typeof x5c === 'string') items = [x5c];
  else if (Array.isArray(x5c)) items = x5c;
  else throw malformed(what, 'header x5c missing or not a string or array');
  if (items.length === 0) throw malformed(what, 'header x5c is empty');
  if (items.length > MAX_X5C_CERTS) throw tooLarge(`${what} x5c`, items.length, MAX_X5C_CERTS);
  return items.map((item, i) => {
    if (typeof item !== 'string') throw malformed(what, `x5c[${i}] is not a string`);
    if (item.length > MAX_CERT_B64) throw tooLarge(`${what} x5c[${i}]`, item.length, MAX_CERT_B64);
    const der = fromBase64(item, `${what} x5c[${i}]`);
    if (der.length === 0) throw malformed(what, `x5c[${i}] is empty`);
    return der;
  });
}
