/**
 * The harness's child programs: the attacker (attacker-main.ts) and the victim's own host process
 * for set-ups that need an environment of their own (victim-host.ts). Each runs as a separate
 * node process with an environment built from nothing (no variable of the harness's is passed
 * on), its spec on standard input and one JSON line on standard output, and is stopped by pid if
 * it runs too long.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { AttackError } from './errors.ts';

/** How to start each program: an argv prefix, e.g. [node, .../attacker-main.js]. */
export interface Programs {
  readonly attacker: readonly string[];
  readonly victimHost: readonly string[];
}

/**
 * The built programs beside this module. From the TypeScript sources there are none (Node 20
 * runs no TypeScript): the caller must say how to start them (the tests transpile them first).
 */
export function defaultPrograms(): Programs {
  if (!import.meta.url.endsWith('.js'))
    throw new AttackError(
      'the attacker program runs from the build: run `npm run build` and use bin/prtlab.js, or pass the programs to start',
    );
  const at = (name: string) => [process.execPath, fileURLToPath(new URL(name, import.meta.url))];
  return { attacker: at('./attacker-main.js'), victimHost: at('./victim-host.js') };
}

export interface ProgramResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

const MAX_OUTPUT = 1024 * 1024;

/** Runs `argv` in `cwd` with exactly `env`, writes `input`, and collects its output. */
export function runProgram(
  argv: readonly string[],
  options: { cwd: string; env: Readonly<Record<string, string>>; input: string; timeoutMs: number },
): Promise<ProgramResult> {
  const [command, ...args] = argv;
  if (command === undefined) throw new TypeError('argv must name a program');
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: { ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      if (stdout.length < MAX_OUTPUT) stdout += c.toString('utf8');
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr = (stderr + c.toString('utf8')).slice(-MAX_OUTPUT);
    });
    const timer = setTimeout(() => {
      stderr += `\n(stopped after ${options.timeoutMs} ms)`;
      if (child.pid !== undefined) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }, options.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new AttackError(`cannot start ${command}: ${err.message}`, { cause: err }));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(options.input);
  });
}

/** The environment of a simulated host: its own HOME and data directory, nothing else. */
export function hostEnv(
  home: string,
  extra: Readonly<Record<string, string>> = {},
): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    LANG: 'C.UTF-8',
    HOME: home,
    PRTLAB_HOME: home,
    ...extra,
  };
}
