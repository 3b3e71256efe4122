/**
 * Reading a file that must be this user's own: a key, a secret, a sealed blob, a config that says
 * what to trust. The file is checked on every read rather than trusted, on the open descriptor
 * (so a rename between check and read cannot swap it): a symlink is refused, never followed, so
 * the file cannot be swapped by re-pointing a link; so is anything that is not a regular file,
 * anything another user owns, anything group or others may access (unless the caller allows it),
 * and anything larger than the caller's bound, before a byte of it is allocated.
 */
import { constants, type Stats } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { errnoCode, FsError, ioFailure } from './errors.ts';
import { checkOwnerAndMode } from './ownership.ts';

export interface ReadPrivateFileOptions {
  /** Refuse (FsError 'too-large') a file larger than this many bytes. */
  readonly maxBytes: number;
  /**
   * Refuse (FsError 'mode') a file group or others may access at all (mode & 0o077). Default
   * true; false for files that are not secret but must still be this user's (a certificate).
   */
  readonly requirePrivateMode?: boolean;
}

/**
 * The bytes of the private file at `path`, or undefined if there is none. Anything else that
 * stops the read is an FsError: 'symlink', 'not-file', 'owner', 'mode', 'too-large', or 'io'
 * (op 'open' or 'read', the system error as `cause`).
 */
export async function readPrivateFile(
  path: string,
  options: ReadPrivateFileOptions,
): Promise<Buffer | undefined> {
  if (typeof path !== 'string' || path.length === 0) {
    throw new TypeError('path must be a non-empty string');
  }
  const { maxBytes, requirePrivateMode = true } = options;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) {
    throw new RangeError('maxBytes must be a non-negative integer');
  }
  const data = await readFileNoFollow(path, (st) => {
    if (!st.isFile()) throw new FsError(path, { reason: 'not-file' });
    checkOwnerAndMode(path, st, requirePrivateMode);
    if (st.size > maxBytes) {
      throw new FsError(path, { reason: 'too-large', size: st.size, maxBytes });
    }
    return st.size;
  });
  return data && Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * The read under readPrivateFile, for callers with checks of their own. Opens `path` without
 * following a symlink (undefined if there is no file), lets `check` see the open file's stats and
 * return how many bytes to read from its start, and reads them. `check` refuses the file by
 * throwing; its error passes through as it is. A failed open is FsError 'symlink' (ELOOP) or
 * 'io' (op 'open'); a failed stat or read is 'io' (op 'read'); the system error is the `cause`.
 */
export async function readFileNoFollow(
  path: string,
  check: (st: Stats) => number,
): Promise<Uint8Array | undefined> {
  let handle: FileHandle;
  try {
    handle = await openNoFollow(path);
  } catch (err) {
    const errno = errnoCode(err);
    if (errno === 'ENOENT') return undefined;
    // O_NOFOLLOW on a symlink fails with ELOOP.
    if (errno === 'ELOOP') throw new FsError(path, { reason: 'symlink' }, { cause: err });
    throw ioFailure('open', path, err);
  }
  const readFailed = (err: unknown): never => {
    throw ioFailure('read', path, err);
  };
  try {
    const st = await handle.stat().catch(readFailed);
    return await readExactly(handle, check(st)).catch(readFailed);
  } finally {
    await handle.close().catch(() => {});
  }
}

/**
 * Opens a file for reading without following a symlink in the last component: a file that has
 * been replaced by a link to somewhere else is refused (ELOOP) rather than read through.
 */
function openNoFollow(path: string): Promise<FileHandle> {
  return open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
}

/**
 * Reads `size` bytes from the start of an open file (fewer if it ends first). Callers check the
 * size against their bound before calling, so this never allocates more than the bound.
 */
async function readExactly(handle: FileHandle, size: number): Promise<Uint8Array> {
  const buf = new Uint8Array(size);
  let done = 0;
  while (done < size) {
    const { bytesRead } = await handle.read(buf, done, size - done, done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done === size ? buf : buf.subarray(0, done);
}
