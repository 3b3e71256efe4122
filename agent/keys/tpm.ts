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
 * protected under the SRK); they load on no other TPM. The SRK stays loaded while the provider is
 * open and each child is loaded for one operation and flushed, so at most two of the TPM's three
 * transient slots are in use (a TPM without a resource manager, like swtpm, has only three).
 */
import { createHash, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import {
  DeviceTransport,
  InProcessTransport,
  type LoadedKey,
  TcpTransport,
  TPM_ALG,
  TPM_RC,
  TpmClient,
  TpmResponseError,
  templates,
} from '../../tpm-sim/client/index.ts';
import { openTpm } from '../../tpm-sim/open.ts';
import type { KeySource } from '../../tpm-sim/state/index.ts';
import { marshal, unmarshal } from '../../tpm-sim/wire/codec.ts';
import { type Public, type SignatureRsa, TPMT_PUBLIC } from '../../tpm-sim/wire/structures.ts';
import { rsaPublicKey } from '../certificates.ts';
import { AgentDeviceError } from '../errors.ts';
import { Mutex } from '../mutex.ts';
import type { TpmSpec } from '../tpm-spec.ts';
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
      const opened = await openTpm({ dir, keySource });
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

export class TpmKeyProvider implements KeyProvider {
  readonly facts: KeyProviderFacts;
  readonly devicePublicKey: KeyObject;
  readonly transportPublicKey: KeyObject;
  readonly computerPublicKey: KeyObject | undefined;
  readonly #tpm: TpmConnection;
  readonly #record: TpmKeyRecord;
  readonly #srk: LoadedKey;
  readonly #lock = new Mutex();
  #closed = false;

  private constructor(tpm: TpmConnection, record: TpmKeyRecord, srk: LoadedKey) {
    this.#tpm = tpm;
    this.#record = record;
    this.#srk = srk;
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
      return { provider: new TpmKeyProvider(tpm, record, srk), record };
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
      srk = await tpm.client.createPrimary({ template: templates.eccStoragePrimary() });
      if (hex(srk.name) !== record.srkName) {
        throw new AgentDeviceError(
          `the TPM's storage key is not the one this device's keys were made under (${tpm.description}): ` +
            'the TPM was cleared, or this is another TPM; the device must be added again',
        );
      }
      return new TpmKeyProvider(tpm, record, srk);
    } catch (err) {
      if (srk) await tpm.client.flushContext(srk).catch(() => {});
      await tpm.close().catch(() => {});
      throw err;
    }
  }

  /** Loads a child of the SRK, runs `fn` with it and flushes it, one sequence at a time. */
  #withKey<T>(blob: TpmBlob, what: string, fn: (key: LoadedKey) => Promise<T>): Promise<T> {
    return this.#lock.run(async () => {
      if (this.#closed) throw new AgentDeviceError('the device agent is closed');
      const key = await this.#tpm.client.load(this.#srk, readBlob(blob, what));
      try {
        return await fn(key);
      } finally {
        await this.#tpm.client.flushContext(key);
      }
    });
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
        const wrapped = wrapHmacKeyForImport(this.#srk.publicArea, plain);
        const outPrivate = await this.#tpm.client.import(this.#srk, wrapped);
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

  close(): Promise<void> {
    return this.#lock.run(async () => {
      if (this.#closed) return;
      this.#closed = true;
      try {
        await this.#tpm.client.flushContext(this.#srk).catch(() => {});
      } finally {
        await this.#tpm.close();
      }
    });
  }
}
