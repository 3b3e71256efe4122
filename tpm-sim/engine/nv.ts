/**
 * NV indexes (Part 1 §37 "NV Memory"; Part 2 §13 NV storage structures): a public area
 * (TPMS_NV_PUBLIC), an authValue and the data. They live in the persistent state, so they
 * survive restarts. An index's Name is nameAlg || H_nameAlg(TPMS_NV_PUBLIC) (Part 1 §16), so it
 * changes when an attribute such as TPMA_NV_WRITTEN changes.
 */
import { digest } from '../crypto/hash.ts';
import { marshal } from '../wire/codec.ts';
import { TPM_NT, TPMA_NV } from '../wire/constants.ts';
import { type NvPublic, TPMS_NV_PUBLIC } from '../wire/structures.ts';

export interface NvIndex {
  public: NvPublic;
  authValue: Buffer;
  /** dataSize bytes; bytes never written read as 0xFF, as in libtpms. */
  data: Buffer;
}

/** NV memory this TPM offers for indexes (TPM_RC_NV_SPACE beyond it). */
export const NV_LIMITS = { maxIndexes: 64, maxTotalBytes: 64 * 1024 } as const;

/** Name of an NV index (Part 1 §16, Table 3). */
export function nvName(pub: NvPublic): Buffer {
  const alg = Buffer.allocUnsafe(2);
  alg.writeUInt16BE(pub.nameAlg, 0);
  return Buffer.concat([alg, digest(pub.nameAlg, marshal(TPMS_NV_PUBLIC, pub))]);
}

/** TPM_NT of an index (Part 2 §13.2), from its TPMA_NV. */
export function nvType(attributes: number): number {
  return (attributes & TPMA_NV.TPM_NT_MASK) >>> TPMA_NV.TPM_NT_SHIFT;
}

export function isOrdinary(attributes: number): boolean {
  return nvType(attributes) === TPM_NT.ORDINARY;
}

export function nvHas(index: NvIndex, bit: number): boolean {
  return (index.public.attributes & bit) !== 0;
}

/** A new index as TPM2_NV_DefineSpace leaves it: not written, data unset. */
export function newNvIndex(pub: NvPublic, authValue: Buffer): NvIndex {
  return { public: { ...pub }, authValue, data: Buffer.alloc(pub.dataSize, 0xff) };
}
