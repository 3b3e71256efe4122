/**
 * The typed TPM client: one async method per command, over any TpmTransport (in-process, TCP in
 * either framing, or a kernel device). It marshals with the same command table the engine uses,
 * signs commands with password or HMAC authorizations and checks response HMACs. The agent reaches
 * a TPM only through this class.
 */
import { cpHash, rpHash } from '../crypto/auth-hmac.ts';
import type { TpmTransport } from '../transport/transport.ts';
import { marshal, unmarshal, WireError } from '../wire/codec.ts';
import { COMMANDS, type CommandName, type ParamsOf, type ResponseOf } from '../wire/commands.ts';
import {
  NV_BUFFER_MAX,
  TPM_ALG,
  TPM_HT,
  TPM_RH,
  TPM_SE,
  TPM_ST,
  TPM_SU,
} from '../wire/constants.ts';
import { buildCommand, readResponse } from '../wire/frame.ts';
import { TPM_RC } from '../wire/rc.ts';
import {
  type Attest,
  type CapabilityData,
  type Context,
  type NvPublic,
  nullTicket,
  type PcrSelection,
  type Public,
  SCHEME_NULL,
  type Scheme,
  type Signature,
  SYM_NULL,
  type Ticket,
  TPMS_ATTEST,
  TPMT_PUBLIC,
} from '../wire/structures.ts';
import { type Authorization, HmacSession, PolicySession, passwordAuth } from './auth.ts';
import { TpmBadResponseError, TpmResponseError } from './errors.ts';

const EMPTY = Buffer.alloc(0);
const MAX_RETRIES = 5;

function isRetryable(rsp: Uint8Array): boolean {
  if (rsp.length < 10) return false;
  const rc = ((rsp[6]! << 24) | (rsp[7]! << 16) | (rsp[8]! << 8) | rsp[9]!) >>> 0;
  return rc === TPM_RC.RETRY || rc === TPM_RC.YIELDED || rc === TPM_RC.TESTING;
}

/** A handle with what authorizing it needs: its Name (for cpHash) and its authValue. */
export interface Entity {
  readonly handle: number;
  readonly name: Buffer;
  readonly authValue?: Buffer;
}

export type HandleArg = number | Entity;

/** A loaded key: its handle, Name, public area and authValue. */
export interface LoadedKey extends Entity {
  readonly publicArea: Public;
}

function nameOfPermanent(h: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(h >>> 0, 0);
  return b;
}

export interface AuthOptions {
  /** How to authorize the command's auth handle(s); a password session by default. */
  auth?: Authorization;
}

/** A PCR value as TPM2_PCR_Read returns it. */
export interface PcrValue {
  readonly hashAlg: number;
  readonly pcr: number;
  readonly digest: Buffer;
}

/** Bytes in TPMS_PCR_SELECTION.pcrSelect for 24 PCRs (TPM_PT_PCR_SELECT_MIN). */
const PCR_SELECT_BYTES = 3;

/** TPMS_PCR_SELECTION naming `pcrs` of the `hashAlg` bank (Part 2 §10.6.2). */
export function pcrSelection(hashAlg: number, pcrs: readonly number[]): PcrSelection {
  const pcrSelect = Buffer.alloc(PCR_SELECT_BYTES);
  for (const i of pcrs) {
    if (!Number.isInteger(i) || i < 0 || i >= PCR_SELECT_BYTES * 8)
      throw new RangeError(`PCR ${i} is not 0..${PCR_SELECT_BYTES * 8 - 1}`);
    pcrSelect[i >> 3]! |= 1 << (i & 7);
  }
  return { hash: hashAlg, pcrSelect };
}

function selectedIndexes(sel: PcrSelection): number[] {
  const out: number[] = [];
  sel.pcrSelect.forEach((byte, j) => {
    for (let k = 0; k < 8; k++) if (byte & (1 << k)) out.push(8 * j + k);
  });
  return out;
}

/** An attestation as the TPM returned it: the signed bytes, parsed, and the signature. */
export interface Attestation {
  /** TPMS_ATTEST exactly as signed (the content of TPM2B_ATTEST). */
  readonly attestBytes: Buffer;
  readonly attest: Attest;
  readonly signature: Signature;
}

/** How the client authorizes an NV index operation: the index itself, the owner or the platform. */
export interface NvAuthArgs {
  /** TPM_RH_OWNER or TPM_RH_PLATFORM; by default the index authorizes itself. */
  authHandle?: number;
  /** The index's authValue, or the hierarchy's when authHandle is given. */
  authValue?: Buffer;
}

export class TpmClient {
  readonly transport: TpmTransport;

  constructor(transport: TpmTransport) {
    this.transport = transport;
  }

  /** Sends one command. Rejects with TpmResponseError for a TPM error code. */
  async call<N extends CommandName>(
    name: N,
    handles: readonly HandleArg[],
    params: ParamsOf<N>,
    auths: readonly Authorization[] = [],
  ): Promise<{ handles: number[]; response: ResponseOf<N> }> {
    const spec = COMMANDS[name];
    const handleNums = handles.map((h) => (typeof h === 'number' ? h : h.handle));
    const needNames = auths.some(
      (a) => !(a as { command?: unknown }).command || a instanceof HmacSession,
    );
    const names = needNames ? await Promise.all(handles.map((h) => this.nameOf(h))) : [];
    const targets = spec.handles.flatMap((hs, i) => {
      if (!hs.auth) return [];
      const h = handles[i]!;
      return [
        {
          name: names[i] ?? EMPTY,
          authValue: typeof h === 'number' ? EMPTY : (h.authValue ?? EMPTY),
        },
      ];
    });
    const paramBytes = marshal(spec.params as never, params as never);
    const cpCache = new Map<number, Buffer>();
    const cp = (alg: number) => {
      let v = cpCache.get(alg);
      if (!v) {
        v = cpHash(alg, spec.cc, names, paramBytes);
        cpCache.set(alg, v);
      }
      return v;
    };
    const authEntries = auths.map((a, i) => a.command(cp, targets[i]));
    const command = buildCommand(spec.cc, handleNums, authEntries, paramBytes);
    let raw = await this.transport.send(command);
    // Like ESAPI, resubmit the same bytes on RETRY, YIELDED and TESTING (Part 3 §5.1 warnings):
    // libtpms answers RETRY to the first DA-protected authorization after startup. Nonces do not
    // roll on an error, so the same command is still valid.
    for (let tries = 0; tries < MAX_RETRIES && isRetryable(raw); tries++)
      raw = await this.transport.send(command);
    let frame: ReturnType<typeof readResponse>;
    try {
      frame = readResponse(raw, spec.responseHandles.length, auths.length);
    } catch (err) {
      if (err instanceof WireError) throw new TpmBadResponseError(name, err.message);
      throw err;
    }
    if (frame.rc !== 0) throw new TpmResponseError(name, frame.rc);
    if (auths.length > 0) {
      if (frame.tag !== TPM_ST.SESSIONS || frame.auths.length !== auths.length) {
        throw new TpmBadResponseError(name, 'authorization area missing');
      }
      const rpCache = new Map<number, Buffer>();
      const rp = (alg: number) => {
        let v = rpCache.get(alg);
        if (!v) {
          v = rpHash(alg, spec.cc, frame.params);
          rpCache.set(alg, v);
        }
        return v;
      };
      // HierarchyChangeAuth answers with an HMAC keyed by the new authValue (the TPM changed it
      // before responding; ESAPI does the same in Esys_HierarchyChangeAuth_Finish).
      const responseTargets =
        name === 'HierarchyChangeAuth' && targets[0]
          ? [{ ...targets[0], authValue: (params as ParamsOf<'HierarchyChangeAuth'>).newAuth }]
          : targets;
      auths.forEach((a, i) => {
        if (!a.response(rp, frame.auths[i]!, responseTargets[i])) {
          throw new TpmBadResponseError(name, `response authorization ${i + 1} does not verify`);
        }
      });
    }
    let response: ResponseOf<N>;
    try {
      response = unmarshal(spec.response as never, frame.params) as ResponseOf<N>;
    } catch (err) {
      if (err instanceof WireError) throw new TpmBadResponseError(name, err.message);
      throw err;
    }
    return { handles: frame.handles, response };
  }

  /** The Name of a handle: given, the handle itself for permanent entities, or read from the TPM. */
  private async nameOf(h: HandleArg): Promise<Buffer> {
    if (typeof h !== 'number') return h.name;
    const ht = h >>> 24;
    if (ht === TPM_HT.TRANSIENT || ht === TPM_HT.PERSISTENT) return (await this.readPublic(h)).name;
    if (ht === TPM_HT.NV_INDEX) return (await this.nvReadPublic(h)).name;
    return nameOfPermanent(h);
  }

  private auths(count: number, opts?: AuthOptions): Authorization[] {
    const a = opts?.auth ?? passwordAuth();
    return Array.from({ length: count }, () => a);
  }

  // ---- startup, capability, random, clock ----

  async startup(type: number = TPM_SU.CLEAR): Promise<void> {
    await this.call('Startup', [], { startupType: type });
  }

  async shutdown(type: number = TPM_SU.CLEAR): Promise<void> {
    await this.call('Shutdown', [], { shutdownType: type });
  }

  async getCapability(
    capability: number,
    property: number,
    propertyCount: number,
  ): Promise<{ moreData: boolean; data: CapabilityData }> {
    const { response } = await this.call('GetCapability', [], {
      capability,
      property,
      propertyCount,
    });
    return { moreData: response.moreData !== 0, data: response.capabilityData };
  }

  /** `n` random bytes from the TPM (several calls when n exceeds one response). */
  async getRandom(n: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let got = 0;
    while (got < n) {
      const { response } = await this.call('GetRandom', [], {
        bytesRequested: Math.min(n - got, 64),
      });
      if (response.randomBytes.length === 0) throw new TpmBadResponseError('GetRandom', 'no bytes');
      parts.push(response.randomBytes);
      got += response.randomBytes.length;
    }
    return Buffer.concat(parts).subarray(0, n);
  }

  async readClock() {
    return (await this.call('ReadClock', [], {})).response.currentTime;
  }

  // ---- sessions ----

  /** Starts an unbound, unsalted HMAC session (Part 3 §11.1) with SHA-256 by default. */
  async startHmacSession(authHash: number = TPM_ALG.SHA256): Promise<HmacSession> {
    const nonceCaller = await this.localNonce(authHash);
    const { handles, response } = await this.call('StartAuthSession', [TPM_RH.NULL, TPM_RH.NULL], {
      nonceCaller,
      encryptedSalt: EMPTY,
      sessionType: TPM_SE.HMAC,
      symmetric: SYM_NULL,
      authHash,
    });
    return new HmacSession({ handle: handles[0]!, authHash, nonceTPM: response.nonceTPM });
  }

  private async localNonce(alg: number): Promise<Buffer> {
    const { randomBytes } = await import('node:crypto');
    return randomBytes(
      alg === TPM_ALG.SHA1 ? 20 : alg === TPM_ALG.SHA384 ? 48 : alg === TPM_ALG.SHA512 ? 64 : 32,
    );
  }

  // ---- objects ----

  async createPrimary(
    args: {
      hierarchy?: number;
      hierarchyAuth?: Buffer;
      template: Public;
      userAuth?: Buffer;
      data?: Buffer;
    },
    opts?: AuthOptions,
  ): Promise<LoadedKey & { creationHash: Buffer; creationTicket: Ticket }> {
    const hierarchy = args.hierarchy ?? TPM_RH.OWNER;
    const { handles, response } = await this.call(
      'CreatePrimary',
      [
        {
          handle: hierarchy,
          name: nameOfPermanent(hierarchy),
          authValue: args.hierarchyAuth ?? EMPTY,
        },
      ],
      {
        inSensitive: { userAuth: args.userAuth ?? EMPTY, data: args.data ?? EMPTY },
        inPublic: args.template,
        outsideInfo: EMPTY,
        creationPCR: [],
      },
      this.auths(1, opts),
    );
    return {
      handle: handles[0]!,
      name: response.name,
      authValue: args.userAuth ?? EMPTY,
      publicArea: response.outPublic,
      creationHash: response.creationHash,
      creationTicket: response.creationTicket,
    };
  }

  async create(
    parent: Entity,
    args: { template: Public; userAuth?: Buffer; data?: Buffer },
    opts?: AuthOptions,
  ): Promise<{
    outPrivate: Buffer;
    outPublic: Public;
    creationHash: Buffer;
    creationTicket: Ticket;
  }> {
    const { response } = await this.call(
      'Create',
      [parent],
      {
        inSensitive: { userAuth: args.userAuth ?? EMPTY, data: args.data ?? EMPTY },
        inPublic: args.template,
        outsideInfo: EMPTY,
        creationPCR: [],
      },
      this.auths(1, opts),
    );
    return response;
  }

  async load(
    parent: Entity,
    blob: { outPrivate: Buffer; outPublic: Public },
    userAuth: Buffer = EMPTY,
    opts?: AuthOptions,
  ): Promise<LoadedKey> {
    const { handles, response } = await this.call(
      'Load',
      [parent],
      { inPrivate: blob.outPrivate, inPublic: blob.outPublic },
      this.auths(1, opts),
    );
    return {
      handle: handles[0]!,
      name: response.name,
      authValue: userAuth,
      publicArea: blob.outPublic,
    };
  }

  /** Loads a public key (and optionally its private part) from outside the TPM (Part 3 §12.3). */
  async loadExternal(publicArea: Public, hierarchy: number = TPM_RH.NULL): Promise<LoadedKey> {
    const { handles, response } = await this.call('LoadExternal', [], {
      inPrivate: undefined,
      inPublic: publicArea,
      hierarchy,
    });
    return { handle: handles[0]!, name: response.name, publicArea };
  }

  async readPublic(
    handle: number,
  ): Promise<{ outPublic: Public; name: Buffer; qualifiedName: Buffer }> {
    return (await this.call('ReadPublic', [handle], {})).response;
  }

  async flushContext(handle: HandleArg): Promise<void> {
    await this.call('FlushContext', [], {
      flushHandle: typeof handle === 'number' ? handle : handle.handle,
    });
  }

  async contextSave(handle: HandleArg): Promise<Context> {
    return (
      await this.call('ContextSave', [typeof handle === 'number' ? handle : handle.handle], {})
    ).response.context;
  }

  async contextLoad(context: Context): Promise<number> {
    return (await this.call('ContextLoad', [], { context })).handles[0]!;
  }

  /** Makes `object` persistent at `persistentHandle`, or evicts it when it is already persistent. */
  async evictControl(
    object: HandleArg,
    persistentHandle: number,
    args: { auth?: number; authValue?: Buffer } = {},
    opts?: AuthOptions,
  ): Promise<void> {
    const auth = args.auth ?? TPM_RH.OWNER;
    await this.call(
      'EvictControl',
      [{ handle: auth, name: nameOfPermanent(auth), authValue: args.authValue ?? EMPTY }, object],
      { persistentHandle },
      this.auths(1, opts),
    );
  }

  async changeHierarchyAuth(
    hierarchy: number,
    oldAuth: Buffer,
    newAuth: Buffer,
    opts?: AuthOptions,
  ): Promise<void> {
    await this.call(
      'HierarchyChangeAuth',
      [{ handle: hierarchy, name: nameOfPermanent(hierarchy), authValue: oldAuth }],
      { newAuth },
      this.auths(1, opts),
    );
  }

  async import(
    parent: Entity,
    args: {
      encryptionKey?: Buffer;
      objectPublic: Public;
      duplicate: Buffer;
      inSymSeed: Buffer;
      symmetricAlg?: typeof SYM_NULL;
    },
    opts?: AuthOptions,
  ): Promise<Buffer> {
    const { response } = await this.call(
      'Import',
      [parent],
      {
        encryptionKey: args.encryptionKey ?? EMPTY,
        objectPublic: args.objectPublic,
        duplicate: args.duplicate,
        inSymSeed: args.inSymSeed,
        symmetricAlg: args.symmetricAlg ?? SYM_NULL,
      },
      this.auths(1, opts),
    );
    return response.outPrivate;
  }

  // ---- hashing, signing, encryption ----

  async hash(
    data: Buffer,
    hashAlg: number = TPM_ALG.SHA256,
    hierarchy: number = TPM_RH.OWNER,
  ): Promise<{ digest: Buffer; ticket: Ticket }> {
    const { response } = await this.call('Hash', [], { data, hashAlg, hierarchy });
    return { digest: response.outHash, ticket: response.validation };
  }

  /** Signs a digest with the key's scheme (or `scheme` when the key has none). */
  async sign(
    key: Entity,
    digest: Buffer,
    args: { scheme?: Scheme; ticket?: Ticket } = {},
    opts?: AuthOptions,
  ): Promise<Signature> {
    const { response } = await this.call(
      'Sign',
      [key],
      { digest, inScheme: args.scheme ?? SCHEME_NULL, validation: args.ticket ?? nullTicket() },
      this.auths(1, opts),
    );
    return response.signature;
  }

  async verifySignature(key: HandleArg, digest: Buffer, signature: Signature): Promise<Ticket> {
    return (
      await this.call('VerifySignature', [typeof key === 'number' ? key : key.handle], {
        digest,
        signature,
      })
    ).response.validation;
  }

  async hmac(
    key: Entity,
    data: Buffer,
    hashAlg: number = TPM_ALG.NULL,
    opts?: AuthOptions,
  ): Promise<Buffer> {
    return (await this.call('HMAC', [key], { buffer: data, hashAlg }, this.auths(1, opts))).response
      .outHMAC;
  }

  async rsaEncrypt(
    key: HandleArg,
    message: Buffer,
    args: { scheme?: Scheme; label?: Buffer } = {},
  ): Promise<Buffer> {
    const { response } = await this.call(
      'RSA_Encrypt',
      [typeof key === 'number' ? key : key.handle],
      {
        message,
        inScheme: args.scheme ?? SCHEME_NULL,
        label: args.label ?? EMPTY,
      },
    );
    return response.outData;
  }

  async rsaDecrypt(
    key: Entity,
    cipherText: Buffer,
    args: { scheme?: Scheme; label?: Buffer } = {},
    opts?: AuthOptions,
  ): Promise<Buffer> {
    const { response } = await this.call(
      'RSA_Decrypt',
      [key],
      { cipherText, inScheme: args.scheme ?? SCHEME_NULL, label: args.label ?? EMPTY },
      this.auths(1, opts),
    );
    return response.message;
  }

  // ---- sealed data ----

  /** TPM2_Unseal (Part 3 §12.7): the data of a sealed data object. */
  async unseal(item: Entity, opts?: AuthOptions): Promise<Buffer> {
    return (await this.call('Unseal', [item], {}, this.auths(1, opts))).response.outData;
  }

  /**
   * TPM2_CreateLoaded (Part 3 §12.9): creates and loads in one command. `parent` is a loaded
   * storage parent, or a hierarchy (TPM_RH_OWNER, ...) to make a primary object; `parentAuth`
   * is the hierarchy's authValue in that case.
   */
  async createLoaded(
    parent: Entity | number,
    args: { template: Public; userAuth?: Buffer; data?: Buffer; parentAuth?: Buffer },
    opts?: AuthOptions,
  ): Promise<LoadedKey & { outPrivate: Buffer }> {
    const parentEntity =
      typeof parent === 'number'
        ? { handle: parent, name: nameOfPermanent(parent), authValue: args.parentAuth ?? EMPTY }
        : parent;
    const { handles, response } = await this.call(
      'CreateLoaded',
      [parentEntity],
      {
        inSensitive: { userAuth: args.userAuth ?? EMPTY, data: args.data ?? EMPTY },
        inPublic: marshal(TPMT_PUBLIC, args.template),
      },
      this.auths(1, opts),
    );
    return {
      handle: handles[0]!,
      name: response.name,
      authValue: args.userAuth ?? EMPTY,
      publicArea: response.outPublic,
      outPrivate: response.outPrivate,
    };
  }

  // ---- PCRs ----

  /**
   * TPM2_PCR_Read (Part 3 §22.4) of every PCR named, in selection order. The TPM returns at most
   * eight values per command, so larger selections take several; if a PCR changes in between
   * (pcrUpdateCounter moved), the read starts over.
   */
  async pcrRead(
    selection: readonly PcrSelection[],
  ): Promise<{ updateCounter: number; values: PcrValue[] }> {
    for (let attempt = 0; attempt < MAX_RETRIES; attempt++) {
      const pending = selection.map((s) => ({ hash: s.hash, pcrs: selectedIndexes(s) }));
      const values: PcrValue[] = [];
      let counter: number | undefined;
      let stable = true;
      while (pending.some((p) => p.pcrs.length > 0)) {
        const { response } = await this.call('PCR_Read', [], {
          pcrSelectionIn: pending.map((p) => pcrSelection(p.hash, p.pcrs)),
        });
        if (counter !== undefined && counter !== response.pcrUpdateCounter) {
          stable = false;
          break;
        }
        counter = response.pcrUpdateCounter;
        let next = 0;
        for (const out of response.pcrSelectionOut) {
          const bank = pending.find((p) => p.hash === out.hash);
          const got = selectedIndexes(out);
          for (const pcr of got) {
            const digest = response.pcrValues[next++];
            if (!digest) throw new TpmBadResponseError('PCR_Read', 'fewer values than selected');
            values.push({ hashAlg: out.hash, pcr, digest });
          }
          if (bank) bank.pcrs = bank.pcrs.filter((i) => !got.includes(i));
        }
        // A bank the TPM does not have comes back with nothing selected: it is skipped.
        if (response.pcrValues.length === 0) break;
      }
      if (stable) return { updateCounter: counter ?? 0, values };
    }
    throw new TpmBadResponseError('PCR_Read', 'PCRs kept changing while being read');
  }

  /** TPM2_PCR_Extend (Part 3 §22.2): extends `pcr` in each bank a digest is given for. */
  async pcrExtend(
    pcr: number,
    digests: readonly { hashAlg: number; digest: Buffer }[],
    opts?: AuthOptions & { pcrAuth?: Buffer },
  ): Promise<void> {
    await this.call(
      'PCR_Extend',
      [{ handle: pcr, name: nameOfPermanent(pcr), authValue: opts?.pcrAuth ?? EMPTY }],
      { digests: [...digests] },
      this.auths(1, opts),
    );
  }

  // ---- NV ----

  /**
   * TPM2_NV_DefineSpace (Part 3 §31.3), by the owner unless `authHandle` is TPM_RH_PLATFORM.
   * `attributes` is TPMA_NV (Part 2 §13.4).
   */
  async nvDefineSpace(
    args: {
      index: number;
      size: number;
      attributes: number;
      nameAlg?: number;
      authPolicy?: Buffer;
      authValue?: Buffer;
      authHandle?: number;
      hierarchyAuth?: Buffer;
    },
    opts?: AuthOptions,
  ): Promise<void> {
    const h = args.authHandle ?? TPM_RH.OWNER;
    await this.call(
      'NV_DefineSpace',
      [{ handle: h, name: nameOfPermanent(h), authValue: args.hierarchyAuth ?? EMPTY }],
      {
        auth: args.authValue ?? EMPTY,
        publicInfo: {
          nvIndex: args.index,
          nameAlg: args.nameAlg ?? TPM_ALG.SHA256,
          attributes: args.attributes,
          authPolicy: args.authPolicy ?? EMPTY,
          dataSize: args.size,
        },
      },
      this.auths(1, opts),
    );
  }

  /** TPM2_NV_UndefineSpace (Part 3 §31.4), by the owner unless `authHandle` says otherwise. */
  async nvUndefineSpace(
    index: number,
    args: { authHandle?: number; hierarchyAuth?: Buffer } = {},
    opts?: AuthOptions,
  ): Promise<void> {
    const h = args.authHandle ?? TPM_RH.OWNER;
    await this.call(
      'NV_UndefineSpace',
      [{ handle: h, name: nameOfPermanent(h), authValue: args.hierarchyAuth ?? EMPTY }, index],
      {},
      this.auths(1, opts),
    );
  }

  /** TPM2_NV_ReadPublic (Part 3 §31.6): the index's public area and Name. */
  async nvReadPublic(index: number): Promise<{ nvPublic: NvPublic; name: Buffer }> {
    const { response } = await this.call('NV_ReadPublic', [index], {});
    return { nvPublic: response.nvPublic, name: response.nvName };
  }

  /**
   * NV_Write / NV_Read with the index authorizing itself or a hierarchy authorizing it. A session
   * (unlike a password) signs the Names, and an index's Name changes when it is first written,
   * so the Name is read afresh for each command a session authorizes.
   */
  private async nvCall<N extends 'NV_Write' | 'NV_Read'>(
    name: N,
    index: number,
    params: ParamsOf<N>,
    args: NvAuthArgs,
    opts?: AuthOptions,
  ): Promise<ResponseOf<N>> {
    const auths = this.auths(1, opts);
    const nvName = auths.some((a) => a instanceof HmacSession)
      ? (await this.nvReadPublic(index)).name
      : EMPTY;
    const authHandle = args.authHandle ?? index;
    const auth: Entity = {
      handle: authHandle,
      name: authHandle === index ? nvName : nameOfPermanent(authHandle),
      authValue: args.authValue ?? EMPTY,
    };
    return (await this.call(name, [auth, { handle: index, name: nvName }], params, auths)).response;
  }

  /**
   * TPM2_NV_Write (Part 3 §31.7) of `data` at `offset`, in pieces of at most TPM_PT_NV_BUFFER_MAX
   * bytes. The index authorizes itself unless `authHandle` names the owner or the platform.
   */
  async nvWrite(
    index: number,
    data: Buffer,
    args: NvAuthArgs & { offset?: number } = {},
    opts?: AuthOptions,
  ): Promise<void> {
    const start = args.offset ?? 0;
    let done = 0;
    do {
      const piece = data.subarray(done, done + NV_BUFFER_MAX);
      await this.nvCall('NV_Write', index, { data: piece, offset: start + done }, args, opts);
      done += piece.length;
    } while (done < data.length);
  }

  /**
   * TPM2_NV_Read (Part 3 §31.13) of `size` bytes (default: the whole index) from `offset`, in
   * pieces of at most TPM_PT_NV_BUFFER_MAX bytes.
   */
  async nvRead(
    index: number,
    args: NvAuthArgs & { size?: number; offset?: number } = {},
    opts?: AuthOptions,
  ): Promise<Buffer> {
    const offset = args.offset ?? 0;
    const size = args.size ?? (await this.nvReadPublic(index)).nvPublic.dataSize - offset;
    const parts: Buffer[] = [];
    let done = 0;
    do {
      const n = Math.min(NV_BUFFER_MAX, size - done);
      const { data } = await this.nvCall(
        'NV_Read',
        index,
        { size: n, offset: offset + done },
        args,
        opts,
      );
      parts.push(data);
      done += n;
    } while (done < size);
    return Buffer.concat(parts);
  }

  // ---- policy sessions ----

  /**
   * Starts an unbound, unsalted policy session (Part 3 §11.1, TPM_SE_POLICY), or a trial session
   * that only computes a digest (TPM_SE_TRIAL).
   */
  async startPolicySession(
    args: { trial?: boolean; authHash?: number } = {},
  ): Promise<PolicySession> {
    const authHash = args.authHash ?? TPM_ALG.SHA256;
    const nonceCaller = await this.localNonce(authHash);
    const { handles, response } = await this.call('StartAuthSession', [TPM_RH.NULL, TPM_RH.NULL], {
      nonceCaller,
      encryptedSalt: EMPTY,
      sessionType: args.trial ? TPM_SE.TRIAL : TPM_SE.POLICY,
      symmetric: SYM_NULL,
      authHash,
    });
    return new PolicySession({
      handle: handles[0]!,
      authHash,
      nonceTPM: response.nonceTPM,
      trial: args.trial ?? false,
    });
  }

  /**
   * TPM2_PolicySecret (Part 3 §23.4): proves knowledge of `authEntity`'s authValue (authorized
   * like any command, a password session by default) and extends the session's digest with
   * PolicySecret || Name(authEntity) || policyRef. With `bindNonce` the command carries the
   * session's current nonceTPM; a negative `expiration` asks for a ticket.
   */
  async policySecret(
    authEntity: Entity,
    session: PolicySession,
    args: { policyRef?: Buffer; cpHashA?: Buffer; expiration?: number; bindNonce?: boolean } = {},
    opts?: AuthOptions,
  ): Promise<{ timeout: Buffer; ticket: Ticket }> {
    const { response } = await this.call(
      'PolicySecret',
      [authEntity, { handle: session.handle, name: nameOfPermanent(session.handle) }],
      {
        nonceTPM: args.bindNonce ? session.currentNonceTPM : EMPTY,
        cpHashA: args.cpHashA ?? EMPTY,
        policyRef: args.policyRef ?? EMPTY,
        expiration: args.expiration ?? 0,
      },
      this.auths(1, opts),
    );
    return { timeout: response.timeout, ticket: response.policyTicket };
  }

  /** TPM2_PolicyGetDigest (Part 3 §23.19): the session's current policyDigest. */
  async policyGetDigest(session: PolicySession | number): Promise<Buffer> {
    const h = typeof session === 'number' ? session : session.handle;
    return (await this.call('PolicyGetDigest', [h], {})).response.policyDigest;
  }

  // ---- attestation ----

  private attestation(attestBytes: Buffer, signature: Signature, cc: CommandName): Attestation {
    let attest: Attest;
    try {
      attest = unmarshal(TPMS_ATTEST, attestBytes);
    } catch (err) {
      if (err instanceof WireError) throw new TpmBadResponseError(cc, err.message);
      throw err;
    }
    return { attestBytes, attest, signature };
  }

  /**
   * TPM2_Quote (Part 3 §18.4): `key` signs the digest of the selected PCRs together with
   * `qualifyingData` (a verifier's nonce). The key's own scheme is used unless it has none.
   */
  async quote(
    key: Entity,
    args: { pcrs: readonly PcrSelection[]; qualifyingData?: Buffer; scheme?: Scheme },
    opts?: AuthOptions,
  ): Promise<Attestation> {
    const { response } = await this.call(
      'Quote',
      [key],
      {
        qualifyingData: args.qualifyingData ?? EMPTY,
        inScheme: args.scheme ?? SCHEME_NULL,
        PCRselect: [...args.pcrs],
      },
      this.auths(1, opts),
    );
    return this.attestation(response.quoted, response.signature, 'Quote');
  }

  /**
   * TPM2_Certify (Part 3 §18.2): `signer` (or TPM_RH_NULL for an unsigned statement) attests
   * that `object` is loaded in this TPM. The object is authorized in the ADMIN role
   * (`opts.auth`), the signer in the USER role (`opts.signAuth`); password sessions by default.
   */
  async certify(
    object: Entity,
    signer: Entity | null,
    args: { qualifyingData?: Buffer; scheme?: Scheme } = {},
    opts: { auth?: Authorization; signAuth?: Authorization } = {},
  ): Promise<Attestation> {
    const signHandle = signer ?? { handle: TPM_RH.NULL, name: nameOfPermanent(TPM_RH.NULL) };
    const { response } = await this.call(
      'Certify',
      [object, signHandle],
      { qualifyingData: args.qualifyingData ?? EMPTY, inScheme: args.scheme ?? SCHEME_NULL },
      [opts.auth ?? passwordAuth(), opts.signAuth ?? passwordAuth()],
    );
    return this.attestation(response.certifyInfo, response.signature, 'Certify');
  }

  async close(): Promise<void> {
    await this.transport.close();
  }
}
