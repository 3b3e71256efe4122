/**
 * The device directory's files: directories 0700, every file 0600 and written atomically (temp
 * file, fsync, rename; tpm-sim/state/atomic-write.ts), read without following symlinks and only
 * when they belong to this user and nobody else can read them. The device directory holds wrapped
 * key blobs, the sealed PRT and the cloud CA this device trusts: a file someone else could have
 * written is refused, not trusted.
 */
import { constants } from 'node:fs';
import { lstat, mkdir, open } from 'node:fs/promises';
import { atomicWriteFile } from '../tpm-sim/state/index.ts';
import { AgentDeviceError } from './errors.ts';

const MAX_FILE_BYTES = 4 * 1024 * 1024;

function uid(): number | undefined {
  return typeof process.getuid === 'function' ? process.getuid() : undefined;
}

/** Creates `path` (and missing parents) with mode 0700, then checks it is ours alone. */
export async function ensurePrivateDir(path: string): Promise<void> {
  try {
    await mkdir(path, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new AgentDeviceError(`cannot create directory ${path}`, { cause: err });
  }
  await checkPrivateDir(path);
}

/** Refuses a path that is not a directory, is a symlink, is not ours, or lets others in. */
export async function checkPrivateDir(path: string): Promise<void> {
  let st: Awaited<ReturnType<typeof lstat>>;
  try {
    st = await lstat(path);
  } catch (err) {
    throw new AgentDeviceError(`cannot read directory ${path}`, { cause: err });
  }
  if (!st.isDirectory()) throw new AgentDeviceError(`${path} is not a directory (or is a symlink)`);
  const me = uid();
  if (me !== undefined && st.uid !== me) {
    throw new AgentDeviceError(`directory ${path} belongs to uid ${st.uid}, not to this user`);
  }
  if ((st.mode & 0o077) !== 0) {
    throw new AgentDeviceError(
      `directory ${path} has mode 0${(st.mode & 0o777).toString(8)}; run: chmod 700 ${path}`,
    );
  }
}

/** The bytes of a private file, or undefined if it does not exist. */
export async function readPrivateFile(path: string): Promise<Buffer | undefined> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new AgentDeviceError(`cannot open ${path}`, { cause: err });
  }
  try {
    const st = await handle.stat();
    const me = uid();
    if (!st.isFile()) throw new AgentDeviceError(`${path} is not a regular file`);
    if (me !== undefined && st.uid !== me) {
      throw new AgentDeviceError(`${path} belongs to uid ${st.uid}, not to this user`);
    }
    if ((st.mode & 0o077) !== 0) {
      throw new AgentDeviceError(
        `${path} has mode 0${(st.mode & 0o777).toString(8)}, which lets others read it; run: chmod 600 ${path}`,
      );
    }
    if (st.size > MAX_FILE_BYTES) throw new AgentDeviceError(`${path} is larger than expected`);
    return await handle.readFile();
  } finally {
    await handle.close().catch(() => {});
  }
}

/** Replaces `path` with `data`, atomically, mode 0600. */
export async function writePrivateFile(path: string, data: string | Buffer): Promise<void> {
  await atomicWriteFile(path, typeof data === 'string' ? Buffer.from(data, 'utf8') : data, {
    mode: 0o600,
  });
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
