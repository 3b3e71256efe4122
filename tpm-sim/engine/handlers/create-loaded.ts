/**
 * TPM2_CreateLoaded (Part 3 §12.9): creates an object and loads it in one command. Under a
 * hierarchy (TPM_RH_OWNER, _ENDORSEMENT, _PLATFORM or _NULL) the object is a primary object,
 * exactly as TPM2_CreatePrimary makes it, and outPrivate is empty; under a storage parent it is
 * an ordinary object, as TPM2_Create makes it, and outPrivate is its blob under that parent.
 * Derivation parents (TPMT_TEMPLATE with a TPMS_DERIVE) are not implemented: such a parent is
 * not a storage parent, so it fails as any non-parent does (TPM_RC_TYPE on parentHandle).
 */
import { unmarshal } from '../../wire/codec.ts';
import { TPM_HT } from '../../wire/constants.ts';
import { TPMT_PUBLIC } from '../../wire/structures.ts';
import { checkReservedBits } from '../attributes.ts';
import type { Handler } from '../handler.ts';
import { makeObject } from '../objects.ts';
import { parsing } from '../rc-error.ts';
import { wrapPrivate } from '../storage.ts';
import { makeOrdinary, makePrimary, storageParent } from './object.ts';

const EMPTY = Buffer.alloc(0);

export const CreateLoaded: Handler<'CreateLoaded'> = async (ctx, p) => {
  const { tpm } = ctx;
  const parentEntity = ctx.handles[0]!;
  // Room for the object first; then the template, whose faults are parameter 2's (a TPMT_PUBLIC
  // that does not fill its TPM2B exactly is TPM_RC_SIZE).
  tpm.requireFreeSlot();
  const template = parsing(2, () => unmarshal(TPMT_PUBLIC, p.inPublic));
  if (parentEntity.handle >>> 24 === TPM_HT.PERMANENT) {
    const obj = await makePrimary(tpm, parentEntity.handle, template, p.inSensitive);
    const handle = tpm.loadTransient(obj);
    return {
      handles: [handle],
      response: { outPrivate: EMPTY, outPublic: obj.publicArea, name: obj.name },
    };
  }
  checkReservedBits(template, 2);
  const parent = storageParent(parentEntity);
  const made = await makeOrdinary(tpm, parent, template, p.inSensitive);
  const obj = makeObject({
    publicArea: made.publicArea,
    sensitive: made.sensitive,
    hierarchy: parent.hierarchy,
    parentQn: parent.qualifiedName,
    named: made.named,
    ...(made.keys ? { keys: made.keys } : {}),
  });
  const outPrivate = wrapPrivate(parent, obj.name, made.sensitive);
  const handle = tpm.loadTransient(obj);
  return { handles: [handle], response: { outPrivate, outPublic: obj.publicArea, name: obj.name } };
};
