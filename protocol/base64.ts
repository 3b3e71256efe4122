/**
 * The two base64 flavours of the PRT protocol, with strict decoders.
 *
 * - Standard base64 with padding: `ctx` in JWT/JWE headers (§5.3, it contains `+` and `/`), `x5c`
 *   (RFC 7515 §4.1.6), DRS `TransportKey` (§1.3).
 * - base64url without padding: every compact JWS/JWE segment (RFC 7515 §2). Nonces are b64url with
 *   OPTIONAL padding [OAPXBC 3.2.5.1.1.2], so that decoder can be told to accept padding.
 *
 * node's own decoders skip characters they do not know and ignore stray bits; both would let two
 * different strings decode to the same bytes. These decoders accept exactly one spelling per byte
 * string (the one the encoders produce), so a decoded value always re-encodes to the same text.
 */
import { malformed } from './errors.ts';

// Whole quantums, then an optional padded final quantum (RFC 4648 §4).
const STD_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const URL_RE = /^[A-Za-z0-9_-]*$/;

function requireBytes(bytes: unknown): asserts bytes is Uint8Array {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('expected a Uint8Array');
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}

/** Standard base64 with `=` padding (RFC 4648 §4). */
export function toBase64(bytes: Uint8Array): string {
  requireBytes(bytes);
  return asBuffer(bytes).toString('base64');
}

/** base64url without padding (RFC 4648 §5, RFC 7515 §2). */
export function toBase64Url(bytes: Uint8Array): string {
  requireBytes(bytes);
  return asBuffer(bytes).toString('base64url');
}

/**
 * Decodes standard base64 with mandatory padding. Rejects other alphabets, whitespace, missing or
 * extra padding and non-zero unused bits (ERR_PROTOCOL_MALFORMED, naming `what`).
 */
export function fromBase64(text: string, what = 'base64'): Buffer {
  if (typeof text !== 'string') throw new TypeError(`${what}: expected a string`);
  if (!STD_RE.test(text)) throw malformed(what, 'not canonical base64');
  const out = Buffer.from(text, 'base64');
  // The regex fixes the alphabet and the length; a re-encode catches set unused bits.
  if (out.toString('base64') !== text) throw malformed(what, 'not canonical base64');
  return out;
}

export interface Base64UrlOptions {
  /** Name used in error messages. */
  what?: string;
  /**
   * 'forbidden' (default, JOSE segments per RFC 7515 §2) or 'optional' (nonces, whose padding the
   * server must tolerate [OAPXBC 3.2.5.1.1.2]). Padding, when present, must be exactly right.
   */
  padding?: 'forbidden' | 'optional';
}

/** Decodes base64url. Rejects other alphabets, impossible lengths and non-zero unused bits. */
export function fromBase64Url(text: string, options: Base64UrlOptions = {}): Buffer {
  const what = options.what ?? 'base64url';
  const padding = options.padding ?? 'forbidden';
  if (typeof text !== 'string') throw new TypeError(`${what}: expected a string`);
  if (padding !== 'forbidden' && padding !== 'optional') {
    throw new RangeError(`${what}: padding must be 'forbidden' or 'optional'`);
  }
  let body = text;
  if (padding === 'optional' && text.endsWith('=')) {
    // Padded form: the total is a whole number of quantums and the pad count is the one the
    // unpadded length calls for (one '=' after 3 chars, two after 2).
    body = text.replace(/={1,2}$/, '');
    const pad = text.length - body.length;
    if (text.length % 4 !== 0 || body.length % 4 !== 4 - pad) {
      throw malformed(what, 'bad base64url padding');
    }
  }
  if (!URL_RE.test(body) || body.length % 4 === 1) throw malformed(what, 'not canonical base64url');
  const out = Buffer.from(body, 'base64url');
  if (out.toString('base64url') !== body) throw malformed(what, 'not canonical base64url');
  return out;
}
