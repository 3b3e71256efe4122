/**
 * `prtlab attack ...`: the stolen-token replay harness (attacks/). `list` shows the scenarios;
 * `run` runs them, each in a fresh temporary lab and under each policy state, and prints the
 * report, expected beside observed; it exits 1 when any observation differs from its expectation.
 */
import { writeFile } from 'node:fs/promises';
import { AttackError } from '../attacks/errors.ts';
import type { Programs } from '../attacks/programs.ts';
import { formatReport, REPORT_FORMATS, type ReportFormat } from '../attacks/report.ts';
import { checkStates, runAttacks } from '../attacks/runner.ts';
import { loadScenarios, selectScenarios } from '../attacks/scenario.ts';
import { parseDataArgs, subcommand, table } from './cloud-data.ts';
import type { Io } from './io.ts';

export const ATTACK_HELP = `Usage: prtlab attack <subcommand> [options]

The stolen-token replay harness. Each scenario (attacks/scenarios/*.json) says what is stolen
from the victim's device, how the attacker replays it, and what should happen under each state
of the token-protection policy (off, reportOnly, on), with the reason. The harness builds a
fresh lab per scenario in a temporary directory (cloud, tenant, device with a built-in TPM,
broker), lets the victim work, steals the artifact, and runs the attacker as a process of its
own with its own data directory and only the artifact.

Subcommands:
  list [--json]      the scenarios: number, id, title, what is stolen, replays
  run [options]      run scenarios and print the report; exit 1 if any observation differs

Run prtlab attack <subcommand> --help for the options of each.
`;

export const ATTACK_LIST_HELP = `Usage: prtlab attack list [--json]

Lists the scenarios: number, id, kind (attack or rollout), what is stolen and where from, and
how many replays or cases each has.

Options:
  --json               print the scenarios as JSON, with every replay's expectations
  -h, --help           show this help
`;

export const ATTACK_RUN_HELP = `Usage: prtlab attack run [options]

Runs scenarios, each in a fresh temporary lab (removed afterwards), under each policy state in
turn, and prints the report: per replay and state the expected outcome beside the observed one,
with the evidence (HTTP status, AADSTS code, the sign-in log entry's policy result and
tokenProtectionStatusDetails). Progress goes to standard error. Exits 1 when any observation
differs from its expectation.

Options:
  --scenario ID        a scenario id or number; repeat for several (default: all)
  --states LIST        comma-separated policy states: off, reportOnly, on (default: all three)
  --format F           table (default), json, md or html (one self-contained file)
  --out FILE           write the report to FILE instead of standard output
  -h, --help           show this help
`;

/** What tests (and embedders) may replace: how the child programs start, where labs go. */
export interface AttackCommandOptions {
  readonly programs?: Programs;
  readonly tempDir?: string;
  readonly scenarioDir?: string;
}

export async function attackCommand(
  argv: string[],
  io: Io,
  options: AttackCommandOptions = {},
): Promise<number> {
  const split = subcommand(argv, ATTACK_HELP, io);
  if (typeof split === 'number') return split;
  const [sub, rest] = split;
  switch (sub) {
    case 'list':
      return list(rest, io, options);
    case 'run':
      return run(rest, io, options);
    default:
      throw new AttackError(
        `unknown subcommand 'attack ${sub.slice(0, 32)}' (see prtlab attack --help)`,
      );
  }
}

function noPositionals(positionals: string[], command: string): void {
  if (positionals.length > 0)
    throw new AttackError(`${command}: unexpected argument '${positionals[0]?.slice(0, 64)}'`);
}

async function list(argv: string[], io: Io, options: AttackCommandOptions): Promise<number> {
  const args = parseDataArgs(
    argv,
    { json: { type: 'boolean', default: false } },
    ATTACK_LIST_HELP,
    io,
  );
  if (typeof args === 'number') return args;
  if (args.values.data !== undefined) throw new AttackError('attack list: --data does not apply');
  noPositionals(args.positionals, 'attack list');
  const scenarios = await loadScenarios(options.scenarioDir);
  if (args.values.json) {
    io.out(`${JSON.stringify(scenarios, null, 2)}\n`);
    return 0;
  }
  table(
    io,
    ['#', 'ID', 'KIND', 'STOLEN', 'REPLAYS', 'TITLE'],
    scenarios.map((s) => [
      String(s.number),
      s.id,
      s.kind,
      s.kind === 'attack'
        ? [...new Set(s.stolen.map((a) => `${a.kind} (${a.from})`))].join(', ')
        : 'nothing (rollout impact)',
      String(s.kind === 'attack' ? s.replays.length : s.cases.length),
      s.title,
    ]),
  );
  return 0;
}

async function run(argv: string[], io: Io, options: AttackCommandOptions): Promise<number> {
  const args = parseDataArgs(
    argv,
    {
      scenario: { type: 'string', multiple: true },
      states: { type: 'string' },
      format: { type: 'string', default: 'table' },
      out: { type: 'string' },
    },
    ATTACK_RUN_HELP,
    io,
  );
  if (typeof args === 'number') return args;
  const { values, positionals } = args;
  if (values.data !== undefined)
    throw new AttackError('attack run: --data does not apply (every scenario gets a fresh lab)');
  noPositionals(positionals, 'attack run');
  const format = values.format as string;
  if (!(REPORT_FORMATS as readonly string[]).includes(format))
    throw new AttackError(
      `attack run: --format must be one of ${REPORT_FORMATS.join(', ')} (got '${format.slice(0, 32)}')`,
    );
  const states = checkStates(
    values.states === undefined
      ? ['off', 'reportOnly', 'on']
      : values.states.split(',').map((s) => s.trim()),
  );
  const scenarios = selectScenarios(
    await loadScenarios(options.scenarioDir),
    values.scenario ?? [],
  );
  const result = await runAttacks({
    scenarios,
    states,
    ...(options.programs ? { programs: options.programs } : {}),
    ...(options.tempDir ? { tempDir: options.tempDir } : {}),
    progress: (line) => io.err(`attack: ${line}\n`),
  });
  const report = formatReport(result, format as ReportFormat);
  if (values.out !== undefined) {
    try {
      await writeFile(values.out, report);
    } catch (err) {
      throw new AttackError(`attack run: cannot write ${values.out}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const bad = result.rows.filter((r) => r.differences.length > 0).length;
    io.out(
      `report written to ${values.out}: ${bad === 0 ? `all ${result.rows.length} observations as expected` : `${bad} of ${result.rows.length} observations differ`}\n`,
    );
  } else io.out(report);
  return result.ok ? 0 : 1;
}
