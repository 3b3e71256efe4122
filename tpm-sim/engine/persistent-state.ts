/**
 * What a TPM keeps across power cycles (Part 1 §36, "NV memory"): hierarchy seeds and proofs,
 * hierarchy auth values, persistent objects, NV indexes, the PCRs a Shutdown(STATE) saved, the
 * reset and restart counters and the clock. Encoded as versioned JSON; it is sealed at rest by
 * tpm-sim/state, never stored in clear.
 *
 * Versions: 1 had no NV indexes and no saved PCRs; 2 adds `nv` and `orderly`. Version 1 state
 * still loads (as a TPM with no NV indexes whose last shutdown was not orderly); it is written
 * back as version 2 on the next change.
 */
import { randomBytes } from 'node:crypto';
import { HANDLE_RANGE } from '../wire/constants.ts';
import { DIGEST_SIZE, HASH_ALGS, type NvPublic } from '../wire/structures.ts';
import type { NvIndex } from './nv.ts';
import { PCR_BANKS, type PcrState, STATE_SAVED_PCRS } from './pcr.ts';

export const STATE_VERSION = 2;
/** Older versions decodeState still reads. */
export const READABLE_STATE_VERSIONS: readonly number[] = [1, 2];

export interface HierarchySecrets {
  /** Primary seed (SPS, EPS, PPS): every primary key of the hierarchy derives from it. */
  seed: Buffer;
  /** Proof value: keys the hierarchy's tickets (Part 1 §14.5). */
  proof: Buffer;
  authValue: Buffer;
}

export interface PersistentObjectRecord {
  handle: number;
  hierarchy: number;
  publicBytes: Buffer;
  sensitiveBytes: Buffer;
  qualifiedName: Buffer;
}

export interface PersistentState {
  owner: HierarchySecrets;
  endorsement: HierarchySecrets;
  platform: HierarchySecrets;
  lockoutAuth: Buffer;
  /** Keys context blobs (ContextSave), together with the reset count. */
  contextSeed: Buffer;
  objects: PersistentObjectRecord[];
  resetCount: number;
  restartCount: number;
  /** Milliseconds the TPM has been powered, over its whole life (TPMS_CLOCK_INFO.clock). */
  clock: number;
  /** NV indexes by handle (Part 1 §37). */
  nv: Map<number, NvIndex>;
  /**
   * Set by Shutdown(STATE): the PCRs it saved (0-15 and the update counter), for the TPM Resume
   * of the next Startup(STATE). Undefined after any Startup.
   */
  orderly?: PcrState;
}

/** PRIMARY_SEED_SIZE in the reference implementation is 64 bytes. */
const SEED_BYTES = 64;

function freshHierarchy(): HierarchySecrets {
  return {
    seed: randomBytes(SEED_BYTES),
    proof: randomBytes(SEED_BYTES),
    authValue: Buffer.alloc(0),
  };
}

/** A new TPM, as manufactured: fresh seeds, empty auths. */
export function manufacture(): PersistentState {
  return {
    owner: freshHierarchy(),
    endorsement: freshHierarchy(),
    platform: freshHierarchy(),
    lockoutAuth: Buffer.alloc(0),
    contextSeed: randomBytes(32),
    objects: [],
    resetCount: 0,
    restartCount: 0,
    clock: 0,
    nv: new Map(),
  };
}

const hex = (b: Buffer) => b.toString('hex');

export function encodeState(s: PersistentState): Uint8Array {
  const h = (x: HierarchySecrets) => ({
    seed: hex(x.seed),
    proof: hex(x.proof),
    authValue: hex(x.authValue),
  });
  return Buffer.from(
    JSON.stringify({
      version: STATE_VERSION,
      owner: h(s.owner),
      endorsement: h(s.endorsement),
      platform: h(s.platform),
      lockoutAuth: hex(s.lockoutAuth),
      contextSeed: hex(s.contextSeed),
      objects: s.objects.map((o) => ({
        handle: o.handle,
        hierarchy: o.hierarchy,
        publicBytes: hex(o.publicBytes),
        sensitiveBytes: hex(o.sensitiveBytes),
        qualifiedName: hex(o.qualifiedName),
      })),
      resetCount: s.resetCount,
      restartCount: s.restartCount,
      clock: s.clock,
      nv: [...s.nv.values()]
        .sort((a, b) => a.public.nvIndex - b.public.nvIndex)
        .map((n) => ({
          public: { ...n.public, authPolicy: hex(n.public.authPolicy) },
          authValue: hex(n.authValue),
          data: hex(n.data),
        })),
      orderly: s.orderly
        ? {
            updateCounter: s.orderly.updateCounter,
            banks: Object.fromEntries(
              [...s.orderly.banks].map(([alg, values]) => [String(alg), values.map(hex)]),
            ),
          }
        : null,
    }),
  );
}

export class StateFormatError extends Error {}

function bytesField(v: unknown, what: string, len?: number): Buffer {
  if (typeof v !== 'string' || !/^([0-9a-f]{2})*$/.test(v))
    throw new StateFormatError(`${what}: not hex`);
  const b = Buffer.from(v, 'hex');
  if (len !== undefined && b.length !== len) throw new StateFormatError(`${what}: wrong length`);
  return b;
}

function intField(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw new StateFormatError(`${what}: not a count`);
  return v;
}

/** Decodes state written by encodeState; anything else is a StateFormatError. */
export function decodeState(bytes: Uint8Array): PersistentState {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new StateFormatError('not JSON');
  }
  if (
    raw === null ||
    typeof raw !== 'object' ||
    !READABLE_STATE_VERSIONS.includes(raw.version as number)
  ) {
    throw new StateFormatError(
      `unknown state version ${String((raw as { version?: unknown })?.version)}`,
    );
  }
  const h = (v: unknown, what: string): HierarchySecrets => {
    const o = (v ?? {}) as Record<string, unknown>;
    return {
      seed: bytesField(o.seed, `${what}.seed`, SEED_BYTES),
      proof: bytesField(o.proof, `${what}.proof`, SEED_BYTES),
      authValue: bytesField(o.authValue, `${what}.authValue`),
    };
  };
  if (!Array.isArray(raw.objects)) throw new StateFormatError('objects: not a list');
  return {
    owner: h(raw.owner, 'owner'),
    endorsement: h(raw.endorsement, 'endorsement'),
    platform: h(raw.platform, 'platform'),
    lockoutAuth: bytesField(raw.lockoutAuth, 'lockoutAuth'),
    contextSeed: bytesField(raw.contextSeed, 'contextSeed', 32),
    objects: raw.objects.map((o: Record<string, unknown>, i: number) => ({
      handle: intField(o.handle, `objects[${i}].handle`),
      hierarchy: intField(o.hierarchy, `objects[${i}].hierarchy`),
      publicBytes: bytesField(o.publicBytes, `objects[${i}].publicBytes`),
      sensitiveBytes: bytesField(o.sensitiveBytes, `objects[${i}].sensitiveBytes`),
      qualifiedName: bytesField(o.qualifiedName, `objects[${i}].qualifiedName`),
    })),
    resetCount: intField(raw.resetCount, 'resetCount'),
    restartCount: intField(raw.restartCount, 'restartCount'),
    clock: intField(raw.clock, 'clock'),
    nv: raw.version === 1 ? new Map() : nvField(raw.nv),
    ...(raw.version !== 1 && raw.orderly != null ? { orderly: orderlyField(raw.orderly) } : {}),
  };
}

function nvField(v: unknown): Map<number, NvIndex> {
  if (!Array.isArray(v)) throw new StateFormatError('nv: not a list');
  const out = new Map<number, NvIndex>();
  v.forEach((entry: Record<string, unknown>, i: number) => {
    const what = `nv[${i}]`;
    const p = (entry?.public ?? {}) as Record<string, unknown>;
    const nameAlg = intField(p.nameAlg, `${what}.nameAlg`);
    if (!HASH_ALGS.includes(nameAlg as (typeof HASH_ALGS)[number]))
      throw new StateFormatError(`${what}.nameAlg: unknown hash`);
    const pub: NvPublic = {
      nvIndex: intField(p.nvIndex, `${what}.nvIndex`),
      nameAlg,
      attributes: intField(p.attributes, `${what}.attributes`),
      authPolicy: bytesField(p.authPolicy, `${what}.authPolicy`),
      dataSize: intField(p.dataSize, `${what}.dataSize`),
    };
    if (pub.nvIndex < HANDLE_RANGE.NV_INDEX_FIRST || pub.nvIndex > HANDLE_RANGE.NV_INDEX_LAST)
      throw new StateFormatError(`${what}.nvIndex: not an NV index handle`);
    if (pub.attributes > 0xffffffff) throw new StateFormatError(`${what}.attributes: too large`);
    const data = bytesField(entry.data, `${what}.data`, pub.dataSize);
    if (out.has(pub.nvIndex)) throw new StateFormatError(`${what}: defined twice`);
    out.set(pub.nvIndex, {
      public: pub,
      authValue: bytesField(entry.authValue, `${what}.authValue`),
      data,
    });
  });
  return out;
}

function orderlyField(v: unknown): PcrState {
  const o = (v ?? {}) as Record<string, unknown>;
  const banksRaw = (o.banks ?? {}) as Record<string, unknown>;
  const banks = new Map<number, Buffer[]>();
  for (const alg of PCR_BANKS) {
    const values = banksRaw[String(alg)];
    if (!Array.isArray(values) || values.length !== STATE_SAVED_PCRS)
      throw new StateFormatError(`orderly.banks.${alg}: not ${STATE_SAVED_PCRS} values`);
    banks.set(
      alg,
      values.map((x, i) => bytesField(x, `orderly.banks.${alg}[${i}]`, DIGEST_SIZE[alg])),
    );
  }
  return { banks, updateCounter: intField(o.updateCounter, 'orderly.updateCounter') };
}
