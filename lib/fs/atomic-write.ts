import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, link, open, readdir, rename, unlink } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { errnoCode, ioFailure } from './errors.ts';

/**
 * Crash-safe file replacement: the data goes to a temporary file next to the target, is fsynced,
 * and is renamed over the target; then the directory is fsynced so the rename itself is durable.
 * A crash at any point leaves either the old file or the new one under the target name, never a
 * mix, plus at most a stale temporary file. Readers only ever open the target name, so stale
 * temporary files are invisible to them; the next write to the same target removes them.
 *
 * Every failure of the file system is an FsError 'io' (./errors.ts) with the errno and the system
 * error as `cause`; each component turns it into its own coded error.
 *
 * The stale-file sweep assumes one writer per target (for the TPM state file, the state store's
 * lock guarantees it); it would otherwise delete another writer's in-flight temporary file. Targets
 * that several processes may write at once pass `removeStale: false`.
 */

/** Permissions of every file written here unless the caller asks otherwise: owner read/write. */
export const DEFAULT_FILE_MODE = 0o600;

/**
 * Test seam. The TPM state store's durability claims are about crashes, which a test cannot cause
 * without killing its own process; replacing `beforeRename` lets it stop a write at that exact
 * point instead.
 *
 * @internal
 */
export const _atomicWriteInternals = {
  /**
   * Runs after the temporary file has been written and fsynced, just before the rename. If it
   * throws, the write is abandoned *without* removing the temporary file, exactly as a crash at
   * that point would leave things, and the error propagates.
   */
  beforeRename: async (_tempPath: string, _targetPath: string): Promise<void> => {},
};

export interface AtomicWriteOptions {
  /** Permission bits for the new file (default 0o600). */
  mode?: number;
  /**
   * Remove stale temporary files for this target first (default true). Off for targets several
   * processes may write at once, such as a lock file, where another process's in-flight
   * temporary file is not stale at all.
   */
  removeStale?: boolean;
}

/** Replaces (or creates) `target` with `data`, atomically and durably. Fails with FsError 'io'. */
export async function atomicWriteFile(
  target: string,
  data: Uint8Array,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const temp = await stageTempFile(target, data, options);
  try {
    await rename(temp, target);
  } catch (err) {
    await unlink(temp).catch(() => {});
    throw ioFailure('rename a temporary file over', target, err);
  }
  await fsyncDir(dirname(target));
}

/**
 * Creates `target` with `data` only if no file of that name exists, atomically and durably: the
 * complete file appears under its name in one step (a hard link from a fsynced temporary file), so
 * a concurrent reader never sees it half-written and an existing file is never replaced.
 *
 * @returns true if this call created the file, false if a file was already there (left untouched).
 */
export async function atomicCreateFile(
  target: string,
  data: Uint8Array,
  options: AtomicWriteOptions = {},
): Promise<boolean> {
  const temp = await stageTempFile(target, data, options);
  let created = true;
  try {
    // link(2) fails with EEXIST instead of replacing, which rename(2) would do silently.
    await link(temp, target);
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') {
      await unlink(temp).catch(() => {});
      throw ioFailure('create', target, err);
    }
    created = false;
  }
  await unlink(temp).catch(() => {});
  if (created) await fsyncDir(dirname(target));
  return created;
}

const TEMP_SUFFIX = '.tmp';
const TEMP_RANDOM_HEX = 16;

/** True if `name` (a directory entry) is a temporary file this module made for target `base`. */
export function isTempFileFor(name: string, base: string): boolean {
  const prefix = `.${base}.`;
  if (!name.startsWith(prefix) || !name.endsWith(TEMP_SUFFIX)) return false;
  const middle = name.slice(prefix.length, name.length - TEMP_SUFFIX.length);
  return middle.length === TEMP_RANDOM_HEX && /^[0-9a-f]+$/.test(middle);
}

/**
 * Deletes temporary files left next to `target` by interrupted writes. Returns the names removed.
 * Only names this module generates are touched, so unrelated files in the directory are safe.
 */
export async function removeStaleTempFiles(target: string): Promise<string[]> {
  const dir = dirname(target);
  const base = basename(target);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    throw ioFailure('list directory', dir, err);
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!isTempFileFor(name, base)) continue;
    try {
      await unlink(`${dir}/${name}`);
      removed.push(name);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw ioFailure('remove stale temporary file', name, err);
    }
  }
  return removed;
}

/**
 * What both writers do before the new file takes the target's name: check the arguments, sweep
 * stale temporary files (unless the caller opted out), write and fsync the temporary file, then
 * run the test seam. Returns the temporary file's path.
 */
async function stageTempFile(
  target: string,
  data: Uint8Array,
  options: AtomicWriteOptions,
): Promise<string> {
  const mode = checkArgs(target, data, options);
  if (options.removeStale ?? true) await removeStaleTempFiles(target);
  const temp = await writeTempFile(target, data, mode);
  await _atomicWriteInternals.beforeRename(temp, target);
  return temp;
}

function checkArgs(target: string, data: Uint8Array, options: AtomicWriteOptions): number {
  if (typeof target !== 'string' || target.length === 0) {
    throw new TypeError('target must be a non-empty path');
  }
  if (!(data instanceof Uint8Array)) throw new TypeError('data must be a Uint8Array');
  const mode = options.mode ?? DEFAULT_FILE_MODE;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) {
    throw new TypeError('mode must be permission bits between 0 and 0o777');
  }
  return mode;
}

async function writeTempFile(target: string, data: Uint8Array, mode: number): Promise<string> {
  const name = `.${basename(target)}.${randomBytes(TEMP_RANDOM_HEX / 2).toString('hex')}${TEMP_SUFFIX}`;
  const temp = `${dirname(target)}/${name}`;
  let handle: FileHandle | undefined;
  try {
    // O_EXCL: never write through a file (or symlink) someone planted under the temporary name.
    handle = await open(
      temp,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      mode,
    );
    // The umask may have removed bits from `mode`; chmod makes the result exactly what was asked.
    await handle.chmod(mode);
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await handle.write(data, done, data.length - done);
      done += bytesWritten;
    }
    await handle.sync();
  } catch (err) {
    await handle?.close().catch(() => {});
    handle = undefined;
    await unlink(temp).catch(() => {});
    throw ioFailure('write temporary file for', target, err);
  } finally {
    await handle?.close().catch(() => {});
  }
  return temp;
}

/**
 * fsyncs a directory so that a rename or link inside it survives a power loss. Some platforms
 * cannot open or sync directories (EISDIR/EINVAL/EPERM); there the rename is as durable as the OS
 * makes it, which is the best available, so those errors are not fatal.
 */
export async function fsyncDir(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, constants.O_RDONLY);
    await handle.sync();
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'EISDIR' || code === 'EINVAL' || code === 'EPERM') return;
    throw ioFailure('fsync directory', dir, err);
  } finally {
    await handle?.close().catch(() => {});
  }
}
