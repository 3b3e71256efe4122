/**
 * The demo lab behind `prtlab up`, for anything that needs the whole lab running in one process
 * (the CLI, tests, the attack harness): the simulated Entra ID on 127.0.0.1 with a demo tenant,
 * and one Windows 11 device joined with the built-in TPM, its agent and its broker.
 *
 *   const lab = await startDemoLab({ dataDir, port: 0 });
 *   lab.cloud.url; lab.users.pilot.upn; lab.broker.port; lab.policy.id; lab.clock.advance(ms);
 *   const runs = await runDemoClients(lab);   // OneDrive and Teams through the broker
 *   await lab.stop();                         // broker, agent, cloud, in that order
 *
 * What it makes in the data directory, once, and finds again on every later start (by name:
 * group name, UPNs, policy display name, device directory; nothing is made twice):
 *   - group DEMO_GROUP_NAME; users: the pilot (member of the group), a break-glass administrator
 *     (Global Administrator) and a B2B guest, with generated passwords kept in
 *     `<data>/demo-credentials.json` (0600). A user whose password is missing from that file (or
 *     no longer right) gets a new one, reported in `newPasswords` like the first ones;
 *   - the seed document's token-protection policy (cloud/policies/preset.ts) named
 *     DEMO_POLICY_NAME, report-only, for the pilot group, excluding the break-glass user. A found
 *     policy is left as it is: its state is whatever the operator last set;
 *   - the device (default DEMO_DEVICE_NAME), joined by the pilot user: Windows 11 (10.0.22631),
 *     keys in the built-in TPM.
 * On every start the pilot user is signed in on the device unless it already holds a usable PRT.
 *
 * One LabClock drives the cloud, the agent, the broker and the client runs, so code in the same
 * process can let lab time pass (PRT renewal and expiry); other processes see real time.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  AgentCloudError,
  addDevice,
  DEFAULT_OS_VERSION,
  type DeviceAgent,
  type DeviceConfig,
  deviceDir,
  LabClock,
  loadDeviceConfig,
  openDeviceAgent,
} from '../agent/index.ts';
import type { CloudRefusal } from '../broker/agent-port.ts';
import { type BrokerHandle, startBroker } from '../broker/server.ts';
import { type RunReport, runClient } from '../clients/run.ts';
import { parsePolicy } from '../cloud/ca/policy.ts';
import type { ScryptParams } from '../cloud/directory/index.ts';
import type { Group, StoredPolicy, Tenant, User } from '../cloud/directory/types.ts';
import { CloudConfigError, CloudStateError } from '../cloud/errors.ts';
import { atomicWriteFile } from '../cloud/files.ts';
import { lintPolicy } from '../cloud/policies/lint.ts';
import { tokenProtectionPreset } from '../cloud/policies/preset.ts';
import { coreRoutes } from '../cloud/routes.ts';
import { type CloudHandle, DEFAULT_CLOUD_PORT, startCloud } from '../cloud/server.ts';
import type { SignInEntry } from '../cloud/signins/entry.ts';
import { signInStoreFor } from '../cloud/signins/registry.ts';
import { tokenRoutes } from '../cloud/token-service/service.ts';

export const DEMO_DEVICE_NAME = 'LAB-PC1';
export const DEMO_GROUP_NAME = 'Token protection pilot';
export const DEMO_POLICY_NAME = 'Token protection pilot: Exchange Online and SharePoint Online';
export const DEMO_CREDENTIALS_FILE = 'demo-credentials.json';
/** The clients `runDemoClients` runs by default: the seed document's two supported ones. */
export const DEMO_CLIENTS = ['onedrive', 'teams'] as const;

/** How often the long-running agent checks whether a PRT is due for renewal (real time). */
const RENEWAL_TICK_MS = 60_000;
const STATE_NAMES: Readonly<Record<StoredPolicy['state'], string>> = {
  enabled: 'on',
  disabled: 'off',
  enabledForReportingButNotEnforced: 'report-only',
};
const CREDENTIALS_FORMAT = 'prtlab-demo-credentials';
const MAX_CREDENTIALS_BYTES = 64 * 1024;

export type DemoRole = 'pilot' | 'breakGlass' | 'guest';
export const DEMO_ROLES: readonly DemoRole[] = ['pilot', 'breakGlass', 'guest'];

interface DemoUserSpec {
  readonly upn: string;
  readonly displayName: string;
  readonly kind: 'member' | 'guest';
  readonly roles: readonly string[];
  readonly inPilotGroup: boolean;
  /** How a person would call this account in a sentence. */
  readonly label: string;
}

/** The demo users of a tenant whose domain is `domain`. */
export function demoUserSpecs(domain: string): Readonly<Record<DemoRole, DemoUserSpec>> {
  // A guest's UPN must be outside the tenant's domain (the directory refuses it otherwise).
  const guestDomain = domain.toLowerCase() === 'fabrikam.test' ? 'northwind.test' : 'fabrikam.test';
  return {
    pilot: {
      upn: `adele@${domain}`,
      displayName: 'Adele Vance',
      kind: 'member',
      roles: [],
      inPilotGroup: true,
      label: 'pilot user',
    },
    breakGlass: {
      upn: `breakglass@${domain}`,
      displayName: 'Break-glass administrator',
      kind: 'member',
      roles: ['Global Administrator'],
      inPilotGroup: false,
      label: 'break-glass administrator',
    },
    guest: {
      upn: `sam@${guestDomain}`,
      displayName: 'Sam Taylor (Fabrikam, B2B guest)',
      kind: 'guest',
      roles: [],
      inPilotGroup: false,
      label: 'B2B guest',
    },
  };
}

export interface DemoLabOptions {
  readonly dataDir: string;
  /**
   * The cloud's port on 127.0.0.1: default 8443, 0 picks a free one. A device that already
   * exists was joined against its cloud's URL: then no port, or 0, means that URL's port, and
   * any other is refused (ERR_CLOUD_CONFIG).
   */
  readonly port?: number;
  /** The broker's port on 127.0.0.1; default 0 (a free one, written to broker.json). */
  readonly brokerPort?: number;
  readonly deviceName?: string;
  /** Lab time for the cloud, agent, broker and clients; a new LabClock by default. */
  readonly clock?: LabClock;
  /** One line per set-up step, for people; never a password. */
  readonly progress?: (line: string) => void;
  /** The cloud's and the broker's log lines (one per request or event); never tokens or passwords. */
  readonly log?: (source: 'cloud' | 'broker', line: string) => void;
  /** scrypt parameters for the demo users' password hashes (tests lower them). */
  readonly scrypt?: ScryptParams;
  /**
   * Checked between set-up steps: once aborted, set-up stops what it started (the cloud, the
   * agent) and throws the signal's reason. What it already created stays, for the next start.
   */
  readonly signal?: AbortSignal;
}

/** What the pilot's sign-in on the device came to at start. */
export type DemoSignIn =
  | { readonly state: 'kept'; readonly upn: string; readonly expiresAt: string }
  | { readonly state: 'signed-in'; readonly upn: string; readonly expiresAt: string }
  | { readonly state: 'refused'; readonly upn: string; readonly refusal: CloudRefusal };

export interface DemoLab {
  /** Absolute. */
  readonly dataDir: string;
  readonly clock: LabClock;
  readonly cloud: CloudHandle;
  readonly tenant: Tenant;
  readonly group: Group;
  readonly users: Readonly<Record<DemoRole, User>>;
  /** The demo policy as it was at start (read the directory for its state later). */
  readonly policy: StoredPolicy;
  readonly device: { readonly name: string; readonly dir: string; readonly config: DeviceConfig };
  readonly agent: DeviceAgent;
  readonly broker: BrokerHandle;
  /** `<data>/demo-credentials.json`. */
  readonly credentialsPath: string;
  /** Passwords this start generated; the only place they appear besides the credentials file. */
  readonly newPasswords: readonly { role: DemoRole; upn: string; password: string }[];
  /** What this start created (false: found from an earlier start). */
  readonly created: {
    readonly ca: boolean;
    readonly group: boolean;
    readonly users: Readonly<Record<DemoRole, boolean>>;
    readonly policy: boolean;
    readonly device: boolean;
  };
  readonly signIn: DemoSignIn;
  /** Stops the broker (its cache written out), the agent, then the cloud (the sign-in log flushed). */
  stop(): Promise<void>;
}

/** `<data>/demo-credentials.json`: one entry per demo role. */
interface CredentialsFile {
  readonly format: typeof CREDENTIALS_FORMAT;
  readonly version: 1;
  readonly tenant: string;
  readonly users: Partial<Record<DemoRole, { readonly upn: string; readonly password: string }>>;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** A password for a demo user: 24 characters from 18 random bytes. */
function newPassword(): string {
  return randomBytes(18).toString('base64url');
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * The credentials file, or undefined when there is none. It must be a regular file of this user
 * that nobody else can read (it holds passwords); anything else is ERR_CLOUD_STATE.
 */
async function readCredentials(path: string): Promise<CredentialsFile | undefined> {
  let text: string;
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new CloudStateError(`cannot open ${path}: ${code ?? String(err)}`, { cause: err });
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new CloudStateError(`${path} is not a regular file`);
    const me = typeof process.getuid === 'function' ? process.getuid() : undefined;
    if (me !== undefined && st.uid !== me)
      throw new CloudStateError(`${path} belongs to uid ${st.uid}, not to this user`);
    if ((st.mode & 0o077) !== 0)
      throw new CloudStateError(
        `${path} has mode 0${(st.mode & 0o777).toString(8)}, which lets others read the demo passwords; run: chmod 600 ${path}`,
      );
    if (st.size > MAX_CREDENTIALS_BYTES) throw new CloudStateError(`${path} is too large`);
    text = await handle.readFile('utf8');
  } finally {
    await handle.close().catch(() => {});
  }
  const bad = () =>
    new CloudStateError(
      `${path} is not a prtlab demo credentials file; move it away and start again (the demo users then get new passwords)`,
    );
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw bad();
  }
  const j = json as Partial<CredentialsFile> | null;
  if (
    typeof j !== 'object' ||
    j === null ||
    j.format !== CREDENTIALS_FORMAT ||
    j.version !== 1 ||
    typeof j.users !== 'object' ||
    j.users === null
  )
    throw bad();
  const users: CredentialsFile['users'] = {};
  for (const role of DEMO_ROLES) {
    const entry = (j.users as Record<string, unknown>)[role] as
      | { upn?: unknown; password?: unknown }
      | undefined;
    if (entry === undefined) continue;
    if (typeof entry !== 'object' || entry === null) throw bad();
    if (typeof entry.upn !== 'string' || typeof entry.password !== 'string') throw bad();
    users[role] = { upn: entry.upn, password: entry.password };
  }
  return {
    format: CREDENTIALS_FORMAT,
    version: 1,
    tenant: typeof j.tenant === 'string' ? j.tenant : '',
    users,
  };
}

function writeCredentials(path: string, file: CredentialsFile): Promise<void> {
  return atomicWriteFile(path, Buffer.from(`${JSON.stringify(file, null, 2)}\n`, 'utf8'), {
    mode: 0o600,
  });
}

/** The cloud port for this start: see DemoLabOptions.port. */
function cloudPort(requested: number | undefined, name: string, existing?: DeviceConfig): number {
  if (!existing) return requested ?? DEFAULT_CLOUD_PORT;
  const url = new URL(existing.cloudUrl);
  if (url.hostname !== '127.0.0.1' && url.hostname !== 'localhost')
    throw new CloudConfigError(
      `device ${name} was joined against ${existing.cloudUrl}, not a cloud on 127.0.0.1; use another device name`,
    );
  const recorded = Number(url.port || 443);
  if (requested === undefined || requested === 0 || requested === recorded) return recorded;
  throw new CloudConfigError(
    `device ${name} was joined against ${existing.cloudUrl}: the cloud must listen on port ${recorded} (give that port, or 0), or use another device name`,
  );
}

/** Starts the demo lab; see the module comment. */
export async function startDemoLab(options: DemoLabOptions): Promise<DemoLab> {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('options must be an object');
  const dataDir = resolve(options.dataDir);
  const name = options.deviceName ?? DEMO_DEVICE_NAME;
  const dir = deviceDir(dataDir, name);
  const clock = options.clock ?? new LabClock();
  const progress = options.progress ?? (() => {});
  const log = options.log ?? (() => {});
  const signal = options.signal;
  const checkpoint = () => signal?.throwIfAborted();

  // Stops what this start started, newest first; each step runs even if another fails.
  const stops: (() => Promise<void>)[] = [];
  let stopping: Promise<void> | undefined;
  const stopAll = (): Promise<void> => {
    stopping ??= (async () => {
      let first: unknown;
      for (const stop of stops.splice(0).reverse()) {
        try {
          await stop();
        } catch (err) {
          first ??= err;
        }
      }
      if (first !== undefined) throw first;
    })();
    return stopping;
  };

  try {
    checkpoint();
    const existingDevice = (await exists(dir)) ? await loadDeviceConfig(dataDir, name) : undefined;
    const port = cloudPort(options.port, name, existingDevice);

    let t = performance.now();
    const cloud = await startCloud({
      dataDir,
      port,
      clock: () => new Date(clock.now()),
      log: (line) => log('cloud', line),
      routes: (c) => [...tokenRoutes(c), ...coreRoutes(c)],
      ...(options.scrypt ? { scrypt: options.scrypt } : {}),
    });
    stops.push(() => cloud.close());
    const d = cloud.directory;
    progress(
      `cloud: ${cloud.caCreated ? 'created the lab CA and device CA; ' : ''}listening on ${cloud.url} (${seconds(performance.now() - t)})`,
    );
    progress(`tenant ${cloud.tenant.domain} (tenant id ${cloud.tenant.id})`);
    checkpoint();

    // The pilot group.
    let group = await d.groups.find(DEMO_GROUP_NAME);
    const groupCreated = group === undefined;
    group ??= await d.groups.create(
      DEMO_GROUP_NAME,
      'Users piloting token protection for Exchange Online and SharePoint Online',
    );
    progress(`${groupCreated ? 'created' : 'found'} group '${group.displayName}'`);

    // The users, their memberships and their passwords.
    const credentialsPath = join(dataDir, DEMO_CREDENTIALS_FILE);
    const stored = await readCredentials(credentialsPath);
    const specs = demoUserSpecs(cloud.tenant.domain);
    const users = {} as Record<DemoRole, User>;
    const usersCreated = {} as Record<DemoRole, boolean>;
    const passwords = {} as Record<DemoRole, string>;
    const newPasswords: { role: DemoRole; upn: string; password: string }[] = [];
    for (const role of DEMO_ROLES) {
      const spec = specs[role];
      let user = await d.users.findByUpn(spec.upn);
      usersCreated[role] = user === undefined;
      const facts = [
        spec.label,
        ...(spec.inPilotGroup ? [`in '${group.displayName}'`] : []),
        ...spec.roles,
      ].join(', ');
      if (!user) {
        const password = newPassword();
        user = await d.users.create({
          upn: spec.upn,
          password,
          displayName: spec.displayName,
          kind: spec.kind,
          roles: spec.roles,
          groups: spec.inPilotGroup ? [group.id] : [],
        });
        passwords[role] = password;
        newPasswords.push({ role, upn: user.upn, password });
        progress(`created user ${user.upn} (${facts})`);
      } else {
        // Found: make sure it still has what the demo relies on.
        const member = await d.users.memberOf(user.id);
        if (spec.inPilotGroup && !member.groups.some((g) => g.id === group.id))
          await d.groups.addMember(group.id, user.id);
        for (const r of spec.roles) {
          if (!member.roles.some((m) => m.displayName.toLowerCase() === r.toLowerCase()))
            await d.users.assignRole(user.id, r);
        }
        const known = stored?.users[role];
        if (
          known &&
          known.upn.toLowerCase() === user.upn.toLowerCase() &&
          (await d.users.verifyPassword(user.id, known.password))
        ) {
          passwords[role] = known.password;
          progress(`found user ${user.upn} (${facts})`);
        } else {
          const password = newPassword();
          await d.users.setPassword(user.id, password);
          passwords[role] = password;
          newPasswords.push({ role, upn: user.upn, password });
          progress(
            `found user ${user.upn} (${facts}); ${DEMO_CREDENTIALS_FILE} had no valid password for it, so it has a new one`,
          );
        }
      }
      users[role] = user;
    }
    if (newPasswords.length > 0) {
      const entries: CredentialsFile['users'] = {};
      for (const role of DEMO_ROLES)
        entries[role] = { upn: users[role].upn, password: passwords[role] };
      await writeCredentials(credentialsPath, {
        format: CREDENTIALS_FORMAT,
        version: 1,
        tenant: cloud.tenant.domain,
        users: entries,
      });
    }
    checkpoint();

    // The seed document's policy, report-only, for the pilot group, without the break-glass user.
    let policy = (await d.policies.list()).find((p) => p.policy.displayName === DEMO_POLICY_NAME);
    const policyCreated = policy === undefined;
    policy ??= await d.policies.create(
      tokenProtectionPreset({
        displayName: DEMO_POLICY_NAME,
        state: 'enabledForReportingButNotEnforced',
        includeGroups: [group.id],
        excludeUsers: [users.breakGlass.id],
      }),
    );
    progress(
      `${policyCreated ? 'created' : 'found'} policy '${DEMO_POLICY_NAME}' (id ${policy.id}, ${STATE_NAMES[policy.state]})`,
    );
    const warnings = lintPolicy(parsePolicy(policy.policy), {
      reportOnlyHistory: policy.reportOnlySince !== null,
    });
    for (const w of warnings) progress(`policy warning: ${w.message} [${w.code}]`);
    checkpoint();

    // The device: joined by the pilot user, keys in the built-in TPM.
    let config: DeviceConfig;
    if (existingDevice) {
      config = existingDevice;
      if (config.tenantId !== cloud.tenant.id)
        throw new CloudConfigError(
          `device ${name} belongs to tenant ${config.tenantId}, not to this cloud's ${cloud.tenant.id}; use another device name`,
        );
      const inCloud = await d.devices.get(config.deviceId);
      if (!inCloud)
        throw new CloudConfigError(
          `device ${name} (device id ${config.deviceId}) is no longer in the cloud's directory; remove it with 'prtlab device remove ${name} --local-only' and start again to join it anew`,
        );
      progress(
        `found device ${name} (device id ${config.deviceId}, ${config.joinType}, ${config.tpm} TPM${inCloud.enabled ? '' : ', disabled in the cloud'})`,
      );
    } else {
      progress(
        `device ${name}: creating its keys in the built-in TPM and joining it as ${users.pilot.upn} (Windows 11, ${DEFAULT_OS_VERSION})...`,
      );
      t = performance.now();
      const added = await addDevice({
        dataDir,
        name,
        joinType: 'joined',
        deviceType: 'windows',
        osVersion: DEFAULT_OS_VERSION,
        tpm: 'builtin',
        keystore: 'key-file',
        cloudUrl: cloud.url,
        cloudCaPem: await readPem(cloud.caPath),
        user: { upn: users.pilot.upn, password: passwords.pilot },
        clock,
      });
      config = added.config;
      progress(
        `device ${name}: joined, device id ${config.deviceId} (${seconds(performance.now() - t)})`,
      );
    }
    checkpoint();

    t = performance.now();
    const agent = await openDeviceAgent({ dataDir, name, clock, tickMs: RENEWAL_TICK_MS });
    stops.push(() => agent.close());
    progress(`device ${name}: agent started (${seconds(performance.now() - t)})`);

    // The pilot's PRT: kept if usable (accounts() renews one that is due), else a new sign-in.
    const pilotId = users.pilot.id.toLowerCase();
    let signIn: DemoSignIn;
    const prtExpiry = async () =>
      (await agent.deviceStatus()).Accounts.find((a) => a.AccountId === pilotId)
        ?.AzureAdPrtExpiryTime ?? '?';
    if ((await agent.accounts()).some((a) => a.id === pilotId)) {
      signIn = { state: 'kept', upn: users.pilot.upn, expiresAt: await prtExpiry() };
      progress(`device ${name}: ${users.pilot.upn} has a PRT until ${signIn.expiresAt}`);
    } else {
      t = performance.now();
      try {
        await agent.signIn(users.pilot.upn, passwords.pilot);
        signIn = { state: 'signed-in', upn: users.pilot.upn, expiresAt: await prtExpiry() };
        progress(
          `device ${name}: signed in ${users.pilot.upn}: PRT until ${signIn.expiresAt}, session key in the TPM (${seconds(performance.now() - t)})`,
        );
      } catch (err) {
        if (!(err instanceof AgentCloudError)) throw err;
        const refusal = err.refusal;
        signIn = { state: 'refused', upn: users.pilot.upn, refusal };
        progress(
          `device ${name}: the cloud refused ${users.pilot.upn}'s sign-in: AADSTS${refusal.aadsts} ${refusal.error} (correlation id ${refusal.correlationId})`,
        );
      }
    }
    checkpoint();

    const broker = await startBroker({
      agent,
      deviceDir: dir,
      port: options.brokerPort ?? 0,
      clock: () => clock.now(),
      log: (line) => log('broker', line),
    });
    stops.push(() => broker.close());
    progress(`device ${name}: broker on ${broker.url}`);

    return Object.freeze({
      dataDir,
      clock,
      cloud,
      tenant: cloud.tenant,
      group,
      users: Object.freeze(users),
      policy,
      device: Object.freeze({ name, dir, config }),
      agent,
      broker,
      credentialsPath,
      newPasswords: Object.freeze(newPasswords),
      created: Object.freeze({
        ca: cloud.caCreated,
        group: groupCreated,
        users: Object.freeze(usersCreated),
        policy: policyCreated,
        device: existingDevice === undefined,
      }),
      signIn,
      stop: stopAll,
    });
  } catch (err) {
    await stopAll().catch(() => {});
    throw err;
  }
}

async function readPem(path: string): Promise<string> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

/** One client run and what the sign-in log says about it. */
export interface DemoClientRun {
  readonly report: RunReport;
  /**
   * The sign-in log entry of the run's token request; absent when the token came from the
   * broker's cache (no request reached the cloud) or the run never got as far as the cloud.
   */
  readonly logEntry?: SignInEntry;
  /** The demo policy's result in that entry (e.g. reportOnlySuccess, success, failure). */
  readonly policyResult?: string;
}

/**
 * Runs client stubs (default: OneDrive and Teams) as the pilot user on the lab's device, through
 * its broker without a password (a silent request for the signed-in account), and looks up each
 * run's entry in the sign-in log by its correlation id. The pilot must be signed in.
 */
export async function runDemoClients(
  lab: DemoLab,
  profiles: readonly string[] = DEMO_CLIENTS,
): Promise<DemoClientRun[]> {
  const env = {
    cloudUrl: lab.device.config.cloudUrl,
    tenant: lab.device.config.tenantId,
    caPem: lab.device.config.cloudCaPem,
    deviceDir: lab.device.dir,
    clock: () => lab.clock.now(),
  };
  const store = signInStoreFor(lab.cloud.services);
  const runs: DemoClientRun[] = [];
  for (const profile of profiles) {
    const report = await runClient(env, { profile, user: lab.users.pilot.upn });
    const id = report.signIn.correlationId;
    let logEntry: SignInEntry | undefined;
    if (typeof id === 'string' && /^[0-9a-f-]{36}$/i.test(id))
      logEntry = store.list({ filter: `correlationId eq '${id}'`, top: 1 }).value[0];
    const policyResult = logEntry?.appliedConditionalAccessPolicies.find(
      (p) => p.id === lab.policy.id,
    )?.result;
    runs.push({
      report,
      ...(logEntry ? { logEntry } : {}),
      ...(policyResult !== undefined ? { policyResult } : {}),
    });
  }
  return runs;
}
