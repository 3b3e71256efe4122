import { randomFillSync } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { atomicCreateFile } from './atomic-write.ts';
import { StateError } from './errors.ts';
import { currentUid, formatMode, ioError, readNoFollow } from './fs-util.ts';
import { type GetKeyOptions, KEY_BYTES, type KeySource } from './key-source.ts';

/**
 * The sealing key as a file of exactly 32 raw bytes, mode 0600, owned by the current user. For
 * machines without a reachable OS keystore; the file is only as safe as the account that owns it.
 *
 * The file is checked on every read rather than trusted: a key that group or others can read is
 * no longer a secret, so it is refused (ERR_KEY_FILE) instead of used, and the operator is told
 * how to fix it. Symlinks are refused too, so the key cannot be swapped by re-pointing a link.
 */
export class KeyFileSource implements KeySource {
  readonly kind = 'key-file' as const;
  /** Absolute path of the key file. */
  readonly path: string;

  constructor(path: string) {
    if (typeof path !== 'string' || path.length === 0) {
      throw new TypeError('KeyFileSource needs a non-empty path');
    }
    this.path = resolve(path);
  }

  describe(): string {
    return `key file ${this.path}`;
  }

  async getKey(options: GetKeyOptions): Promise<Uint8Array> {
    if (typeof options?.stateIsNew !== 'boolean') {
      throw new TypeError('getKey needs { stateIsNew: boolean }');
    }
    const existing = await this.#read();
    if (existing) return existing;
    if (!options.stateIsNew) {
      throw new StateError(
        'ERR_KEY_MISSING',
        `key file ${this.path} does not exist, but sealed TPM state does; restore the key file ` +
          '(a new key could never open the existing state, so none is created)',
      );
    }
    const key = new Uint8Array(KEY_BYTES);
    randomFillSync(key);
    try {
      await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    } catch (err) {
      throw ioError('create the directory for key file', this.path, err);
    }
    // No stale-file sweep: several processes may create the same key file at once, and one must
    // not delete another's in-flight temporary file. A crash mid-create can leave one behind.
    if (await atomicCreateFile(this.path, key, { mode: 0o600, removeStale: false })) return key;
    // Another process created the file between our read and our create; theirs wins, because it
    // may already have sealed state with it.
    key.fill(0);
    const raced = await this.#read();
    if (raced) return raced;
    throw new StateError('ERR_KEY_MISSING', `key file ${this.path} vanished while being created`);
  }

  async #read(): Promise<Uint8Array | undefined> {
    const key = await readNoFollow(
      this.path,
      'key file',
      (st) => {
        if (!st.isFile()) throw this.#refuse('is not a regular file');
        const uid = currentUid();
        if (uid !== undefined && st.uid !== uid) {
          throw this.#refuse(`is owned by uid ${st.uid}, not by this user (uid ${uid})`);
        }
        if ((st.mode & 0o077) !== 0) {
          throw this.#refuse(
            `has mode ${formatMode(st.mode)}, which lets group or others access it; ` +
              `run: chmod 600 ${this.path}`,
          );
        }
        if (st.size !== KEY_BYTES) {
          throw this.#refuse(
            `is ${st.size} bytes; a sealing key file is exactly ${KEY_BYTES} bytes`,
          );
        }
        return KEY_BYTES;
      },
      (code, err) => {
        if (code === 'ELOOP') {
          return this.#refuse('is a symbolic link; point the key source at the real file', err);
        }
        if (code === 'EACCES' || code === 'EPERM') {
          return this.#refuse('cannot be opened for reading by this user', err);
        }
        return undefined;
      },
    );
    if (key !== undefined && key.length !== KEY_BYTES)
      throw this.#refuse('shrank while being read');
    return key;
  }

  #refuse(why: string, cause?: unknown): StateError {
    return new StateError('ERR_KEY_FILE', `key file ${this.path} ${why}`, { cause });
  }
}
