/**
 * The victim's lab for one scenario, in a fresh temporary directory: the simulated Entra ID
 * (startCloud with the token service and the core routes on 127.0.0.1, a free port), the demo
 * tenant (a pilot user in the "TP Pilot" group, a B2B guest in the same group, an excluded
 * break-glass Global Administrator), the seed token-protection policy of cloud/policies/preset.ts
 * (docs/token-protection.md §2.5: Exchange and SharePoint, Windows, desktop clients, the pilot
 * group, the break-glass account excluded), and devices made on demand with agent/ (built-in TPM)
 * with the pilot user signed in, each with its broker. The cloud and the devices share the lab's
 * data directory, so the cloud trusts the lab TPM manufacturer CA that issues the built-in TPMs'
 * EK certificates: a victim device registers TPM-attested (hardware-backed), and still registers
 * when a replay has the tenant require attestation.
 *
 * One lab clock drives the cloud, the agents and the brokers, so a scenario can let minutes pass
 * (a nonce's or an access token's lifetime) without waiting.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  addDevice,
  type DeviceAgent,
  type DeviceKind,
  deviceDir,
  LabClock,
  openDeviceAgent,
} from '../agent/index.ts';
import {
  BrokerClient,
  type BrokerHandle,
  readBrokerFile,
  startBroker,
  type TokenResult,
} from '../broker/index.ts';
import type { ClientEnvironment } from '../clients/run.ts';
import type { PolicyState } from '../cloud/ca/policy.ts';
import type { User } from '../cloud/directory/types.ts';
import { tokenProtectionPreset } from '../cloud/policies/preset.ts';
import { coreRoutes } from '../cloud/routes.ts';
import { type CloudHandle, startCloud } from '../cloud/server.ts';
import type { SignInEntry } from '../cloud/signins/entry.ts';
import { signInStoreFor } from '../cloud/signins/registry.ts';
import { tokenRoutes } from '../cloud/token-service/service.ts';
import { AttackError } from './errors.ts';
import { type HostKeystore, startHostKeystore } from './keyring.ts';
import {
  type PolicyStateName,
  TENANT_SETTINGS,
  type TenantSettingName,
  type TenantSettings,
} from './model.ts';
import { hostEnv, type Programs, runProgram } from './programs.ts';

/** scrypt parameters that keep the lab's password hashing cheap (its passwords protect nothing). */
const LAB_SCRYPT = { ln: 10, r: 8, p: 1 };

export const POLICY_STATE_OF: Readonly<Record<PolicyStateName, PolicyState>> = {
  off: 'disabled',
  reportOnly: 'enabledForReportingButNotEnforced',
  on: 'enabled',
};

export interface LabUsers {
  /** The victim: a member in the pilot group the policy includes. */
  readonly pilot: User;
  /** A B2B guest, also in the pilot group. */
  readonly guest: User;
  /** The break-glass Global Administrator, excluded from the policy. */
  readonly breakGlass: User;
}

const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A victim device: its agent (open for the lab's life) and its broker when one runs. */
export class VictimDevice {
  readonly name: string;
  readonly dir: string;
  readonly agent: DeviceAgent;
  readonly #clock: LabClock;
  #broker: BrokerHandle | undefined;

  constructor(name: string, dir: string, agent: DeviceAgent, clock: LabClock) {
    this.name = name;
    this.dir = dir;
    this.agent = agent;
    this.#clock = clock;
  }

  /** Starts the broker (a new caller secret in broker.json) unless one runs. */
  async ensureBroker(): Promise<BrokerHandle> {
    this.#broker ??= await startBroker({
      agent: this.agent,
      deviceDir: this.dir,
      clock: () => this.#clock.now(),
    });
    return this.#broker;
  }

  /**
   * An app's silent token request to the broker for `upn`'s account on this device, with
   * forceRefresh so that it always reaches the cloud (a cached answer would leave no sign-in to
   * observe). A refusal is the broker's BrokerRpcError.
   */
  async brokerToken(request: {
    upn: string;
    clientId: string;
    resource: string;
    clientVersion: string;
  }): Promise<TokenResult> {
    await this.ensureBroker();
    const { port, secret } = await readBrokerFile(this.dir);
    const client = await BrokerClient.connect({ port, secret });
    try {
      const { accounts } = await client.getAccounts();
      const account = accounts.find((a) => a.upn.toLowerCase() === request.upn.toLowerCase());
      if (!account) throw new AttackError(`${request.upn} is not signed in on ${this.name}`);
      return await client.acquireTokenSilent({
        clientId: request.clientId,
        resource: request.resource,
        accountId: account.id,
        clientVersion: request.clientVersion,
        forceRefresh: true,
      });
    } finally {
      await client.close();
    }
  }

  /** Signs `upn` in on this device once (a PRT of its own), as a second user of the device. */
  async ensureSignedIn(upn: string, password: string): Promise<void> {
    if (this.#signedIn.has(upn)) return;
    await this.agent.signIn(upn, password);
    this.#signedIn.add(upn);
  }

  readonly #signedIn = new Set<string>();

  /** Stops the broker, which writes its whole token cache first. */
  async stopBroker(): Promise<void> {
    const b = this.#broker;
    this.#broker = undefined;
    await b?.close();
  }

  async close(): Promise<void> {
    await this.stopBroker();
    await this.agent.close();
  }
}

export class VictimLab {
  readonly #devices = new Map<string, VictimDevice>();
  readonly #keystores: HostKeystore[] = [];

  /** The lab's temporary directory: the victim's data, the loot, the attackers' hosts. */
  readonly root: string;
  readonly dataDir: string;
  readonly clock: LabClock;
  readonly cloud: CloudHandle;
  readonly caPem: string;
  /** Every lab user's password (random per lab; reports never show it). */
  readonly password: string;
  readonly users: LabUsers;
  readonly policyId: string;

  private constructor(parts: {
    root: string;
    dataDir: string;
    clock: LabClock;
    cloud: CloudHandle;
    caPem: string;
    password: string;
    users: LabUsers;
    policyId: string;
  }) {
    this.root = parts.root;
    this.dataDir = parts.dataDir;
    this.clock = parts.clock;
    this.cloud = parts.cloud;
    this.caPem = parts.caPem;
    this.password = parts.password;
    this.users = parts.users;
    this.policyId = parts.policyId;
  }

  static async start(root: string): Promise<VictimLab> {
    const dataDir = join(root, 'victim');
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    const clock = new LabClock();
    const cloud = await startCloud({
      dataDir,
      port: 0,
      scrypt: LAB_SCRYPT,
      clock: () => new Date(clock.now()),
      routes: (c) => [...tokenRoutes(c), ...coreRoutes(c)],
    });
    try {
      const caPem = await readFile(cloud.caPath, 'utf8');
      const password = `Lab-${randomBytes(18).toString('base64url')}`;
      const d = cloud.directory;
      const pilotGroup = await d.groups.create('TP Pilot', 'token protection pilot');
      const domain = cloud.tenant.domain;
      const users: LabUsers = {
        pilot: await d.users.create({
          upn: `adele@${domain}`,
          password,
          displayName: 'Adele Vance',
          groups: [pilotGroup.id],
        }),
        guest: await d.users.create({
          upn: 'megan@fabrikam.test',
          password,
          displayName: 'Megan Bowen (Fabrikam)',
          kind: 'guest',
          groups: [pilotGroup.id],
        }),
        breakGlass: await d.users.create({
          upn: `breakglass@${domain}`,
          password,
          displayName: 'Break Glass',
          roles: ['Global Administrator'],
        }),
      };
      const policy = await d.policies.create(
        tokenProtectionPreset({
          state: 'disabled',
          includeGroups: [pilotGroup.id],
          excludeUsers: [users.breakGlass.id],
        }),
      );
      return new VictimLab({
        root,
        dataDir,
        clock,
        cloud,
        caPem,
        password,
        users,
        policyId: policy.id,
      });
    } catch (err) {
      await cloud.close();
      throw err;
    }
  }

  /** Sets the token-protection policy's state (what `prtlab policy set-state` does). */
  async setPolicyState(state: PolicyStateName): Promise<void> {
    const stored = await this.cloud.directory.policies.setState(
      this.policyId,
      POLICY_STATE_OF[state],
    );
    if (!stored) throw new AttackError('the lab lost its token-protection policy');
  }

  /** The tenant settings of model.ts TENANT_SETTINGS as the cloud has them now. */
  async tenantSettings(): Promise<Required<TenantSettings>> {
    return {
      requireAttestation: await this.cloud.directory.policies.requireHardwareBackedRegistration(),
    };
  }

  /**
   * Sets the tenant settings named in `settings` (what `prtlab cloud setting` does, from the next
   * request on); the others stay as they are.
   */
  async setTenantSettings(settings: TenantSettings): Promise<void> {
    for (const name of Object.keys(settings) as TenantSettingName[]) {
      const on = settings[name];
      if (on === undefined) continue;
      if (name === 'requireAttestation')
        await this.cloud.directory.policies.setRequireHardwareBackedRegistration(on);
    }
  }

  /** Puts every tenant setting back to the lab's default (TENANT_SETTINGS). */
  async resetTenantSettings(): Promise<void> {
    const defaults: Partial<Record<TenantSettingName, boolean>> = {};
    for (const [name, spec] of Object.entries(TENANT_SETTINGS))
      defaults[name as TenantSettingName] = spec.default;
    await this.setTenantSettings(defaults);
  }

  /**
   * The device of `kind` (created on first use): joined by the pilot user, who is signed in (a
   * PRT, its session key imported into the device's built-in TPM).
   */
  async device(kind: DeviceKind = 'windows'): Promise<VictimDevice> {
    const known = this.#devices.get(kind);
    if (known) return known;
    const name = `PC-${kind.toUpperCase()}`;
    const pilot = { upn: this.users.pilot.upn, password: this.password };
    await addDevice({
      dataDir: this.dataDir,
      name,
      deviceType: kind,
      cloudUrl: this.cloud.url,
      cloudCaPem: this.caPem,
      user: pilot,
      clock: this.clock,
    });
    const agent = await openDeviceAgent({ dataDir: this.dataDir, name, clock: this.clock });
    const device = new VictimDevice(name, deviceDir(this.dataDir, name), agent, this.clock);
    this.#devices.set(kind, device);
    try {
      await device.ensureSignedIn(pilot.upn, pilot.password);
    } catch (err) {
      throw new AttackError(`the victim could not sign in on ${name}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    return device;
  }

  /** How a client stub runs on `device` (clients/run.ts). */
  clientEnv(device: VictimDevice): ClientEnvironment {
    return {
      cloudUrl: this.cloud.url,
      tenant: this.cloud.tenant.id,
      caPem: this.caPem,
      deviceDir: device.dir,
      clock: () => this.clock.now(),
    };
  }

  /** An OS keystore for one simulated host (stopped with the lab at the latest). */
  async keystore(): Promise<HostKeystore> {
    const k = await startHostKeystore();
    this.#keystores.push(k);
    return k;
  }

  /**
   * A second victim device whose state key lives in the victim host's OS keystore, set up by the
   * victim host program (see victim-host.ts); returns its directory. Made once per lab.
   */
  async keystoreDevice(programs: Programs): Promise<string> {
    const dataDir = join(this.root, 'victim-keystore-host');
    const name = 'PC-KEYSTORE';
    const dir = deviceDir(dataDir, name);
    if (this.#keystoreDevice) return this.#keystoreDevice;
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    const keystore = await this.keystore();
    const result = await runProgram(programs.victimHost, {
      cwd: dataDir,
      env: hostEnv(dataDir, {
        DBUS_SESSION_BUS_ADDRESS: keystore.env.DBUS_SESSION_BUS_ADDRESS ?? '',
      }),
      input: JSON.stringify({
        dataDir,
        name,
        cloudUrl: this.cloud.url,
        caPath: this.cloud.caPath,
        upn: this.users.pilot.upn,
        password: this.password,
      }),
      timeoutMs: 60_000,
    });
    if (result.code !== 0)
      throw new AttackError(
        `the victim host could not set up its keystore device: ${result.stderr.trim().slice(-800)}`,
      );
    this.#keystoreDevice = dir;
    return dir;
  }

  #keystoreDevice: string | undefined;

  /** The sign-in log entry of a request, by its correlation id. */
  signInEntry(correlationId: string | undefined): SignInEntry | undefined {
    if (correlationId === undefined || !GUID_RE.test(correlationId)) return undefined;
    const page = signInStoreFor(this.cloud.services).list({
      filter: `correlationId eq '${correlationId}'`,
      top: 1,
    });
    return page.value[0];
  }

  async close(): Promise<void> {
    for (const d of this.#devices.values()) await d.close().catch(() => {});
    this.#devices.clear();
    await this.cloud.close();
    for (const k of this.#keystores.splice(0)) await k.stop();
  }
}
