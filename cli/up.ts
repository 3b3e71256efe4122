/**
 * `prtlab up` (`npm start`): the lab's main job. One process hosts the simulated Entra ID with a
 * demo tenant and one device (agent and broker), signs the pilot user in, runs the OneDrive and
 * Teams stubs through the broker, prints what happened and what to try next, and stays up until
 * Ctrl-C or SIGTERM. The demo itself (what is created, what a later start finds) is lab/demo.ts.
 */
import { constants } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { checkDeviceName, type LabClock } from '../agent/index.ts';
import type { ScryptParams } from '../cloud/directory/index.ts';
import {
  DEMO_DEVICE_NAME,
  type DemoClientRun,
  type DemoLab,
  type DemoRole,
  runDemoClients,
  startDemoLab,
} from '../lab/demo.ts';
import { resolveDataDir } from '../lib/data-dir.ts';
import { parseDataArgs } from './cloud-data.ts';
import { type Io, usageError, waitForStop } from './io.ts';

/** The request log of a running lab, in the data directory. */
export const UP_LOG_FILE = 'up.log';

export const UP_HELP = `Usage: prtlab up [options]

Runs the whole lab in one process until Ctrl-C (SIGINT) or SIGTERM: the simulated Entra ID
(HTTPS on 127.0.0.1) with a demo tenant, and one Windows 11 device joined with the built-in
TPM, with its agent and its broker. The first start creates, in the data directory:
  - a pilot user in the group "Token protection pilot", a break-glass administrator (Global
    Administrator) and a B2B guest, with generated passwords: printed once, and kept in
    DIR/demo-credentials.json (mode 0600) so that later starts can sign in again;
  - the seed document's token-protection policy (Exchange Online and SharePoint Online, Windows,
    mobile apps and desktop clients, require token protection for sign-in sessions), report-only,
    for the pilot group, excluding the break-glass account;
  - the device, joined by the pilot user (its keys are made in the TPM: a few seconds).
Then it signs the pilot user in on the device (a PRT), runs the OneDrive and Teams stubs
through the broker, and prints what the sign-in log says about them and what to try next.
A later start on the same directory finds all of this by name and creates nothing twice; the
policy keeps the state it was given; the pilot signs in again only if the device holds no
usable PRT. Every request is logged, one line each, to DIR/${UP_LOG_FILE}.

Options:
  --data DIR           the lab's data directory (default $PRTLAB_HOME, or ./.prtlab)
  --port P             the cloud's port on 127.0.0.1 (default 8443; 0 picks a free one); once
                       the device exists, the cloud comes back on the port the device was joined
                       against (no --port, or 0, means that port)
  --broker-port P      the broker's port on 127.0.0.1 (default: a free one; it is written to
                       DIR/devices/NAME/broker.json)
  --device NAME        the device's name (default ${DEMO_DEVICE_NAME})
  -h, --help           show this help
`;

export interface UpOptions {
  readonly dataDir: string;
  /** --data as given, repeated in the commands printed for the next steps. */
  readonly dataFlag?: string;
  readonly port?: number;
  readonly brokerPort?: number;
  readonly device: string;
  /** Tests: cheaper password hashing, and a lab clock they can move. */
  readonly scrypt?: ScryptParams;
  readonly clock?: LabClock;
}

export interface UpHandle {
  readonly lab: DemoLab;
  /** The OneDrive and Teams runs of this start. */
  readonly runs: readonly DemoClientRun[];
  /** Stops the broker, the agent and the cloud, then closes the request log. */
  stop(): Promise<void>;
}

function portValue(value: string | undefined, option: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535)
    throw usageError(`up: ${option} must be a number from 0 to 65535, not '${value.slice(0, 32)}'`);
  return Number(value);
}

/** The options of `prtlab up`, or the exit code when --help was printed. */
export function parseUpArgs(argv: string[], io: Io): UpOptions | number {
  const args = parseDataArgs(
    argv,
    {
      port: { type: 'string' },
      'broker-port': { type: 'string' },
      device: { type: 'string' },
    },
    UP_HELP,
    io,
  );
  if (typeof args === 'number') return args;
  const { values, positionals } = args;
  if (positionals.length > 0) throw usageError(`up: unexpected argument '${positionals[0]}'`);
  const device = values.device ?? DEMO_DEVICE_NAME;
  try {
    checkDeviceName(device);
  } catch (err) {
    throw usageError(`up: --device: ${(err as Error).message}`);
  }
  const port = portValue(values.port, '--port');
  const brokerPort = portValue(values['broker-port'], '--broker-port');
  return {
    dataDir: resolveDataDir(values.data),
    ...(values.data ? { dataFlag: values.data } : {}),
    ...(port !== undefined ? { port } : {}),
    ...(brokerPort !== undefined ? { brokerPort } : {}),
    device,
  };
}

/** `s` as one shell word. */
function shellWord(s: string): string {
  return /^[A-Za-z0-9_/.,:@%+=-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

const STATE_NAMES: Readonly<Record<string, string>> = {
  enabled: 'on',
  disabled: 'off',
  enabledForReportingButNotEnforced: 'report-only',
};

/** Windows 11 is build 22000 and later of version 10.0. */
function windowsName(osVersion: string): string {
  const build = Number(osVersion.split('.')[2]);
  return `Windows ${osVersion.startsWith('10.0.') && build >= 22000 ? '11' : '10'} (${osVersion})`;
}

const ROLE_NAMES: Readonly<Record<DemoRole, string>> = {
  pilot: 'pilot user',
  breakGlass: 'break-glass admin',
  guest: 'B2B guest',
};

/**
 * A log that appends to DIR/up.log (0600, never through a symlink); lines are timestamped.
 * Writes are queued; close() waits for them.
 */
async function openRequestLog(dataDir: string) {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, UP_LOG_FILE);
  const handle = await open(
    path,
    constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW,
    0o600,
  );
  await handle.chmod(0o600);
  const stream = handle.createWriteStream();
  let failed = false;
  stream.on('error', () => {
    // A full disk must not stop the lab; the log is for reading along, nothing depends on it.
    failed = true;
  });
  return {
    path,
    write(source: string, line: string) {
      if (!failed) stream.write(`${new Date().toISOString()} ${source}: ${line}\n`);
    },
    close(): Promise<void> {
      return new Promise<void>((done) => {
        stream.end(() => done());
      });
    },
  };
}

/** One client run, as a few indented lines. */
function describeRun(run: DemoClientRun, lab: DemoLab): string {
  const r = run.report;
  const lines = [
    `  ${r.profile.displayName} ${r.version} (${r.viaBroker ? 'through the broker' : 'on its own'})`,
  ];
  const s = r.signIn;
  if (s.ok) {
    lines.push(
      `      token  ${s.upn} -> ${r.resource.displayName}: ${s.deviceBound ? 'device-bound' : 'NOT device-bound'}, from the ${s.how}`,
    );
  } else {
    lines.push(
      `      token  refused: ${s.aadsts !== null ? `AADSTS${s.aadsts} ` : ''}${s.error}${s.correlationId ? ` (correlation id ${s.correlationId})` : ''}`,
    );
  }
  const e = run.logEntry;
  if (e) {
    lines.push(
      `      log    policy '${lab.policy.policy.displayName}': ${run.policyResult ?? 'not listed'}; token protection: ${e.tokenProtectionStatusDetails.signInSessionStatus}; correlation id ${e.correlationId}`,
    );
  } else if (s.ok && s.how === 'broker cache') {
    lines.push(
      `      log    no new entry: the broker's cache answered, no request reached the cloud`,
    );
  } else {
    lines.push('      log    no entry found for this run');
  }
  if (r.call)
    lines.push(`      call   GET ${r.resource.path} -> ${r.call.status}: ${r.call.summary}`);
  return lines.join('\n');
}

async function summary(lab: DemoLab, runs: readonly DemoClientRun[], o: UpOptions, log: string) {
  const prtlab = process.env.npm_lifecycle_event === 'start' ? 'npx prtlab' : 'prtlab';
  const data = o.dataFlag !== undefined ? ` --data ${shellWord(o.dataFlag)}` : '';
  const cmd = (args: string) => `  ${prtlab} ${args}${data}`;
  const out: string[] = [''];
  const pilot = lab.users.pilot;
  if (lab.newPasswords.length > 0) {
    out.push(
      `Demo accounts; the new passwords are shown this once and kept in ${lab.credentialsPath} (mode 0600):`,
    );
  } else {
    out.push(`Demo accounts (passwords in ${lab.credentialsPath}, mode 0600):`);
  }
  for (const role of ['pilot', 'breakGlass', 'guest'] as const) {
    const fresh = lab.newPasswords.find((p) => p.role === role);
    out.push(
      `  ${ROLE_NAMES[role].padEnd(18)} ${lab.users[role].upn.padEnd(28)}${fresh ? ` ${fresh.password}` : ''}`.trimEnd(),
    );
  }

  out.push('', `Sign-ins on ${lab.device.name} through the broker:`);
  if (lab.signIn.state === 'refused') {
    out.push(
      `  none: the cloud refused ${pilot.upn}'s sign-in on the device (AADSTS${lab.signIn.refusal.aadsts}); see '${prtlab} signins${data}'`,
    );
  } else {
    for (const run of runs) out.push(describeRun(run, lab));
  }

  const policy = (await lab.cloud.directory.policies.get(lab.policy.id)) ?? lab.policy;
  const status = await lab.agent.deviceStatus();
  const account = status.Accounts.find((a) => a.AccountId === pilot.id.toLowerCase());
  out.push(
    '',
    'The lab:',
    `  cloud    ${lab.cloud.url}  (tenant ${lab.tenant.domain}, id ${lab.tenant.id})`,
    `  CA       ${lab.cloud.caPath}`,
    `           curl --cacert ${shellWord(lab.cloud.caPath)} ${lab.cloud.url}/common/discovery/keys`,
    `  device   ${lab.device.name}: ${status.AzureAdJoined === 'YES' ? 'Entra joined' : lab.device.config.joinType}, ` +
      `${windowsName(status.OsVersion)}, device id ${status.DeviceId}`,
    `           TPM: ${status.Tpm}; TpmProtected ${status.TpmProtected}`,
    `           ${pilot.upn}: PRT ${account ? `${account.AzureAdPrtState.toLowerCase()} until ${account.AzureAdPrtExpiryTime}` : 'none'}`,
    `  broker   ${lab.broker.url}  (port ${lab.broker.port}; its secret in ${lab.broker.brokerFile})`,
    `  policy   ${policy.id}  '${String(policy.policy.displayName)}': ${STATE_NAMES[policy.state] ?? policy.state}`,
    `  log      ${log}  (one line per request)`,
  );

  const credentials = shellWord(
    `require(${JSON.stringify(lab.credentialsPath)}).users.pilot.password`,
  );
  out.push(
    '',
    'Next, in another shell:',
    policy.state === 'enabled'
      ? '  # the policy is on; to go back to report-only:'
      : '  # enforce the policy (after checking the report-only results):',
    cmd(`policy set-state ${policy.id} ${policy.state === 'enabled' ? 'reportOnly' : 'on'}`),
    policy.state === 'enabled'
      ? '  # VS Code signs in without the broker (unbound tokens): the policy blocks it'
      : '  # VS Code signs in without the broker (unbound tokens): blocked once the policy is on',
    `  node -p ${credentials} |`,
    `    ${prtlab} client run vscode --device ${shellWord(lab.device.name)} --user ${shellWord(pilot.upn)} --password-stdin${data}`,
    '  # replay stolen tokens against the policy',
    cmd('attack run'),
    '  # what the policy blocks, or would block, per app and user; the sign-in log',
    cmd('report impact'),
    cmd('signins'),
    '  # the device, like dsregcmd /status (the running broker answers for it)',
    cmd(`device status ${shellWord(lab.device.name)}`),
    '',
    'Ctrl-C stops the lab.',
    '',
  );
  return out.join('\n');
}

/**
 * Starts the lab, runs the clients and prints the summary; the handle stops it. `signal` aborts
 * the set-up between steps (lab/demo.ts).
 */
export async function startUp(options: UpOptions, io: Io, signal?: AbortSignal): Promise<UpHandle> {
  const progress = (line: string) => io.out(`prtlab up: ${line}\n`);
  progress(`data directory ${options.dataDir}`);
  const requestLog = await openRequestLog(options.dataDir);
  let lab: DemoLab;
  try {
    lab = await startDemoLab({
      dataDir: options.dataDir,
      deviceName: options.device,
      ...(options.port !== undefined ? { port: options.port } : {}),
      ...(options.brokerPort !== undefined ? { brokerPort: options.brokerPort } : {}),
      ...(options.scrypt ? { scrypt: options.scrypt } : {}),
      ...(options.clock ? { clock: options.clock } : {}),
      ...(signal ? { signal } : {}),
      progress,
      log: (source, line) => requestLog.write(source, line),
    });
  } catch (err) {
    await requestLog.close();
    throw err;
  }
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      try {
        await lab.stop();
      } finally {
        await requestLog.close();
      }
    })();
    return stopping;
  };
  try {
    const runs = lab.signIn.state === 'refused' ? [] : await runDemoClients(lab);
    io.out(await summary(lab, runs, options, requestLog.path));
    return { lab, runs, stop };
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
}

/**
 * `prtlab up [options]`. `extras` is for tests (cheaper password hashing, a lab clock); stop it
 * with `io.stop`, as a person does with Ctrl-C.
 */
export async function upCommand(
  argv: string[],
  io: Io,
  extras: Pick<UpOptions, 'scrypt' | 'clock'> = {},
): Promise<number> {
  const options = parseUpArgs(argv, io);
  if (typeof options === 'number') return options;
  // Listen for Ctrl-C from the start, so that one during set-up stops between steps instead of
  // killing the process in the middle of a write.
  const aborter = new AbortController();
  const stopRequested = waitForStop(io).then(() => aborter.abort());
  let handle: UpHandle;
  try {
    handle = await startUp({ ...options, ...extras }, io, aborter.signal);
  } catch (err) {
    if (aborter.signal.aborted) {
      io.out('prtlab up: stopped during set-up\n');
      return 130;
    }
    throw err;
  }
  await stopRequested;
  io.out('prtlab up: stopping: broker, agent, cloud\n');
  await handle.stop();
  io.out('prtlab up: stopped\n');
  return 0;
}
