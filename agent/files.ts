/**
 * The device directory's files: directories 0700, every file 0600 and written atomically (temp
 * file, fsync, rename; lib/fs/atomic-write.ts), read without following symlinks and only when
 * they belong to this user and nobody else can read them (lib/fs). The device directory holds
 * wrapped key blobs, the sealed PRT and the cloud CA this device trusts: a file someone else could
 * have written is refused, not trusted.
 */
import { atomicWriteFile as writeAtomically } from '../lib/fs/atomic-write.ts';
import { type FsError, withFsErrors } from '../lib/fs/errors.ts';
import {
  checkPrivateDir as checkDir,
  ensurePrivateDir as ensureDir,
} from '../lib/fs/private-dir.ts';
import { readPrivateFile as readFile } from '../lib/fs/private-file.ts';
import { AgentDeviceError } from './errors.ts';

const MAX_FILE_BYTES = 4 * 1024 * 1024;

/** Creates `path` (and missing parents) with mode 0700, then checks it is ours alone. */
export const ensurePrivateDir = withFsErrors(
  (path: string) => ensureDir(path, { recursive: true }),
  (err) => agentFsError(err, 'directory'),
);

/** Refuses a path that is not a directory, is a symlink, is not ours, or lets others in. */
export const checkPrivateDir = withFsErrors(checkDir, (err) => agentFsError(err, 'directory'));

/** The bytes of a private file, or undefined if it does not exist. */
export const readPrivateFile = withFsErrors(
  (path: string) => readFile(path, { maxBytes: MAX_FILE_BYTES }),
  (err) => agentFsError(err, 'file'),
);

/**
 * lib/fs's atomic writer (same options: mode, removeStale) with the agent's error: a failure is
 * ERR_AGENT_DEVICE with the writer's message.
 */
export const atomicWriteFile = withFsErrors(writeAtomically, (err) => agentFsError(err, 'file'));

/** Replaces `path` with `data`, atomically, mode 0600. */
export function writePrivateFile(path: string, data: string | Buffer): Promise<void> {
  return atomicWriteFile(path, typeof data === 'string' ? Buffer.from(data, 'utf8') : data, {
    mode: 0o600,
  });
}

/** A refusal or failure from lib/fs as ERR_AGENT_DEVICE, in the agent's words (with the fix). */
function agentFsError(err: FsError, kind: 'file' | 'directory'): unknown {
  const { path, failure } = err;
  const where = kind === 'file' ? path : `directory ${path}`;
  switch (failure.reason) {
    case 'symlink':
      // A file is opened with O_NOFOLLOW, which fails (ELOOP) on a link; a directory is lstat'ed.
      return kind === 'file'
        ? new AgentDeviceError(`cannot open ${path}`, { cause: err.cause })
        : new AgentDeviceError(`${path} is not a directory (or is a symlink)`);
    case 'not-directory':
      return new AgentDeviceError(`${path} is not a directory (or is a symlink)`);
    case 'owner':
      return new AgentDeviceError(`${where} belongs to uid ${failure.uid}, not to this user`);
    case 'mode': {
      const mode = `0${(failure.mode & 0o777).toString(8)}`;
      return new AgentDeviceError(
        kind === 'file'
          ? `${path} has mode ${mode}, which lets others read it; run: chmod 600 ${path}`
          : `directory ${path} has mode ${mode}; run: chmod 700 ${path}`,
      );
    }
    case 'too-large':
      return new AgentDeviceError(`${path} is larger than expected`);
    case 'io':
      switch (failure.op) {
        case 'open':
          return new AgentDeviceError(`cannot open ${path}`, { cause: err.cause });
        case 'create directory':
          return new AgentDeviceError(`cannot create directory ${path}`, { cause: err.cause });
        case 'stat directory':
          return new AgentDeviceError(`cannot read directory ${path}`, { cause: err.cause });
        case 'read':
          // A failure after the open reaches the caller as the system error itself.
          return err.cause;
        default:
          // The atomic writer's own "cannot <op> <path> (ERRNO)".
          return new AgentDeviceError(err.message, { cause: err.cause });
      }
    default:
      return new AgentDeviceError(err.message);
  }
}

/** A JSON file written by writeJsonFile, parsed; undefined if missing, ERR_AGENT_DEVICE if not JSON. */
export async function readJsonFile(path: string): Promise<unknown> {
  const bytes = await readPrivateFile(path);
  if (bytes === undefined) return undefined;
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new AgentDeviceError(`${path} is not valid JSON`, { cause: err });
  }
}

export function writeJsonFile(path: string, value: unknown): Promise<void> {
  return writePrivateFile(path, `${JSON.stringify(value, null, 2)}\n`);
}
