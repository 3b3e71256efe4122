/**
 * The broker's files in the device directory (`<data>/devices/<NAME>/`, mode 0700):
 *
 *   broker.json     {"port": P, "secret": "..."}, mode 0600: how local clients find and
 *                   authenticate to the running broker (DESIGN "Contracts": the caller presents a
 *                   secret from a 0600 file in the device directory)
 *   broker-cache/   the sealed token cache (cache.ts), mode 0700
 *
 * Every write is atomic (temporary file, fsync, rename, directory fsync), so a reader never sees a
 * half-written secret. Reads refuse symlinks, files of another user and files group or others
 * could read: a secret anyone else can read is no longer a secret.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { atomicWriteFile as writeAtomically } from '../lib/fs/atomic-write.ts';
import { type FsError, type FsOp, formatMode, withFsErrors } from '../lib/fs/errors.ts';
import { ensurePrivateDir as ensureDir } from '../lib/fs/private-dir.ts';
import { readPrivateFile as readFile } from '../lib/fs/private-file.ts';
import { BrokerError } from './errors.ts';

export const BROKER_FILE = 'broker.json';
export const CACHE_DIR = 'broker-cache';

/** 32 random bytes, base64url without padding (RFC 4648 §5): 43 characters. */
const SECRET_RE = /^[A-Za-z0-9_-]{43}$/;
const MAX_BROKER_FILE_BYTES = 4096;

export interface BrokerFile {
  readonly port: number;
  readonly secret: string;
}

/** A new broker secret: 32 bytes from the CSPRNG, base64url. */
export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

export function brokerFilePath(deviceDir: string): string {
  return join(deviceDir, BROKER_FILE);
}

/**
 * Makes sure `dir` is a directory of this user that group and others cannot enter, creating it
 * (0700) when missing. An existing directory with a looser mode is refused with the fix rather
 * than silently tightened: something else may rely on it, and the files in it may have leaked.
 */
export const ensurePrivateDir = withFsErrors(
  (dir: string) => ensureDir(dir, { recursive: true }),
  (err) => brokerFsError(err, 'directory'),
);

/**
 * lib/fs's atomic writer (same options: mode, removeStale) with the broker's error: a failure is
 * ERR_BROKER with the writer's message.
 */
export const atomicWriteFile = withFsErrors(writeAtomically, (err) => brokerFsError(err, 'file'));

/** Writes broker.json atomically, mode 0600, in a 0700 device directory. */
export async function writeBrokerFile(deviceDir: string, file: BrokerFile): Promise<string> {
  await ensurePrivateDir(deviceDir);
  const path = brokerFilePath(deviceDir);
  const body = Buffer.from(`${JSON.stringify({ port: file.port, secret: file.secret })}\n`);
  try {
    await writeAtomically(path, body, { mode: 0o600 });
  } catch (err) {
    throw new BrokerError(`cannot write ${path}`, { cause: err });
  }
  return path;
}

/**
 * Reads a private file of this user without following a symlink: undefined if it does not exist;
 * BrokerError if it is not a regular file, belongs to someone else, group or others can access
 * it, or it is larger than `maxBytes`.
 */
export const readPrivateFile = withFsErrors(
  (path: string, maxBytes: number) => readFile(path, { maxBytes }),
  (err) => brokerFsError(err, 'file'),
);

/** What the broker's messages call each failed system call (its errno follows, or "error"). */
const BROKER_IO_VERBS: Partial<Record<FsOp, string>> = {
  'create directory': 'create',
  'stat directory': 'inspect',
  open: 'open',
  read: 'read',
};

/** A refusal or failure from lib/fs as ERR_BROKER, in the broker's words (with the fix). */
function brokerFsError(err: FsError, kind: 'file' | 'directory'): BrokerError {
  const { path, failure } = err;
  switch (failure.reason) {
    case 'symlink':
      return new BrokerError(
        kind === 'file'
          ? `${path} is a symbolic link; refused`
          : `${path} is not a directory (or is a symlink)`,
      );
    case 'not-directory':
      return new BrokerError(`${path} is not a directory (or is a symlink)`);
    case 'mode':
      return new BrokerError(
        kind === 'file'
          ? `${path} has mode ${formatMode(failure.mode)}, which lets group or others read it: run chmod 600 ${path}`
          : `${path} has mode ${formatMode(failure.mode)}; group and others must not enter it: run chmod 700 ${path}`,
      );
    case 'io': {
      const verb = BROKER_IO_VERBS[failure.op];
      // The atomic writer's own "cannot <op> <path> (ERRNO)" is kept as it is.
      if (verb === undefined) return new BrokerError(err.message, { cause: err.cause });
      return new BrokerError(`cannot ${verb} ${path} (${failure.errno ?? 'error'})`, {
        cause: err.cause,
      });
    }
    default:
      // Not a regular file, another owner, too large: the neutral wording is the broker's own.
      return new BrokerError(err.message);
  }
}

/**
 * The running broker's port and secret from `<deviceDir>/broker.json`. ERR_BROKER when the file
 * is missing (no broker started for this device), insecure or malformed.
 */
export async function readBrokerFile(deviceDir: string): Promise<BrokerFile> {
  const path = brokerFilePath(deviceDir);
  const data = await readPrivateFile(path, MAX_BROKER_FILE_BYTES);
  if (data === undefined)
    throw new BrokerError(`no broker is running for this device (${path} does not exist)`);
  let json: unknown;
  try {
    json = JSON.parse(data.toString('utf8'));
  } catch {
    throw new BrokerError(`${path} is not JSON`);
  }
  const { port, secret } = (json ?? {}) as { port?: unknown; secret?: unknown };
  if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535)
    throw new BrokerError(`${path}: port must be an integer from 1 to 65535`);
  if (typeof secret !== 'string' || !SECRET_RE.test(secret))
    throw new BrokerError(`${path}: secret must be 43 base64url characters`);
  return { port: port as number, secret };
}

/**
 * Removes broker.json if it still names this broker (same port and secret): a broker that
 * started since, for the same device, keeps its own file.
 */
export async function removeBrokerFile(deviceDir: string, mine: BrokerFile): Promise<void> {
  let current: BrokerFile;
  try {
    current = await readBrokerFile(deviceDir);
  } catch {
    return;
  }
  const a = Buffer.from(current.secret);
  const b = Buffer.from(mine.secret);
  if (current.port !== mine.port || a.length !== b.length || !timingSafeEqual(a, b)) return;
  await unlink(brokerFilePath(deviceDir)).catch(() => {});
}
