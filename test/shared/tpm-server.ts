/**
 * A TPM server on loopback with a scripted device behind it, and the GetRandom exchange the
 * server and transport tests send through it. Also the TPM servers the tpm2-tools flows of the
 * interop suite run against (Debian's swtpm as the reference, `prtlab tpm serve` through both
 * TCTIs), and the step harness those flows share.
 */
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TpmDevice } from '../../tpm-sim/server/device.ts';
import {
  startTpmServer,
  type TpmServer,
  type TpmServerOptions,
} from '../../tpm-sim/server/tcp-server.ts';
import { LOOPBACK } from '../interop/helpers/ports.ts';
import {
  startServerInDir,
  startSwtpm,
  stopAllServers,
  type TpmServer as ToolsTpmServer,
} from '../interop/helpers/swtpm.ts';
import { type RunResult, run, runOk } from '../interop/helpers/tools.ts';

export const TPM_CC_GET_RANDOM = 0x17b;
export const TPM_RC_COMMAND_CODE = 0x143;

/** Answers GetRandom with real random bytes and everything else with TPM_RC_COMMAND_CODE. */
export class TestDevice implements TpmDevice {
  commands = 0;
  powerOns = 0;
  powerOffs = 0;
  cancels: boolean[] = [];
  localities: number[] = [];
  events: string[] = [];
  delayMs = 0;
  active = 0;
  maxActive = 0;
  throwOnExecute = false;

  async execute(command: Uint8Array, locality: number): Promise<Uint8Array> {
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
      this.commands++;
      this.localities.push(locality);
      this.events.push('execute');
      if (this.throwOnExecute) throw new Error('device exploded');
      const cmd = Buffer.from(command);
      if (cmd.length >= 12 && cmd.readUInt32BE(6) === TPM_CC_GET_RANDOM) {
        const n = cmd.readUInt16BE(10);
        const out = Buffer.alloc(12 + n);
        out.writeUInt16BE(0x8001, 0);
        out.writeUInt32BE(12 + n, 2);
        out.writeUInt32BE(0, 6);
        out.writeUInt16BE(n, 10);
        randomBytes(n).copy(out, 12);
        return out;
      }
      return rcResponse(TPM_RC_COMMAND_CODE);
    } finally {
      this.active--;
    }
  }

  async powerOn(): Promise<void> {
    this.powerOns++;
    this.events.push('powerOn');
  }

  async powerOff(): Promise<void> {
    this.powerOffs++;
    this.events.push('powerOff');
  }

  cancel(on: boolean): void {
    this.cancels.push(on);
  }
}

function rcResponse(rc: number): Buffer {
  const out = Buffer.alloc(10);
  out.writeUInt16BE(0x8001, 0);
  out.writeUInt32BE(10, 2);
  out.writeUInt32BE(rc, 6);
  return out;
}

/** TPM2_GetRandom(n), raw framing, no sessions. */
export function getRandomCommand(n: number): Buffer {
  const cmd = Buffer.alloc(12);
  cmd.writeUInt16BE(0x8001, 0);
  cmd.writeUInt32BE(12, 2);
  cmd.writeUInt32BE(TPM_CC_GET_RANDOM, 6);
  cmd.writeUInt16BE(n, 10);
  return cmd;
}

/** A successful GetRandom response carrying n bytes. */
export function expectGetRandomResponse(resp: Uint8Array, n: number): void {
  const b = Buffer.from(resp);
  expect(b.length).toBe(12 + n);
  expect(b.readUInt16BE(0)).toBe(0x8001);
  expect(b.readUInt32BE(2)).toBe(12 + n);
  expect(b.readUInt32BE(6)).toBe(0);
  expect(b.readUInt16BE(10)).toBe(n);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts a TPM server on an ephemeral loopback port pair with a new TestDevice, collecting its
 * log lines, and adds it to `servers` so that the test's cleanup closes it.
 */
export async function startTestServer(
  servers: TpmServer[],
  extra: Partial<TpmServerOptions> = {},
): Promise<{ server: TpmServer; device: TestDevice; logs: string[] }> {
  const device = new TestDevice();
  const logs: string[] = [];
  const server = await startTpmServer({
    device,
    port: 0,
    log: (line) => logs.push(line),
    ...extra,
  });
  servers.push(server);
  return { server, device, logs };
}

// ---------------------------------------------------------------------------------------------
// TPM servers for tpm2-tools (interop suite)

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A running server a tpm2-tools flow drives. */
export interface ToolsServer extends ToolsTpmServer {
  /** prtlab only: the lab's TPM manufacturer CA directory (`<data>/tpm-manufacturer`). */
  readonly manufacturerDir?: string;
}

export interface ToolsTarget {
  /** Shown in test names. */
  name: string;
  /** The TCTI string tpm2-tools get with `-T`, for a server on `port`. */
  tcti(port: number): string;
  /** Starts a fresh TPM server (empty state) on a free loopback port. */
  start(): Promise<ToolsServer>;
  /** Whether the TPM has EK certificates in NV (prtlab's do; a bare swtpm has none). */
  hasEkCertificates: boolean;
}

/** Debian's swtpm with the swtpm TCTI: the reference the prtlab server must match. */
export const swtpmTarget: ToolsTarget = {
  name: 'Debian swtpm (swtpm TCTI)',
  tcti: (port) => `swtpm:host=${LOOPBACK},port=${port}`,
  start: startSwtpm,
  hasEkCertificates: false,
};

/**
 * Starts `prtlab tpm serve` (the contract is described in tpm2-tools.test.ts) with fresh state in
 * a temp dir and PRTLAB_HOME, the lab's data directory, next to it. `restart()` stops it and
 * starts it again on the same port, state dir and key file.
 */
export async function startPrtlabServer(): Promise<ToolsServer> {
  const root = await mkdtemp(join(tmpdir(), 'prtlab-tpm-'));
  // The server creates its state directory itself (0700); it refuses one open to others.
  const stateDir = join(root, 'state');
  const home = join(root, 'home');
  const server = await startServerInDir(root, (port) => ({
    label: 'prtlab tpm serve',
    command: process.execPath,
    args: [
      join(ROOT, 'bin', 'prtlab.js'),
      ...['tpm', 'serve', '--host', LOOPBACK, '--port', String(port)],
      ...['--state', stateDir, '--key-file', join(stateDir, 'key')],
    ],
    port,
    cwd: ROOT,
    env: { ...process.env, PRTLAB_HOME: home },
    startTimeoutMs: 30_000,
  }));
  return { ...server, manufacturerDir: join(home, 'tpm-manufacturer') };
}

/** prtlab's TPM server through the swtpm TCTI (raw framing, a connection per command). */
export const prtlabSwtpmTcti: ToolsTarget = {
  name: 'prtlab tpm serve (swtpm TCTI)',
  tcti: (port) => `swtpm:host=${LOOPBACK},port=${port}`,
  start: startPrtlabServer,
  hasEkCertificates: true,
};

/** prtlab's TPM server through the mssim TCTI (MS framing, POWER_ON/NV_ON on port + 1). */
export const prtlabMssimTcti: ToolsTarget = {
  name: 'prtlab tpm serve (mssim TCTI)',
  tcti: (port) => `mssim:host=${LOOPBACK},port=${port}`,
  start: startPrtlabServer,
  hasEkCertificates: true,
};

export const prtlabTargets: readonly ToolsTarget[] = [prtlabSwtpmTcti, prtlabMssimTcti];

/** Every target a flow runs against: Debian's swtpm as the reference, then prtlab's server. */
export const toolsTargets: readonly ToolsTarget[] = [swtpmTarget, ...prtlabTargets];

function onPath(program: string): boolean {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .filter(Boolean)
    .some((dir) => {
      try {
        return statSync(join(dir, program)).isFile();
      } catch {
        return false;
      }
    });
}

/** Fails (never skips) naming what to install when a program a flow runs is missing. */
export function requirePrograms(programs: readonly (readonly [string, string])[]): void {
  const missing = programs.filter(([program]) => !onPath(program));
  if (missing.length === 0) return;
  throw new Error(
    [
      'This flow needs programs that are not installed:',
      ...missing.map(
        ([p, pkg]) => `  ${p}: not found on PATH; install with: apt-get install -y ${pkg}`,
      ),
    ].join('\n'),
  );
}

/** What a flow's steps work with. */
export interface ToolsFlow {
  readonly target: ToolsTarget;
  server(): ToolsServer;
  /** The scratch directory tools run in. */
  path(name: string): string;
  bytes(name: string): Promise<Buffer>;
  /** Runs a tpm2-tools program that must succeed, then flushes the transients it left loaded. */
  tool(name: string, ...args: string[]): Promise<RunResult>;
  /** Like `tool`, with stdin. */
  toolIn(stdin: string | Uint8Array, name: string, ...args: string[]): Promise<RunResult>;
  /** Runs a tpm2-tools program that must fail (exit code != 0), then flushes transients. */
  toolFails(name: string, ...args: string[]): Promise<RunResult>;
  /** Runs a tpm2-tools program that uses no TPM (no `-T`, e.g. tpm2_checkquote); must succeed. */
  offline(name: string, ...args: string[]): Promise<RunResult>;
  /** Runs a tpm2-tools program that uses no TPM; it must fail. */
  offlineFails(name: string, ...args: string[]): Promise<RunResult>;
  /** Runs openssl, which must succeed. */
  openssl(...args: string[]): Promise<RunResult>;
  /** Runs openssl; never rejects for a non-zero exit. */
  opensslRun(...args: string[]): Promise<RunResult>;
  /**
   * One `it`. A step that `needs` other steps is not run, and fails saying why, unless all of
   * them passed; unrelated steps still run.
   */
  step(id: string, title: string, fn: () => Promise<void>, opts?: { needs?: string[] }): void;
}

/**
 * Registers a sequential tpm2-tools flow against `target`: a fresh server and scratch directory
 * for the block, `tpm2_flushcontext -t` after every tool (without a resource manager tools leak
 * transient objects, docs/tpm.md A.6), and the steps `body` declares.
 */
/**
 * An `it` per step with dependencies between steps: a step that `needs` others (it uses their
 * files or results) is not run, and fails saying why, unless all of them passed; unrelated steps
 * still run, so one missing TPM feature does not hide the state of the others.
 */
export function dependentSteps(): (
  id: string,
  title: string,
  fn: () => Promise<void>,
  options?: { needs?: string[] },
) => void {
  const outcome = new Map<string, 'passed' | 'failed'>();
  return (id, title, fn, { needs = [] } = {}) => {
    it(title, async () => {
      const unmet = needs.filter((dep) => outcome.get(dep) !== 'passed');
      if (unmet.length > 0) {
        outcome.set(id, 'failed');
        throw new Error(`not run: needs step(s) ${unmet.join(', ')}, which did not pass`);
      }
      try {
        await fn();
        outcome.set(id, 'passed');
      } catch (err) {
        outcome.set(id, 'failed');
        throw err;
      }
    });
  };
}

export function describeToolsFlow(
  title: string,
  target: ToolsTarget,
  tools: readonly string[],
  body: (flow: ToolsFlow) => void,
): void {
  describe.sequential(`${title} against ${target.name}`, () => {
    let server: ToolsServer | undefined;
    let work = '';
    let tcti = '';
    const step = dependentSteps();
    const opts = () => ({ cwd: work });
    const flush = () => runOk('tpm2_flushcontext', ['-T', tcti, '-t'], opts());

    beforeAll(async () => {
      requirePrograms([...tools.map((t) => [t, 'tpm2-tools'] as const), ['openssl', 'openssl']]);
      work = await mkdtemp(join(tmpdir(), 'prtlab-tools-'));
      server = await target.start();
      tcti = target.tcti(server.port);
    });

    afterAll(async () => {
      try {
        await server?.stop();
      } finally {
        server = undefined;
        await stopAllServers();
        if (work) await rm(work, { recursive: true, force: true });
      }
    });

    const flow: ToolsFlow = {
      target,
      server: () => {
        if (!server) throw new Error('no server');
        return server;
      },
      path: (name) => join(work, name),
      bytes: (name) => readFile(join(work, name)),
      async tool(name, ...args) {
        const res = await runOk(name, ['-T', tcti, ...args], opts());
        await flush();
        return res;
      },
      async toolIn(stdin, name, ...args) {
        const res = await runOk(name, ['-T', tcti, ...args], { ...opts(), stdin });
        await flush();
        return res;
      },
      async toolFails(name, ...args) {
        const res = await run(name, ['-T', tcti, ...args], opts());
        await flush();
        expect(res.timedOut, `${name} timed out`).toBe(false);
        expect(res.code, `${name} ${args.join(' ')} was expected to fail`).not.toBe(0);
        return res;
      },
      offline: (name, ...args) => runOk(name, args, opts()),
      async offlineFails(name, ...args) {
        const res = await run(name, args, opts());
        expect(res.timedOut, `${name} timed out`).toBe(false);
        expect(res.code, `${name} ${args.join(' ')} was expected to fail`).not.toBe(0);
        return res;
      },
      openssl: (...args) => runOk('openssl', args, opts()),
      opensslRun: (...args) => run('openssl', args, opts()),
      step,
    };
    body(flow);
  });
}
