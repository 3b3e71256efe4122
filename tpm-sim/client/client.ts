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
import { TPM_ALG, TPM_HT, TPM_RH, TPM_SE, TPM_ST, TPM_SU } from '../wire/constants.ts';
import { buildCommand, readResponse } from '../wire/frame.ts';
import { TPM_RC } from '../wire/rc.ts';
import {
  type CapabilityData,
  type Context,
  nullTicket,
  type Public,
  SCHEME_NULL,
  type Scheme,
  type Signature,
  SYM_NULL,
  type Ticket,
} from '../wire/structures.ts';
import { type Authorization, HmacSession, passwordAuth } from './auth.ts';
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

  async close(): Promise<void> {
    await this.transport.close();
  }
}
