/**
 * The state store's file helpers. The mechanism (errno names, ownership, no-follow reads) lives in
 * lib/fs, shared with every component; what is the state store's own is its error, StateError.
 */
import type { Stats } from 'node:fs';
import { errnoCode, withFsErrors } from '../../lib/fs/errors.ts';
import { readFileNoFollow } from '../../lib/fs/private-file.ts';
import { StateError } from './errors.ts';

export { errnoCode, formatMode } from '../../lib/fs/errors.ts';
export { currentUid } from '../../lib/fs/ownership.ts';

/** Wraps a failed file-system call as ERR_STATE_IO, keeping the original as `cause`. */
export function ioError(what: string, path: string, err: unknown): StateError {
  const code = errnoCode(err);
  return new StateError('ERR_STATE_IO', `cannot ${what} ${path}${code ? ` (${code})` : ''}`, {
    cause: err,
  });
}

/**
 * Reads a small file without following a symlink (lib/fs readFileNoFollow); undefined if there is
 * no file at `path`. `size` sees the open file's stats and returns how many bytes to read from
 * its start, or throws a StateError to refuse the file. `refuseOpen` may turn an open failure into
 * the caller's own StateError (a symlink, no permission). A StateError passes through; any other
 * failure is ERR_STATE_IO "cannot open|read [what] path".
 */
export function readNoFollow(
  path: string,
  what: string | undefined,
  size: (st: Stats) => number,
  refuseOpen?: (code: string | undefined, err: unknown) => StateError | undefined,
): Promise<Uint8Array | undefined> {
  const doing = (verb: string) => (what === undefined ? verb : `${verb} ${what}`);
  return withFsErrors(readFileNoFollow, ({ failure, cause }) => {
    if (failure.reason === 'io' && failure.op === 'read') {
      return ioError(doing('read'), path, cause);
    }
    const code = failure.reason === 'io' ? failure.errno : 'ELOOP';
    return refuseOpen?.(code, cause) ?? ioError(doing('open'), path, cause);
  })(path, size);
}
