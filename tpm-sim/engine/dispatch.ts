/**
 * The command pipeline, in the order of Part 3 §5 ("Command Processing"): header (§5.2), command
 * code (§5.3), handle area (§5.4), authorization area (§5.5-5.6), parameter decryption (§5.7),
 * parameter unmarshalling (§5.8), the command itself, then the response with its
 * authorizations and parameter encryption (§5.9, Part 1 §19.6 and §21).
 */
import { randomBytes } from 'node:crypto';
import { timingSafeEqualBytes } from '../crypto/hash.ts';
import { Reader, WireError, Writer } from '../wire/codec.ts';
import { COMMAND_BY_CC, type CommandSpec, type HandleSpec } from '../wire/commands.ts';
import {
  TPM_CC,
  TPM_HT,
  TPM_RH,
  TPM_ST,
  TPMA_NV,
  TPMA_OBJECT,
  TPMA_SESSION,
} from '../wire/constants.ts';
import {
  type AuthCommand,
  type AuthResponse,
  errorResponse,
  FrameError,
  readFrame,
  readHeader,
  successResponse,
} from '../wire/frame.ts';
import { rcHandle, rcParam, rcSession, TPM_RC } from '../wire/rc.ts';
import type { CommandContext, Entity } from './handler.ts';
import { HANDLERS } from './handlers/index.ts';
import { type NvIndex, nvHas, nvName } from './nv.ts';
import { handleName, has } from './objects.ts';
import { PCR_COUNT } from './pcr.ts';
import { RcError } from './rc-error.ts';
import {
  cfbTransform,
  cpHash,
  hmacKey,
  paramKey,
  resetPolicy,
  rpHash,
  type Session,
  sessionHmac,
  trim0,
  usesCfb,
} from './sessions.ts';
import type { Tpm } from './tpm.ts';

const EMPTY = Buffer.alloc(0);

/** Diagnostics for tests: the last exception that was not a TPM response code (a bug, never input). */
export const _dispatchInternals: { lastInternalError: unknown } = { lastInternalError: undefined };

export async function dispatch(tpm: Tpm, command: Uint8Array, locality: number): Promise<Buffer> {
  try {
    return await run(tpm, command, locality);
  } catch (err) {
    if (err instanceof RcError || err instanceof FrameError) return errorResponse(err.rc);
    _dispatchInternals.lastInternalError = err;
    return errorResponse(TPM_RC.FAILURE);
  }
}

/** One authorization session of the command, resolved. */
interface SessionUse {
  readonly auth: AuthCommand;
  /** Undefined for a password session (TPM_RS_PW). */
  readonly session?: Session;
  /** The entity this session authorizes, if it is in an authorization position. */
  readonly entity?: Entity;
}

async function run(tpm: Tpm, command: Uint8Array, locality: number): Promise<Buffer> {
  if (!tpm.poweredOn) return errorResponse(TPM_RC.FAILURE);
  const { cc } = readHeader(command);
  // Part 3 §9.3.1: nothing but Startup before Startup, and Startup only once.
  if (tpm.started === (cc === TPM_CC.Startup)) throw new RcError(TPM_RC.INITIALIZE);
  const spec = COMMAND_BY_CC.get(cc);
  const handler = spec ? HANDLERS[spec.name as keyof typeof HANDLERS] : undefined;
  if (!spec || !handler) throw new RcError(TPM_RC.COMMAND_CODE);
  const frame = readFrame(command, spec.handles.length);

  const authCount = spec.handles.filter((h) => h.auth !== undefined).length;
  if (frame.sessions.length < authCount) throw new RcError(TPM_RC.AUTH_MISSING);

  const entities = frame.handles.map((h, i) => resolveHandle(tpm, h, spec.handles[i]!, i + 1));
  const uses = resolveSessions(tpm, spec, frame.sessions, entities, authCount);

  // Authorizations are checked over the parameters as transmitted (Part 1 §18.7).
  const decryptIdx = uses.findIndex((u) => has(u.auth.attributes, TPMA_SESSION.decrypt));
  const encryptIdx = uses.findIndex((u) => has(u.auth.attributes, TPMA_SESSION.encrypt));
  checkAuthorizations(tpm, spec, uses, entities, frame.params, decryptIdx, encryptIdx);

  let paramBytes: Uint8Array = frame.params;
  if (decryptIdx >= 0) paramBytes = decryptFirstParam(uses[decryptIdx]!, paramBytes);
  const params = readParams(spec, paramBytes);

  const ctx: CommandContext = { tpm, cc, locality, handles: entities };
  const result = await handler(ctx, params as never);

  const w = new Writer(512);
  spec.response.write(w, result.response as never);
  let out: Buffer = w.finish();
  const handles = result.handles ?? [];

  if (frame.tag !== TPM_ST.SESSIONS) return successResponse(TPM_ST.NO_SESSIONS, handles, out, []);

  // New nonceTPM for every HMAC session (Part 1 §19.6.2), then response encryption, then HMACs.
  const newNonces = uses.map((u) => (u.session ? randomBytes(u.session.nonceTPM.length) : EMPTY));
  if (encryptIdx >= 0)
    out = encryptFirstResponseParam(uses[encryptIdx]!, newNonces[encryptIdx]!, out);
  const rpCache = new Map<number, Buffer>();
  const auths: AuthResponse[] = uses.map((u, i) => {
    if (!u.session) return { nonce: EMPTY, attributes: TPMA_SESSION.continueSession, hmac: EMPTY };
    const s = u.session;
    let rp = rpCache.get(s.authHash);
    if (!rp) {
      rp = rpHash(s.authHash, cc, out);
      rpCache.set(s.authHash, rp);
    }
    // A command may have changed its entity's authValue (HierarchyChangeAuth): the response HMAC
    // uses the new value, as ESAPI expects (Esys_HierarchyChangeAuth_Finish updates it first).
    const entity =
      u.entity && u.entity.handle >>> 24 === TPM_HT.PERMANENT
        ? permanentEntity(tpm, u.entity.handle)
        : u.entity;
    const key = hmacKey(s, entity);
    const nonce = newNonces[i]!;
    const mac = sessionHmac(s.authHash, key, rp, nonce, u.auth.nonce, [], u.auth.attributes);
    return { nonce, attributes: u.auth.attributes, hmac: mac };
  });
  uses.forEach((u, i) => {
    if (!u.session) return;
    if (has(u.auth.attributes, TPMA_SESSION.continueSession)) {
      u.session.nonceTPM = newNonces[i]!;
      // When a policy session's nonce rolls, its policy starts over (as libtpms does), so one
      // satisfied policy authorizes one command.
      if (u.session.policy) resetPolicy(u.session.policy, tpm.time());
    } else {
      tpm.sessions.delete(u.session.handle);
    }
  });
  return successResponse(TPM_ST.SESSIONS, handles, out, auths);
}

function permanentEntity(tpm: Tpm, h: number): Entity {
  const secrets = tpm.hierarchySecrets(h);
  const authValue = h === TPM_RH.LOCKOUT ? tpm.state.lockoutAuth : (secrets?.authValue ?? EMPTY);
  // Hierarchy auths are exempt from dictionary-attack protection; lockoutAuth is not (Part 1 §19.8.1).
  return { handle: h, name: handleName(h), authValue, daProtected: h === TPM_RH.LOCKOUT };
}

const HIERARCHIES = [TPM_RH.OWNER, TPM_RH.ENDORSEMENT, TPM_RH.PLATFORM];
const PERMANENT_BY_KIND: Record<string, readonly number[]> = {
  HIERARCHY: HIERARCHIES,
  HIERARCHY_AUTH: [...HIERARCHIES, TPM_RH.LOCKOUT],
  PROVISION: [TPM_RH.OWNER, TPM_RH.PLATFORM],
  ENTITY: [...HIERARCHIES, TPM_RH.LOCKOUT],
  PARENT: HIERARCHIES,
  NV_AUTH: [TPM_RH.OWNER, TPM_RH.PLATFORM],
};

/** Kinds that take transient objects; persistent ones are the same minus CONTEXT. */
const OBJECT_KINDS = new Set(['OBJECT', 'CONTEXT', 'ENTITY', 'PARENT']);
const PERSISTENT_KINDS = new Set(['OBJECT', 'ENTITY', 'PARENT']);
const NV_KINDS = new Set(['NV_INDEX', 'NV_AUTH', 'ENTITY']);
const PCR_KINDS = new Set(['PCR', 'ENTITY']);

/** Part 3 §5.4: each handle must be of the command's interface type and refer to something present. */
function resolveHandle(tpm: Tpm, h: number, spec: HandleSpec, n: number): Entity {
  const ht = h >>> 24;
  const kind = spec.kind;
  if (h === TPM_RH.NULL) {
    if (!spec.nullable) throw new RcError(rcHandle(TPM_RC.VALUE, n));
    return { handle: h, name: handleName(h), authValue: EMPTY, daProtected: false };
  }
  if (ht === TPM_HT.TRANSIENT && OBJECT_KINDS.has(kind)) {
    if (!tpm.isTransientInRange(h)) throw new RcError(rcHandle(TPM_RC.VALUE, n));
    const obj = tpm.transientObject(h);
    if (!obj) throw new RcError(TPM_RC.REFERENCE_H0 + n - 1);
    return objectEntity(h, obj);
  }
  if (ht === TPM_HT.PERSISTENT && PERSISTENT_KINDS.has(kind)) {
    const obj = tpm.persistentObjects.get(h);
    if (!obj) throw new RcError(rcHandle(TPM_RC.HANDLE, n));
    return objectEntity(h, obj);
  }
  const sessionHandle =
    (kind === 'CONTEXT' && (ht === TPM_HT.HMAC_SESSION || ht === TPM_HT.POLICY_SESSION)) ||
    (kind === 'POLICY_SESSION' && ht === TPM_HT.POLICY_SESSION);
  if (sessionHandle) {
    const s = tpm.sessions.get(h);
    if (!s?.loaded) throw new RcError(TPM_RC.REFERENCE_H0 + n - 1);
    return { handle: h, name: handleName(h), authValue: EMPTY, session: s, daProtected: false };
  }
  if (ht === TPM_HT.NV_INDEX && NV_KINDS.has(kind)) {
    const nv = tpm.nvIndex(h);
    if (!nv) throw new RcError(rcHandle(TPM_RC.HANDLE, n));
    return nvEntity(h, nv);
  }
  if (ht === TPM_HT.PCR && PCR_KINDS.has(kind)) {
    if (h >= PCR_COUNT) throw new RcError(rcHandle(TPM_RC.VALUE, n));
    // PCRs have an empty authValue here (no TPM2_PCR_SetAuthValue) and are not DA-protected.
    return { handle: h, name: handleName(h), authValue: EMPTY, daProtected: false };
  }
  if (ht === TPM_HT.PERMANENT && PERMANENT_BY_KIND[kind]?.includes(h))
    return permanentEntity(tpm, h);
  throw new RcError(rcHandle(TPM_RC.VALUE, n));
}

function nvEntity(h: number, nv: NvIndex): Entity {
  return {
    handle: h,
    name: nvName(nv.public),
    authValue: nv.authValue,
    nv,
    daProtected: !nvHas(nv, TPMA_NV.NO_DA),
  };
}

function objectEntity(h: number, obj: NonNullable<Entity['object']>): Entity {
  return {
    handle: h,
    name: obj.name,
    authValue: obj.sensitive?.authValue ?? EMPTY,
    object: obj,
    daProtected: !has(obj.publicArea.objectAttributes, TPMA_OBJECT.noDA),
  };
}

/** Part 3 §5.6.1-5.6.2: each session exists and its attributes fit its position. */
function resolveSessions(
  tpm: Tpm,
  spec: CommandSpec,
  auths: readonly AuthCommand[],
  entities: readonly Entity[],
  authCount: number,
): SessionUse[] {
  const authEntities = entities.filter((_, i) => spec.handles[i]!.auth !== undefined);
  const seen = new Set<number>();
  let decrypt = false;
  let encrypt = false;
  return auths.map((auth, j) => {
    const n = j + 1;
    const attrs = auth.attributes;
    const entity = j < authCount ? authEntities[j] : undefined;
    if (attrs & TPMA_SESSION.reserved) throw new RcError(rcSession(TPM_RC.RESERVED_BITS, n));
    if (auth.sessionHandle === TPM_RH.PW) {
      // Part 1 §19.4: a password session has an empty nonce and only continueSession.
      if (auth.nonce.length !== 0) throw new RcError(rcSession(TPM_RC.SIZE, n));
      if (attrs & ~TPMA_SESSION.continueSession || !entity)
        throw new RcError(rcSession(TPM_RC.ATTRIBUTES, n));
      return { auth, entity };
    }
    const ht = auth.sessionHandle >>> 24;
    const index = auth.sessionHandle & 0xffffff;
    if (
      (ht !== TPM_HT.HMAC_SESSION && ht !== TPM_HT.POLICY_SESSION) ||
      index >= tpm.limits.maxActiveSessions
    ) {
      throw new RcError(rcSession(TPM_RC.VALUE, n));
    }
    const session = tpm.sessions.get(auth.sessionHandle);
    if (!session?.loaded) throw new RcError(TPM_RC.REFERENCE_S0 + j);
    if (seen.has(auth.sessionHandle)) throw new RcError(rcSession(TPM_RC.HANDLE, n));
    seen.add(auth.sessionHandle);
    // A trial session only computes a policy digest: it authorizes nothing (Part 1 §19.7).
    if (entity && session.policy?.trial) throw new RcError(rcSession(TPM_RC.ATTRIBUTES, n));
    // Audit sessions come with the session types of a later command family.
    if (attrs & (TPMA_SESSION.audit | TPMA_SESSION.auditExclusive | TPMA_SESSION.auditReset)) {
      throw new RcError(rcSession(TPM_RC.ATTRIBUTES, n));
    }
    const dec = has(attrs, TPMA_SESSION.decrypt);
    const enc = has(attrs, TPMA_SESSION.encrypt);
    // Part 1 §19.6.1: a session in no authorization position must do something else.
    if (!entity && !dec && !enc) throw new RcError(rcSession(TPM_RC.ATTRIBUTES, n));
    // Part 1 §21.1: only a TPM2B first parameter can be encrypted, by one session, with a cipher.
    if (dec && (decrypt || !spec.firstParamSized || !usesCfb(session)))
      throw new RcError(rcSession(TPM_RC.ATTRIBUTES, n));
    if (enc && (encrypt || !spec.firstResponseSized || !usesCfb(session)))
      throw new RcError(rcSession(TPM_RC.ATTRIBUTES, n));
    decrypt ||= dec;
    encrypt ||= enc;
    return entity ? { auth, session, entity } : { auth, session };
  });
}

/**
 * Whether the entity's authValue may authorize it in this role (Part 1 §19.7; the reference's
 * IsAuthValueAvailable). Objects: the USER role needs userWithAuth, the ADMIN role needs
 * adminWithPolicy clear, the DUP role always needs a policy. NV indexes: AUTHWRITE for a
 * command that writes the index, AUTHREAD for anything else.
 */
function authValueAvailable(spec: CommandSpec, role: string | undefined, entity: Entity): boolean {
  if (entity.nv)
    return nvHas(entity.nv, spec.nvAccess === 'WRITE' ? TPMA_NV.AUTHWRITE : TPMA_NV.AUTHREAD);
  const attrs = entity.object?.publicArea.objectAttributes ?? TPMA_OBJECT.userWithAuth;
  if (role === 'USER') return has(attrs, TPMA_OBJECT.userWithAuth);
  if (role === 'ADMIN') return !has(attrs, TPMA_OBJECT.adminWithPolicy);
  return role !== 'DUP';
}

/** Whether a policy may authorize the entity: NV indexes need POLICYWRITE or POLICYREAD. */
function policyAvailable(spec: CommandSpec, entity: Entity): boolean {
  if (entity.nv)
    return nvHas(entity.nv, spec.nvAccess === 'WRITE' ? TPMA_NV.POLICYWRITE : TPMA_NV.POLICYREAD);
  return true;
}

/**
 * The authPolicy a policy session must match (Part 1 §19.7.1): an object's or NV index's
 * authPolicy; hierarchies, PCRs and the rest have none here (no TPM2_SetPrimaryPolicy), so no
 * policy satisfies them.
 */
function authPolicyOf(entity: Entity): Buffer {
  return entity.object?.publicArea.authPolicy ?? entity.nv?.public.authPolicy ?? EMPTY;
}

/** Part 1 §19.4 (password), §19.6 (HMAC) and §19.7 (policy) authorization, with the role rules. */
function checkAuthorizations(
  tpm: Tpm,
  spec: CommandSpec,
  uses: readonly SessionUse[],
  entities: readonly Entity[],
  params: Uint8Array,
  decryptIdx: number,
  encryptIdx: number,
): void {
  const authRoles = spec.handles.filter((h) => h.auth !== undefined).map((h) => h.auth);
  const cpCache = new Map<number, Buffer>();
  let names: Buffer[] | undefined;
  const cpFor = (alg: number): Buffer => {
    let cp = cpCache.get(alg);
    if (!cp) {
      names ??= entities.map((e) => e.name);
      cp = cpHash(alg, spec.cc, names, params);
      cpCache.set(alg, cp);
    }
    return cp;
  };
  uses.forEach((u, j) => {
    const n = j + 1;
    const entity = u.entity;
    const policy = u.session?.policy;
    if (entity) {
      // A public-only object (LoadExternal) has no authValue to prove (libtpms: TPM_RC_AUTH_UNAVAILABLE).
      if (entity.object && !entity.object.sensitive) throw new RcError(TPM_RC.AUTH_UNAVAILABLE);
      if (policy) {
        if (!policyAvailable(spec, entity)) throw new RcError(TPM_RC.AUTH_UNAVAILABLE);
        // Part 1 §19.7: the session's conditions hold and its digest is the entity's authPolicy.
        if (policy.timeout !== undefined && tpm.time() > policy.timeout)
          throw new RcError(rcSession(TPM_RC.EXPIRED, n));
        if (policy.cpHash && !policy.cpHash.equals(cpFor(u.session!.authHash)))
          throw new RcError(rcSession(TPM_RC.POLICY_FAIL, n));
        if (!policy.digest.equals(authPolicyOf(entity)))
          throw new RcError(rcSession(TPM_RC.POLICY_FAIL, n));
      } else if (!authValueAvailable(spec, authRoles[j], entity)) {
        throw new RcError(TPM_RC.AUTH_UNAVAILABLE);
      }
    }
    const fail = () =>
      new RcError(rcSession(entity?.daProtected ? TPM_RC.AUTH_FAIL : TPM_RC.BAD_AUTH, n));
    if (!u.session) {
      if (!timingSafeEqualBytes(trim0(u.auth.hmac), trim0(entity!.authValue))) throw fail();
      return;
    }
    const s = u.session;
    const key = hmacKey(s, entity);
    // Empty key and empty HMAC: nothing to check (Part 1 §19.6.5, verified against swtpm).
    if (key.length === 0 && u.auth.hmac.length === 0) return;
    const cp = cpFor(s.authHash);
    // Part 1 §19.6.5: session 1 also covers the nonces of separate decrypt and encrypt sessions.
    const extra: Buffer[] = [];
    if (j === 0) {
      if (decryptIdx > 0) extra.push(uses[decryptIdx]!.session!.nonceTPM);
      if (encryptIdx > 0 && encryptIdx !== decryptIdx)
        extra.push(uses[encryptIdx]!.session!.nonceTPM);
    }
    const expected = sessionHmac(
      s.authHash,
      key,
      cp,
      u.auth.nonce,
      s.nonceTPM,
      extra,
      u.auth.attributes,
    );
    if (!timingSafeEqualBytes(expected, u.auth.hmac)) throw fail();
  });
}

function decryptFirstParam(u: SessionUse, params: Uint8Array): Uint8Array {
  const s = u.session!;
  if (params.length < 2) throw new RcError(rcParam(TPM_RC.INSUFFICIENT, 1));
  const size = (params[0]! << 8) | params[1]!;
  if (size > params.length - 2) throw new RcError(rcParam(TPM_RC.SIZE, 1));
  const key = paramKey(s, u.entity?.authValue);
  const clear = cfbTransform(s, key, u.auth.nonce, s.nonceTPM, params.subarray(2, 2 + size), true);
  const out = Buffer.from(params);
  clear.copy(out, 2);
  return out;
}

function encryptFirstResponseParam(u: SessionUse, nonceTPM: Buffer, out: Buffer): Buffer {
  const s = u.session!;
  const size = out.readUInt16BE(0);
  const key = paramKey(s, u.entity?.authValue);
  const enc = cfbTransform(s, key, nonceTPM, u.auth.nonce, out.subarray(2, 2 + size), false);
  enc.copy(out, 2);
  return out;
}

/** Part 3 §5.8: unmarshal each parameter; a failure names the parameter; leftovers are TPM_RC_SIZE. */
function readParams(spec: CommandSpec, bytes: Uint8Array): Record<string, unknown> {
  const r = new Reader(bytes);
  const out: Record<string, unknown> = {};
  spec.paramFields.forEach(([name, codec], i) => {
    try {
      out[name] = codec.read(r);
    } catch (err) {
      if (err instanceof WireError) throw new RcError(rcParam(err.rc, i + 1), err.message);
      throw err;
    }
  });
  if (r.remaining !== 0) throw new RcError(TPM_RC.SIZE, 'bytes after the last parameter');
  return out;
}
