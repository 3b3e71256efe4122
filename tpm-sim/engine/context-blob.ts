/**
 * Context blobs for ContextSave/ContextLoad (Part 1 §30; Part 2 §14.3). The blob is opaque to
 * callers and defined by the TPM: here, AES-256-GCM under a key derived from a persistent
 * context seed and the reset count, so every blob dies with a TPM Reset; the sequence, saved
 * handle and hierarchy are bound as associated data so none of them can be swapped.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { kdfa } from '../crypto/kdf.ts';
import { TPM_ALG } from '../wire/constants.ts';

const IV_BYTES = 12;
const TAG_BYTES = 16;

function contextKey(seed: Buffer, resetCount: number, restartCount: number | undefined): Buffer {
  const counts = Buffer.alloc(8);
  counts.writeUInt32BE(resetCount, 0);
  // stClear objects also die with a TPM Restart (Part 1 §30.2).
  counts.writeUInt32BE(restartCount ?? 0xffffffff, 4);
  return kdfa(TPM_ALG.SHA256, seed, 'CONTEXT', counts, Buffer.alloc(0), 256);
}

function aad(sequence: bigint, savedHandle: number, hierarchy: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64BE(sequence, 0);
  b.writeUInt32BE(savedHandle, 8);
  b.writeUInt32BE(hierarchy, 12);
  return b;
}

export interface ContextKeyInput {
  seed: Buffer;
  resetCount: number;
  /** Only for stClear objects. */
  restartCount?: number;
}

export function sealContext(
  k: ContextKeyInput,
  sequence: bigint,
  savedHandle: number,
  hierarchy: number,
  plain: Uint8Array,
): Buffer {
  const iv = randomBytes(IV_BYTES);
  const c = createCipheriv('aes-256-gcm', contextKey(k.seed, k.resetCount, k.restartCount), iv);
  c.setAAD(aad(sequence, savedHandle, hierarchy));
  const body = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([iv, c.getAuthTag(), body]);
}

/** The plaintext, or undefined if the blob is not one this TPM made since its last reset. */
export function openContext(
  k: ContextKeyInput,
  sequence: bigint,
  savedHandle: number,
  hierarchy: number,
  blob: Uint8Array,
): Buffer | undefined {
  if (blob.length < IV_BYTES + TAG_BYTES) return undefined;
  try {
    const d = createDecipheriv(
      'aes-256-gcm',
      contextKey(k.seed, k.resetCount, k.restartCount),
      blob.subarray(0, IV_BYTES),
    );
    d.setAAD(aad(sequence, savedHandle, hierarchy));
    d.setAuthTag(blob.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([d.update(blob.subarray(IV_BYTES + TAG_BYTES)), d.final()]);
  } catch {
    return undefined;
  }
}
