/** Where the lab keeps its state: one data directory for the TPM, the cloud and the device. */
import { resolve } from 'node:path';

export const DEFAULT_DATA_DIR_NAME = '.prtlab';

/**
 * The lab's data directory as an absolute path: `flag` (from --data) if given, else
 * $PRTLAB_HOME, else ./.prtlab under `cwd`. Empty values count as not given.
 */
export function resolveDataDir(
  flag?: string,
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): string {
  if (flag !== undefined && typeof flag !== 'string') throw new TypeError('flag must be a string');
  if (flag) return resolve(cwd, flag);
  const home = env.PRTLAB_HOME;
  if (home) return resolve(cwd, home);
  return resolve(cwd, DEFAULT_DATA_DIR_NAME);
}
