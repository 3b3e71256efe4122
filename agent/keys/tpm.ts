/**
 * Device keys in a TPM, reached only through tpm-sim/client (DESIGN.md "Boundaries"). The object
 * tree, all under the owner hierarchy:
 *
 *   storage key (SRK)  ECC P-256 primary, restricted decrypt, AES-128-CFB (the tpm2-tools
 *                      `createprimary -G ecc` template): derived from the owner seed, so it is
 *                      the same key every time it is created; its Name is recorded and checked
 *   device key (dk)    RSA-2048 RSASSA-SHA256 signing key             fixedTPM | fixedParent |
 *   transport key (tk) RSA-2048 RSA-OAEP-SHA1 decryption key          sensitiveDataOrigin, made
 *   sealing key        HMAC-SHA256 keyedHash                          by TPM2_Create under the SRK
 *   computer key       RSA-2048 signing key (hybrid devices only)
 *   session keys       HMAC-SHA256 keyedHash, imported (keys/duplicate.ts), one per PRT
 *
 * Only the children's wrapped private blobs are stored (Part 1 §22: encrypted and integrity-
 * protected under the SRK); they load on no other TPM.
 *
 * Which objects are loaded. The SRK stays loaded while the provider is open. Children are kept
 * loaded between operations too ("resident"), least recently used first out, in the slots the
 * TPM guarantees (TPM_PT_HR_TRANSIENT_MIN, Part 2 §6.13; 3 on swtpm and on a TPM without a
 * resource manager, docs/tpm.md A.6/A.7) minus the SRK's. A token request uses the sealing key
 * (the PRT) and the account's session key (the derived keys) two or three times, so with both
 * resident it costs TPM2_HMAC only, instead of TPM2_Load (Part 3 §12.2: the private area
 * unwrapped and its integrity HMAC checked under the parent's protection keys) and
 * TPM2_FlushContext around each HMAC, about ten times the HMAC's own cost in the simulator.
 * Nothing is checked less: an object is resident only for the exact public and private blob the
 * TPM loaded (and checked) before, and a blob that differs by one byte is loaded anew.
 *
 * An evicted child is saved first (TPM2_ContextSave, Part 3 §28.2) and later comes back with
 * TPM2_ContextLoad (§28.3) instead of TPM2_Load: the context is protected by the TPM's own context
 * key (Part 1 §30), which is about half the cost of Load for an HMAC key in the simulator and
 * skips libtpms' private-key setup for RSA. A context that no longer loads (a TPM Reset makes
 * every saved object context invalid, Part 1 §30) falls back to Load of the stored blob.
 *
 * A TPM restart (power cycle, swtpm restarted, a dropped connection) empties the TPM's object
 * slots behind the provider's back: a command then fails with TPM_RC_INITIALIZE, a handle
 * reference error or a transport error. The provider then sends TPM2_Startup when the TPM is on
 * TCP, forgets every handle the TPM no longer holds under the Name it expects (TPM2_ReadPublic,
 * Part 3 §12.4), creates the SRK again (checking its Name) and runs the operation once more; a
 * second failure is reported as it is.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import {
  DeviceTransport,
  InProcessTransport,
  type LoadedKey,
  TcpTransport,
  TPM_ALG,
  TPM_CAP,
  TPM_RC,
  TpmClient,
  TpmResponseError,
  TpmTransportError,
  templates,
} from '../../tpm-sim/client/index.ts';
import { openTpm } from '../../tpm-sim/open.ts';
import type { KeySource } from '../../tpm-sim/state/index.ts';
import { marshal, unmarshal } from '../../tpm-sim/wire/codec.ts';
import { TPM_PT } from '../../tpm-sim/wire/constants.ts';
import {
  type Context,
  type Public,
  type SignatureRsa,
  TPMT_PUBLIC,
} from '../../tpm-sim/wire/structures.ts';
import { rsaPublicKey } from '../certificates.ts';
import { AgentDeviceError } from '../errors.ts';
import { Mutex } from '../mutex.ts';
import type { TpmSpec } from '../tpm-spec.ts';
import {
  type AttestationFields,
  attestationFields,
  certifyKey,
  createAttestationKey,
  ekCertificateOf,
} from './attestation.ts';
import { wrapHmacKeyForImport } from './duplicate.ts';
import type { KeyProvider, KeyProviderFacts, WrappedSessionKey } from './provider.ts';

/** A TPM child object as stored: marshalled TPMT_PUBLIC and TPM2B_PRIVATE contents, hex. */
export interface TpmBlob {
  readonly public: string;
  readonly private: string;
}

/** What device.json keeps for a TPM-backed device. */
export interface TpmKeyRecord {
  readonly provider: 'tpm';
  /** The SRK's Name (hex): a different Name means a cleared or different TPM. */
  readonly srkName: string;
  readonly deviceKey: TpmBlob;
  readonly transportKey: TpmBlob;
  readonly sealingKey: TpmBlob;
  readonly computerKey?: TpmBlob;
}

/** A connected TPM and how to let go of it. */
interface TpmConnection {
  readonly client: TpmClient;
  readonly description: string;
  /**
   * TPM2_Startup(CLEAR) after a restart, for TPMs the agent starts itself; absent for a kernel
   * device, whose resource manager refuses Startup from user space.
   */
  readonly startup?: () => Promise<void>;
  close(): Promise<void>;
}

/** The builtin simulator's state directory inside a device directory. */
export const BUILTIN_TPM_DIR = 'tpm';

/**
 * Connects to the TPM `spec` names. The builtin simulator is opened from its sealed state in the
 * device directory (and manufactured there on first use); a TCP TPM gets TPM2_Startup(CLEAR),
 * which a TPM that already started answers with TPM_RC_INITIALIZE (Part 3 §9.3), fine here.
 */
async function connect(
  spec: TpmSpec,
  deviceDir: string,
  keySource: KeySource,
): Promise<TpmConnection> {
  switch (spec.kind) {
    case 'builtin': {
      const dir = join(deviceDir, BUILTIN_TPM_DIR);
      // With the lab's data directory the simulator gets EK certificates from the lab's TPM
      // manufacturer CA (<data>/tpm-manufacturer/), as a real TPM has them from its factory; a
      // cloud on the same data directory trusts that CA (cloud/registration/trusted-manufacturers.ts).
      const opened = await openTpm({ dir, keySource, dataDir: labDataDirOf(deviceDir) });
      try {
        await opened.device.powerOn();
      } catch (err) {
        await opened.close();
        throw err;
      }
      const client = new TpmClient(new InProcessTransport(opened.device));
      return {
        client,
        description: `built-in simulator (${opened.store.describe()})`,
        startup: () => startup(client),
        async close() {
          try {
            await client.close();
          } finally {
            await opened.close();
          }
        },
      };
    }
    case 'swtpm':
    case 'mssim': {
      const framing = spec.kind === 'swtpm' ? 'raw' : 'mssim';
      const client = new TpmClient(new TcpTransport({ host: spec.host, port: spec.port, framing }));
      try {
        await startup(client);
      } catch (err) {
        await client.close();
        throw err;
      }
      return {
        client,
        description: `${spec.kind === 'swtpm' ? 'TPM over TCP (swtpm framing)' : 'TPM over TCP (MS simulator framing)'} at ${spec.host}:${spec.port}`,
        startup: () => startup(client),
        close: () => client.close(),
      };
    }
    case 'device': {
      // The kernel started the TPM; a resource manager refuses Startup from user space anyway.
      const client = new TpmClient(new DeviceTransport(spec.path));
      return { client, description: `kernel TPM device ${spec.path}`, close: () => client.close() };
    }
    default:
      throw new TypeError(`no TPM for spec kind ${spec.kind}`);
  }
}

/**
 * The lab's data directory of a device directory: `<data>/devices/<name>` (or the staging
 * directory `<data>/devices/.add-<name>-*` while `device add` runs; agent/store.ts DEVICES_DIR).
 */
export function labDataDirOf(deviceDir: string): string {
  return dirname(dirname(resolve(deviceDir)));
}

async function startup(client: TpmClient): Promise<void> {
  try {
    await client.startup();
  } catch (err) {
    if (err instanceof TpmResponseError && err.baseRc === TPM_RC.INITIALIZE) return;
    throw err;
  }
}

const hex = (b: Buffer) => b.toString('hex');

function blobOf(created: { outPublic: Public; outPrivate: Buffer }): TpmBlob {
  return { public: hex(marshal(TPMT_PUBLIC, created.outPublic)), private: hex(created.outPrivate) };
}

function readBlob(blob: TpmBlob, what: string): { outPublic: Public; outPrivate: Buffer } {
  try {
    return {
      outPublic: unmarshal(TPMT_PUBLIC, Buffer.from(blob.public, 'hex')),
      outPrivate: Buffer.from(blob.private, 'hex'),
    };
  } catch (err) {
    throw new AgentDeviceError(`the stored ${what} does not parse`, { cause: err });
  }
}

function publicKeyOf(blob: TpmBlob, what: string): KeyObject {
  const { outPublic } = readBlob(blob, what);
  if (outPublic.type !== TPM_ALG.RSA) throw new AgentDeviceError(`the stored ${what} is not RSA`);
  const parms = outPublic.parameters as { exponent: number };
  return rsaPublicKey(outPublic.unique as Buffer, parms.exponent);
}

/**
 * At most this many children stay loaded, whatever the TPM reports: with several accounts (one
 * session key each) the provider should not fill a large TPM that other programs use too.
 */
const MAX_RESIDENT = 8;
/** Saved contexts kept in memory (about the object's size each), least recently used out. */
const MAX_SAVED_CONTEXTS = 32;
/** Children kept resident when the TPM does not say how many transient objects it holds. */
const DEFAULT_RESIDENT = 2;

/** The object slots the TPM guarantees (TPM_PT_HR_TRANSIENT_MIN), minus the SRK's. */
async function residentSlots(client: TpmClient): Promise<number> {
  try {
    const { data } = await client.getCapability(TPM_CAP.TPM_PROPERTIES, TPM_PT.HR_TRANSIENT_MIN, 1);
    const props = data.data as { property: number; value: number }[];
    const min = props.find((p) => p.property === TPM_PT.HR_TRANSIENT_MIN)?.value;
    if (min !== undefined) return Math.max(1, Math.min(MAX_RESIDENT, min - 1));
  } catch (err) {
    if (lostTpmState(err)) throw err;
  }
  return DEFAULT_RESIDENT;
}

/**
 * True for failures that mean the TPM no longer holds what the provider loaded: the connection
 * dropped (a TCP TPM may have restarted), the TPM waits for TPM2_Startup after a power cycle
 * (TPM_RC_INITIALIZE), or a handle names no loaded object (TPM_RC_REFERENCE_H0 + n, TPM_RC_HANDLE;
 * Part 2 §6.6.3).
 */
function lostTpmState(err: unknown): boolean {
  if (err instanceof TpmTransportError) return true;
  if (!(err instanceof TpmResponseError)) return false;
  if (err.rc >= TPM_RC.REFERENCE_H0 && err.rc < TPM_RC.REFERENCE_H0 + 7) return true;
  return err.baseRc === TPM_RC.INITIALIZE || err.baseRc === TPM_RC.HANDLE;
}

function isObjectMemory(err: unknown): boolean {
  return err instanceof TpmResponseError && err.rc === TPM_RC.OBJECT_MEMORY;
}

/** Identifies a child by its exact stored blob: the public area and the wrapped private area. */
const blobId = (blob: TpmBlob) => `${blob.public}.${blob.private}`;

export class TpmKeyProvider implements KeyProvider {
  readonly facts: KeyProviderFacts;
  readonly devicePublicKey: KeyObject;
  readonly transportPublicKey: KeyObject;
  readonly computerPublicKey: KeyObject | undefined;
  readonly #tpm: TpmConnection;
  readonly #record: TpmKeyRecord;
  /** Undefined after a TPM restart until the next operation creates it again. */
  #srk: LoadedKey | undefined;
  /** Loaded children by blobId, least recently used first. */
  readonly #resident = new Map<string, LoadedKey>();
  /** Saved contexts of children, by blobId, least recently used first. */
  readonly #saved = new Map<string, { context: Context; key: LoadedKey }>();
  #slots: number;
  readonly #lock = new Mutex();
  #closed = false;

  private constructor(tpm: TpmConnection, record: TpmKeyRecord, srk: LoadedKey, slots: number) {
    this.#tpm = tpm;
    this.#record = record;
    this.#srk = srk;
    this.#slots = slots;
    this.devicePublicKey = publicKeyOf(record.deviceKey, 'device key');
    this.transportPublicKey = publicKeyOf(record.transportKey, 'transport key');
    this.computerPublicKey = record.computerKey
      ? publicKeyOf(record.computerKey, 'computer key')
      : undefined;
    this.facts = {
      tpmProtected: true,
      keyProvider: 'Microsoft Platform Crypto Provider',
      tpm: tpm.description,
    };
  }

  /**
   * Makes the device's keys in the TPM (registration time): the SRK, then dk, tk, the sealing key
   * and, for a hybrid device, the computer key, each created by the TPM itself.
   */
  static async create(
    spec: TpmSpec,
    deviceDir: string,
    keySource: KeySource,
    options: { computerKey: boolean },
  ): Promise<{ provider: TpmKeyProvider; record: TpmKeyRecord }> {
    const tpm = await connect(spec, deviceDir, keySource);
    let srk: LoadedKey | undefined;
    try {
      srk = await tpm.client.createPrimary({ template: templates.eccStoragePrimary() });
      const make = async (template: Public) => blobOf(await tpm.client.create(srk!, { template }));
      const record: TpmKeyRecord = {
        provider: 'tpm',
        srkName: hex(srk.name),
        deviceKey: await make(templates.rsaSigningKey({ scheme: TPM_ALG.RSASSA })),
        // The session_key_jwe is RSA-OAEP with SHA-1 and an empty label (§4.4), so the key's own
        // scheme says so and RSA_Decrypt needs no per-call scheme.
        transportKey: await make(
          templates.rsaDecryptKey({ scheme: TPM_ALG.OAEP, hashAlg: TPM_ALG.SHA1 }),
        ),
        sealingKey: await make(templates.hmacKey()),
        ...(options.computerKey
          ? { computerKey: await make(templates.rsaSigningKey({ scheme: TPM_ALG.RSASSA })) }
          : {}),
      };
      const slots = await residentSlots(tpm.client);
      return { provider: new TpmKeyProvider(tpm, record, srk, slots), record };
    } catch (err) {
      if (srk) await tpm.client.flushContext(srk).catch(() => {});
      await tpm.close().catch(() => {});
      throw err;
    }
  }

  /** Opens the TPM a device was registered with and checks it still holds the same SRK. */
  static async open(
    spec: TpmSpec,
    deviceDir: string,
    keySource: KeySource,
    record: TpmKeyRecord,
  ): Promise<TpmKeyProvider> {
    const tpm = await connect(spec, deviceDir, keySource);
    let srk: LoadedKey | undefined;
    try {
      srk = await createSrk(tpm, record);
      const slots = await residentSlots(tpm.client);
      return new TpmKeyProvider(tpm, record, srk, slots);
    } catch (err) {
      if (srk) await tpm.client.flushContext(srk).catch(() => {});
      await tpm.close().catch(() => {});
      throw err;
    }
  }

  /**
   * Runs `fn` with the child `blob` loaded, one sequence at a time. After a TPM restart (see the
   * file comment) the provider recovers and runs it once more: every `fn` here is a pure function
   * of the key and its input (HMAC, Sign, RSA_Decrypt and Import), so running it again is safe.
   */
  #withKey<T>(blob: TpmBlob, what: string, fn: (key: LoadedKey) => Promise<T>): Promise<T> {
    return this.#lock.run(async () => {
      if (this.#closed) throw new AgentDeviceError('the device agent is closed');
      try {
        return await fn(await this.#use(blob, what));
      } catch (err) {
        if (!lostTpmState(err)) throw err;
        await this.#recover();
        return fn(await this.#use(blob, what));
      }
    });
  }

  /** The child loaded, from the resident set, a saved context, or its blob (in that order). */
  async #use(blob: TpmBlob, what: string): Promise<LoadedKey> {
    const id = blobId(blob);
    const hit = this.#resident.get(id);
    if (hit) {
      this.#resident.delete(id);
      this.#resident.set(id, hit);
      return hit;
    }
    const srk = await this.#srkKey();
    while (this.#resident.size >= this.#slots) await this.#evictOldest();
    for (;;) {
      try {
        const key = await this.#bringBack(id, blob, what, srk);
        this.#resident.set(id, key);
        return key;
      } catch (err) {
        // Fewer free slots than the TPM promised (objects someone else left loaded): make room
        // among ours and remember the smaller number.
        if (!isObjectMemory(err) || this.#resident.size === 0) throw err;
        await this.#evictOldest();
        this.#slots = Math.max(1, this.#resident.size);
      }
    }
  }

  async #bringBack(id: string, blob: TpmBlob, what: string, srk: LoadedKey): Promise<LoadedKey> {
    const saved = this.#saved.get(id);
    if (saved) {
      try {
        const handle = await this.#tpm.client.contextLoad(saved.context);
        this.#saved.delete(id);
        this.#saved.set(id, saved);
        return { ...saved.key, handle };
      } catch (err) {
        if (lostTpmState(err) || isObjectMemory(err)) throw err;
        // The context no longer loads (e.g. TPM_RC_INTEGRITY after a TPM Reset): use the blob.
        this.#saved.delete(id);
      }
    }
    return this.#tpm.client.load(srk, readBlob(blob, what));
  }

  /** Flushes the least recently used child, saving its context first (once per child). */
  async #evictOldest(): Promise<void> {
    const oldest = this.#resident.entries().next().value;
    if (!oldest) return;
    const [id, key] = oldest;
    this.#resident.delete(id);
    if (!this.#saved.has(id)) {
      try {
        const context = await this.#tpm.client.contextSave(key);
        this.#saved.set(id, { context, key });
        if (this.#saved.size > MAX_SAVED_CONTEXTS) {
          const first = this.#saved.keys().next().value;
          if (first !== undefined) this.#saved.delete(first);
        }
      } catch (err) {
        // Without a context the child comes back with Load next time, as it always could.
        if (lostTpmState(err)) throw err;
      }
    }
    await this.#tpm.client.flushContext(key);
  }

  async #srkKey(): Promise<LoadedKey> {
    if (this.#srk) return this.#srk;
    for (;;) {
      try {
        this.#srk = await createSrk(this.#tpm, this.#record);
        return this.#srk;
      } catch (err) {
        if (!isObjectMemory(err) || this.#resident.size === 0) throw err;
        await this.#evictOldest();
      }
    }
  }

  /**
   * After a failure that means lost TPM state: Startup when the TPM waits for it, then keep only
   * the handles the TPM still holds under the Names the provider knows them by. Saved contexts are
   * dropped too (a TPM Reset invalidated them; Load from the blob is always possible).
   */
  async #recover(): Promise<void> {
    await this.#tpm.startup?.();
    this.#saved.clear();
    const holds = async (key: LoadedKey) => {
      try {
        return (await this.#tpm.client.readPublic(key.handle)).name.equals(key.name);
      } catch (err) {
        if (err instanceof TpmTransportError) throw err;
        return false;
      }
    };
    for (const [id, key] of [...this.#resident]) {
      if (!(await holds(key))) this.#resident.delete(id);
    }
    if (this.#srk && !(await holds(this.#srk))) this.#srk = undefined;
  }

  #rs256(blob: TpmBlob, what: string, data: Buffer): Promise<Buffer> {
    const digest = createHash('sha256').update(data).digest();
    return this.#withKey(blob, what, async (key) => {
      const signature = await this.#tpm.client.sign(key, digest);
      return Buffer.from((signature.signature as SignatureRsa).sig);
    });
  }

  signWithDeviceKey(data: Buffer): Promise<Buffer> {
    return this.#rs256(this.#record.deviceKey, 'device key', data);
  }

  signWithComputerKey(data: Buffer): Promise<Buffer> {
    const blob = this.#record.computerKey;
    if (!blob) throw new AgentDeviceError('this device has no computer key (not a hybrid device)');
    return this.#rs256(blob, 'computer key', data);
  }

  importSessionKey(
    encryptedKey: Buffer,
    check?: (key: Buffer) => void,
  ): Promise<WrappedSessionKey> {
    return this.#withKey(this.#record.transportKey, 'transport key', async (tk) => {
      const plain = await this.#tpm.client.rsaDecrypt(tk, encryptedKey);
      try {
        if (plain.length !== 32) {
          throw new AgentDeviceError('the session key the transport key decrypted is not 32 bytes');
        }
        check?.(plain);
        // #withKey leaves the SRK loaded: the import's parent.
        const srk = await this.#srkKey();
        const wrapped = wrapHmacKeyForImport(srk.publicArea, plain);
        const outPrivate = await this.#tpm.client.import(srk, wrapped);
        return {
          kind: 'tpm',
          public: hex(marshal(TPMT_PUBLIC, wrapped.objectPublic)),
          private: hex(outPrivate),
        };
      } finally {
        plain.fill(0);
      }
    });
  }

  sessionHmac(key: WrappedSessionKey, data: Buffer): Promise<Buffer> {
    if (key.kind !== 'tpm') throw new AgentDeviceError('this session key was not made by a TPM');
    return this.#withKey(key, 'session key', (k) => this.#tpm.client.hmac(k, data));
  }

  sealingHmac(data: Buffer): Promise<Buffer> {
    return this.#withKey(this.#record.sealingKey, 'sealing key', (k) =>
      this.#tpm.client.hmac(k, data),
    );
  }

  /**
   * TPM attestation for registration (keys/attestation.ts): the AK, a primary in the endorsement
   * hierarchy, certifies the device key and then the transport key over `nonce`. The AK needs an
   * object slot of its own, so the resident children are saved and flushed first and each key is
   * flushed again after its TPM2_Certify (SRK + AK + one key: 3 slots, swtpm's minimum).
   * Undefined when the TPM has no EK certificate.
   */
  attest(nonce: string): Promise<AttestationFields | undefined> {
    return this.#lock.run(async () => {
      if (this.#closed) throw new AgentDeviceError('the device agent is closed');
      const client = this.#tpm.client;
      const ekCertificate = await ekCertificateOf(client);
      // No EK certificate (a bare swtpm or simulator): nothing to chain the AK to.
      if (!ekCertificate) return undefined;
      while (this.#resident.size > 0) await this.#evictOldest();
      await this.#srkKey();
      const ak = await createAttestationKey(client);
      try {
        const one = async (blob: TpmBlob, what: string) => {
          const key = await this.#use(blob, what);
          try {
            return await certifyKey(client, key, ak, nonce);
          } finally {
            await this.#evictOldest();
          }
        };
        const deviceKey = await one(this.#record.deviceKey, 'device key');
        const transportKey = await one(this.#record.transportKey, 'transport key');
        return attestationFields({
          akPublic: ak.publicArea!,
          ekCertificate,
          deviceKey,
          transportKey,
        });
      } finally {
        await client.flushContext(ak).catch(() => {});
      }
    });
  }

  close(): Promise<void> {
    return this.#lock.run(async () => {
      if (this.#closed) return;
      this.#closed = true;
      try {
        // Leaves the TPM's slots as the provider found them (a TPM without a resource manager
        // keeps transient objects across connections).
        for (const key of this.#resident.values()) {
          await this.#tpm.client.flushContext(key).catch(() => {});
        }
        this.#resident.clear();
        this.#saved.clear();
        if (this.#srk) await this.#tpm.client.flushContext(this.#srk).catch(() => {});
      } finally {
        await this.#tpm.close();
      }
    });
  }
}

/** The SRK, created from the owner seed, or ERR_AGENT_DEVICE when its Name is not the recorded one. */
async function createSrk(tpm: TpmConnection, record: TpmKeyRecord): Promise<LoadedKey> {
  const srk = await tpm.client.createPrimary({ template: templates.eccStoragePrimary() });
  if (hex(srk.name) !== record.srkName) {
    await tpm.client.flushContext(srk).catch(() => {});
    throw new AgentDeviceError(
      `the TPM's storage key is not the one this device's keys were made under (${tpm.description}): ` +
        'the TPM was cleared, or this is another TPM; the device must be added again',
    );
  }
  return srk;
}
