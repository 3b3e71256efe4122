/**
 * A private OS keystore for one simulated host: a D-Bus session bus of its own and
 * gnome-keyring-daemon on it (secrets component, login keyring unlocked with a random password),
 * with HOME and the XDG directories in a directory of its own, so the real user's keyring is
 * never touched. The copied-TPM scenario gives the victim one (the device's state key lives
 * there) and the attacker another (a different host's keystore, which does not hold that key).
 *
 * The bus has no service directories, so nothing is activated behind the harness's back: the two
 * processes started here are stopped by pid. Missing programs are an ERR_ATTACK naming the Debian
 * packages to install; the case then fails, it is never skipped.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AttackError } from './errors.ts';

/** Program and the Debian package that provides it. */
const PROGRAMS: ReadonlyArray<readonly [string, string]> = [
  ['dbus-daemon', 'dbus'],
  ['dbus-send', 'dbus'],
  ['gnome-keyring-daemon', 'gnome-keyring'],
];

const START_TIMEOUT_MS = 15_000;
const SECRETS_NAME = 'org.freedesktop.secrets';

function onPath(program: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    if (!dir) return false;
    try {
      const file = join(dir, program);
      if (!statSync(file).isFile()) return false;
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** ERR_ATTACK naming the Debian packages when a program the keystore needs is missing. */
export function requireKeyringPrograms(): void {
  const missing = PROGRAMS.filter(([p]) => !onPath(p));
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map(([, pkg]) => pkg))];
  throw new AttackError(
    `the OS-keystore case needs ${missing.map(([p]) => p).join(', ')}: install the Debian packages ${packages.join(' ')} (apt-get install -y ${packages.join(' ')})`,
  );
}

/** Every daemon started here and still running: none outlives the harness's process. */
const live = new Set<ChildProcess>();
let exitHookSet = false;

function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (exitHookSet) return;
  exitHookSet = true;
  process.once('exit', () => {
    for (const c of live) {
      try {
        if (c.pid !== undefined) process.kill(c.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

/**
 * The configuration of a private session bus listening on the Unix socket `socket`: no service
 * directories (nothing is activated behind our back), EXTERNAL authentication.
 */
export function sessionBusConfig(socket: string): string {
  return [
    '<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"',
    ' "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">',
    '<busconfig>',
    '  <type>session</type>',
    `  <listen>unix:path=${socket}</listen>`,
    '  <auth>EXTERNAL</auth>',
    '  <policy context="default">',
    // The stock session bus's policy; without the generic allow, replies never arrive.
    '    <allow send_destination="*" eavesdrop="true"/>',
    '    <allow eavesdrop="true"/>',
    '    <allow own="*"/>',
    '  </policy>',
    '</busconfig>',
    '',
  ].join('\n');
}

function baseEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8' };
}

/** The environment a process of this host needs to reach its keystore. */
export interface HostKeystore {
  readonly env: Readonly<Record<string, string>>;
  stop(): Promise<void>;
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      try {
        if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, 5_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    try {
      process.kill(child.pid!, 'SIGTERM');
    } catch {
      clearTimeout(timer);
      resolve();
    }
  });
}

function nameHasOwner(address: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(
      'dbus-send',
      [
        `--bus=${address}`,
        '--print-reply',
        '--dest=org.freedesktop.DBus',
        '/org/freedesktop/DBus',
        'org.freedesktop.DBus.NameHasOwner',
        `string:${SECRETS_NAME}`,
      ],
      { env: baseEnv(), timeout: 10_000, encoding: 'utf8' },
      (err, stdout) => resolve(!err && /boolean true/.test(stdout)),
    );
  });
}

/**
 * Starts the bus and the keyring daemon for one host. Their sockets (the bus's, and the daemon's
 * control socket under XDG_RUNTIME_DIR) must fit in sun_path (108 bytes), so the keystore's HOME
 * is a short directory of its own under the system's temporary directory, removed by stop().
 */
export async function startHostKeystore(): Promise<HostKeystore> {
  requireKeyringPrograms();
  const home = await mkdtemp(join(tmpdir(), 'prtlab-kr-'));
  const started: ChildProcess[] = [];
  const stop = async () => {
    for (const c of started.reverse()) await stopChild(c);
    await rm(home, { recursive: true, force: true });
  };
  try {
    for (const sub of ['.local/share', '.config', '.cache', 'run']) {
      await mkdir(join(home, sub), { recursive: true, mode: 0o700 });
    }
    const config = join(home, 'session.conf');
    await writeFile(config, sessionBusConfig(join(home, 'bus')), { mode: 0o600 });
    const bus = spawn('dbus-daemon', [`--config-file=${config}`, '--nofork', '--print-address=1'], {
      env: baseEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    bus.on('error', () => {});
    started.push(bus);
    track(bus);
    const address = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(
        () => reject(new AttackError('dbus-daemon printed no address')),
        START_TIMEOUT_MS,
      );
      bus.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString('utf8');
        const nl = out.indexOf('\n');
        if (nl >= 0) {
          clearTimeout(timer);
          resolve(out.slice(0, nl).trim());
        }
      });
      bus.once('exit', (code) => {
        clearTimeout(timer);
        reject(new AttackError(`dbus-daemon exited (code ${code})`));
      });
    });
    bus.stderr?.resume();
    const env = {
      HOME: home,
      XDG_DATA_HOME: join(home, '.local/share'),
      XDG_CONFIG_HOME: join(home, '.config'),
      XDG_CACHE_HOME: join(home, '.cache'),
      XDG_RUNTIME_DIR: join(home, 'run'),
      DBUS_SESSION_BUS_ADDRESS: address,
    };
    const daemon = spawn(
      'gnome-keyring-daemon',
      ['--foreground', '--components=secrets', '--unlock'],
      { env: { ...baseEnv(), ...env }, stdio: ['pipe', 'ignore', 'pipe'] },
    );
    daemon.on('error', () => {});
    let daemonOutput = '';
    daemon.stderr?.on('data', (c: Buffer) => {
      daemonOutput = (daemonOutput + c.toString('utf8')).slice(-2000);
    });
    started.push(daemon);
    track(daemon);
    // --unlock reads the login keyring's password from standard input up to its end.
    daemon.stdin?.end(randomBytes(18).toString('base64url'));
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!(await nameHasOwner(address))) {
      if (daemon.exitCode !== null || Date.now() > deadline)
        throw new AttackError(
          `gnome-keyring-daemon did not take ${SECRETS_NAME} on the bus: ${daemonOutput.trim()}`,
        );
      await sleep(50);
    }
    return { env, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
