/**
 * The two TPM key derivation functions: KDFa (TPM 2.0 Part 1 §11.4.10.2; NIST SP 800-108 counter
 * mode with HMAC) and KDFe (Part 1 §11.4.10.3; the SP 800-56A concatenation KDF used after ECDH).
 *
 * Both run on every HMAC-session command (session keys, parameter encryption keys) and on every
 * Load (storage keys), so each call builds its input message once, in one buffer, and feeds it to
 * node:crypto with a single update per output block; for the common one-block case the digest
 * buffer itself is returned without a copy.
 */
import { createHash, createHmac } from 'node:crypto';
import { requireHash } from './hash.ts';

/** A KDF label: an ASCII string such as "ATH", or raw bytes. */
export type KdfLabel = string | Uint8Array;

// Labels are a handful of constants ("ATH", "CFB", "STORAGE", ...), so their NUL-terminated
// encodings are cached. The cap keeps arbitrary caller strings from growing the cache forever.
const LABEL_CACHE_MAX = 64;
const labelCache = new Map<string, Buffer>();

/**
 * The label bytes as they enter the KDF: exactly one trailing NUL. libtpms appends the NUL only
 * when the label does not already end in one, and ESAPI passes strlen+1 bytes; both give the same
 * single terminator (tpm-formulas.md §1). An empty label becomes a lone NUL.
 */
function labelBytes(label: KdfLabel): Uint8Array {
  if (typeof label === 'string') {
    let cached = labelCache.get(label);
    if (cached === undefined) {
      cached = Buffer.from(label.endsWith('\0') ? label : `${label}\0`, 'latin1');
      if (labelCache.size < LABEL_CACHE_MAX) labelCache.set(label, cached);
    }
    return cached;
  }
  if (label.length > 0 && label[label.length - 1] === 0) return label;
  const out = Buffer.alloc(label.length + 1);
  out.set(label, 0);
  return out;
}

function checkBits(bits: number): void {
  if (!Number.isInteger(bits) || bits < 0 || bits > 0xffffffff) {
    throw new RangeError(
      `KDF output size must be an integer number of bits in [0, 2^32), got ${bits}`,
    );
  }
}

/**
 * Trims the concatenated blocks to ceil(bits/8) bytes and, when bits is not a whole number of
 * bytes, clears the unused high bits of the first byte. The TPM itself always asks for whole
 * bytes; the masking matches the TSS and go-tpm (and their published test vectors).
 */
function finish(out: Buffer<ArrayBuffer>, bits: number): Buffer<ArrayBuffer> {
  const nBytes = (bits + 7) >>> 3;
  const result = out.length === nBytes ? out : out.subarray(0, nBytes);
  const extra = bits & 7;
  if (extra !== 0) result[0] = result[0]! & ((1 << extra) - 1);
  return result;
}

/**
 * The counter-mode loop both KDFs share (SP 800-108 §5.1; SP 800-56A §5.8.1):
 *   K_i = prf(u32(i) || parts[0] || parts[1] || ...), i = 1, 2, ...
 * trimmed to `bits`. The message is built once with four bytes free at its front, and only the
 * counter is rewritten for each block.
 */
function counterMode(
  digestSize: number,
  bits: number,
  parts: readonly Uint8Array[],
  prf: (msg: Buffer) => Buffer<ArrayBuffer>,
): Buffer<ArrayBuffer> {
  let length = 4;
  for (const part of parts) length += part.length;
  const msg = Buffer.allocUnsafe(length);
  let off = 4;
  for (const part of parts) {
    msg.set(part, off);
    off += part.length;
  }

  const blocks = Math.ceil(bits / (digestSize * 8));
  if (blocks === 1) {
    msg.writeUInt32BE(1, 0);
    return finish(prf(msg), bits);
  }
  const out = Buffer.allocUnsafe(blocks * digestSize);
  for (let i = 1; i <= blocks; i++) {
    msg.writeUInt32BE(i, 0);
    out.set(prf(msg), (i - 1) * digestSize);
  }
  return finish(out, bits);
}

/**
 * KDFa(hashAlg, key, label, contextU, contextV, bits) (Part 1 §11.4.10.2):
 *   K_i = HMAC(key, u32(i) || label || 0x00 || contextU || contextV || u32(bits)), i = 1, 2, ...
 * and the result is the first `bits` bits of K_1 || K_2 || ... . `key` may be empty.
 */
export function kdfa(
  hashAlg: number,
  key: Uint8Array,
  label: KdfLabel,
  contextU: Uint8Array,
  contextV: Uint8Array,
  bits: number,
): Buffer<ArrayBuffer> {
  checkBits(bits);
  const { nodeName, digestSize } = requireHash(hashAlg);
  if (bits === 0) return Buffer.alloc(0);
  const bitsField = Buffer.allocUnsafe(4);
  bitsField.writeUInt32BE(bits, 0);
  return counterMode(digestSize, bits, [labelBytes(label), contextU, contextV, bitsField], (msg) =>
    createHmac(nodeName, key).update(msg).digest(),
  );
}

/**
 * KDFe(hashAlg, Z, label, partyUInfo, partyVInfo, bits) (Part 1 §11.4.10.3):
 *   K_i = H(u32(i) || Z || label || 0x00 || partyUInfo || partyVInfo), i = 1, 2, ...
 * and the result is the first `bits` bits of K_1 || K_2 || ... . Z is the x coordinate of the
 * shared ECDH point at the curve's full length; partyU is the ephemeral key's x, partyV the TPM
 * key's x.
 */
export function kdfe(
  hashAlg: number,
  z: Uint8Array,
  label: KdfLabel,
  partyU: Uint8Array,
  partyV: Uint8Array,
  bits: number,
): Buffer<ArrayBuffer> {
  checkBits(bits);
  const { nodeName, digestSize } = requireHash(hashAlg);
  if (bits === 0) return Buffer.alloc(0);
  return counterMode(digestSize, bits, [z, labelBytes(label), partyU, partyV], (msg) =>
    createHash(nodeName).update(msg).digest(),
  );
}
