/**
 * The cloud's directory: one storage interface (types.ts) and its SQLite backend. Callers depend
 * on `Directory` only; `openDirectory` picks the backend.
 */
import type { CloudPaths } from '../data-dir.ts';
import { openSqliteDirectory, type SqliteDirectoryOptions } from './sqlite.ts';
import type { Directory } from './types.ts';

export {
  hashPassword,
  MAX_PASSWORD_LENGTH,
  MIN_PASSWORD_LENGTH,
  type ScryptParams,
  verifyPassword,
} from './password.ts';
export { APP_IDS, DIRECTORY_ROLES, DRS_RESOURCE_URI, firstPartyApplications } from './seed.ts';
export {
  DEFAULT_TENANT_DOMAIN,
  DEFAULT_TENANT_REGION,
  openSqliteDirectory,
  type SqliteDirectoryOptions,
} from './sqlite.ts';
export type * from './types.ts';

/** Opens the directory of a data directory's cloud (`<data>/cloud/directory.sqlite`). */
export function openDirectory(
  paths: CloudPaths,
  options: Omit<SqliteDirectoryOptions, 'path'> = {},
): Promise<Directory> {
  return openSqliteDirectory({ ...options, path: paths.directoryDb });
}
