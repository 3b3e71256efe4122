/**
 * The one error lib/fs throws for a file or directory it refuses or cannot use. It carries no
 * ErrorCode on purpose: lib/ serves every component, and each component words and codes its own
 * file failures (ERR_CLOUD_STATE, ERR_BROKER, ERR_AGENT_DEVICE, ERR_STATE_IO) in one small
 * mapping function beside its file code. `failure` holds the facts such a message needs.
 */

/** What went wrong with the file or directory at FsError.path, and the facts that show it. */
export type FsFailure =
  /** The last path component is a symbolic link (refused, never followed). */
  | { readonly reason: 'symlink' }
  /** A file was expected and the path names something else (a directory, a FIFO, a device). */
  | { readonly reason: 'not-file' }
  /** A directory was expected and the path names something else. */
  | { readonly reason: 'not-directory' }
  /** It belongs to `uid`, not to this process's user `expectedUid`. */
  | { readonly reason: 'owner'; readonly uid: number; readonly expectedUid: number }
  /** Group or others have some access; `mode` is the whole st_mode. */
  | { readonly reason: 'mode'; readonly mode: number }
  /** The file is `size` bytes, more than the caller's bound `maxBytes`. */
  | { readonly reason: 'too-large'; readonly size: number; readonly maxBytes: number }
  /** A system call failed while doing `op`; `errno` is its errno name (EACCES, ...) if any. */
  | { readonly reason: 'io'; readonly op: FsOp; readonly errno: string | undefined };

export type FsErrorReason = FsFailure['reason'];

/** What lib/fs was doing when a system call failed (the verb of the "cannot ..." message). */
export type FsOp =
  // readPrivateFile
  | 'open'
  | 'read'
  // ensurePrivateDir, checkPrivateDir
  | 'create directory'
  | 'stat directory'
  // atomicWriteFile, atomicCreateFile, removeStaleTempFiles
  | 'write temporary file for'
  | 'rename a temporary file over'
  | 'create'
  | 'list directory'
  | 'remove stale temporary file'
  | 'fsync directory';

export class FsError extends Error {
  /** The file or directory concerned. */
  readonly path: string;
  readonly reason: FsErrorReason;
  readonly failure: FsFailure;

  /** `cause` is the system error, where there was one (io, and a symlink found by open). */
  constructor(path: string, failure: FsFailure, options?: { cause?: unknown }) {
    super(describe(path, failure), options);
    this.name = 'FsError';
    this.path = path;
    this.reason = failure.reason;
    this.failure = failure;
  }
}

/**
 * `fn` with its FsErrors replaced by whatever `map` returns (the caller's own coded error); any
 * other error (a caller bug's TypeError, an already coded error) passes through unchanged.
 */
export function withFsErrors<A extends unknown[], R>(
  fn: (...args: A) => Promise<R>,
  map: (err: FsError) => unknown,
): (...args: A) => Promise<R> {
  return async (...args) => {
    try {
      return await fn(...args);
    } catch (err) {
      throw err instanceof FsError ? map(err) : err;
    }
  };
}

/** A failed system call as an FsError, keeping the original as `cause`. */
export function ioFailure(op: FsOp, path: string, err: unknown): FsError {
  return new FsError(path, { reason: 'io', op, errno: errnoCode(err) }, { cause: err });
}

/** The errno name of a Node system error (`ENOENT`, ...), or undefined for anything else. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/** Formats a mode's permission bits the way chmod takes them, e.g. "0644". */
export function formatMode(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, '0')}`;
}

/** The neutral wording; components that say it differently map the failure themselves. */
function describe(path: string, f: FsFailure): string {
  switch (f.reason) {
    case 'symlink':
      return `${path} is a symbolic link`;
    case 'not-file':
      return `${path} is not a regular file`;
    case 'not-directory':
      return `${path} is not a directory`;
    case 'owner':
      return `${path} is owned by uid ${f.uid}, not by this user (uid ${f.expectedUid})`;
    case 'mode':
      return `${path} has mode ${formatMode(f.mode)}, which lets group or others in`;
    case 'too-large':
      return `${path} is ${f.size} bytes; at most ${f.maxBytes} are expected`;
    case 'io':
      return `cannot ${f.op} ${path}${f.errno ? ` (${f.errno})` : ''}`;
  }
}
