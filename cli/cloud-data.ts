/** Shared by the commands that work on the cloud's data directory without serving it. */
import { ensureCloudDirs, resolveDataDir } from '../cloud/data-dir.ts';
import { openDirectory } from '../cloud/directory/index.ts';
import type { Directory } from '../cloud/directory/types.ts';
import { type Io, usageError } from './io.ts';

/** The --data option every lab-state command takes. */
export const DATA_OPTION = { data: { type: 'string' } } as const;

/**
 * Opens the directory of `--data` (or $PRTLAB_HOME, or ./.prtlab), runs `fn`, and closes it.
 * SQLite's WAL mode lets this run while `prtlab cloud serve` has the same directory open.
 */
export async function withDirectory<T>(
  dataFlag: string | undefined,
  fn: (directory: Directory) => Promise<T>,
): Promise<T> {
  const paths = await ensureCloudDirs(resolveDataDir(dataFlag));
  const directory = await openDirectory(paths);
  try {
    return await fn(directory);
  } finally {
    await directory.close();
  }
}

/** Exactly `count` positionals, or a usage error naming what is missing or extra. */
export function expectPositionals(
  positionals: string[],
  names: readonly string[],
  command: string,
): string[] {
  if (positionals.length < names.length) {
    throw usageError(`${command}: missing ${names.slice(positionals.length).join(' ')}`);
  }
  if (positionals.length > names.length) {
    throw usageError(`${command}: unexpected argument '${positionals[names.length]}'`);
  }
  return positionals;
}

/** Formats rows as left-aligned columns (the last column is not padded). */
export function table(
  io: Io,
  header: readonly string[],
  rows: readonly (readonly string[])[],
): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  io.out(`${[line(header), ...rows.map(line)].join('\n')}\n`);
}
