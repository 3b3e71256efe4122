import { lstat, mkdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { atomicWriteFile } from './atomic-write.ts';
import { acquireDirLock, type DirLock } from './dir-lock.ts';
import { StateError } from './errors.ts';
import { currentUid, errnoCode, formatMode, ioError, readNoFollow } from './fs-util.ts';
import {
  assertKeySource,
  isKeySourceKind,
  type KeySource,
  type KeySourceKind,
} from './key-source.ts';
import { readSealed, sealState } from './sealed-file.ts';

/**
 * The TPM's persistent state (hierarchy seeds, persistent objects, NV, clock) at rest, in one
 * directory owned by the current user with mode 0700:
 *
 *   tpm-state.sealed  the engine's state blob, sealed (sealed-file.ts), replaced atomically
 *   state.json        plain-text manifest: which key source seals the state, no secrets
 *   state.lock        "<pid> <token>" while a server has the directory open
 *
 * The manifest exists so that the key-source choice is explicit, visible to an operator, and
 * enforced: opening with a different kind of key source than the state was sealed with is
 * refused with both named, instead of surfacing later as a puzzling "wrong key".
 */

export const STATE_FILE_NAME = 'tpm-state.sealed';
export const MANIFEST_FILE_NAME = 'state.json';
export const LOCK_FILE_NAME = 'state.lock';

const MANIFEST_FORMAT = 'prtlab-tpm-state';
const MANIFEST_VERSION = 1;
const MAX_MANIFEST_BYTES = 64 * 1024;

/** The contents of state.json. */
export interface StateManifest {
  format: typeof MANIFEST_FORMAT;
  version: typeof MANIFEST_VERSION;
  keySource: { kind: KeySourceKind; description: string };
}

export interface StateStoreOptions {
  /** The state directory; created with mode 0700 if missing. */
  dir: string;
  /** Where the sealing key lives; chosen by the caller, recorded in the manifest. */
  keySource: KeySource;
}

export class StateStore {
  /** Absolute path of the state directory. */
  readonly dir: string;
  readonly keySource: KeySource;
  readonly statePath: string;
  readonly manifestPath: string;
  readonly #key: Uint8Array;
  readonly #lock: DirLock;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(dir: string, keySource: KeySource, key: Uint8Array, lock: DirLock) {
    this.dir = dir;
    this.keySource = keySource;
    this.statePath = join(dir, STATE_FILE_NAME);
    this.manifestPath = join(dir, MANIFEST_FILE_NAME);
    this.#key = key;
    this.#lock = lock;
  }

  /**
   * Opens (creating if needed) the state directory: checks its owner and mode, takes its lock,
   * checks the recorded key-source kind against `keySource`, and obtains the key. The key is
   * created only if no sealed state exists yet.
   *
   * Fails with a StateError: ERR_STATE_DIR_INSECURE, ERR_STATE_IN_USE,
   * ERR_STATE_KEY_SOURCE_MISMATCH, ERR_STATE_CORRUPT (unreadable manifest), ERR_STATE_IO, or any
   * key-source error.
   */
  static async open(options: StateStoreOptions): Promise<StateStore> {
    if (typeof options?.dir !== 'string' || options.dir.length === 0) {
      throw new TypeError('StateStore.open needs a non-empty dir');
    }
    assertKeySource(options.keySource);
    const { keySource } = options;
    const dir = resolve(options.dir);
    await ensurePrivateDir(dir);
    const lock = await acquireDirLock(join(dir, LOCK_FILE_NAME));
    let key: Uint8Array | undefined;
    try {
      const manifestPath = join(dir, MANIFEST_FILE_NAME);
      const manifest = await readManifestFile(manifestPath);
      const stateExists = await exists(join(dir, STATE_FILE_NAME));
      // Without sealed state there is nothing the recorded kind could fail to open, so a caller
      // may switch sources until the first save; the manifest is then rewritten to the new choice.
      if (stateExists && manifest && manifest.keySource.kind !== keySource.kind) {
        throw new StateError(
          'ERR_STATE_KEY_SOURCE_MISMATCH',
          `TPM state in ${dir} is sealed with key source '${manifest.keySource.kind}' ` +
            `(${manifest.keySource.description}), but '${keySource.kind}' ` +
            `(${keySource.describe()}) was requested; open it with the ` +
            `'${manifest.keySource.kind}' key source`,
        );
      }
      key = await keySource.getKey({ stateIsNew: !stateExists });
      const description = keySource.describe();
      // Written only once a key is in hand, so a failed first attempt (say, no keystore) records
      // nothing that would then block the operator from choosing another source.
      if (
        manifest?.keySource.kind !== keySource.kind ||
        manifest.keySource.description !== description
      ) {
        const next: StateManifest = {
          format: MANIFEST_FORMAT,
          version: MANIFEST_VERSION,
          keySource: { kind: keySource.kind, description },
        };
        await atomicWriteFile(
          manifestPath,
          new TextEncoder().encode(`${JSON.stringify(next, null, 2)}\n`),
          { mode: 0o600 },
        );
      }
      return new StateStore(dir, keySource, key, lock);
    } catch (err) {
      key?.fill(0);
      await lock.release().catch(() => {});
      throw err;
    }
  }

  get keySourceKind(): KeySourceKind {
    return this.keySource.kind;
  }

  /** One line for logs and status output: where the state is and where its key lives. */
  describe(): string {
    return `TPM state in ${this.dir}, sealed with AES-256-GCM; key from ${this.keySource.describe()}`;
  }

  /**
   * The last saved state, or undefined if none has been saved yet (a new TPM). A state file that
   * exists but does not unseal is an error (ERR_STATE_CORRUPT), never "no state".
   */
  load(): Promise<Uint8Array | undefined> {
    this.#checkOpen();
    return this.#serial(() => readSealed(this.statePath, this.#key, this.keySource.kind));
  }

  /**
   * Seals and saves `state`, replacing the previous state atomically. The bytes are sealed when
   * this is called, so later changes by the caller to the same array do not leak into the write.
   */
  save(state: Uint8Array): Promise<void> {
    this.#checkOpen();
    if (!(state instanceof Uint8Array)) throw new TypeError('state must be a Uint8Array');
    const sealed = sealState(state, this.#key, this.keySource.kind);
    return this.#serial(async () => {
      // Refuse rather than clobber if the lock was removed or taken over behind our back.
      if (!(await this.#lock.isHeld())) {
        throw new StateError(
          'ERR_STATE_IN_USE',
          `lost the lock on ${this.dir} (${this.#lock.path} changed); not writing TPM state`,
        );
      }
      await atomicWriteFile(this.statePath, sealed, { mode: 0o600 });
    });
  }

  /** Waits for pending writes, forgets the key and releases the lock. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue.catch(() => {});
    this.#key.fill(0);
    await this.#lock.release();
  }

  #checkOpen(): void {
    if (this.#closed) throw new TypeError('StateStore is closed');
  }

  // Loads and saves run one at a time, in call order: two overlapping saves would otherwise race
  // their renames, and the atomic writer's stale-file sweep assumes a single writer.
  #serial<T>(op: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(op);
    this.#queue = result.catch(() => {});
    return result;
  }
}

/**
 * Reads a state directory's manifest without opening the store (no lock, no key), e.g. to show
 * which key source a TPM uses. Undefined if the directory has none yet.
 */
export async function readStateManifest(dir: string): Promise<StateManifest | undefined> {
  if (typeof dir !== 'string' || dir.length === 0) throw new TypeError('dir must be non-empty');
  return readManifestFile(join(resolve(dir), MANIFEST_FILE_NAME));
}

/**
 * Creates `dir` (mode 0700) if missing, and refuses one that is not a directory, not owned by
 * this user, or open to group or others (ERR_STATE_DIR_INSECURE).
 */
export async function ensurePrivateDir(dir: string, what = 'state directory'): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    // EEXIST: something that is not a directory is in the way; the stat below says so.
    if (errnoCode(err) !== 'EEXIST') throw ioError(`create ${what}`, dir, err);
  }
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(dir);
  } catch (err) {
    throw ioError(`stat ${what}`, dir, err);
  }
  if (!st.isDirectory()) {
    throw new StateError('ERR_STATE_DIR_INSECURE', `${what} ${dir} is not a directory`);
  }
  const uid = currentUid();
  if (uid !== undefined && st.uid !== uid) {
    throw new StateError(
      'ERR_STATE_DIR_INSECURE',
      `${what} ${dir} is owned by uid ${st.uid}, not by this user (uid ${uid})`,
    );
  }
  // Others who can write here could swap the state or the manifest; others who can read could
  // copy a key file kept here. Either way the directory must be private.
  if ((st.mode & 0o077) !== 0) {
    throw new StateError(
      'ERR_STATE_DIR_INSECURE',
      `${what} ${dir} has mode ${formatMode(st.mode)}, which lets group or others in; ` +
        `run: chmod 700 ${dir}`,
    );
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw ioError('stat', path, err);
  }
}

async function readManifestFile(path: string): Promise<StateManifest | undefined> {
  const bytes = await readNoFollow(path, undefined, (st) => {
    if (!st.isFile() || st.size > MAX_MANIFEST_BYTES) {
      throw new StateError('ERR_STATE_CORRUPT', `${path} is not a state manifest (size or type)`);
    }
    return st.size;
  });
  if (bytes === undefined) return undefined;
  const text = Buffer.from(bytes).toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new StateError('ERR_STATE_CORRUPT', `${path} is not valid JSON`, { cause: err });
  }
  const m = parsed as Partial<StateManifest> | null;
  const ks = m?.keySource as Partial<StateManifest['keySource']> | undefined;
  if (
    m?.format !== MANIFEST_FORMAT ||
    m.version !== MANIFEST_VERSION ||
    typeof ks !== 'object' ||
    ks === null ||
    !isKeySourceKind(ks.kind) ||
    typeof ks.description !== 'string'
  ) {
    throw new StateError(
      'ERR_STATE_CORRUPT',
      `${path} is not a version ${MANIFEST_VERSION} ${MANIFEST_FORMAT} manifest`,
    );
  }
  return {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    keySource: { kind: ks.kind, description: ks.description },
  };
}
