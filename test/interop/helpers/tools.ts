import { spawn } from 'node:child_process';

/** Every tpm2-tools binary the interop suites run; global-setup checks that each one exists. */
export const TPM2_TOOLS = [
  'tpm2_getrandom',
  'tpm2_getcap',
  'tpm2_createprimary',
  'tpm2_create',
  'tpm2_load',
  'tpm2_sign',
  'tpm2_verifysignature',
  'tpm2_readpublic',
  'tpm2_rsaencrypt',
  'tpm2_rsadecrypt',
  'tpm2_import',
  'tpm2_hmac',
  'tpm2_evictcontrol',
  'tpm2_flushcontext',
  'tpm2_startauthsession',
] as const;

export type Tpm2Tool = (typeof TPM2_TOOLS)[number];

export interface RunResult {
  /** Exit code; null when the process was killed by a signal (see `signal`). */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface RunOptions {
  cwd: string;
  /** Written to the process's stdin, which is then closed. Without it stdin is /dev/null. */
  stdin?: string | Uint8Array;
  /** Killed (SIGKILL, by pid) after this long; default 60 s. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

const DEFAULT_TIMEOUT_MS = 60_000;

/** Runs a program without a shell; never rejects for a non-zero exit (only if it cannot spawn). */
export function run(
  command: string,
  args: readonly string[],
  opts: RunOptions,
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: [opts.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${command}: ${e.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
      });
    });
    if (opts.stdin !== undefined && child.stdin) {
      // A tool that exits without reading stdin would make this write fail with EPIPE.
      child.stdin.on('error', () => {});
      child.stdin.end(opts.stdin);
    }
  });
}

/** Like `run`, but rejects with the command line, exit status, stdout and stderr unless it exits 0. */
export async function runOk(
  command: string,
  args: readonly string[],
  opts: RunOptions,
): Promise<RunResult> {
  const res = await run(command, args, opts);
  if (res.code !== 0) throw new Error(describeFailure(command, args, res));
  return res;
}

export function describeFailure(command: string, args: readonly string[], res: RunResult): string {
  const status = res.timedOut
    ? 'timed out'
    : res.code === null
      ? `was killed by ${res.signal}`
      : `exited with code ${res.code}`;
  return [
    `${[command, ...args].map(shellQuote).join(' ')} ${status}`,
    `--- stdout ---\n${res.stdout.trimEnd()}`,
    `--- stderr ---\n${res.stderr.trimEnd()}`,
  ].join('\n');
}

/** Quotes an argument for display, so a failing command line can be pasted into a shell. */
function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

export interface Tpm2Options extends RunOptions {
  /** TCTI string, e.g. "swtpm:host=127.0.0.1,port=2321"; passed as `-T`. */
  tcti: string;
}

/**
 * Runs one tpm2-tools program against the TPM named by `tcti`. The TCTI goes on the command line
 * as `-T <tcti>` (it overrides any TPM2TOOLS_TCTI in the environment), so a failure message shows
 * exactly which TPM the tool talked to.
 */
export function tpm2Run(
  tool: Tpm2Tool,
  args: readonly string[],
  opts: Tpm2Options,
): Promise<RunResult> {
  return run(tool, ['-T', opts.tcti, ...args], opts);
}

/** Like `tpm2Run`, but rejects with stdout and stderr unless the tool exits 0. */
export function tpm2(
  tool: Tpm2Tool,
  args: readonly string[],
  opts: Tpm2Options,
): Promise<RunResult> {
  return runOk(tool, ['-T', opts.tcti, ...args], opts);
}

/** Runs `openssl <args>`; never rejects for a non-zero exit. */
export function opensslRun(args: readonly string[], opts: RunOptions): Promise<RunResult> {
  return run('openssl', args, opts);
}

/** Runs `openssl <args>` and rejects with stdout and stderr unless it exits 0. */
export function openssl(args: readonly string[], opts: RunOptions): Promise<RunResult> {
  return runOk('openssl', args, opts);
}
