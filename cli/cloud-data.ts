/** Shared by the commands that work on the cloud's data directory: options, help, output. */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { ensureCloudDirs, resolveDataDir } from '../cloud/data-dir.ts';
import { openDirectory } from '../cloud/directory/index.ts';
import type { Directory } from '../cloud/directory/types.ts';
import { type Io, usageError } from './io.ts';

/** The --data option every lab-state command takes. */
const DATA_OPTION = { data: { type: 'string' } } as const;

/** The -h/--help option every command takes. */
const HELP_OPTION = { help: { type: 'boolean', short: 'h', default: false } } as const;

/**
 * Splits a command's arguments into its subcommand and the rest. With no subcommand, or -h/--help
 * in its place, prints `help` and returns the exit code instead: 2 and 0.
 */
export function subcommand(argv: string[], help: string, io: Io): [string, string[]] | number {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '-h' || sub === '--help') {
    io.out(help);
    return sub === undefined ? 2 : 0;
  }
  return [sub, rest];
}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * Parses a command's options, strictly and with positionals: --data and -h/--help besides
 * `options`. With --help, prints `help` and returns the exit code, 0, instead.
 */
export function parseDataArgs<const T extends Options>(
  args: string[],
  options: T,
  help: string,
  io: Io,
) {
  const parsed = parseArgs({
    args,
    options: { ...DATA_OPTION, ...HELP_OPTION, ...options },
    allowPositionals: true,
    strict: true,
  });
  // Every instance has the help option; its generic type does not show it.
  if ((parsed.values as { help?: boolean }).help) {
    io.out(help);
    return 0;
  }
  return parsed;
}

/**
 * subcommand, then parseDataArgs on the rest: the subcommand and its options, or the exit code
 * when either printed `help`.
 */
export function parseSubcommand<const T extends Options>(
  argv: string[],
  options: T,
  help: string,
  io: Io,
) {
  const split = subcommand(argv, help, io);
  if (typeof split === 'number') return split;
  const [sub, rest] = split;
  const parsed = parseDataArgs(rest, options, help, io);
  if (typeof parsed === 'number') return parsed;
  return { sub, ...parsed };
}

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

/** How a `list` subcommand shows its items. */
export interface ListView<T> {
  /** The line printed when there are no items. */
  readonly none: string;
  /** One item as --json prints it. */
  readonly json: (item: T) => unknown;
  readonly header: readonly string[];
  readonly row: (item: T) => string[];
}

/** Prints a listing: a JSON array with --json, `view.none` for no items, else a table. */
export function printList<T>(
  io: Io,
  items: readonly T[],
  asJson: boolean,
  view: ListView<T>,
): void {
  if (asJson) {
    const json = items.map((item) => view.json(item));
    io.out(`${JSON.stringify(json, null, 2)}\n`);
  } else if (items.length === 0) {
    io.out(`${view.none}\n`);
  } else {
    const rows = items.map((item) => view.row(item));
    table(io, view.header, rows);
  }
}
