/**
 * Object commands: TPM2_Create (Part 3 §12.1), TPM2_Load (§12.2), TPM2_LoadExternal (§12.3),
 * TPM2_ReadPublic (§12.4), TPM2_Import (§13.3), TPM2_CreatePrimary (§24.1) and
 * TPM2_HierarchyChangeAuth (§24.8). Handles, sessions and authorization were dealt with by
 * dispatch; these handlers do the commands' own checks, in the order the reference
 * implementation makes them so that the first failure gives the same response code.
 */

import { trim0 } from '../../crypto/auth-hmac.ts';
import { digest, requireHash } from '../../crypto/hash.ts';
import { marshal } from '../../wire/codec.ts';
import { TPM_ALG, TPM_RH, TPM_ST, TPMA_OBJECT } from '../../wire/constants.ts';
import { rcHandle, rcParam, TPM_RC } from '../../wire/rc.ts';
import {
  type CreationData,
  type PcrSelection,
  type Public,
  type Sensitive,
  type SensitiveCreate,
  type Ticket,
  TPMS_CREATION_DATA,
} from '../../wire/structures.ts';
import {
  checkCreateTemplate,
  checkObjectAttributes,
  checkReservedBits,
  checkSchemes,
  checkUserAuth,
} from '../attributes.ts';
import { decryptSeed, unwrapDuplicate } from '../duplication.ts';
import type { CommandContext, Entity, Handler } from '../handler.ts';
import { checkKeyMaterial, createSensitive, primaryStream } from '../key-material.ts';
import {
  handleName,
  has,
  isStorageParent,
  makeObject,
  type PublicName,
  publicName,
  type TpmObject,
} from '../objects.ts';
import { pcrDigest } from '../pcr.ts';
import { RcError } from '../rc-error.ts';
import { unwrapPrivate, wrapPrivate } from '../storage.ts';
import { makeTicket } from '../tickets.ts';
import type { Tpm } from '../tpm.ts';
import { isHierarchyOrNull } from './hash.ts';

const A = TPM_ALG;
const EMPTY = Buffer.alloc(0);

/**
 * The parent of Create, Load and Import: a loaded storage parent with its private part
 * (Part 3 §12.1.1: otherwise TPM_RC_TYPE on parentHandle).
 */
export function storageParent(e: Entity): TpmObject {
  const obj = e.object;
  if (obj === undefined || obj.sensitive === undefined || !isStorageParent(obj.publicArea)) {
    throw new RcError(rcHandle(TPM_RC.TYPE, 1));
  }
  return obj;
}

/**
 * The Name of an object that arrives as a blob (Load, Import). The blob's integrity covers the
 * Name, so the Name comes first; no nameAlg, no Name (TPM_RC_HASH on the public area, parameter 2).
 */
function blobName(pub: Public): PublicName {
  if (pub.nameAlg === A.NULL) throw new RcError(rcParam(TPM_RC.HASH, 2));
  return publicName(pub);
}

/**
 * seedValue is at most one nameAlg digest (TPM_RC_KEY_SIZE on the sensitive area, `param`). Load,
 * LoadExternal and Import check it before the attributes, as the reference does, although
 * checkKeyMaterial repeats it later.
 */
function checkSeedSize(pub: Public, sensitive: Sensitive, param: number): void {
  if (sensitive.seedValue.length > requireHash(pub.nameAlg).digestSize) {
    throw new RcError(rcParam(TPM_RC.KEY_SIZE, param));
  }
}

/** TPMA_LOCALITY for the command's locality (Part 2 §8.5): a bit for 0-4, the value above 31. */
function localityAttribute(locality: number): number {
  return locality < 5 ? 1 << locality : locality & 0xff;
}

interface Creation {
  creationData: CreationData;
  creationHash: Buffer;
  creationTicket: Ticket;
}

/**
 * creationData, creationHash and creationTicket (Part 3 §12.1.1, §24.1.1; Part 2 §15.1):
 * creationHash = H_nameAlg(TPMS_CREATION_DATA), creationTicket = HMAC(proof(hierarchy),
 * TPM_ST_CREATION || Name || creationHash). For a primary object the parent is the hierarchy:
 * parentNameAlg TPM_ALG_NULL and parentName = parentQualifiedName = the hierarchy handle.
 */
function creation(
  ctx: CommandContext,
  nameAlg: number,
  name: Buffer,
  hierarchy: number,
  parent: { nameAlg: number; name: Buffer; qualifiedName: Buffer },
  creationPCR: PcrSelection[],
  outsideInfo: Buffer,
): Creation {
  const creationData: CreationData = {
    pcrSelect: creationPCR,
    // Part 3 §12.1.1: H_nameAlg over the selected PCR values; H("") with no selection.
    pcrDigest: pcrDigest(ctx.tpm.pcrs, nameAlg, creationPCR),
    locality: localityAttribute(ctx.locality),
    parentNameAlg: parent.nameAlg,
    parentName: parent.name,
    parentQualifiedName: parent.qualifiedName,
    outsideInfo,
  };
  const creationHash = digest(nameAlg, marshal(TPMS_CREATION_DATA, creationData));
  const creationTicket = makeTicket(
    ctx.tpm,
    TPM_ST.CREATION,
    hierarchy,
    nameAlg,
    name,
    creationHash,
  );
  return { creationData, creationHash, creationTicket };
}

/** The primary seed of a hierarchy: SPS, EPS, PPS, or the null seed that changes on every reset. */
function primarySeed(tpm: Tpm, hierarchy: number): Buffer {
  const secrets = tpm.hierarchySecrets(hierarchy);
  // dispatch admits only the hierarchies of TPMI_RH_HIERARCHY+ here.
  if (secrets === undefined) throw new RcError(rcHandle(TPM_RC.VALUE, 1));
  return secrets.seed;
}

// ---- TPM2_CreatePrimary (Part 3 §24.1) ------------------------------------------------------

/**
 * A primary object of `hierarchy` from `template`, as CreatePrimary and CreateLoaded (with a
 * hierarchy as parent) make it: checks in the reference order (a slot, the template, the
 * sensitive values), then the key derived from (seed, template as sent, sensitive.data).
 * inSensitive is parameter 1 and the template parameter 2 in both commands.
 */
export async function makePrimary(
  tpm: Tpm,
  hierarchy: number,
  template: Public,
  inSensitive: SensitiveCreate,
): Promise<TpmObject> {
  checkReservedBits(template, 2);
  tpm.requireFreeSlot();
  checkCreateTemplate(undefined, template, inSensitive.data.length, 2);
  const userAuth = checkUserAuth(inSensitive.userAuth, template.nameAlg, 1);
  // Deterministic from (seed, template as sent, sensitive.data): see primaryStream. The codec is
  // canonical, so re-marshalling the parsed template gives exactly the bytes that were sent.
  const templateName = publicName(template).name;
  const stream = primaryStream(
    template.nameAlg,
    primarySeed(tpm, hierarchy),
    templateName,
    inSensitive.data,
  );
  const made = await createSensitive(
    template,
    { userAuth, data: inSensitive.data },
    { derive: stream, sensitiveParam: 1 },
  );
  // A primary's QN is H(hierarchy handle || Name) (Part 1 §16): the handle is its parent's QN.
  return makeObject({
    publicArea: made.publicArea,
    sensitive: made.sensitive,
    hierarchy,
    parentQn: handleName(hierarchy),
    ...(made.keys ? { keys: made.keys } : {}),
  });
}

export const CreatePrimary: Handler<'CreatePrimary'> = async (ctx, p) => {
  const { tpm } = ctx;
  const hierarchy = ctx.handles[0]!.handle;
  const template = p.inPublic;
  const obj = await makePrimary(tpm, hierarchy, template, p.inSensitive);
  const hierarchyName = handleName(hierarchy);
  const c = creation(
    ctx,
    template.nameAlg,
    obj.name,
    hierarchy,
    { nameAlg: A.NULL, name: hierarchyName, qualifiedName: hierarchyName },
    p.creationPCR,
    p.outsideInfo,
  );
  const handle = tpm.loadTransient(obj);
  return { handles: [handle], response: { outPublic: obj.publicArea, ...c, name: obj.name } };
};

// ---- TPM2_Create (Part 3 §12.1) -------------------------------------------------------------

/**
 * An ordinary object under a storage parent, as Create and CreateLoaded make it: the checks in
 * the reference order, then fresh key material. Returns the sensitive area, the public area with
 * `unique` filled in, its Name and the KeyObjects generation made.
 */
export async function makeOrdinary(
  tpm: Tpm,
  parent: TpmObject,
  template: Public,
  inSensitive: SensitiveCreate,
) {
  // Like libtpms, Create needs a free slot as scratch space even though it loads nothing.
  tpm.requireFreeSlot();
  checkCreateTemplate(parent.publicArea, template, inSensitive.data.length, 2);
  const userAuth = checkUserAuth(inSensitive.userAuth, template.nameAlg, 1);
  const made = await createSensitive(
    template,
    { userAuth, data: inSensitive.data },
    { sensitiveParam: 1 },
  );
  return { ...made, named: publicName(made.publicArea) };
}

export const Create: Handler<'Create'> = async (ctx, p) => {
  const template = p.inPublic;
  checkReservedBits(template, 2);
  const parent = storageParent(ctx.handles[0]!);
  const made = await makeOrdinary(ctx.tpm, parent, template, p.inSensitive);
  const { name } = made.named;
  const c = creation(
    ctx,
    template.nameAlg,
    name,
    parent.hierarchy,
    { nameAlg: parent.publicArea.nameAlg, name: parent.name, qualifiedName: parent.qualifiedName },
    p.creationPCR,
    p.outsideInfo,
  );
  return {
    response: {
      outPrivate: wrapPrivate(parent, name, made.sensitive),
      outPublic: made.publicArea,
      ...c,
    },
  };
};

// ---- TPM2_Load (Part 3 §12.2) ---------------------------------------------------------------

export const Load: Handler<'Load'> = (ctx, p) => {
  const { tpm } = ctx;
  const pub = p.inPublic;
  checkReservedBits(pub, 2);
  // Don't get invested in an object there is no room for.
  tpm.requireFreeSlot();
  if (p.inPrivate.length === 0) throw new RcError(rcParam(TPM_RC.SIZE, 1));
  const parent = storageParent(ctx.handles[0]!);
  const named = blobName(pub);
  const sensitive = unwrapPrivate(parent, named.name, p.inPrivate, 1);
  // The object passed these checks when it was created, but the public area comes from the
  // caller (Part 3 §12.2.1): attributes against the parent (0x2C2 for a fixedTPM child of a
  // duplicable parent), then the key material against the public area.
  checkSeedSize(pub, sensitive, 1);
  checkObjectAttributes(parent.publicArea, pub, 2);
  const keys = checkKeyMaterial(pub, sensitive, { pub: 2, sens: 1 });
  const obj = makeObject({
    publicArea: pub,
    sensitive,
    hierarchy: parent.hierarchy,
    parentQn: parent.qualifiedName,
    named,
    ...(keys ? { keys } : {}),
  });
  const handle = tpm.loadTransient(obj);
  return { handles: [handle], response: { name: obj.name } };
};

// ---- TPM2_LoadExternal (Part 3 §12.3) -------------------------------------------------------

export const LoadExternal: Handler<'LoadExternal'> = (ctx, p) => {
  const { tpm } = ctx;
  const pub = p.inPublic;
  const sensitive = p.inPrivate;
  checkReservedBits(pub, 2);
  // TPMI_RH_HIERARCHY+ (Part 2 §9): anything else fails unmarshalling with TPM_RC_VALUE.
  if (!isHierarchyOrNull(p.hierarchy)) throw new RcError(rcParam(TPM_RC.VALUE, 3));
  tpm.requireFreeSlot();
  if (sensitive !== undefined) {
    // A key whose private part came from outside must not pass for one made by this TPM: only
    // in the NULL hierarchy, and never fixedTPM, fixedParent or restricted (Part 3 §12.3.1).
    if (p.hierarchy !== TPM_RH.NULL) throw new RcError(rcParam(TPM_RC.HIERARCHY, 3));
    const a = pub.objectAttributes;
    if (
      has(a, TPMA_OBJECT.fixedTPM) ||
      has(a, TPMA_OBJECT.fixedParent) ||
      has(a, TPMA_OBJECT.restricted)
    ) {
      throw new RcError(rcParam(TPM_RC.ATTRIBUTES, 2));
    }
  }
  if (sensitive === undefined || pub.nameAlg === A.NULL) {
    // Public-only (or nameless) objects: only the schemes must make sense.
    checkSchemes(undefined, pub, 2);
  } else {
    checkSeedSize(pub, sensitive, 1);
    checkObjectAttributes(undefined, pub, 2);
  }
  const keys = checkKeyMaterial(pub, sensitive, { pub: 2, sens: 1 });
  const obj = makeObject({
    publicArea: pub,
    hierarchy: p.hierarchy,
    parentQn: EMPTY,
    ...(sensitive ? { sensitive } : {}),
    ...(keys ? { keys } : {}),
  });
  // An external object has no parent in this TPM: its qualified Name is its Name.
  const handle = tpm.loadTransient({ ...obj, qualifiedName: obj.name });
  return { handles: [handle], response: { name: obj.name } };
};

// ---- TPM2_ReadPublic (Part 3 §12.4) ---------------------------------------------------------

export const ReadPublic: Handler<'ReadPublic'> = (ctx) => {
  const obj = ctx.handles[0]!.object!;
  return {
    response: { outPublic: obj.publicArea, name: obj.name, qualifiedName: obj.qualifiedName },
  };
};

// ---- TPM2_Import (Part 3 §13.3) -------------------------------------------------------------

export const Import: Handler<'Import'> = (ctx, p) => {
  const pub: Public = p.objectPublic;
  checkReservedBits(pub, 2);
  const a = pub.objectAttributes;
  // Part 3 §13.3.1: only a duplicable object can arrive by duplication.
  if (has(a, TPMA_OBJECT.fixedTPM) || has(a, TPMA_OBJECT.fixedParent)) {
    throw new RcError(rcParam(TPM_RC.ATTRIBUTES, 2));
  }
  const parent = storageParent(ctx.handles[0]!);
  const sym = p.symmetricAlg;
  if (sym.algorithm !== A.NULL) {
    // The inner wrapper key must be exactly one key of the named size.
    if (p.encryptionKey.length * 8 !== sym.keyBits) throw new RcError(rcParam(TPM_RC.SIZE, 1));
  } else {
    if (p.encryptionKey.length !== 0) throw new RcError(rcParam(TPM_RC.SIZE, 1));
    // Part 1 §23.3 and Part 3 §13.3: encryptedDuplication requires the inner wrapper.
    if (has(a, TPMA_OBJECT.encryptedDuplication)) throw new RcError(rcParam(TPM_RC.ATTRIBUTES, 1));
  }
  let seed: Buffer = EMPTY;
  if (p.inSymSeed.length !== 0) {
    // A symmetric parent cannot take part in a key exchange.
    if (parent.publicArea.type === A.SYMCIPHER) throw new RcError(rcHandle(TPM_RC.TYPE, 1));
    seed = decryptSeed(parent, p.inSymSeed, 4);
  } else if (has(a, TPMA_OBJECT.encryptedDuplication)) {
    // ... and the outer one.
    throw new RcError(rcParam(TPM_RC.ATTRIBUTES, 4));
  }
  const { name } = blobName(pub);
  const sensitive = unwrapDuplicate({
    parent: parent.publicArea,
    seed,
    name,
    duplicate: p.duplicate,
    symmetricAlg: sym,
    encryptionKey: p.encryptionKey,
    objectNameAlg: pub.nameAlg,
    param: 3,
  });
  // Validate as a load would, so that a blob that can never load is refused now. The object is
  // judged on its own (no parent), as the reference implementation does for Import.
  checkSeedSize(pub, sensitive, 3);
  checkObjectAttributes(undefined, pub, 2);
  checkKeyMaterial(pub, sensitive, { pub: 2, sens: 3 });
  return { response: { outPrivate: wrapPrivate(parent, name, sensitive) } };
};

// ---- TPM2_HierarchyChangeAuth (Part 3 §24.8) ------------------------------------------------

/**
 * Hierarchy authValues are limited to one digest of the TPM's context hash (TPM_PT_CONTEXT_HASH,
 * SHA-256 here), trailing zeros aside (Part 3 §24.8.1: TPM_RC_SIZE).
 */
const MAX_HIERARCHY_AUTH = requireHash(A.SHA256).digestSize;

export const HierarchyChangeAuth: Handler<'HierarchyChangeAuth'> = (ctx, p) => {
  const { tpm } = ctx;
  const h = ctx.handles[0]!.handle;
  // Stored without trailing zeros: they never count in a comparison (Part 1 §19.6.4.3).
  const newAuth = Buffer.from(trim0(p.newAuth));
  if (newAuth.length > MAX_HIERARCHY_AUTH) throw new RcError(rcParam(TPM_RC.SIZE, 1));
  if (h === TPM_RH.LOCKOUT) {
    tpm.state.lockoutAuth = newAuth;
  } else {
    const secrets = tpm.hierarchySecrets(h);
    if (secrets === undefined || h === TPM_RH.NULL) throw new RcError(rcHandle(TPM_RC.VALUE, 1));
    secrets.authValue = newAuth;
  }
  tpm.dirty = true;
  return { response: {} };
};
