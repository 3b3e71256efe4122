import type { Stats } from 'node:fs';
import { FsError } from './errors.ts';

/** Group and other permission bits: a private file or directory has none of them. */
export const GROUP_OTHER_BITS = 0o077;

/** The current user id, or undefined where the platform has none (Windows). */
export function currentUid(): number | undefined {
  return typeof process.getuid === 'function' ? process.getuid() : undefined;
}

/**
 * Refuses (FsError 'owner') what belongs to another user, and, when `requirePrivateMode`, what
 * group or others may access at all (FsError 'mode'). Where the platform has no user ids, the
 * owner check is skipped.
 */
export function checkOwnerAndMode(path: string, st: Stats, requirePrivateMode: boolean): void {
  const uid = currentUid();
  if (uid !== undefined && st.uid !== uid) {
    throw new FsError(path, { reason: 'owner', uid: st.uid, expectedUid: uid });
  }
  if (requirePrivateMode && (st.mode & GROUP_OTHER_BITS) !== 0) {
    throw new FsError(path, { reason: 'mode', mode: st.mode });
  }
}
