import { spawnSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TPM2_TOOLS } from './helpers/tools.ts';

/**
 * Runs once before the interop project. It fails (never skips) when a program the suites drive is
 * missing, naming the program and the Debian 12 package that provides it, and then builds the
 * project once (`npm run build`, tsc into dist/) so that tests can spawn `node bin/prtlab.js`.
 * A build failure fails the whole interop run; its output is printed first.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Program -> Debian 12 package. Keep in step with the apt-get line in .ci/run. */
const REQUIRED: ReadonlyArray<readonly [program: string, pkg: string]> = [
  ['swtpm', 'swtpm'],
  ...TPM2_TOOLS.map((tool) => [tool, 'tpm2-tools'] as const),
  ['openssl', 'openssl'],
  ['gnome-keyring-daemon', 'gnome-keyring'],
  ['dbus-daemon', 'dbus'],
  ['dbus-run-session', 'dbus'],
  ['dbus-launch', 'dbus-x11'],
  ['secret-tool', 'libsecret-tools'],
];

function onPath(program: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, program);
    try {
      if (!statSync(file).isFile()) continue;
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      // not here
    }
  }
  return false;
}

export function missingPrograms(): Array<readonly [program: string, pkg: string]> {
  return REQUIRED.filter(([program]) => !onPath(program));
}

function checkPrograms(): void {
  const missing = missingPrograms();
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map(([, pkg]) => pkg))];
  const lines = missing.map(
    ([program, pkg]) => `  ${program}: not found on PATH; install with: apt-get install -y ${pkg}`,
  );
  throw new Error(
    [
      'The interop tests need programs that are not installed:',
      ...lines,
      'To install all of them (Debian 12, as root):',
      `  apt-get update && apt-get install -y --no-install-recommends ${packages.join(' ')}`,
    ].join('\n'),
  );
}

function build(): void {
  const res = spawnSync('npm', ['run', 'build'], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 300_000,
  });
  if (res.status === 0) return;
  const why = res.error
    ? res.error.message
    : res.status === null
      ? `killed by ${res.signal}`
      : `exit code ${res.status}`;
  const output = `${res.stdout ?? ''}${res.stderr ?? ''}`.trimEnd();
  console.error(`npm run build failed (${why}):\n${output}`);
  throw new Error(`npm run build failed (${why}); the interop tests need dist/:\n${output}`);
}

export default async function setup(): Promise<void> {
  checkPrograms();
  build();
}
