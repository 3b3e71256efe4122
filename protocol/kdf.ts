/**
 * PRT key derivation: NIST SP 800-108 counter mode with HMAC-SHA256 [OAPXBC 3.1.5.1.3.3].
 *
 * One PRF block is
 *   HMAC-SHA256(key, [i]_32 || label || 0x00 || context || [L]_32)
 * with the 32-bit big-endian counter i placed before the fixed data and L the output size in bits,
 * also 32-bit big-endian (§5.1; ROADtools' KBKDFHMAC with rlen=4, llen=4, BeforeFixed, and
 * AADInternals' Get-PRTDerivedKey agree [KAT]). The label is the ASCII text with no terminator.
 *
 * - KDFv1: context = ctx (the raw random bytes, not their base64 text) (§5.1).
 * - KDFv2: context = SHA-256(ctx || payload bytes), where the payload bytes are the exact UTF-8 JSON
 *   that was base64url-encoded into the JWT's second segment (§5.2, CVE-2021-33781).
 * - Response keys are always KDFv1 with the response header's ctx, even for KDFv2 sessions (§5.5).
 */
import { createHash, createHmac } from 'node:crypto';
import { requireSessionKey } from './key-checks.ts';

/** The SP 800-108 label of every session-key derivation, 26 ASCII bytes [OAPXBC 3.1.5.1.3.3]. */
export const KDF_LABEL = 'AzureAD-SecureConversation';

/** MSAL.js bound-RT labels, both with L = 256 bits [MSAL-JS] (§7). */
export const BOUND_RT_DECRYPT_LABEL = 'AzureAD-SecureConversation-BoundRT-AES-GCM-SHA256';
export const BOUND_RT_SIGN_LABEL = 'AzureAD-SecureConversation-BoundRT-HS256';

/** Derived keys are 32 bytes, like the session key they come from (§1.2). */
export const DERIVED_KEY_BYTES = 32;

// The output sizes callers can ask for: whole bytes, at least one, at most 64 KiB of key stream.
const MAX_BITS = 8 * 64 * 1024;

function bytesOf(value: string | Uint8Array, name: string): Uint8Array {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (value instanceof Uint8Array) return value;
  throw new TypeError(`${name} must be a string or a Uint8Array`);
}

/**
 * SP 800-108 (rev. 1 §4.1) counter-mode KDF with HMAC-SHA256: 32-bit counter before the fixed data,
 * fixed data = label || 0x00 || context || [bits]_32 BE. A string label is taken as its UTF-8 bytes.
 *
 * @example sp800108(sessionKey, KDF_LABEL, ctx, 256) // === deriveKeyV1(sessionKey, ctx)
 */
export function sp800108(
  key: Uint8Array,
  label: string | Uint8Array,
  context: Uint8Array,
  bits: number,
): Buffer {
  if (!(key instanceof Uint8Array) || key.length === 0) {
    throw new TypeError('KDF key must be a non-empty Uint8Array');
  }
  if (!(context instanceof Uint8Array)) throw new TypeError('KDF context must be a Uint8Array');
  if (!Number.isInteger(bits) || bits <= 0 || bits % 8 !== 0 || bits > MAX_BITS) {
    throw new RangeError(`KDF output size must be a positive multiple of 8 up to ${MAX_BITS} bits`);
  }
  const labelBytes = bytesOf(label, 'KDF label');
  const fixed = Buffer.alloc(labelBytes.length + 1 + context.length + 4);
  fixed.set(labelBytes, 0);
  // fixed[labelBytes.length] stays 0x00: the separator between label and context.
  fixed.set(context, labelBytes.length + 1);
  fixed.writeUInt32BE(bits, fixed.length - 4);

  const blocks: Buffer[] = [];
  const counter = Buffer.alloc(4);
  for (let i = 1, made = 0; made < bits / 8; i++, made += 32) {
    counter.writeUInt32BE(i, 0);
    blocks.push(createHmac('sha256', key).update(counter).update(fixed).digest());
  }
  const out = blocks.length === 1 ? blocks[0]! : Buffer.concat(blocks);
  return out.length === bits / 8 ? out : out.subarray(0, bits / 8);
}

function requireCtx(ctx: Uint8Array): void {
  if (!(ctx instanceof Uint8Array)) throw new TypeError('ctx must be a Uint8Array');
}

/** KDFv1: the 32-byte key for a header `ctx` (§5.1). Also the response decryption key (§5.5). */
export function deriveKeyV1(sessionKey: Uint8Array, ctx: Uint8Array): Buffer {
  requireSessionKey(sessionKey);
  requireCtx(ctx);
  return sp800108(sessionKey, KDF_LABEL, ctx, DERIVED_KEY_BYTES * 8);
}

/**
 * The KDFv2 context, SHA-256(ctx || payload bytes) (§5.2). Exposed on its own because a TPM-held
 * session key derives through the key provider, which is handed this context [SHW] (§5.6).
 */
export function kdfV2Context(ctx: Uint8Array, payloadBytes: Uint8Array): Buffer {
  requireCtx(ctx);
  if (!(payloadBytes instanceof Uint8Array)) throw new TypeError('payload must be a Uint8Array');
  return createHash('sha256').update(ctx).update(payloadBytes).digest();
}

/**
 * KDFv2: the 32-byte key bound to one exact payload (§5.2). `payloadBytes` are the raw JSON bytes
 * of the JWT payload segment (never a re-serialization, never the base64url text).
 */
export function deriveKeyV2(
  sessionKey: Uint8Array,
  ctx: Uint8Array,
  payloadBytes: Uint8Array,
): Buffer {
  requireSessionKey(sessionKey);
  return sp800108(sessionKey, KDF_LABEL, kdfV2Context(ctx, payloadBytes), DERIVED_KEY_BYTES * 8);
}
