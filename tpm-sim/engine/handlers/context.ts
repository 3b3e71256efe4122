/** ContextSave, ContextLoad, FlushContext (Part 3 §28.2-28.4) and EvictControl (§28.5). */
import { Reader, WireError, Writer } from '../../wire/codec.ts';
import { HANDLE_RANGE, TPM_HT, TPM_RH, TPMA_OBJECT } from '../../wire/constants.ts';
import { rcHandle, rcParam, TPM_RC } from '../../wire/rc.ts';
import { TPMT_PUBLIC, TPMT_SENSITIVE, TPMT_SYM_DEF } from '../../wire/structures.ts';
import { openContext, sealContext } from '../context-blob.ts';
import type { Handler } from '../handler.ts';
import { has, makeObject, type TpmObject } from '../objects.ts';
import { check, RcError } from '../rc-error.ts';
import type { PolicyState, Session } from '../sessions.ts';
import type { Tpm } from '../tpm.ts';

/** TPMS_CONTEXT.savedHandle for objects (Part 2 §14.5). */
const SAVED_OBJECT = 0x80000000;
const SAVED_STCLEAR_OBJECT = 0x80000002;
const KIND_OBJECT = 1;
const KIND_SESSION = 2;

function keyInput(tpm: Tpm, stClear: boolean) {
  return {
    seed: tpm.state.contextSeed,
    resetCount: tpm.state.resetCount,
    ...(stClear ? { restartCount: tpm.state.restartCount } : {}),
  };
}

function encodeObject(obj: TpmObject): Buffer {
  const w = new Writer(1024);
  w.u8(KIND_OBJECT).u32(obj.hierarchy);
  TPMT_PUBLIC.write(w, obj.publicArea);
  const hasSensitive = obj.sensitive !== undefined;
  w.u8(hasSensitive ? 1 : 0);
  if (obj.sensitive) TPMT_SENSITIVE.write(w, obj.sensitive);
  w.u16(obj.qualifiedName.length).bytes(obj.qualifiedName);
  return w.finish();
}

function decodeObject(r: Reader): TpmObject {
  const hierarchy = r.u32();
  const publicArea = TPMT_PUBLIC.read(r);
  const sensitive = r.u8() ? TPMT_SENSITIVE.read(r) : undefined;
  const qn = r.bytes(r.u16());
  const obj = makeObject({
    publicArea,
    hierarchy,
    parentQn: Buffer.alloc(0),
    ...(sensitive ? { sensitive } : {}),
  });
  return { ...obj, qualifiedName: qn };
}

/** Policy state flags in a saved session: present, trial, cpHash set, timeout set. */
const POLICY_PRESENT = 1;
const POLICY_TRIAL = 2;
const POLICY_CPHASH = 4;
const POLICY_TIMEOUT = 8;

function encodeSession(s: Session): Buffer {
  const w = new Writer(256);
  w.u8(KIND_SESSION).u16(s.authHash);
  w.u16(s.sessionKey.length).bytes(s.sessionKey);
  w.u16(s.nonceTPM.length).bytes(s.nonceTPM);
  TPMT_SYM_DEF.write(w, s.symmetric);
  w.u8(s.bind ? 1 : 0);
  if (s.bind) {
    w.u16(s.bind.name.length).bytes(s.bind.name);
    w.u16(s.bind.authValue.length).bytes(s.bind.authValue);
  }
  const p = s.policy;
  w.u8(
    p
      ? POLICY_PRESENT |
          (p.trial ? POLICY_TRIAL : 0) |
          (p.cpHash ? POLICY_CPHASH : 0) |
          (p.timeout !== undefined ? POLICY_TIMEOUT : 0)
      : 0,
  );
  if (p) {
    w.u16(p.digest.length).bytes(p.digest);
    w.u64(BigInt(p.startTime));
    if (p.cpHash) w.u16(p.cpHash.length).bytes(p.cpHash);
    if (p.timeout !== undefined) w.u64(BigInt(p.timeout));
  }
  return w.finish();
}

function decodeSession(handle: number, r: Reader): Session {
  const authHash = r.u16();
  const sessionKey = r.bytes(r.u16());
  const nonceTPM = r.bytes(r.u16());
  const symmetric = TPMT_SYM_DEF.read(r);
  const bind = r.u8() ? { name: r.bytes(r.u16()), authValue: r.bytes(r.u16()) } : undefined;
  const flags = r.u8();
  let policy: PolicyState | undefined;
  if (flags & POLICY_PRESENT) {
    const digest = r.bytes(r.u16());
    const startTime = Number(r.u64());
    policy = { trial: (flags & POLICY_TRIAL) !== 0, digest, startTime };
    if (flags & POLICY_CPHASH) policy.cpHash = r.bytes(r.u16());
    if (flags & POLICY_TIMEOUT) policy.timeout = Number(r.u64());
  }
  return {
    handle,
    authHash,
    sessionKey,
    nonceTPM,
    symmetric,
    loaded: true,
    ...(bind ? { bind } : {}),
    ...(policy ? { policy } : {}),
  };
}

export const ContextSave: Handler<'ContextSave'> = (ctx) => {
  const { tpm } = ctx;
  const e = ctx.handles[0]!;
  const sequence = tpm.contextSequence++;
  if (e.session) {
    // Part 3 §28.2: a saved session stays active (its handle is kept) but is no longer loaded.
    const s = e.session;
    const blob = sealContext(
      keyInput(tpm, false),
      sequence,
      s.handle,
      TPM_RH.NULL,
      encodeSession(s),
    );
    s.loaded = false;
    s.savedSequence = sequence;
    return {
      response: {
        context: { sequence, savedHandle: s.handle, hierarchy: TPM_RH.NULL, contextBlob: blob },
      },
    };
  }
  const obj = e.object!;
  const stClear = has(obj.publicArea.objectAttributes, TPMA_OBJECT.stClear);
  const savedHandle = stClear ? SAVED_STCLEAR_OBJECT : SAVED_OBJECT;
  const blob = sealContext(
    keyInput(tpm, stClear),
    sequence,
    savedHandle,
    obj.hierarchy,
    encodeObject(obj),
  );
  return {
    response: { context: { sequence, savedHandle, hierarchy: obj.hierarchy, contextBlob: blob } },
  };
};

export const ContextLoad: Handler<'ContextLoad'> = (ctx, p) => {
  const { tpm } = ctx;
  const c = p.context;
  const ht = c.savedHandle >>> 24;
  const isSession = ht === TPM_HT.HMAC_SESSION || ht === TPM_HT.POLICY_SESSION;
  if (!isSession && c.savedHandle !== SAVED_OBJECT && c.savedHandle !== SAVED_STCLEAR_OBJECT) {
    throw new RcError(rcParam(TPM_RC.HANDLE, 1));
  }
  if (isSession) {
    const active = tpm.sessions.get(c.savedHandle);
    // Only the latest saved context of an active, saved session may come back (no replay).
    check(
      active && !active.loaded && active.savedSequence === c.sequence,
      rcParam(TPM_RC.HANDLE, 1),
    );
    if (tpm.loadedSessionCount() >= tpm.limits.maxLoadedSessions)
      throw new RcError(TPM_RC.SESSION_MEMORY);
  }
  const stClear = c.savedHandle === SAVED_STCLEAR_OBJECT;
  const plain = openContext(
    keyInput(tpm, stClear),
    c.sequence,
    c.savedHandle,
    c.hierarchy,
    c.contextBlob,
  );
  check(plain, rcParam(TPM_RC.INTEGRITY, 1));
  const r = new Reader(plain);
  try {
    const kind = r.u8();
    if (isSession) {
      check(kind === KIND_SESSION, rcParam(TPM_RC.INTEGRITY, 1));
      const s = decodeSession(c.savedHandle, r);
      tpm.sessions.set(s.handle, s);
      return { handles: [s.handle], response: {} };
    }
    check(kind === KIND_OBJECT, rcParam(TPM_RC.INTEGRITY, 1));
    const obj = decodeObject(r);
    return { handles: [tpm.loadTransient(obj)], response: {} };
  } catch (err) {
    // The blob authenticated, so a parse failure means a bug, not hostile input; still fail closed.
    if (err instanceof WireError) throw new RcError(rcParam(TPM_RC.INTEGRITY, 1));
    throw err;
  }
};

export const FlushContext: Handler<'FlushContext'> = (ctx, p) => {
  const { tpm } = ctx;
  const h = p.flushHandle;
  const ht = h >>> 24;
  if (ht === TPM_HT.TRANSIENT) {
    check(tpm.isTransientInRange(h) && tpm.transientObject(h), rcParam(TPM_RC.HANDLE, 1));
    tpm.transient[h - HANDLE_RANGE.TRANSIENT_FIRST] = undefined;
  } else if (ht === TPM_HT.HMAC_SESSION || ht === TPM_HT.POLICY_SESSION) {
    check(tpm.sessions.delete(h), rcParam(TPM_RC.HANDLE, 1));
  } else {
    throw new RcError(rcParam(TPM_RC.VALUE, 1));
  }
  return { response: {} };
};

/** Part 2 §7.5: the owner may use 0x81000000-0x817FFFFF, the platform 0x81800000-0x81FFFFFF. */
function inRangeFor(auth: number, h: number): boolean {
  if (h < HANDLE_RANGE.PERSISTENT_FIRST || h > HANDLE_RANGE.PERSISTENT_LAST) return false;
  return auth === TPM_RH.PLATFORM
    ? h >= HANDLE_RANGE.PERSISTENT_PLATFORM_FIRST
    : h <= HANDLE_RANGE.PERSISTENT_OWNER_LAST;
}

export const EvictControl: Handler<'EvictControl'> = (ctx, p) => {
  const { tpm } = ctx;
  const [auth, target] = [ctx.handles[0]!, ctx.handles[1]!];
  const obj = target.object!;
  check(inRangeFor(auth.handle, p.persistentHandle), rcParam(TPM_RC.RANGE, 1));
  if (target.handle >>> 24 === TPM_HT.PERSISTENT) {
    // Part 3 §28.5.1: evicting names the persistent object itself.
    check(p.persistentHandle === target.handle, rcParam(TPM_RC.HANDLE, 1));
    check(inRangeFor(auth.handle, target.handle), rcHandle(TPM_RC.HIERARCHY, 2));
    tpm.evictPersistent(target.handle);
    return { response: {} };
  }
  const attrs = obj.publicArea.objectAttributes;
  check(!has(attrs, TPMA_OBJECT.stClear), rcHandle(TPM_RC.ATTRIBUTES, 2));
  check(obj.sensitive !== undefined, rcHandle(TPM_RC.ATTRIBUTES, 2));
  check(obj.hierarchy !== TPM_RH.NULL, rcHandle(TPM_RC.HIERARCHY, 2));
  check(
    auth.handle === TPM_RH.PLATFORM || obj.hierarchy !== TPM_RH.PLATFORM,
    rcHandle(TPM_RC.HIERARCHY, 2),
  );
  check(!tpm.persistentObjects.has(p.persistentHandle), TPM_RC.NV_DEFINED);
  check(tpm.persistentObjects.size < tpm.limits.maxPersistentObjects, TPM_RC.NV_SPACE);
  tpm.makePersistent(p.persistentHandle, obj);
  return { response: {} };
};
