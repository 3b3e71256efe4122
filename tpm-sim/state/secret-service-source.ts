import { randomFillSync } from 'node:crypto';
import { StateError } from './errors.ts';
import { type GetKeyOptions, KEY_BYTES, type KeySource } from './key-source.ts';

/**
 * The sealing key as a Secret Service item (gnome-keyring, KWallet, KeePassXC...) reached over the
 * D-Bus session bus through @napi-rs/keyring, stored base64-encoded as the item's password.
 *
 * Pinned to the Secret Service store: the binding's default silently falls back to the kernel
 * keyutils keyring when no Secret Service answers, and that keyring lives in memory only, so a key
 * stored there would vanish at reboot and take the TPM state with it (docs/tpm.md part D).
 *
 * A locked collection can read as "no such item" instead of an error. So when sealed state exists
 * and the item reads as empty, this is reported as ERR_KEY_MISSING with the hint that the keyring
 * may be locked; a new key is made only when the caller says the state is new.
 *
 * Process-wide caveat (measured with @napi-rs/keyring 2.1.2): the binding opens its session-bus
 * connection once per process, when the first Secret Service entry is created, reading
 * DBUS_SESSION_BUS_ADDRESS at that moment. A later change of the variable has no effect, and a
 * failed first connection stays failed until the process restarts.
 */

export interface SecretServiceSourceOptions {
  /** Secret Service `service` attribute, e.g. "prtlab-tpm". */
  service: string;
  /** Secret Service `username` attribute, e.g. the device name. */
  account: string;
  /**
   * How long one keystore call may take before it is abandoned (default 30 s). A locked keyring on
   * a desktop may show an unlock prompt and wait for it; on a headless machine nobody answers.
   */
  timeoutMs?: number;
}

/** The subset of @napi-rs/keyring's AsyncEntry used here. */
export interface KeyringEntry {
  getPassword(signal?: AbortSignal | null): Promise<string | null>;
  setPassword(password: string, signal?: AbortSignal | null): Promise<void>;
}

/**
 * Test seam: unit tests replace `createEntry` with a fake keystore so the error mapping can be
 * checked without a D-Bus session.
 *
 * @internal
 */
export const _secretServiceInternals = {
  createEntry: async (service: string, account: string): Promise<KeyringEntry> => {
    // Loaded on first use, so that a missing native binding only affects callers who chose this
    // source, and reported as an unavailable keystore rather than an import-time crash.
    const { AsyncEntry } = await import('@napi-rs/keyring');
    return new AsyncEntry(service, account, { linux: { store: 'secret-service' } });
  },
  platform: process.platform as string,
};

const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_NAME_LENGTH = 256;
// Standard base64 of exactly 32 bytes: 43 symbols and one pad character.
const KEY_BASE64 = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

export class SecretServiceSource implements KeySource {
  readonly kind = 'secret-service' as const;
  readonly service: string;
  readonly account: string;
  readonly timeoutMs: number;

  constructor(options: SecretServiceSourceOptions) {
    const { service, account, timeoutMs = DEFAULT_TIMEOUT_MS } = options ?? ({} as never);
    checkName('service', service);
    checkName('account', account);
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
      throw new TypeError('timeoutMs must be a positive integer');
    }
    this.service = service;
    this.account = account;
    this.timeoutMs = timeoutMs;
  }

  describe(): string {
    return `Secret Service item service=${JSON.stringify(this.service)} account=${JSON.stringify(this.account)}`;
  }

  async getKey(options: GetKeyOptions): Promise<Uint8Array> {
    if (typeof options?.stateIsNew !== 'boolean') {
      throw new TypeError('getKey needs { stateIsNew: boolean }');
    }
    if (_secretServiceInternals.platform !== 'linux') {
      // Elsewhere the binding ignores the store pin and uses the platform keystore instead, which
      // is a different store from the one this source promises.
      throw new StateError(
        'ERR_KEYSTORE_UNAVAILABLE',
        `${this.describe()}: the Secret Service key source is only available on Linux`,
      );
    }
    let entry: KeyringEntry;
    try {
      entry = await _secretServiceInternals.createEntry(this.service, this.account);
    } catch (err) {
      throw this.#classify(err, 'connect to it');
    }
    const stored = await this.#call('read the key', () =>
      entry.getPassword(AbortSignal.timeout(this.timeoutMs)),
    );
    if (stored !== null && stored !== '') return this.#decode(stored);
    if (!options.stateIsNew) {
      throw new StateError(
        'ERR_KEY_MISSING',
        `${this.describe()}: no sealing key found, but sealed TPM state exists. The keyring may be ` +
          'locked (a locked collection can read as empty), or the item was deleted. Unlock the ' +
          'keyring or restore the item; a new key is not created because it could never open the ' +
          'existing state.',
      );
    }
    const key = new Uint8Array(KEY_BYTES);
    randomFillSync(key);
    const encoded = Buffer.from(key).toString('base64');
    await this.#call('store a new key', () =>
      entry.setPassword(encoded, AbortSignal.timeout(this.timeoutMs)),
    );
    // Read back before trusting the store with the only copy: a keystore that accepts the write
    // but does not keep it would otherwise lose the key for state sealed a moment later.
    const back = await this.#call('read back the new key', () =>
      entry.getPassword(AbortSignal.timeout(this.timeoutMs)),
    );
    if (back !== encoded) {
      key.fill(0);
      throw new StateError(
        'ERR_KEYSTORE_UNAVAILABLE',
        `${this.describe()}: the new key was stored but did not read back unchanged; not using it`,
      );
    }
    return key;
  }

  async #call<T>(action: string, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      throw this.#classify(err, action);
    }
  }

  #decode(stored: string): Uint8Array {
    const key = KEY_BASE64.test(stored) ? new Uint8Array(Buffer.from(stored, 'base64')) : undefined;
    if (key?.length !== KEY_BYTES) {
      throw new StateError(
        'ERR_KEY_INVALID',
        `${this.describe()}: the item does not hold a base64-encoded ${KEY_BYTES}-byte key ` +
          '(written by something else?); refusing to use or replace it',
      );
    }
    return key;
  }

  /**
   * Maps a keystore failure to a code. The binding reports everything as "GenericFailure", so the
   * message text is all there is; the strings matched here are those measured against
   * gnome-keyring 42 (see test/interop/keystore.test.ts). Anything unrecognised is "unavailable",
   * never "absent", so an unknown failure can never lead to a new key.
   */
  #classify(err: unknown, action: string): StateError {
    const name = err instanceof Error ? err.name : '';
    const detail = err instanceof Error ? err.message : String(err);
    const where = `${this.describe()}: cannot ${action}`;
    if (name === 'AbortError' || name === 'TimeoutError') {
      return new StateError(
        'ERR_KEYSTORE_LOCKED',
        `${where}: no answer within ${this.timeoutMs} ms; the keyring may be locked and waiting ` +
          'for an unlock prompt that nobody answers',
        { cause: err },
      );
    }
    if (/locked|unlock/i.test(detail)) {
      return new StateError(
        'ERR_KEYSTORE_LOCKED',
        `${where}: the keyring is locked; unlock it (for example gnome-keyring-daemon --unlock) ` +
          `and try again (keyring said: ${detail})`,
        { cause: err },
      );
    }
    if (/no result found/i.test(detail)) {
      return new StateError(
        'ERR_KEYSTORE_LOCKED',
        `${where}: the Secret Service has no unlocked default collection; it may be locked or ` +
          `not created yet (keyring said: ${detail})`,
        { cause: err },
      );
    }
    return new StateError(
      'ERR_KEYSTORE_UNAVAILABLE',
      `${where}: no usable Secret Service (keyring said: ${detail}). Check that ` +
        'DBUS_SESSION_BUS_ADDRESS names a running session bus with a Secret Service on it (for ' +
        'example gnome-keyring-daemon), or choose the key-file source explicitly. The bus ' +
        'connection is made once per process, so restart the process after fixing it.',
      { cause: err },
    );
  }
}

function checkName(what: string, value: unknown): asserts value is string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_NAME_LENGTH) {
    throw new TypeError(
      `SecretServiceSource ${what} must be a string of 1-${MAX_NAME_LENGTH} chars`,
    );
  }
}
