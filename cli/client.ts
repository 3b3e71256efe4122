/**
 * `prtlab client ...`: the native-client stubs (clients/). `list` shows the profiles; `run` signs
 * in as one of them on a device, the way the real client would (through the device's broker, or
 * on its own with a password and a plain token cache file), calls the resource and prints what
 * happened, including the AADSTS code when the cloud refused.
 */
import { deviceDir, loadDeviceConfig } from '../agent/index.ts';
import { ClientError } from '../clients/errors.ts';
import {
  brokerSummary,
  PROFILE_NAMES,
  PROFILES,
  RESOURCE_NAMES,
  usesBroker,
} from '../clients/profiles.ts';
import { type ClientEnvironment, formatReport, runClient } from '../clients/run.ts';
import { resolveDataDir } from '../lib/data-dir.ts';
import { expectPositionals, parseDataArgs, printList, subcommand } from './cloud-data.ts';
import { type Io, readStdin, usageError } from './io.ts';

const DATA_OPTION = `  --data DIR           the lab's data directory (default $PRTLAB_HOME, or ./.prtlab)`;

export const CLIENT_HELP = `Usage: prtlab client <subcommand> [options]

Native-client stubs. Each signs in the way the real client does: through the device's broker
(started by 'prtlab device start'), or on its own with a password and then the refresh token in
a plain token cache file in the device directory; then it calls a resource.

Subcommands:
  list [--json]        the client profiles: app id, version, whether that version uses the broker
  run NAME --device DEV [--version V] [--resource exchange|sharepoint|graph]
      [--user UPN] [--password PW | --password-stdin]
                       sign in as client NAME on device DEV and call the resource

Profiles: ${PROFILE_NAMES.join(', ')}.

Options:
${DATA_OPTION}
  -h, --help           show this help (also after a subcommand)
`;

export const CLIENT_LIST_HELP = `Usage: prtlab client list [--json] [--data DIR]

Lists the client profiles: name, app id, display name (as sign-in logs show it), the version run
by default, the resource called by default, and broker use: "yes" (every version), "no" (signs
in on its own), or "from V" (versions V and later use the broker, older ones sign in on their
own), following the minimum versions of the token-protection requirement catalog.

Options:
  --json               print the profiles as JSON, with the source of each fact
${DATA_OPTION}
  -h, --help           show this help
`;

export const CLIENT_RUN_HELP = `Usage: prtlab client run NAME --device DEV [options]

Signs in as client NAME on device DEV and calls a resource stub of the device's cloud.

Through the broker (when that version uses it): with --user and a password, the broker's
interactive sign-in (the password stands in for the sign-in UI; the device gets a PRT); without
a password, a silent request for the signed-in account (--user picks one when there are several).

On its own: with --user and a password, the password grant; without, the access token in the
client's own cache file (<data>/devices/DEV/clients/NAME-token-cache.json, plain JSON, 0600)
while it is fresh, else its refresh token.

Prints the client, how the token was obtained (device-bound or not), and the resource's answer;
a refused sign-in prints the AADSTS code and exits 1.

Options:
  --device DEV         the device (see 'prtlab device list')
  --version V          the client version to report (default: the profile's)
  --resource R         exchange, sharepoint or graph (default: the profile's)
  --user UPN           the account
  --password PW        its password (visible to other local users in the process list)
  --password-stdin     read the password from standard input instead
${DATA_OPTION}
  -h, --help           show this help
`;

/** How `run` finds a device's cloud and directory; tests replace it. */
export type DeviceEnvironmentResolver = (
  dataDir: string,
  device: string,
) => Promise<ClientEnvironment>;

async function deviceEnvironment(dataDir: string, device: string): Promise<ClientEnvironment> {
  const config = await loadDeviceConfig(dataDir, device);
  return {
    cloudUrl: config.cloudUrl,
    tenant: config.tenantId,
    caPem: config.cloudCaPem,
    deviceDir: deviceDir(dataDir, device),
  };
}

export async function clientCommand(
  argv: string[],
  io: Io,
  resolveDevice: DeviceEnvironmentResolver = deviceEnvironment,
): Promise<number> {
  const split = subcommand(argv, CLIENT_HELP, io);
  if (typeof split === 'number') return split;
  const [sub, rest] = split;
  switch (sub) {
    case 'list':
      return list(rest, io);
    case 'run':
      return run(rest, io, resolveDevice);
    default:
      throw usageError(`unknown subcommand 'client ${sub}' (see prtlab client --help)`);
  }
}

function list(argv: string[], io: Io): number {
  const args = parseDataArgs(
    argv,
    { json: { type: 'boolean', default: false } },
    CLIENT_LIST_HELP,
    io,
  );
  if (typeof args === 'number') return args;
  expectPositionals(args.positionals, [], 'client list');
  const profiles = PROFILE_NAMES.map((n) => PROFILES[n]);
  printList(io, profiles, args.values.json, {
    none: 'no client profiles',
    json: (p) => ({
      name: p.name,
      appId: p.appId,
      appIdSource: p.appIdSource,
      displayName: p.displayName,
      version: p.version,
      resource: p.resource,
      broker: p.broker,
      brokerAtThisVersion: usesBroker(p),
    }),
    header: ['NAME', 'APP ID', 'DISPLAY NAME', 'VERSION', 'RESOURCE', 'BROKER'],
    row: (p) => [p.name, p.appId, p.displayName, p.version, p.resource, brokerSummary(p)],
  });
  return 0;
}

async function run(argv: string[], io: Io, resolveDevice: DeviceEnvironmentResolver) {
  const args = parseDataArgs(
    argv,
    {
      device: { type: 'string' },
      version: { type: 'string' },
      resource: { type: 'string' },
      user: { type: 'string' },
      password: { type: 'string' },
      'password-stdin': { type: 'boolean', default: false },
    },
    CLIENT_RUN_HELP,
    io,
  );
  if (typeof args === 'number') return args;
  const { values, positionals } = args;
  const [name] = expectPositionals(positionals, ['NAME'], 'client run');
  if (values.device === undefined) throw usageError('client run: --device DEV is required');
  if (
    values.resource !== undefined &&
    !(RESOURCE_NAMES as readonly string[]).includes(values.resource)
  )
    throw usageError(`client run: --resource must be one of ${RESOURCE_NAMES.join(', ')}`);
  if (values.password !== undefined && values['password-stdin'])
    throw usageError('client run: give --password or --password-stdin, not both');
  let password = values.password;
  if (values['password-stdin']) password = (await readStdin(io)).replace(/\r?\n$/, '');
  if (password !== undefined && values.user === undefined)
    throw usageError('client run: a password needs --user UPN');

  const env = await resolveDevice(resolveDataDir(values.data), values.device);
  const report = await runClient(env, {
    profile: name!,
    ...(values.version !== undefined ? { version: values.version } : {}),
    ...(values.resource !== undefined ? { resource: values.resource } : {}),
    ...(values.user !== undefined ? { user: values.user } : {}),
    ...(password !== undefined ? { password } : {}),
  });
  io.out(formatReport(report));
  const s = report.signIn;
  if (!s.ok) {
    throw new ClientError(
      `${report.profile.name}: sign-in refused${s.aadsts !== null ? `: AADSTS${s.aadsts}` : ''} (${s.error})`,
      { refusal: s },
    );
  }
  if (report.call && report.call.status !== 200)
    throw new ClientError(
      `${report.profile.name}: ${report.resource.displayName} answered HTTP ${report.call.status}`,
    );
  return 0;
}
