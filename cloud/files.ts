/**
 * Reading and writing the cloud's key and certificate files. Private files are checked on every
 * read rather than trusted: a key that group or others can read is no longer private, so it is
 * refused (ERR_CLOUD_STATE) with the fix, never used. Symlinks are refused too, so a key cannot be
 * swapped by re-pointing a link. Writes are atomic (a crash leaves the old file or the new one).
 */
import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { isPrtlabError } from '../lib/errors.ts';
import { atomicCreateFile, atomicWriteFile } from '../tpm-sim/state/atomic-write.ts';
import { currentUid, errnoCode, formatMode, ioFailure } from './data-dir.ts';
import { CloudStateError } from './errors.ts';

/** Largest key or certificate file the cloud reads (a PEM chain is a few KiB). */
export const MAX_PEM_FILE_BYTES = 256 * 1024;

export interface ReadOptions {
  /** Refuse the file unless only its owner can access it (mode & 0o077 === 0). */
  private: boolean;
  maxBytes?: number;
}

/**
 * Reads a file without following a symlink in its last component; undefined if it does not
 * exist. Refuses (ERR_CLOUD_STATE) anything that is not a regular file owned by this user, that
 * is larger than `maxBytes`, or (for private files) that group or others can access.
 */
export async function readCheckedFile(
  path: string,
  options: ReadOptions,
): Promise<Buffer | undefined> {
  const maxBytes = options.maxBytes ?? MAX_PEM_FILE_BYTES;
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') {
      throw new CloudStateError(`${path} is a symbolic link; point the cloud at the real file`, {
        cause: err,
      });
    }
    throw ioFailure('open', path, err);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new CloudStateError(`${path} is not a regular file`);
    const uid = currentUid();
    if (uid !== undefined && st.uid !== uid) {
      throw new CloudStateError(`${path} is owned by uid ${st.uid}, not by this user (uid ${uid})`);
    }
    if (options.private && (st.mode & 0o077) !== 0) {
      throw new CloudStateError(
        `${path} has mode ${formatMode(st.mode)}, which lets group or others read a private key; ` +
          `run: chmod 600 ${path}`,
      );
    }
    if (st.size > maxBytes) {
      throw new CloudStateError(`${path} is ${st.size} bytes; at most ${maxBytes} are expected`);
    }
    const data = Buffer.alloc(st.size);
    let done = 0;
    while (done < st.size) {
      const { bytesRead } = await handle.read(data, done, st.size - done, done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return data.subarray(0, done);
  } catch (err) {
    if (err instanceof CloudStateError) throw err;
    throw ioFailure('read', path, err);
  } finally {
    await handle.close().catch(() => {});
  }
}

/** Creates `path` with `data` only if absent (atomically); false if a file was already there. */
export async function createFileOnce(
  path: string,
  data: Uint8Array,
  mode: number,
): Promise<boolean> {
  try {
    // No stale-file sweep: two cloud processes may create the same file at once, and one must not
    // delete the other's in-flight temporary file.
    return await atomicCreateFile(path, data, { mode, removeStale: false });
  } catch (err) {
    throw asStateError(err, path);
  }
}

/** Replaces (or creates) `path` with `data`, atomically and durably. */
export async function replaceFile(path: string, data: Uint8Array, mode: number): Promise<void> {
  try {
    await atomicWriteFile(path, data, { mode, removeStale: false });
  } catch (err) {
    throw asStateError(err, path);
  }
}

function asStateError(err: unknown, path: string): CloudStateError {
  if (err instanceof CloudStateError) return err;
  // The atomic writer reports ERR_STATE_IO with the path and errno; keep its message, re-coded.
  if (isPrtlabError(err)) return new CloudStateError(err.message, { cause: err });
  return ioFailure('write', path, err);
}
