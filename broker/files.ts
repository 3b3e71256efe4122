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
import { constants } from 'node:fs';
import { type FileHandle, lstat, mkdir, open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { atomicWriteFile } from '../tpm-sim/state/atomic-write.ts';
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

function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function currentUid(): number | undefined {
  return typeof process.getuid === 'function' ? process.getuid() : undefined;
}

function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, '0')}`;
}

/**
 * Makes sure `dir` is a directory of this user that group and others cannot enter, creating it
 * (0700) when missing. An existing directory with a looser mode is refused with the fix rather
 * than silently tightened: something else may rely on it, and the files in it may have leaked.
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new BrokerError(`cannot create ${dir} (${errnoCode(err) ?? 'error'})`, { cause: err });
  }
  let st: Awaited<ReturnType<typeof lstat>>;
  try {
    st = await lstat(dir);
  } catch (err) {
    throw new BrokerError(`cannot inspect ${dir} (${errnoCode(err) ?? 'error'})`, { cause: err });
  }
  if (!st.isDirectory()) throw new BrokerError(`${dir} is not a directory (or is a symlink)`);
  const uid = currentUid();
  if (uid !== undefined && st.uid !== uid)
    throw new BrokerError(`${dir} is owned by uid ${st.uid}, not by this user (uid ${uid})`);
  if ((st.mode & 0o077) !== 0)
    throw new BrokerError(
      `${dir} has mode ${octal(st.mode)}; group and others must not enter it: run chmod 700 ${dir}`,
    );
}

/** Writes broker.json atomically, mode 0600, in a 0700 device directory. */
export async function writeBrokerFile(deviceDir: string, file: BrokerFile): Promise<string> {
  await ensurePrivateDir(deviceDir);
  const path = brokerFilePath(deviceDir);
  const body = Buffer.from(`${JSON.stringify({ port: file.port, secret: file.secret })}\n`);
  try {
    await atomicWriteFile(path, body, { mode: 0o600 });
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
export async function readPrivateFile(path: string, maxBytes: number): Promise<Buffer | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw new BrokerError(`${path} is a symbolic link; refused`);
    throw new BrokerError(`cannot open ${path} (${code ?? 'error'})`, { cause: err });
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new BrokerError(`${path} is not a regular file`);
    const uid = currentUid();
    if (uid !== undefined && st.uid !== uid)
      throw new BrokerError(`${path} is owned by uid ${st.uid}, not by this user (uid ${uid})`);
    if ((st.mode & 0o077) !== 0)
      throw new BrokerError(
        `${path} has mode ${octal(st.mode)}, which lets group or others read it: run chmod 600 ${path}`,
      );
    if (st.size > maxBytes)
      throw new BrokerError(`${path} is ${st.size} bytes; at most ${maxBytes} are expected`);
    const data = Buffer.alloc(st.size);
    let done = 0;
    while (done < st.size) {
      const { bytesRead } = await handle.read(data, done, st.size - done, done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return data.subarray(0, done);
  } catch (err) {
    if (err instanceof BrokerError) throw err;
    throw new BrokerError(`cannot read ${path} (${errnoCode(err) ?? 'error'})`, { cause: err });
  } finally {
    await handle.close().catch(() => {});
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
