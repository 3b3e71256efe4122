import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sessionBusConfig } from '../../../attacks/keyring.ts';
import { outputTail, ProcessGroup } from './process.ts';

/**
 * A private Secret Service for tests: a D-Bus session bus of our own plus gnome-keyring-daemon on
 * it, with HOME and the XDG directories in a temp dir so the real login keyring is never touched.
 *
 * The bus is configured without service directories, so nothing is ever auto-activated behind
 * our back: every process on it is one this module spawned and can stop by pid. (With the stock
 * session config, the first Secret Service call activates a gnome-keyring-daemon that re-parents
 * to init and outlives the test.)
 */

/** Program -> Debian 12 package that provides it. */
export const KEYRING_PROGRAMS: ReadonlyArray<readonly [program: string, pkg: string]> = [
  ['dbus-daemon', 'dbus'],
  ['dbus-send', 'dbus'],
  ['gnome-keyring-daemon', 'gnome-keyring'],
  ['secret-tool', 'libsecret-tools'],
];

const START_TIMEOUT_MS = 15_000;
export const SECRET_SERVICE_NAME = 'org.freedesktop.secrets';

/** Throws (so the test fails, never skips) naming the Debian package for each missing program. */
export function requireKeyringPrograms(): void {
  const missing = KEYRING_PROGRAMS.filter(([program]) => !onPath(program));
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map(([, pkg]) => pkg))];
  throw new Error(
    [
      'The keystore interop tests need programs that are not installed:',
      ...missing.map(([p, pkg]) => `  ${p}: install the Debian package ${pkg}`),
      `Install with: apt-get install -y ${pkgs.join(' ')}`,
    ].join('\n'),
  );
}

function onPath(program: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      const file = join(dir, program);
      if (!statSync(file).isFile()) continue;
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

// Every process this module starts.
const processes = new ProcessGroup();

interface Tracked {
  readonly child: ChildProcess;
  readonly pid: number;
  output(): string;
}

function track(command: string, args: string[], env: NodeJS.ProcessEnv): Tracked {
  const child = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
  // Without a listener a failed spawn (ENOENT) would be an uncaught 'error' event.
  child.on('error', () => {});
  const output = outputTail(child.stderr);
  processes.add(child);
  if (child.pid === undefined) {
    // spawn reports ENOENT asynchronously; the pid is missing synchronously in that case.
    throw new Error(`cannot start ${command}`);
  }
  return { child, pid: child.pid, output };
}

/** Stops (by pid) every process this module started that is still running. */
export async function stopAllKeyringProcesses(): Promise<void> {
  await processes.stopAll();
}

export interface SessionBus {
  /** Value for DBUS_SESSION_BUS_ADDRESS. */
  readonly address: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/** Starts a private session bus listening on a socket in `dir` (created if missing). */
export async function startSessionBus(dir: string): Promise<SessionBus> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const socket = join(dir, 'bus');
  const config = join(dir, 'session.conf');
  await writeFile(config, sessionBusConfig(socket));
  const proc = track(
    'dbus-daemon',
    [`--config-file=${config}`, '--nofork', '--print-address=1'],
    baseEnv(),
  );
  proc.child.stdin?.end();
  const address = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(
      () => reject(new Error(`dbus-daemon printed no address in time\n${proc.output()}`)),
      START_TIMEOUT_MS,
    );
    proc.child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(out.slice(0, nl).trim());
      }
    });
    proc.child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot start dbus-daemon: ${err.message}`));
    });
    proc.child.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`dbus-daemon exited (code ${code}, signal ${sig})\n${proc.output()}`));
    });
  }).catch(async (err) => {
    await processes.stop(proc.child);
    throw err;
  });
  return { address, pid: proc.pid, stop: () => processes.stop(proc.child) };
}

/** Creates an isolated HOME with the XDG directories gnome-keyring uses; returns its path. */
export async function makeIsolatedHome(path: string): Promise<string> {
  for (const sub of ['', '.local/share', '.config', '.cache', 'run']) {
    await mkdir(join(path, sub), { recursive: true, mode: 0o700 });
  }
  return path;
}

export interface KeyringDaemon {
  readonly pid: number;
  output(): string;
  stop(): Promise<void>;
}

export interface KeyringDaemonOptions {
  bus: SessionBus;
  /** An isolated HOME from makeIsolatedHome. */
  home: string;
  /**
   * With a password the daemon is started with --unlock and unlocks (or, in a fresh HOME,
   * creates) the login keyring with it. Without one, the login keyring stays locked.
   */
  password?: string;
}

/**
 * Starts gnome-keyring-daemon (secrets component only, in the foreground so its pid is the
 * daemon's) and waits until it owns org.freedesktop.secrets on the bus.
 */
export async function startKeyringDaemon(options: KeyringDaemonOptions): Promise<KeyringDaemon> {
  const { bus, home, password } = options;
  const args = ['--foreground', '--components=secrets'];
  if (password !== undefined) args.push('--unlock');
  const proc = track('gnome-keyring-daemon', args, {
    ...baseEnv(),
    HOME: home,
    XDG_DATA_HOME: join(home, '.local/share'),
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_CACHE_HOME: join(home, '.cache'),
    XDG_RUNTIME_DIR: join(home, 'run'),
    DBUS_SESSION_BUS_ADDRESS: bus.address,
  });
  proc.child.stdout?.resume();
  // --unlock reads the password from stdin up to EOF.
  if (password !== undefined) proc.child.stdin?.write(password);
  proc.child.stdin?.end();
  const deadline = Date.now() + START_TIMEOUT_MS;
  try {
    for (;;) {
      if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
        throw new Error(`gnome-keyring-daemon exited before owning ${SECRET_SERVICE_NAME}`);
      }
      if (await nameHasOwner(bus, SECRET_SERVICE_NAME)) break;
      if (Date.now() > deadline) {
        throw new Error(`gnome-keyring-daemon did not own ${SECRET_SERVICE_NAME} in time`);
      }
      await sleep(50);
    }
  } catch (err) {
    await processes.stop(proc.child);
    throw new Error(`${(err as Error).message}\n${proc.output()}`);
  }
  return {
    pid: proc.pid,
    output: proc.output,
    async stop() {
      await processes.stop(proc.child);
      // The name is released when the daemon's connection closes; wait so that a daemon started
      // next cannot race the old one for it.
      for (let i = 0; i < 100 && (await nameHasOwner(bus, SECRET_SERVICE_NAME)); i++) {
        await sleep(50);
      }
    },
  };
}

/** Asks the bus whether some connection owns `name` (dbus-send, NameHasOwner). */
export async function nameHasOwner(bus: SessionBus, name: string): Promise<boolean> {
  const { stdout } = await run('dbus-send', [
    `--bus=${bus.address}`,
    '--print-reply',
    '--dest=org.freedesktop.DBus',
    '/org/freedesktop/DBus',
    'org.freedesktop.DBus.NameHasOwner',
    `string:${name}`,
  ]);
  return /boolean true/.test(stdout);
}

/**
 * Looks up a secret with libsecret's secret-tool, independently of @napi-rs/keyring: null when
 * there is no such item. keyring-rs stores items with attributes {service, username}.
 */
export async function secretToolLookup(
  bus: SessionBus,
  attributes: Record<string, string>,
): Promise<string | null> {
  const args = ['lookup', ...Object.entries(attributes).flat()];
  const result = await run('secret-tool', args, { DBUS_SESSION_BUS_ADDRESS: bus.address }, true);
  if (result.code !== 0) return null;
  return result.stdout;
}

function baseEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8' };
}

function run(
  command: string,
  args: string[],
  extraEnv: NodeJS.ProcessEnv = {},
  allowFailure = false,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { env: { ...baseEnv(), ...extraEnv }, timeout: 10_000, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        if (err && !allowFailure) {
          reject(new Error(`${command} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
          return;
        }
        resolve({ code, stdout, stderr });
      },
    );
  });
}
