/**
 * `prtlab device ...`: a simulated Windows device with its keys in a TPM (agent/): add (register
 * with the cloud), signin (get a PRT), status (dsregcmd /status), list, remove.
 */

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import {
  addDevice,
  DEVICE_KINDS,
  type DeviceKind,
  type DeviceStatus,
  deviceDir,
  formatStatus,
  JOIN_KINDS,
  type JoinKind,
  KEYSTORE_KINDS,
  type KeystoreKind,
  listDevices,
  openDeviceAgent,
  removeDevice,
} from '../agent/index.ts';
import { BrokerClient } from '../broker/client.ts';
import { cloudPaths } from '../cloud/data-dir.ts';
import { DEFAULT_CLOUD_HOST, DEFAULT_CLOUD_PORT } from '../cloud/server.ts';
import { resolveDataDir } from '../lib/data-dir.ts';
import { isPrtlabError } from '../lib/errors.ts';
import { expectPositionals, parseDataArgs, printList, subcommand } from './cloud-data.ts';
import { deviceStart } from './device-start.ts';
import { type Io, readStdin, usageError } from './io.ts';

const DATA_OPTION = `  --data DIR           the lab's data directory (default $PRTLAB_HOME, or ./.prtlab)`;
const DEFAULT_CLOUD_URL = `https://${DEFAULT_CLOUD_HOST}:${DEFAULT_CLOUD_PORT}`;

export const DEVICE_HELP = `Usage: prtlab device <subcommand> [options]

A simulated Windows device: its device key, transport key and PRT session keys live in a TPM
(the built-in simulator, swtpm, the MS simulator or a kernel TPM), and it talks to the lab cloud
over HTTPS like CloudAP and dsreg do. State lives in DATA/devices/NAME.

Subcommands:
  add NAME       create the device's keys and register it with the cloud
  signin NAME    sign a user in: a PRT, with its session key imported into the TPM
  status NAME    the device's state, like dsregcmd /status
  start NAME     run the device's agent and its broker (WebSocket JSON-RPC on 127.0.0.1)
  list           the devices in the data directory
  remove NAME    delete the device in the cloud, then its keys and directory

Run prtlab device <subcommand> --help for the options of each.
`;

export const DEVICE_ADD_HELP = `Usage: prtlab device add NAME [options]

Creates the device's keys inside its TPM (an ECC storage key; RSA-2048 device and transport keys,
fixedTPM, fixedParent, sensitiveDataOrigin), has the TPM sign the certificate request, and
registers the device with the cloud's device registration service, which returns the device
certificate. A joined or registered device needs the user who joins it; a hybrid device needs
its computer object pre-created in the cloud first (see --join hybrid below).

Options:
  --join joined|hybrid|registered
                       Entra joined (default), hybrid joined, or registered (workplace join)
  --device-type windows|windows-server|surface-hub|teams-room|avd|cloud-pc
                       what the device is (default windows). windows-server and surface-hub
                       register as "Windows Server" and "Windows 10 Team"; teams-room, avd and
                       cloud-pc register as Windows with the system label MicrosoftTeamsRoom,
                       AzureVirtualDesktop or CloudPC (a lab convention: LabSystemLabels)
  --os-version V       the Windows version (default 10.0.22631)
  --tpm SPEC           builtin (default: prtlab's simulator, state sealed in the device
                       directory), swtpm:host=H,port=P, mssim:host=H,port=P,
                       device:/dev/tpmrm0, or none (no TPM: software keys sealed with the
                       keystore key, as Windows does without a TPM; status says so)
  --keystore key-file|secret-service
                       where the key sealing the built-in TPM's state or the software keys lives:
                       a 0600 file in the device directory (default) or the OS keystore
  --user UPN           the user who joins or registers the device (joined, registered)
  --password PW        that user's password (visible to other local users in ps)
  --password-stdin     read the password from standard input instead
  --tenant DOMAIN|ID   hybrid only: the tenant the on-premises directory syncs to
  --no-attest          register without TPM attestation (by default a device on a TPM sends
                       an AK-signed TPM2_Certify of its device and transport keys over a DRS
                       nonce, with its EK certificate; status shows AttestationStatus)
  --cloud URL          the cloud (default ${DEFAULT_CLOUD_URL})
  --cloud-ca FILE      the lab CA the cloud's certificate chains to (default: the CA of the
                       cloud in the same data directory, DATA/cloud/ca/lab-ca.pem)
${DATA_OPTION}
  -h, --help           show this help

--join hybrid: the device makes a computer key in its TPM and a self-signed computer certificate
(DATA/devices/NAME/computer-certificate.pem), the object an on-premises directory would sync.
Until the cloud knows it, the device waits; then pre-create it and run the same add again:
  prtlab cloud device precreate --cert DATA/devices/NAME/computer-certificate.pem
  prtlab device add NAME --join hybrid --tenant contoso.test
`;

export const DEVICE_SIGNIN_HELP = `Usage: prtlab device signin NAME --user UPN (--password PW | --password-stdin) [options]

Signs the user in on the device: a nonce, a PRT request signed by the device key in the TPM
(kdf_ver 2), and from the answer the PRT (kept sealed by the TPM) and the session key (decrypted
by the transport key inside the TPM and imported into it at once; it is never written anywhere).

Options:
  --user UPN           the user
  --password PW        the password (visible to other local users in ps)
  --password-stdin     read the password from standard input instead
${DATA_OPTION}
  -h, --help           show this help
`;

export const DEVICE_STATUS_HELP = `Usage: prtlab device status NAME [options]

Prints the device's state in the spirit of dsregcmd /status: join state, device id, key
provider, TpmProtected, KeySignTest (a test signature with the device key), AttestationStatus
and HardwareBacked (how the cloud judged the registration's TPM attestation), DeviceAuthStatus,
tenant, and per account AzureAdPrt with its update and expiry times (PRTs are renewed every 4
hours of lab time and expire 14 days after the cloud's answer), and the TPM in use.

Options:
  --json               print the same facts as JSON
${DATA_OPTION}
  -h, --help           show this help
`;

export const DEVICE_LIST_HELP = `Usage: prtlab device list [options]

Lists the devices in the data directory.

Options:
  --json               print them as JSON
${DATA_OPTION}
  -h, --help           show this help
`;

export const DEVICE_REMOVE_HELP = `Usage: prtlab device remove NAME [options]

Deletes the device in the cloud (DELETE /EnrollmentServer/device/ID, proven with the device key,
like dsregcmd /leave), then its directory with its keys and TPM state.

Options:
  --local-only         do not ask the cloud (for a device the cloud already deleted)
${DATA_OPTION}
  -h, --help           show this help
`;

const HELP: Readonly<Record<string, string>> = {
  add: DEVICE_ADD_HELP,
  signin: DEVICE_SIGNIN_HELP,
  status: DEVICE_STATUS_HELP,
  list: DEVICE_LIST_HELP,
  remove: DEVICE_REMOVE_HELP,
};

export async function deviceCommand(argv: string[], io: Io): Promise<number> {
  const split = subcommand(argv, DEVICE_HELP, io);
  if (typeof split === 'number') return split;
  const [sub, rest] = split;
  switch (sub) {
    case 'add':
      return deviceAdd(rest, io);
    case 'signin':
      return deviceSignIn(rest, io);
    case 'status':
      return deviceStatus(rest, io);
    case 'list':
      return deviceList(rest, io);
    case 'remove':
      return deviceRemove(rest, io);
    case 'start':
      return deviceStart(rest, io);
    default:
      throw usageError(`unknown subcommand 'device ${sub}' (see prtlab device --help)`);
  }
}

function oneOf<T extends string>(flag: string, value: string | undefined, set: readonly T[]) {
  if (value === undefined) return undefined;
  if (!set.includes(value as T)) throw usageError(`--${flag} must be one of ${set.join(', ')}`);
  return value as T;
}

/**
 * The password from exactly one of --password and --password-stdin. From standard input, one
 * trailing newline is removed; nothing else is trimmed.
 */
async function passwordFrom(
  command: string,
  flag: string | undefined,
  fromStdin: boolean,
  io: Io,
): Promise<string> {
  if (flag !== undefined && fromStdin) {
    throw usageError(`${command}: give --password or --password-stdin, not both`);
  }
  if (flag !== undefined) return flag;
  if (!fromStdin) throw usageError(`${command}: --password PW or --password-stdin is required`);
  return (await readStdin(io)).replace(/\r?\n$/, '');
}

/** The lab CA: --cloud-ca, else the CA of a cloud in the same data directory. */
async function cloudCa(file: string | undefined, dataDir: string): Promise<string> {
  const path = file ?? cloudPaths(dataDir).labCaCert;
  if (file === undefined && !existsSync(path)) {
    throw usageError(
      `no lab CA at ${path}: start the cloud with this --data (prtlab cloud serve), or give --cloud-ca FILE`,
    );
  }
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw usageError(`cannot read the cloud CA ${path}: ${(err as Error).message}`);
  }
}

async function deviceAdd(argv: string[], io: Io): Promise<number> {
  const args = parseDataArgs(
    argv,
    {
      join: { type: 'string' },
      'os-version': { type: 'string' },
      'device-type': { type: 'string' },
      tpm: { type: 'string' },
      keystore: { type: 'string' },
      cloud: { type: 'string' },
      'cloud-ca': { type: 'string' },
      user: { type: 'string' },
      password: { type: 'string' },
      'password-stdin': { type: 'boolean', default: false },
      tenant: { type: 'string' },
      'no-attest': { type: 'boolean', default: false },
    },
    HELP.add!,
    io,
  );
  if (typeof args === 'number') return args;
  const { values, positionals } = args;
  const [name] = expectPositionals(positionals, ['NAME'], 'device add');
  const dataDir = resolveDataDir(values.data);
  const joinType: JoinKind = oneOf('join', values.join, JOIN_KINDS) ?? 'joined';
  const deviceType: DeviceKind | undefined = oneOf(
    'device-type',
    values['device-type'],
    DEVICE_KINDS,
  );
  const keystore: KeystoreKind | undefined = oneOf('keystore', values.keystore, KEYSTORE_KINDS);
  const hybrid = joinType === 'hybrid';
  if (hybrid && (values.user !== undefined || values.password !== undefined)) {
    throw usageError('device add: a hybrid join authenticates as the computer; drop --user');
  }
  if (!hybrid && values.tenant !== undefined) {
    throw usageError('device add: --tenant is for --join hybrid (others take the user domain)');
  }
  if (hybrid && values.tenant === undefined) {
    throw usageError('device add: --join hybrid needs --tenant DOMAIN|ID');
  }
  if (!hybrid && values.user === undefined) {
    throw usageError(`device add: --user UPN is required for --join ${joinType}`);
  }
  const password = hybrid
    ? undefined
    : await passwordFrom('device add', values.password, values['password-stdin'], io);
  const result = await addDevice({
    dataDir,
    name: name!,
    joinType,
    ...(deviceType ? { deviceType } : {}),
    ...(values['os-version'] !== undefined ? { osVersion: values['os-version'] } : {}),
    ...(values.tpm !== undefined ? { tpm: values.tpm } : {}),
    ...(keystore ? { keystore } : {}),
    cloudUrl: values.cloud ?? DEFAULT_CLOUD_URL,
    cloudCaPem: await cloudCa(values['cloud-ca'], dataDir),
    ...(password !== undefined ? { user: { upn: values.user!, password } } : {}),
    ...(values.tenant !== undefined ? { tenant: values.tenant } : {}),
    ...(values['no-attest'] ? { attest: false } : {}),
  });
  const c = result.config;
  if (result.state === 'awaiting-sync') {
    io.out(
      `device ${c.name} (device id ${c.deviceId}) is waiting for its computer object in the cloud.\n` +
        `Pre-create it, then run the same command again:\n` +
        `  prtlab cloud device precreate --cert ${result.computerCertificatePath}\n`,
    );
    return 0;
  }
  io.out(
    `added device ${c.name}: ${c.joinType}, device id ${c.deviceId}, tenant ${c.tenantId}, TPM ${c.tpm}\n`,
  );
  return 0;
}

async function deviceSignIn(argv: string[], io: Io): Promise<number> {
  const args = parseDataArgs(
    argv,
    {
      user: { type: 'string' },
      password: { type: 'string' },
      'password-stdin': { type: 'boolean', default: false },
    },
    HELP.signin!,
    io,
  );
  if (typeof args === 'number') return args;
  const { values, positionals } = args;
  const [name] = expectPositionals(positionals, ['NAME'], 'device signin');
  if (values.user === undefined) throw usageError('device signin: --user UPN is required');
  const password = await passwordFrom(
    'device signin',
    values.password,
    values['password-stdin'],
    io,
  );
  const agent = await openDeviceAgent({ dataDir: resolveDataDir(values.data), name: name! });
  try {
    const account = await agent.signIn(values.user, password);
    const s = await agent.deviceStatus();
    const mine = s.Accounts.find((a) => a.AccountId === account.id);
    io.out(`signed in ${account.upn} on ${name}: PRT until ${mine?.AzureAdPrtExpiryTime ?? '?'}\n`);
  } finally {
    await agent.close();
  }
  return 0;
}

async function deviceStatus(argv: string[], io: Io): Promise<number> {
  const args = parseDataArgs(argv, { json: { type: 'boolean', default: false } }, HELP.status!, io);
  if (typeof args === 'number') return args;
  const { values, positionals } = args;
  const [name] = expectPositionals(positionals, ['NAME'], 'device status');
  const dataDir = resolveDataDir(values.data);
  let s: DeviceStatus;
  try {
    const agent = await openDeviceAgent({ dataDir, name: name! });
    try {
      s = await agent.deviceStatus();
    } finally {
      await agent.close();
    }
  } catch (err) {
    // A running device (`prtlab up`, `device start`) holds its agent lock; its broker answers
    // getDeviceStatus with the same facts, so ask it instead (dsregcmd also works while CloudAP runs).
    if (!isPrtlabError(err, 'ERR_STATE_IN_USE')) throw err;
    s = await statusFromBroker(deviceDir(dataDir, name!), err);
  }
  io.out(values.json ? `${JSON.stringify(s, null, 2)}\n` : formatStatus(s));
  return 0;
}

/** The status of a running device, from its broker; the lock error when no broker answers. */
async function statusFromBroker(dir: string, lockError: unknown): Promise<DeviceStatus> {
  let client: BrokerClient;
  try {
    client = await BrokerClient.forDevice(dir, { connectTimeoutMs: 5_000, timeoutMs: 10_000 });
  } catch {
    throw lockError;
  }
  try {
    return (await client.getDeviceStatus()) as unknown as DeviceStatus;
  } finally {
    await client.close();
  }
}

async function deviceList(argv: string[], io: Io): Promise<number> {
  const args = parseDataArgs(argv, { json: { type: 'boolean', default: false } }, HELP.list!, io);
  if (typeof args === 'number') return args;
  const { values, positionals } = args;
  expectPositionals(positionals, [], 'device list');
  const devices = await listDevices(resolveDataDir(values.data));
  printList(io, devices, values.json, {
    none: 'no devices',
    json: (d) => (d.config ? { ...d.config, cloudCaPem: undefined } : d),
    header: ['NAME', 'DEVICE ID', 'JOIN', 'TYPE', 'TPM', 'CLOUD'],
    row: (d) =>
      d.config
        ? [
            d.name,
            d.config.deviceId,
            d.config.joinType,
            d.config.deviceType,
            d.config.tpm,
            d.config.cloudUrl,
          ]
        : [d.name, `unreadable: ${d.error}`, '-', '-', '-', '-'],
  });
  return 0;
}

async function deviceRemove(argv: string[], io: Io): Promise<number> {
  const args = parseDataArgs(
    argv,
    { 'local-only': { type: 'boolean', default: false } },
    HELP.remove!,
    io,
  );
  if (typeof args === 'number') return args;
  const { values, positionals } = args;
  const [name] = expectPositionals(positionals, ['NAME'], 'device remove');
  const { leftCloud } = await removeDevice({
    dataDir: resolveDataDir(values.data),
    name: name!,
    localOnly: values['local-only'],
  });
  io.out(
    `removed device ${name}${leftCloud ? ' (deleted in the cloud too)' : ' (locally only)'}\n`,
  );
  return 0;
}
