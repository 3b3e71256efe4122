import { randomBytes } from 'node:crypto';
import { link, rename, unlink } from 'node:fs/promises';
import { atomicCreateFile } from './atomic-write.ts';
import { StateError } from './errors.ts';
import { errnoCode, ioError, readNoFollow } from './fs-util.ts';

/**
 * An advisory lock file, so that two TPM servers never write the same state directory: the loser
 * of a race would otherwise overwrite the winner's state with its own stale copy.
 *
 * The file holds "<pid> <random token>\n" and appears complete in one step (atomicCreateFile
 * links it into place), so a reader never sees it half-written. A lock whose pid no longer exists
 * is stale (its server crashed) and is taken over. The token tells two holders in the same process
 * apart and lets a holder check, before each write, that the lock is still its own.
 */

export interface DirLock {
  readonly path: string;
  /** True while the lock file still holds this lock's pid and token. */
  isHeld(): Promise<boolean>;
  /** Removes the lock file if it is still ours. Idempotent. */
  release(): Promise<void>;
}

const MAX_LOCK_FILE_BYTES = 256;
const LOCK_LINE = /^([1-9][0-9]{0,9}) ([0-9a-f]{32})\n$/;
const MAX_ATTEMPTS = 5;

/**
 * Takes the lock at `path`, taking over a stale one. Fails with ERR_STATE_IN_USE if a live process
 * (including this one, through another StateStore) holds it, or if the file cannot be understood.
 */
export async function acquireDirLock(path: string, what = 'TPM state directory'): Promise<DirLock> {
  const content = `${process.pid} ${randomBytes(16).toString('hex')}\n`;
  const bytes = new TextEncoder().encode(content);
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    if (await atomicCreateFile(path, bytes, { mode: 0o600, removeStale: false })) {
      return makeLock(path, content);
    }
    const seen = await readLockFile(path);
    if (seen === undefined) continue; // released between our create and our read: try again
    const match = LOCK_LINE.exec(seen);
    if (!match) {
      throw new StateError(
        'ERR_STATE_IN_USE',
        `lock file ${path} exists but is not a lock this program wrote; if no TPM server uses the ` +
          `${what}, delete it`,
      );
    }
    const pid = Number(match[1]);
    if (isAlive(pid)) {
      throw new StateError(
        'ERR_STATE_IN_USE',
        `the ${what} is in use by process ${pid} (lock file ${path})` +
          (pid === process.pid ? ', which is this process' : ''),
      );
    }
    await takeOverStale(path, seen);
  }
  throw new StateError(
    'ERR_STATE_IN_USE',
    `could not take lock file ${path}: other processes keep competing for it`,
  );
}

function makeLock(path: string, content: string): DirLock {
  let released = false;
  const isHeld = async () => !released && (await readLockFile(path)) === content;
  return {
    path,
    isHeld,
    async release() {
      if (released) return;
      const ours = await isHeld();
      released = true;
      if (!ours) return;
      try {
        await unlink(path);
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw ioError('remove lock file', path, err);
      }
    },
  };
}

async function readLockFile(path: string): Promise<string | undefined> {
  const bytes = await readNoFollow(path, 'lock file', (st) =>
    Math.min(st.size, MAX_LOCK_FILE_BYTES + 1),
  );
  return bytes === undefined ? undefined : Buffer.from(bytes).toString('utf8');
}

/**
 * Removes a stale lock without ever removing a live one: the file is first renamed aside (atomic),
 * then checked. If what was moved is not the stale lock we judged (another process replaced it in
 * between), it is put back, unless yet another lock has appeared, whose holder then wins.
 */
async function takeOverStale(path: string, stale: string): Promise<void> {
  const aside = `${path}.stale-${randomBytes(8).toString('hex')}`;
  try {
    await rename(path, aside);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return; // someone else took it over first
    throw ioError('move stale lock file', path, err);
  }
  try {
    const moved = await readLockFile(aside);
    if (moved !== stale) await link(aside, path).catch(() => {});
  } finally {
    await unlink(aside).catch(() => {});
  }
}

/** Whether a process with this pid exists. Errors other than "no such process" count as alive. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) !== 'ESRCH';
  }
}
