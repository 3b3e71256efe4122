/**
 * Directories that hold private keys, secrets and sealed state: mode 0700, owned by this user. An
 * existing directory with a looser mode is refused, never silently tightened: something else may
 * rely on it, and what it holds may already have leaked. A symlink is refused too, so the
 * directory cannot be swapped by re-pointing a link.
 */
import { lstat, mkdir } from 'node:fs/promises';
import { errnoCode, FsError, ioFailure } from './errors.ts';
import { checkOwnerAndMode } from './ownership.ts';

/** The mode a private directory is created with. */
export const PRIVATE_DIR_MODE = 0o700;

export interface EnsurePrivateDirOptions {
  /** Create missing parents too (each 0700), as `mkdir -p`. Default false. */
  readonly recursive?: boolean;
}

/**
 * Creates `dir` with mode 0700 if missing, then checks it as checkPrivateDir does. A failed
 * mkdir is FsError 'io' (op 'create directory'); without `recursive`, EEXIST only means something
 * is already there, and the checks decide whether it will do.
 */
export async function ensurePrivateDir(
  dir: string,
  options: EnsurePrivateDirOptions = {},
): Promise<void> {
  const recursive = options.recursive ?? false;
  try {
    await mkdir(dir, { recursive, mode: PRIVATE_DIR_MODE });
  } catch (err) {
    if (recursive || errnoCode(err) !== 'EEXIST') throw ioFailure('create directory', dir, err);
  }
  await checkPrivateDir(dir);
}

/**
 * Refuses `dir` unless it is a real directory (FsError 'symlink', 'not-directory'), owned by this
 * user ('owner'), that group and others cannot enter ('mode'). A failed lstat, including a
 * missing directory, is 'io' (op 'stat directory').
 */
export async function checkPrivateDir(dir: string): Promise<void> {
  let st: Awaited<ReturnType<typeof lstat>>;
  try {
    st = await lstat(dir);
  } catch (err) {
    throw ioFailure('stat directory', dir, err);
  }
  if (st.isSymbolicLink()) throw new FsError(dir, { reason: 'symlink' });
  if (!st.isDirectory()) throw new FsError(dir, { reason: 'not-directory' });
  checkOwnerAndMode(dir, st, true);
}
