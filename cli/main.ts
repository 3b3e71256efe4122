/** The `prtlab` command: routes to subcommands, prints coded errors, returns the exit code. */
import { readFileSync } from 'node:fs';
import { PrtlabError } from '../lib/errors.ts';
import { attackCommand } from './attack.ts';
import { clientCommand } from './client.ts';
import { cloudCommand } from './cloud.ts';
import { deviceCommand } from './device.ts';
import { groupCommand } from './group.ts';
import { type Io, processIo, usageError } from './io.ts';
import { policyCommand } from './policy.ts';
import { reportCommand } from './report.ts';
import { signInsCommand } from './signins.ts';
import { tpmServe } from './tpm-serve.ts';
import { upCommand } from './up.ts';
import { MAIN_HELP, TPM_HELP } from './usage.ts';
import { userCommand } from './user.ts';

function version(): string {
  // ../package.json from the sources, ../../package.json from dist/.
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as {
        name?: string;
        version: string;
      };
      if (pkg.name === 'prtlab') return pkg.version;
    } catch {
      // try the next location
    }
  }
  return 'unknown';
}

async function route(argv: string[], io: Io): Promise<number> {
  const [cmd, sub, ...rest] = argv;
  if (cmd === undefined || cmd === '-h' || cmd === '--help' || cmd === 'help') {
    io.out(MAIN_HELP);
    return cmd === undefined ? 2 : 0;
  }
  if (cmd === '--version') {
    io.out(`${version()}\n`);
    return 0;
  }
  if (cmd === 'tpm') {
    if (sub === undefined || sub === '-h' || sub === '--help') {
      io.out(TPM_HELP);
      return sub === undefined ? 2 : 0;
    }
    if (sub === 'serve') return tpmServe(rest, io);
    throw usageError(`unknown subcommand 'tpm ${sub}' (see prtlab tpm --help)`);
  }
  if (cmd === 'up') return upCommand(argv.slice(1), io);
  if (cmd === 'cloud') return cloudCommand(argv.slice(1), io);
  if (cmd === 'device') return deviceCommand(argv.slice(1), io);
  if (cmd === 'client') return clientCommand(argv.slice(1), io);
  if (cmd === 'attack') return attackCommand(argv.slice(1), io);
  if (cmd === 'user') return userCommand(argv.slice(1), io);
  if (cmd === 'group') return groupCommand(argv.slice(1), io);
  if (cmd === 'policy') return policyCommand(argv.slice(1), io);
  if (cmd === 'signins') return signInsCommand(argv.slice(1), io);
  if (cmd === 'report') return reportCommand(argv.slice(1), io);
  throw usageError(`unknown command '${cmd}' (see prtlab --help)`);
}

/** Runs the command line; never throws: errors are printed with their code. */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  try {
    return await route(argv, io);
  } catch (err) {
    if (err instanceof PrtlabError) {
      io.err(`prtlab: ${err.message} [${err.code}]`);
      return err.code === 'ERR_USAGE' ? 2 : 1;
    }
    if (err instanceof TypeError && (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`prtlab: ${err.message} [ERR_USAGE]`);
      return 2;
    }
    io.err(
      `prtlab: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );
    return 1;
  }
}
