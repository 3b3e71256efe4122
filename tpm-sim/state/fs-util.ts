import { constants, type Stats } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { StateError } from './errors.ts';

/** The errno name of a Node system error (`ENOENT`, ...), or undefined for anything else. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/** Wraps a failed file-system call as ERR_STATE_IO, keeping the original as `cause`. */
export function ioError(what: string, path: string, err: unknown): StateError {
  const code = errnoCode(err);
  return new StateError('ERR_STATE_IO', `cannot ${what} ${path}${code ? ` (${code})` : ''}`, {
    cause: err,
  });
}

/** Formats a mode's permission bits the way chmod takes them, e.g. "0644". */
export function formatMode(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, '0')}`;
}

/** The current user id, or undefined where the platform has none (Windows). */
export function currentUid(): number | undefined {
  return typeof process.getuid === 'function' ? process.getuid() : undefined;
}

/**
 * Opens a file for reading without following a symlink in the last component: a state or key file
 * that has been replaced by a link to somewhere else is refused rather than read through.
 */
export function openNoFollow(path: string): Promise<FileHandle> {
  return open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
}

/**
 * Reads `size` bytes from the start of an open file (fewer if it ends first). Callers check the
 * size against their cap before calling, so this never allocates more than the cap.
 */
export async function readExactly(handle: FileHandle, size: number): Promise<Uint8Array> {
  const buf = new Uint8Array(size);
  let done = 0;
  while (done < size) {
    const { bytesRead } = await handle.read(buf, done, size - done, done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done === size ? buf : buf.subarray(0, done);
}

/**
 * Reads a small file through openNoFollow; undefined if there is no file at `path`. `size` sees
 * the open file's stats and returns how many bytes to read from its start, or throws a
 * StateError to refuse the file. `refuseOpen` may turn an open failure into the caller's own
 * StateError (a symlink, no permission). A StateError passes through; any other failure is
 * ERR_STATE_IO "cannot open|read [what] path".
 */
export async function readNoFollow(
  path: string,
  what: string | undefined,
  size: (st: Stats) => number,
  refuseOpen?: (code: string | undefined, err: unknown) => StateError | undefined,
): Promise<Uint8Array | undefined> {
  const doing = (verb: string) => (what === undefined ? verb : `${verb} ${what}`);
  let handle: FileHandle;
  try {
    handle = await openNoFollow(path);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT') return undefined;
    throw refuseOpen?.(code, err) ?? ioError(doing('open'), path, err);
  }
  try {
    return await readExactly(handle, size(await handle.stat()));
  } catch (err) {
    if (err instanceof StateError) throw err;
    throw ioError(doing('read'), path, err);
  } finally {
    await handle.close().catch(() => {});
  }
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
    throw ioError('fsync directory', dir, err);
  } finally {
    await handle?.close().catch(() => {});
  }
}
