/**
 * The token service's master key: 32 random bytes in `<data>/cloud/keys/token-master.key` (0600),
 * created on first use and never replaced (every PRT, refresh token and nonce depends on it).
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { CloudPaths } from '../data-dir.ts';
import { CloudStateError } from '../errors.ts';
import { createFileOnce, readCheckedFile } from '../files.ts';

export function masterKeyPath(paths: CloudPaths): string {
  return join(paths.keysDir, 'token-master.key');
}

export async function loadOrCreateMasterKey(paths: CloudPaths): Promise<Buffer> {
  const path = masterKeyPath(paths);
  let key = await readCheckedFile(path, { private: true, maxBytes: 64 });
  if (!key) {
    const fresh = randomBytes(32);
    await createFileOnce(path, fresh, 0o600);
    // Another process may have won the race; theirs is the key in use.
    key = await readCheckedFile(path, { private: true, maxBytes: 64 });
  }
  if (key?.length !== 32) throw new CloudStateError(`${path} is not a 32-byte key`);
  return key;
}
