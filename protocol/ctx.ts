/**
 * The `ctx` header field: random bytes that select the derived key (§5). It travels as STANDARD
 * base64 with padding, not base64url (it can contain `+` and `/`) [OAPXBC examples][RT-auth] (§5.3).
 */
import { randomBytes } from 'node:crypto';
import { fromBase64, toBase64 } from './base64.ts';
import { malformed } from './errors.ts';
import type { JsonObject } from './json.ts';
import { MAX_CTX_BYTES, MIN_CTX_BYTES } from './limits.ts';

/** What Windows and the tools send, 24 bytes (32 base64 characters) [RT-auth][SHW] (§5.3). */
export const CTX_BYTES = 24;

/** A fresh random ctx of `bytes` bytes (24 by default). */
export function newCtx(bytes = CTX_BYTES): Buffer {
  checkCtxLength(bytes);
  return randomBytes(bytes);
}

/** Caller-side check of a ctx we are about to send. */
export function checkCtxLength(length: number): void {
  if (!Number.isInteger(length) || length < MIN_CTX_BYTES || length > MAX_CTX_BYTES) {
    throw new RangeError(`ctx must be ${MIN_CTX_BYTES}..${MAX_CTX_BYTES} bytes`);
  }
}

/** The decoded `ctx` of an untrusted header: a standard-base64 string of 16..64 bytes. */
export function readCtx(header: JsonObject, what: string): Buffer {
  const text = header.ctx;
  if (typeof text !== 'string') throw malformed(what, 'header ctx missing or not a string');
  // Bound the text before decoding it: 4 characters per 3 bytes, padded.
  if (text.length > Math.ceil(MAX_CTX_BYTES / 3) * 4) throw malformed(what, 'header ctx too long');
  const ctx = fromBase64(text, `${what} ctx`);
  if (ctx.length < MIN_CTX_BYTES || ctx.length > MAX_CTX_BYTES) {
    throw malformed(what, `header ctx must be ${MIN_CTX_BYTES}..${MAX_CTX_BYTES} bytes`);
  }
  return ctx;
}

/** The header text for a ctx. */
export function ctxText(ctx: Uint8Array): string {
  if (!(ctx instanceof Uint8Array)) throw new TypeError('ctx must be a Uint8Array');
  checkCtxLength(ctx.length);
  return toBase64(ctx);
}
