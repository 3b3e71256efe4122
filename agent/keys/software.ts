/**
 * `--tpm none`: the device has no TPM, so its keys are software keys, kept in one file sealed
 * (AES-256-GCM) under a key from the OS keystore, as Windows keeps them with DPAPI when no usable
 * TPM exists (prt-protocol §1.2 "otherwise software CNG", §8 "Devices with no TPM"). Anyone who
 * can read the keystore as this user can take every key, which is exactly the weakness the lab
 * shows: status says TpmProtected NO.
 *
 *   software-keys.sealed   device, transport and (hybrid) computer keys as PKCS#8, and the
 *                          sealing HMAC key; sealed under the keystore key
 *   session keys           each sealed under the keystore key too, stored with its account
 */
import {
  constants,
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  privateDecrypt,
  randomBytes,
  sign,
} from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { KeySource } from '../../tpm-sim/state/index.ts';
import { gcmOpen, gcmSeal } from '../aead.ts';
import { AgentDeviceError } from '../errors.ts';
import { atomicWriteFile } from '../files.ts';
import type { KeyProvider, KeyProviderFacts, WrappedSessionKey } from './provider.ts';

export const SOFTWARE_KEYS_FILE = 'software-keys.sealed';
const KEYS_AAD = Buffer.from('prtlab device software keys v1', 'ascii');
const SESSION_AAD = Buffer.from('prtlab device session key v1', 'ascii');

/** What device.json keeps for a software-key device: nothing secret, only where things are. */
export interface SoftwareKeyRecord {
  readonly provider: 'software';
  readonly file: typeof SOFTWARE_KEYS_FILE;
}

interface Keys {
  device: KeyObject;
  transport: KeyObject;
  computer: KeyObject | undefined;
  sealing: Buffer;
}

function rsa2048(): KeyObject {
  return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
}

const pkcs8 = (k: KeyObject) => k.export({ type: 'pkcs8', format: 'der' }).toString('base64');

export class SoftwareKeyProvider implements KeyProvider {
  readonly facts: KeyProviderFacts;
  readonly devicePublicKey: KeyObject;
  readonly transportPublicKey: KeyObject;
  readonly computerPublicKey: KeyObject | undefined;
  readonly #keys: Keys;
  readonly #keystoreKey: Buffer;

  private constructor(keys: Keys, keystoreKey: Buffer, keySource: KeySource) {
    this.#keys = keys;
    this.#keystoreKey = keystoreKey;
    this.devicePublicKey = createPublicKey(keys.device);
    this.transportPublicKey = createPublicKey(keys.transport);
    this.computerPublicKey = keys.computer ? createPublicKey(keys.computer) : undefined;
    this.facts = {
      tpmProtected: false,
      keyProvider: 'Microsoft Software Key Storage Provider',
      tpm: `none: software keys sealed with AES-256-GCM under a key from ${keySource.describe()}`,
    };
  }

  static async create(
    deviceDir: string,
    keySource: KeySource,
    options: { computerKey: boolean },
  ): Promise<{ provider: SoftwareKeyProvider; record: SoftwareKeyRecord }> {
    const keystoreKey = Buffer.from(await keySource.getKey({ stateIsNew: true }));
    const keys: Keys = {
      device: rsa2048(),
      transport: rsa2048(),
      computer: options.computerKey ? rsa2048() : undefined,
      sealing: randomBytes(32),
    };
    const plain = Buffer.from(
      JSON.stringify({
        device: pkcs8(keys.device),
        transport: pkcs8(keys.transport),
        ...(keys.computer ? { computer: pkcs8(keys.computer) } : {}),
        sealing: keys.sealing.toString('base64'),
      }),
    );
    try {
      await atomicWriteFile(
        join(deviceDir, SOFTWARE_KEYS_FILE),
        gcmSeal(keystoreKey, plain, KEYS_AAD),
        {
          mode: 0o600,
        },
      );
    } finally {
      plain.fill(0);
    }
    return {
      provider: new SoftwareKeyProvider(keys, keystoreKey, keySource),
      record: { provider: 'software', file: SOFTWARE_KEYS_FILE },
    };
  }

  static async open(deviceDir: string, keySource: KeySource): Promise<SoftwareKeyProvider> {
    const path = join(deviceDir, SOFTWARE_KEYS_FILE);
    let sealed: Buffer;
    try {
      sealed = await readFile(path);
    } catch (err) {
      throw new AgentDeviceError(`cannot read the device's software keys ${path}`, { cause: err });
    }
    const keystoreKey = Buffer.from(await keySource.getKey({ stateIsNew: false }));
    const plain = gcmOpen(keystoreKey, sealed, KEYS_AAD);
    if (!plain) {
      keystoreKey.fill(0);
      throw new AgentDeviceError(
        `the device's software keys ${path} do not open with the key from ${keySource.describe()} (tampered, or another keystore key)`,
      );
    }
    try {
      const j = JSON.parse(plain.toString('utf8')) as Record<string, string>;
      const key = (b64: string | undefined) =>
        createPrivateKey({ key: Buffer.from(String(b64), 'base64'), format: 'der', type: 'pkcs8' });
      const keys: Keys = {
        device: key(j.device),
        transport: key(j.transport),
        computer: j.computer ? key(j.computer) : undefined,
        sealing: Buffer.from(String(j.sealing), 'base64'),
      };
      return new SoftwareKeyProvider(keys, keystoreKey, keySource);
    } catch (err) {
      keystoreKey.fill(0);
      throw new AgentDeviceError(`the device's software keys ${path} are corrupt`, { cause: err });
    } finally {
      plain.fill(0);
    }
  }

  async signWithDeviceKey(data: Buffer): Promise<Buffer> {
    return sign('sha256', data, { key: this.#keys.device, padding: constants.RSA_PKCS1_PADDING });
  }

  async signWithComputerKey(data: Buffer): Promise<Buffer> {
    if (!this.#keys.computer) {
      throw new AgentDeviceError('this device has no computer key (not a hybrid device)');
    }
    return sign('sha256', data, { key: this.#keys.computer, padding: constants.RSA_PKCS1_PADDING });
  }

  async importSessionKey(
    encryptedKey: Buffer,
    check?: (key: Buffer) => void,
  ): Promise<WrappedSessionKey> {
    let plain: Buffer;
    try {
      plain = privateDecrypt(
        { key: this.#keys.transport, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' },
        encryptedKey,
      );
    } catch (err) {
      throw new AgentDeviceError('the transport key cannot decrypt the session key', {
        cause: err,
      });
    }
    try {
      if (plain.length !== 32) {
        throw new AgentDeviceError('the session key the transport key decrypted is not 32 bytes');
      }
      check?.(plain);
      return {
        kind: 'software',
        sealed: gcmSeal(this.#keystoreKey, plain, SESSION_AAD).toString('base64'),
      };
    } finally {
      plain.fill(0);
    }
  }

  async sessionHmac(key: WrappedSessionKey, data: Buffer): Promise<Buffer> {
    if (key.kind !== 'software') {
      throw new AgentDeviceError('this session key was made by a TPM, not sealed in software');
    }
    const plain = gcmOpen(this.#keystoreKey, Buffer.from(key.sealed, 'base64'), SESSION_AAD);
    if (!plain) throw new AgentDeviceError('a stored session key does not open (tampered?)');
    try {
      return createHmac('sha256', plain).update(data).digest();
    } finally {
      plain.fill(0);
    }
  }

  async sealingHmac(data: Buffer): Promise<Buffer> {
    return createHmac('sha256', this.#keys.sealing).update(data).digest();
  }

  async close(): Promise<void> {
    this.#keystoreKey.fill(0);
    this.#keys.sealing.fill(0);
  }
}
