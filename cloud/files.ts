/**
 * Reading and writing the cloud's key and certificate files. Private files are checked on every
 * read rather than trusted: a key that group or others can read is no longer private, so it is
 * refused (ERR_CLOUD_STATE) with the fix, never used. Symlinks are refused too, so a key cannot be
 * swapped by re-pointing a link. Writes are atomic (a crash leaves the old file or the new one).
 */
import { atomicCreateFile, atomicWriteFile as writeAtomically } from '../lib/fs/atomic-write.ts';
import { FsError, withFsErrors } from '../lib/fs/errors.ts';
import { readPrivateFile } from '../lib/fs/private-file.ts';
import { cloudFsError, ioFailure } from './data-dir.ts';
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
export const readCheckedFile = withFsErrors(
  (path: string, options: ReadOptions) =>
    readPrivateFile(path, {
      maxBytes: options.maxBytes ?? MAX_PEM_FILE_BYTES,
      requirePrivateMode: options.private,
    }),
  cloudFileError,
);

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
    await writeAtomically(path, data, { mode, removeStale: false });
  } catch (err) {
    throw asStateError(err, path);
  }
}

/**
 * lib/fs's atomic writer (same options: mode, removeStale) with the cloud's error: a failure is
 * ERR_CLOUD_STATE with the writer's message. The lab writes its demo credentials through it.
 */
export const atomicWriteFile = withFsErrors(writeAtomically, cloudFileError);

function cloudFileError(err: FsError): CloudStateError {
  return cloudFsError(err, 'file');
}

function asStateError(err: unknown, path: string): CloudStateError {
  if (err instanceof CloudStateError) return err;
  // The atomic writer reports the path and errno; keep its message, coded ERR_CLOUD_STATE.
  if (err instanceof FsError) return cloudFileError(err);
  return ioFailure('write', path, err);
}
