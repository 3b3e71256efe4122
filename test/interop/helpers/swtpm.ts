import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findFreePortPair, LOOPBACK, waitForPorts } from './ports.ts';
import { outputTail, ProcessGroup } from './process.ts';

/**
 * A TPM server on loopback: TPM commands on `port`, control/platform channel on `port + 1`.
 * `stop()` ends the process (by pid) and removes everything the helper created on disk.
 * `restart()` ends the process and starts it again on the same port with the same state.
 */
export interface TpmServer {
  readonly port: number;
  stop(): Promise<void>;
  restart?(): Promise<void>;
}

// Every server process started through this module.
const processes = new ProcessGroup();

/** Kills (by pid) every server process this module started that is still running. */
export async function stopAllServers(): Promise<void> {
  await processes.stopAll();
}

export interface ServerProcessSpec {
  /** Shown in errors, e.g. "swtpm" or "prtlab tpm serve". */
  label: string;
  command: string;
  args: readonly string[];
  /** Data port; the server must also accept on port + 1. */
  port: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Extra text for start errors (e.g. the tail of a log file). */
  diagnostics?: () => Promise<string>;
  startTimeoutMs?: number;
}

/** A running server process, with the tail of its stdout/stderr kept for error messages. */
export interface ServerProcess {
  readonly pid: number;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Spawns a server and waits until both `port` and `port + 1` accept connections on 127.0.0.1.
 * Fails (and kills the process) if it exits first or does not come up in time.
 */
export async function startServerProcess(spec: ServerProcessSpec): Promise<ServerProcess> {
  const child = spawn(spec.command, [...spec.args], {
    cwd: spec.cwd,
    env: spec.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = outputTail(child.stdout, child.stderr);
  let spawnError: Error | undefined;
  child.once('error', (err) => {
    spawnError = err;
  });
  processes.add(child);

  const commandLine = [spec.command, ...spec.args].join(' ');
  try {
    await waitForPorts([spec.port, spec.port + 1], {
      timeoutMs: spec.startTimeoutMs ?? 15_000,
      abort: () => {
        if (spawnError) return `cannot start ${spec.label}: ${spawnError.message}`;
        if (child.exitCode !== null || child.signalCode !== null) {
          return `${spec.label} exited (code ${child.exitCode}, signal ${child.signalCode}) before accepting on ${LOOPBACK}:${spec.port}`;
        }
        return undefined;
      },
    });
  } catch (err) {
    await processes.stop(child);
    const extra = spec.diagnostics ? await spec.diagnostics().catch(() => '') : '';
    throw new Error(
      `${(err as Error).message}\ncommand: ${commandLine}\noutput:\n${output()}${extra ? `\n${extra}` : ''}`,
    );
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${spec.label} has no pid`);
  return { pid, output, stop: () => processes.stop(child) };
}

/**
 * Starts the server `spec(port)` describes, on a free port pair, for a server whose files live in
 * `dir`. `restart()` stops the process and starts it again with the same spec (same port, same
 * files); `stop()` stops it and removes `dir`, as does a failed start.
 */
export async function startServerInDir(
  dir: string,
  spec: (port: number) => ServerProcessSpec,
): Promise<Required<TpmServer>> {
  let port: number;
  try {
    port = await findFreePortPair();
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const serverSpec = spec(port);
  let proc: ServerProcess | undefined;
  try {
    proc = await startServerProcess(serverSpec);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    port,
    async restart() {
      await proc?.stop();
      proc = undefined;
      proc = await startServerProcess(serverSpec);
    },
    async stop() {
      try {
        await proc?.stop();
      } finally {
        proc = undefined;
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

export interface Swtpm extends TpmServer {
  readonly stateDir: string;
  restart(): Promise<void>;
}

/**
 * Starts Debian's swtpm on loopback as in docs/tpm.md A.1: TPM 2.0, TCP data port P and control
 * port P+1 on 127.0.0.1, state in a fresh temp dir, `not-need-init,startup-clear` so that no
 * CMD_INIT or TPM2_Startup is needed (tpm2-tools never send Startup).
 */
export async function startSwtpm(): Promise<Swtpm> {
  const dir = await mkdtemp(join(tmpdir(), 'prtlab-swtpm-'));
  const logFile = join(dir, 'swtpm.log');
  // swtpm writes its NV state (tpm2-00.permall) to the state dir as it changes, so a restart on
  // the same dir keeps persistent handles and the hierarchy seeds.
  const server = await startServerInDir(dir, (port) => ({
    label: 'swtpm',
    command: 'swtpm',
    args: [
      'socket',
      '--tpm2',
      '--server',
      `type=tcp,port=${port},bindaddr=${LOOPBACK}`,
      '--ctrl',
      `type=tcp,port=${port + 1},bindaddr=${LOOPBACK}`,
      '--tpmstate',
      `dir=${dir}`,
      '--flags',
      'not-need-init,startup-clear',
      '--log',
      `file=${logFile},level=1`,
    ],
    port,
    diagnostics: async () => `swtpm log:\n${await readFile(logFile, 'utf8').catch(() => '')}`,
  }));
  return { ...server, stateDir: dir };
}
