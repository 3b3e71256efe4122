/**
 * The simulated TPM: volatile state (loaded objects, sessions), the persistent state, and the
 * platform signals. Commands go through dispatch.ts; this class owns the resources they use.
 */
import { randomBytes } from 'node:crypto';
import { marshal, unmarshal } from '../wire/codec.ts';
import { HANDLE_RANGE, TPM_HT, TPM_RH, TPM_SU } from '../wire/constants.ts';
import { TPM_RC } from '../wire/rc.ts';
import { TPMT_PUBLIC, TPMT_SENSITIVE } from '../wire/structures.ts';
import { dispatch } from './dispatch.ts';
import { NV_LIMITS, type NvIndex } from './nv.ts';
import { makeObject, type TpmObject } from './objects.ts';
import { type PcrState, resetPcrs, resumePcrs, savedPcrs } from './pcr.ts';
import {
  decodeState,
  encodeState,
  type HierarchySecrets,
  manufacture,
  type PersistentState,
} from './persistent-state.ts';
import { RcError } from './rc-error.ts';
import type { Session } from './sessions.ts';

export interface TpmOptions {
  /** State from a previous run (as given to `persist`); absent for a new TPM. */
  state?: Uint8Array;
  /** Called with the new persistent state before a command that changed it returns. */
  persist?: (state: Uint8Array) => Promise<void>;
  /** Transient object slots; 3 like swtpm, so a missing FlushContext shows up. */
  maxTransientObjects?: number;
  /** Sessions loaded at once (3, like swtpm) and active at once (loaded or saved). */
  maxLoadedSessions?: number;
  maxActiveSessions?: number;
  maxPersistentObjects?: number;
  /** Run TPM2_Startup(CLEAR) on power-on, like swtpm's `startup-clear` flag. Default true. */
  autoStartup?: boolean;
}

export const DEFAULTS = {
  maxTransientObjects: 3,
  maxLoadedSessions: 3,
  maxActiveSessions: 64,
  maxPersistentObjects: 16,
} as const;

export class Tpm {
  readonly limits: {
    maxTransientObjects: number;
    maxLoadedSessions: number;
    maxActiveSessions: number;
    maxPersistentObjects: number;
  };
  private readonly autoStartup: boolean;
  private readonly persistFn: ((state: Uint8Array) => Promise<void>) | undefined;

  /** Persistent state (survives power cycles). */
  state: PersistentState;
  /** Persistent objects, decoded from state.objects. */
  readonly persistentObjects = new Map<number, TpmObject>();

  // Volatile state: gone on power-off.
  poweredOn = false;
  started = false;
  transient: (TpmObject | undefined)[];
  /** PCR banks: volatile, reset by Startup(CLEAR) (Part 1 §17). */
  pcrs: PcrState = resetPcrs();
  readonly sessions = new Map<number, Session>();
  /** The null hierarchy's seed and proof change on every TPM Reset (Part 1 §14.4.4). */
  nullHierarchy: HierarchySecrets = {
    seed: randomBytes(64),
    proof: randomBytes(64),
    authValue: Buffer.alloc(0),
  };
  contextSequence = 1n;
  private nextSession = 0;
  private poweredAt = Date.now();
  private clockBase = 0;
  /** The persistent state changed during the current command. */
  dirty = false;
  /** The last state known to be saved: what a failed save rolls back to. */
  private lastSaved: Uint8Array;
  /** One command at a time: the TPM is a single-threaded device. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: TpmOptions = {}) {
    this.limits = {
      maxTransientObjects: options.maxTransientObjects ?? DEFAULTS.maxTransientObjects,
      maxLoadedSessions: options.maxLoadedSessions ?? DEFAULTS.maxLoadedSessions,
      maxActiveSessions: options.maxActiveSessions ?? DEFAULTS.maxActiveSessions,
      maxPersistentObjects: options.maxPersistentObjects ?? DEFAULTS.maxPersistentObjects,
    };
    this.autoStartup = options.autoStartup ?? true;
    this.persistFn = options.persist;
    this.state = options.state ? decodeState(options.state) : manufacture();
    this.lastSaved = options.state ?? encodeState(this.state);
    this.loadPersistentObjects();
    this.transient = new Array(this.limits.maxTransientObjects).fill(undefined);
    this.clockBase = this.state.clock;
  }

  /** The persistent state as bytes, for the first save of a new TPM. */
  exportState(): Uint8Array {
    this.state.clock = this.clock();
    return encodeState(this.state);
  }

  /** TPMS_CLOCK_INFO.clock: milliseconds powered over the TPM's life. */
  clock(): number {
    return this.clockBase + (this.poweredOn ? Date.now() - this.poweredAt : 0);
  }

  /** TPMS_TIME_INFO.time: milliseconds since power-on. */
  time(): number {
    return this.poweredOn ? Date.now() - this.poweredAt : 0;
  }

  // ---- platform signals (TpmDevice) ----

  async powerOn(): Promise<void> {
    await this.serialize(async () => {
      if (this.poweredOn) return;
      this.poweredOn = true;
      this.poweredAt = Date.now();
      if (this.autoStartup) this.startup(TPM_SU.CLEAR);
      await this.flushState();
    });
  }

  async powerOff(): Promise<void> {
    await this.serialize(async () => {
      if (!this.poweredOn) return;
      this.clockBase = this.clock();
      this.state.clock = this.clockBase;
      this.poweredOn = false;
      this.started = false;
      this.dropVolatile();
      this.dirty = true;
      await this.flushState();
    });
  }

  cancel(_on: boolean): void {
    // Commands here finish in microseconds to milliseconds; there is nothing to cancel.
  }

  /** Runs one command. Never rejects for bad bytes: they get a TPM error response. */
  execute(command: Uint8Array, locality = 0): Promise<Uint8Array> {
    return this.serialize(async () => {
      const response = await dispatch(this, command, locality);
      await this.flushState();
      return response;
    });
  }

  /** Saves the persistent state now if it changed outside a command (manufacturing steps). */
  saveState(): Promise<void> {
    return this.serialize(() => this.flushState());
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private loadPersistentObjects(): void {
    this.persistentObjects.clear();
    for (const rec of this.state.objects) {
      const sensitive = unmarshal(TPMT_SENSITIVE, rec.sensitiveBytes);
      const obj = makeObject({
        publicArea: unmarshalPublic(rec.publicBytes),
        sensitive,
        hierarchy: rec.hierarchy,
        parentQn: Buffer.alloc(0),
      });
      this.persistentObjects.set(rec.handle, { ...obj, qualifiedName: rec.qualifiedName });
    }
  }

  /**
   * Saves the persistent state if the command changed it. If the save fails, the change is
   * undone in memory too (the command then fails), so the running TPM never holds state that a
   * restart would lose.
   */
  private async flushState(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    this.state.clock = this.clock();
    const bytes = encodeState(this.state);
    if (this.persistFn) {
      try {
        await this.persistFn(bytes);
      } catch (err) {
        this.state = decodeState(this.lastSaved);
        this.loadPersistentObjects();
        throw err;
      }
    }
    this.lastSaved = bytes;
  }

  // ---- Startup (Part 3 §9.3) ----

  /** Whether the last shutdown was Shutdown(STATE), so that Startup(STATE) can resume. */
  get orderlyState(): boolean {
    return this.state.orderly !== undefined;
  }

  /** Shutdown (Part 3 §9.4): STATE saves what Startup(STATE) restores. */
  shutdown(type: number): void {
    if (type === TPM_SU.STATE) this.state.orderly = savedPcrs(this.pcrs);
    else delete this.state.orderly;
    this.dirty = true;
  }

  startup(type: number): void {
    const saved = this.state.orderly;
    if (type === TPM_SU.STATE && saved) {
      // TPM Resume: saved contexts stay valid; loaded objects and sessions are gone; PCRs 0-15
      // come back.
      this.state.restartCount++;
      this.pcrs = resumePcrs(saved);
    } else {
      // TPM Reset: new null hierarchy, every saved context invalid (the reset count keys them).
      this.state.resetCount++;
      this.state.restartCount = 0;
      this.nullHierarchy = {
        seed: randomBytes(64),
        proof: randomBytes(64),
        authValue: Buffer.alloc(0),
      };
      this.sessions.clear();
    }
    if (type !== TPM_SU.STATE || !saved) this.pcrs = resetPcrs();
    if (type === TPM_SU.CLEAR) {
      // platformAuth is set by firmware on every boot and reset on TPM Reset and Restart (Part 1 §13.5.2).
      this.state.platform.authValue = Buffer.alloc(0);
    }
    this.dropVolatile();
    delete this.state.orderly;
    this.started = true;
    this.dirty = true;
  }

  private dropVolatile(): void {
    this.transient.fill(undefined);
    for (const [h, s] of this.sessions) {
      if (s.loaded) this.sessions.delete(h);
    }
  }

  // ---- hierarchies ----

  hierarchySecrets(h: number): HierarchySecrets | undefined {
    switch (h) {
      case TPM_RH.OWNER:
        return this.state.owner;
      case TPM_RH.ENDORSEMENT:
        return this.state.endorsement;
      case TPM_RH.PLATFORM:
        return this.state.platform;
      case TPM_RH.NULL:
        return this.nullHierarchy;
      default:
        return undefined;
    }
  }

  // ---- transient objects ----

  /** Loads an object into a free slot; TPM_RC_OBJECT_MEMORY when none is free. */
  loadTransient(obj: TpmObject): number {
    const slot = this.transient.indexOf(undefined);
    if (slot < 0) throw new RcError(TPM_RC.OBJECT_MEMORY);
    this.transient[slot] = obj;
    return HANDLE_RANGE.TRANSIENT_FIRST + slot;
  }

  /** Throws TPM_RC_OBJECT_MEMORY unless a slot is free (Create needs a scratch slot, like libtpms). */
  requireFreeSlot(): void {
    if (!this.transient.includes(undefined)) throw new RcError(TPM_RC.OBJECT_MEMORY);
  }

  transientObject(handle: number): TpmObject | undefined {
    return this.transient[handle - HANDLE_RANGE.TRANSIENT_FIRST];
  }

  isTransientInRange(handle: number): boolean {
    const i = handle - HANDLE_RANGE.TRANSIENT_FIRST;
    return i >= 0 && i < this.transient.length;
  }

  // ---- persistent objects ----

  makePersistent(handle: number, obj: TpmObject): void {
    if (!obj.sensitive)
      throw new RcError(TPM_RC.ATTRIBUTES, 'a public-only object cannot be persistent');
    this.persistentObjects.set(handle, obj);
    this.state.objects.push({
      handle,
      hierarchy: obj.hierarchy,
      publicBytes: obj.publicBytes,
      sensitiveBytes: marshal(TPMT_SENSITIVE, obj.sensitive),
      qualifiedName: obj.qualifiedName,
    });
    this.dirty = true;
  }

  evictPersistent(handle: number): void {
    this.persistentObjects.delete(handle);
    this.state.objects = this.state.objects.filter((o) => o.handle !== handle);
    this.dirty = true;
  }

  // ---- NV indexes ----

  nvIndex(handle: number): NvIndex | undefined {
    return this.state.nv.get(handle);
  }

  /** Defines an index; TPM_RC_NV_SPACE when the NV memory for indexes is used up. */
  defineNv(index: NvIndex): void {
    let total = index.data.length;
    for (const n of this.state.nv.values()) total += n.data.length;
    if (this.state.nv.size >= NV_LIMITS.maxIndexes || total > NV_LIMITS.maxTotalBytes)
      throw new RcError(TPM_RC.NV_SPACE);
    this.state.nv.set(index.public.nvIndex, index);
    this.dirty = true;
  }

  undefineNv(handle: number): void {
    this.state.nv.delete(handle);
    this.dirty = true;
  }

  /** Marks NV as changed (an index's data or attributes were updated in place). */
  nvChanged(): void {
    this.dirty = true;
  }

  // ---- sessions ----

  loadedSessionCount(): number {
    let n = 0;
    for (const s of this.sessions.values()) if (s.loaded) n++;
    return n;
  }

  /** A free session handle; TPM_RC_SESSION_MEMORY / TPM_RC_SESSION_HANDLES when full. */
  allocateSessionHandle(type: number): number {
    if (this.loadedSessionCount() >= this.limits.maxLoadedSessions)
      throw new RcError(TPM_RC.SESSION_MEMORY);
    if (this.sessions.size >= this.limits.maxActiveSessions)
      throw new RcError(TPM_RC.SESSION_HANDLES);
    const base =
      type === TPM_HT.POLICY_SESSION
        ? HANDLE_RANGE.POLICY_SESSION_FIRST
        : HANDLE_RANGE.HMAC_SESSION_FIRST;
    for (let i = 0; i < this.limits.maxActiveSessions; i++) {
      const idx = (this.nextSession + i) % this.limits.maxActiveSessions;
      const h = base + idx;
      if (!this.sessions.has(h) && !this.sessions.has(h ^ 0x01000000)) {
        this.nextSession = (idx + 1) % this.limits.maxActiveSessions;
        return h;
      }
    }
    throw new RcError(TPM_RC.SESSION_HANDLES);
  }
}

function unmarshalPublic(bytes: Uint8Array) {
  return unmarshal(TPMT_PUBLIC, bytes);
}
