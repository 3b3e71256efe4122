/**
 * The crash-safe writers of lib/fs/atomic-write.ts with the state store's error: a failure of the
 * file system is ERR_STATE_IO (StateError), same message, the system error as `cause`.
 */
import * as atomic from '../../lib/fs/atomic-write.ts';
import { type FsError, withFsErrors } from '../../lib/fs/errors.ts';
import { StateError } from './errors.ts';

export {
  _atomicWriteInternals,
  type AtomicWriteOptions,
  DEFAULT_FILE_MODE,
  isTempFileFor,
} from '../../lib/fs/atomic-write.ts';

function stateIoError(err: FsError): StateError {
  return new StateError('ERR_STATE_IO', err.message, { cause: err.cause });
}

/** Replaces (or creates) `target` with `data`, atomically and durably. Fails with ERR_STATE_IO. */
export const atomicWriteFile = withFsErrors(atomic.atomicWriteFile, stateIoError);

/** Creates `target` with `data` if no file of that name exists; false if one did (untouched). */
export const atomicCreateFile = withFsErrors(atomic.atomicCreateFile, stateIoError);

/** Deletes temporary files interrupted writes left next to `target`; returns the names removed. */
export const removeStaleTempFiles = withFsErrors(atomic.removeStaleTempFiles, stateIoError);
