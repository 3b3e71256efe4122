/**
 * NV commands (Part 3 §31): TPM2_NV_DefineSpace (§31.3), TPM2_NV_UndefineSpace (§31.4),
 * TPM2_NV_ReadPublic (§31.6), TPM2_NV_Write (§31.7) and TPM2_NV_Read (§31.13), over indexes of
 * TPMS_NV_PUBLIC (Part 2 §13.5) with TPMA_NV attributes (Part 2 §13.4). Ordinary indexes can be
 * written and read; counter, bit-field and extend indexes can be defined (with the sizes their
 * types require) but their own commands (NV_Increment, NV_SetBits, NV_Extend) are not
 * implemented. The checks come in the order that gives swtpm's response codes.
 *
 * Who may authorize: dispatch already checked that an index authorizing itself has
 * AUTHREAD/AUTHWRITE (or POLICYREAD/POLICYWRITE for a policy session); here the owner needs
 * OWNERREAD/OWNERWRITE and the platform PPREAD/PPWRITE (TPM_RC_NV_AUTHORIZATION otherwise).
 */
import { trim0 } from '../../crypto/auth-hmac.ts';
import { requireHash } from '../../crypto/hash.ts';
import { NV_BUFFER_MAX, NV_INDEX_MAX, TPM_NT, TPM_RH, TPMA_NV } from '../../wire/constants.ts';
import { rcHandle, rcParam, TPM_RC } from '../../wire/rc.ts';
import type { Entity, Handler } from '../handler.ts';
import { type NvIndex, newNvIndex, nvHas, nvName, nvType } from '../nv.ts';
import { RcError } from '../rc-error.ts';

const N = TPMA_NV;

/** The sizes counters and bit fields have (a UINT64, Part 2 §13.2). */
const COUNTER_BYTES = 8;

function attributesFail(): never {
  throw new RcError(rcParam(TPM_RC.ATTRIBUTES, 2));
}

/**
 * Part 3 §31.3. authHandle is TPM_RH_OWNER or TPM_RH_PLATFORM; the platform creates exactly the
 * indexes with TPMA_NV_PLATFORMCREATE (which the owner cannot delete).
 */
export const NV_DefineSpace: Handler<'NV_DefineSpace'> = (ctx, p) => {
  const { tpm } = ctx;
  const authHandle = ctx.handles[0]!.handle;
  const pub = p.publicInfo;
  const a = pub.attributes;
  if ((a & N.reserved) !== 0) throw new RcError(rcParam(TPM_RC.RESERVED_BITS, 2));
  const { digestSize } = requireHash(pub.nameAlg);
  // The authValue is stored without trailing zeros (they never count, Part 1 §19.6.4.3).
  const auth = Buffer.from(trim0(p.auth));
  if (auth.length > digestSize) throw new RcError(rcParam(TPM_RC.SIZE, 1));
  if (pub.authPolicy.length !== 0 && pub.authPolicy.length !== digestSize)
    throw new RcError(rcParam(TPM_RC.SIZE, 2));
  switch (nvType(a)) {
    case TPM_NT.ORDINARY:
      if (pub.dataSize > NV_INDEX_MAX) throw new RcError(rcParam(TPM_RC.SIZE, 2));
      break;
    case TPM_NT.COUNTER:
    case TPM_NT.BITS:
      if (pub.dataSize !== COUNTER_BYTES) throw new RcError(rcParam(TPM_RC.SIZE, 2));
      break;
    case TPM_NT.EXTEND:
      if (pub.dataSize !== digestSize) throw new RcError(rcParam(TPM_RC.SIZE, 2));
      break;
    default:
      // PIN indexes and undefined types.
      attributesFail();
  }
  // Part 3 §31.3.1: the platform creates with PLATFORMCREATE SET, the owner with it CLEAR.
  if (has(a, N.PLATFORMCREATE) !== (authHandle === TPM_RH.PLATFORM))
    throw new RcError(rcHandle(TPM_RC.ATTRIBUTES, 1));
  // Someone must be able to read it and to write it.
  if (!has(a, N.PPREAD | N.OWNERREAD | N.AUTHREAD | N.POLICYREAD)) attributesFail();
  if (!has(a, N.PPWRITE | N.OWNERWRITE | N.AUTHWRITE | N.POLICYWRITE)) attributesFail();
  // State bits are the TPM's to set, never the definer's.
  if (has(a, N.WRITTEN | N.READLOCKED | N.WRITELOCKED)) attributesFail();
  // Only a platform index can require a policy to be deleted (TPM2_NV_UndefineSpaceSpecial).
  if (has(a, N.POLICY_DELETE) && !has(a, N.PLATFORMCREATE)) attributesFail();
  if (tpm.nvIndex(pub.nvIndex)) throw new RcError(TPM_RC.NV_DEFINED);
  tpm.defineNv(newNvIndex(pub, auth));
  return { response: {} };
};

/**
 * Part 3 §31.4. The owner cannot delete a platform index (TPM_RC_NV_AUTHORIZATION); an index
 * with POLICY_DELETE needs TPM2_NV_UndefineSpaceSpecial (TPM_RC_ATTRIBUTES for nvIndex).
 */
export const NV_UndefineSpace: Handler<'NV_UndefineSpace'> = (ctx) => {
  const authHandle = ctx.handles[0]!.handle;
  const index = ctx.handles[1]!.nv!;
  if (nvHas(index, N.POLICY_DELETE)) throw new RcError(rcHandle(TPM_RC.ATTRIBUTES, 2));
  if (authHandle === TPM_RH.OWNER && nvHas(index, N.PLATFORMCREATE))
    throw new RcError(TPM_RC.NV_AUTHORIZATION);
  ctx.tpm.undefineNv(index.public.nvIndex);
  return { response: {} };
};

/** Part 3 §31.6: no authorization; the public area and the Name over it. */
export const NV_ReadPublic: Handler<'NV_ReadPublic'> = (ctx) => {
  const index = ctx.handles[0]!.nv!;
  return { response: { nvPublic: index.public, nvName: nvName(index.public) } };
};

function has(attributes: number, bits: number): boolean {
  return (attributes & bits) !== 0;
}

/**
 * Who authorized an NV read or write (Part 3 §31.7.1, §31.13.1): the index itself (dispatch
 * checked its AUTH or POLICY bit), the owner with its OWNER bit, the platform with its PP bit.
 * Another index cannot authorize this one.
 */
function checkNvAccess(auth: Entity, index: NvIndex, ownerBit: number, platformBit: number): void {
  const h = auth.handle;
  const ok =
    h === index.public.nvIndex ||
    (h === TPM_RH.OWNER && nvHas(index, ownerBit)) ||
    (h === TPM_RH.PLATFORM && nvHas(index, platformBit));
  if (!ok) throw new RcError(TPM_RC.NV_AUTHORIZATION);
}

/**
 * Part 3 §31.7: writes `data` at `offset` of an ordinary index and marks it written (its Name
 * changes then). offset beyond the index is TPM_RC_VALUE for offset; data that runs past the
 * end, or less than all of a WRITEALL index, is TPM_RC_NV_RANGE. Writing zero bytes at the end
 * still marks the index written, as in libtpms.
 */
export const NV_Write: Handler<'NV_Write'> = (ctx, p) => {
  const index = ctx.handles[1]!.nv!;
  checkNvAccess(ctx.handles[0]!, index, N.OWNERWRITE, N.PPWRITE);
  if (nvHas(index, N.WRITELOCKED)) throw new RcError(TPM_RC.NV_LOCKED);
  // Counters, bit fields and extend indexes change only through their own commands.
  if (nvType(index.public.attributes) !== TPM_NT.ORDINARY) throw new RcError(TPM_RC.ATTRIBUTES);
  const size = index.public.dataSize;
  if (p.offset > size) throw new RcError(rcParam(TPM_RC.VALUE, 2));
  if (p.offset + p.data.length > size) throw new RcError(TPM_RC.NV_RANGE);
  if (nvHas(index, N.WRITEALL) && (p.offset !== 0 || p.data.length !== size))
    throw new RcError(TPM_RC.NV_RANGE);
  index.data.set(p.data, p.offset);
  if (!nvHas(index, N.WRITTEN))
    index.public = { ...index.public, attributes: (index.public.attributes | N.WRITTEN) >>> 0 };
  ctx.tpm.nvChanged();
  return { response: {} };
};

/**
 * Part 3 §31.13: `size` bytes from `offset`. An index never written is TPM_RC_NV_UNINITIALIZED;
 * more than one NV buffer (TPM_PT_NV_BUFFER_MAX) is TPM_RC_VALUE for size; past the end is
 * TPM_RC_NV_RANGE.
 */
export const NV_Read: Handler<'NV_Read'> = (ctx, p) => {
  const index = ctx.handles[1]!.nv!;
  checkNvAccess(ctx.handles[0]!, index, N.OWNERREAD, N.PPREAD);
  if (nvHas(index, N.READLOCKED)) throw new RcError(TPM_RC.NV_LOCKED);
  if (!nvHas(index, N.WRITTEN)) throw new RcError(TPM_RC.NV_UNINITIALIZED);
  if (p.size > NV_BUFFER_MAX) throw new RcError(rcParam(TPM_RC.VALUE, 1));
  if (p.offset + p.size > index.public.dataSize) throw new RcError(TPM_RC.NV_RANGE);
  return { response: { data: Buffer.from(index.data.subarray(p.offset, p.offset + p.size)) } };
};
