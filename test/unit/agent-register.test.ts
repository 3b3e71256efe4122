/**
 * Device registration for each join type and device type (agent/register.ts), against a lab cloud
 * over HTTPS: what the cloud's device object records, what status reports, the hybrid join with
 * its wait for the computer object, the OS keystore as the keystore, and PRT renewal driven by a
 * real-time tick in a long-running agent.
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type AddDeviceOptions,
  addDevice,
  deviceDir,
  isAgentError,
  LabClock,
  loadDeviceConfig,
  openDeviceAgent,
} from '../../agent/index.ts';
import type { User } from '../../cloud/directory/types.ts';
import { parseOnPremDeviceCertificate } from '../../cloud/pki/device-cert.ts';
import { coreRoutes } from '../../cloud/routes.ts';
import { tokenRoutes } from '../../cloud/token-service/service.ts';
import {
  type KeyringEntry,
  _secretServiceInternals as keyring,
} from '../../tpm-sim/state/secret-service-source.ts';
import { startTestCloud, stopTestCloud, type TestCloud } from '../shared/cloud.ts';

const PASSWORD = 'Correct-Horse-9';
const EXCHANGE = 'https://outlook.office365.com';
const ONEDRIVE = 'ab9b8c07-8f02-4f72-87fa-80105867a763';
let tc: TestCloud;
let data: string;
let user: User;
let n = 0;
/** Real time as the lab clock sees it; tests move it as if time passed by itself. */
let realMs = Date.now();
const clock = new LabClock(() => realMs);

function options(extra: Partial<AddDeviceOptions> = {}): AddDeviceOptions {
  return {
    dataDir: data,
    name: `DEV-${++n}`,
    cloudUrl: tc.cloud.url,
    cloudCaPem: tc.ca,
    user: { upn: user.upn, password: PASSWORD },
    clock,
    ...extra,
  };
}

beforeAll(async () => {
  tc = await startTestCloud('prtlab-agent-reg-', {
    routes: (c) => [...tokenRoutes(c), ...coreRoutes(c)],
    clock: () => new Date(clock.now()),
  });
  data = await mkdtemp(join(tmpdir(), 'prtlab-agent-reg-data-'));
  user = await tc.cloud.directory.users.create({
    upn: `isaiah@${tc.cloud.tenant.domain}`,
    password: PASSWORD,
  });
}, 60_000);

afterAll(async () => {
  await stopTestCloud(tc?.cloud, tc?.dir);
  if (data) await rm(data, { recursive: true, force: true });
});

describe('device types and join types', () => {
  it.each([
    ['windows', 'Windows', []],
    ['windows-server', 'Windows Server', []],
    ['surface-hub', 'Windows 10 Team', []],
    ['teams-room', 'Windows', ['MicrosoftTeamsRoom']],
    ['avd', 'Windows', ['AzureVirtualDesktop']],
    ['cloud-pc', 'Windows', ['CloudPC']],
  ] as const)('%s registers as operatingSystem %s with labels %j', async (kind, os, labels) => {
    const { config } = await addDevice(options({ deviceType: kind, osVersion: '10.0.26100.1' }));
    expect(config.deviceType).toBe(kind);
    const record = await tc.cloud.directory.devices.get(config.deviceId);
    expect(record).toMatchObject({
      operatingSystem: os,
      operatingSystemVersion: '10.0.26100.1',
      systemLabels: labels,
    });
  });

  it('a registered device (workplace join): JoinType 4 in the cloud, WorkplaceJoined in status', async () => {
    const { config } = await addDevice(options({ joinType: 'registered' }));
    expect(await tc.cloud.directory.devices.get(config.deviceId)).toMatchObject({
      joinType: 4,
      trustType: 'Workplace',
    });
    const agent = await openDeviceAgent({ dataDir: data, name: config.name, clock });
    try {
      expect(await agent.deviceStatus()).toMatchObject({
        AzureAdJoined: 'NO',
        WorkplaceJoined: 'YES',
      });
      await agent.signIn(user.upn, PASSWORD);
      expect((await agent.deviceStatus()).AzureAdPrt).toBe('YES');
    } finally {
      await agent.close();
    }
  });

  it('loadDeviceConfig gives the broker the cloud URL and CA without opening the TPM', async () => {
    const { config } = await addDevice(options());
    expect(await loadDeviceConfig(data, config.name)).toEqual({
      name: config.name,
      deviceId: config.deviceId,
      tenantId: tc.cloud.tenant.id,
      cloudUrl: tc.cloud.url,
      cloudCaPem: tc.ca,
      joinType: 'joined',
      deviceType: 'windows',
      osVersion: '10.0.22631',
      tpm: 'builtin',
    });
  });
});

describe('hybrid join (prt-protocol §1.5)', () => {
  it('waits for the computer object, then joins once it is pre-created', async () => {
    const { user: _none, ...rest } = options();
    const first = await addDevice({
      ...rest,
      joinType: 'hybrid',
      tenant: tc.cloud.tenant.domain,
    });
    expect(first.state).toBe('awaiting-sync');
    const name = first.config.name;
    const pem = await readFile(first.computerCertificatePath!, 'utf8');
    expect(pem).toBe(first.computerCertificatePem);
    const onPrem = parseOnPremDeviceCertificate(pem);
    expect(onPrem.deviceId).toBe(first.config.deviceId);

    const waiting = await openDeviceAgent({ dataDir: data, name, clock });
    try {
      expect(await waiting.deviceStatus()).toMatchObject({
        AzureAdJoined: 'NO',
        DomainJoined: 'YES',
        DeviceAuthStatus: expect.stringMatching(/^FAILED\. The device is waiting/),
      });
      const err = await waiting.signIn(user.upn, PASSWORD).catch((e: unknown) => e);
      expect(isAgentError(err, 'ERR_AGENT_DEVICE')).toBe(true);
    } finally {
      await waiting.close();
    }

    // What Entra Connect would do: the computer object (its certificate) appears in the cloud.
    await tc.cloud.directory.devices.precreate({
      id: onPrem.deviceId,
      displayName: name,
      onPremCertificate: onPrem.der,
    });
    const second = await addDevice({
      ...rest,
      name,
      joinType: 'hybrid',
      tenant: tc.cloud.tenant.domain,
    });
    expect(second.state).toBe('registered');
    expect(await tc.cloud.directory.devices.get(onPrem.deviceId)).toMatchObject({
      joinType: 6,
      trustType: 'ServerAd',
      state: 'registered',
    });
    const agent = await openDeviceAgent({ dataDir: data, name, clock });
    try {
      await agent.signIn(user.upn, PASSWORD);
      expect(await agent.deviceStatus()).toMatchObject({
        AzureAdJoined: 'YES',
        DomainJoined: 'YES',
        DeviceAuthStatus: 'SUCCESS',
        AzureAdPrt: 'YES',
      });
      const t = await agent.acquireToken({
        accountId: user.id,
        clientId: ONEDRIVE,
        resource: EXCHANGE,
      });
      expect(t.accessToken.split('.')).toHaveLength(3);
    } finally {
      await agent.close();
    }
  });
});

describe('the OS keystore as the keystore', () => {
  afterEach(() => {
    keyring.createEntry = original;
  });
  const original = keyring.createEntry;

  it('keeps the key in Secret Service, not in a file, and opens again with it', async () => {
    const store = new Map<string, string>();
    keyring.createEntry = async (service: string, account: string): Promise<KeyringEntry> => ({
      getPassword: async () => store.get(`${service}/${account}`) ?? null,
      setPassword: async (p: string) => void store.set(`${service}/${account}`, p),
    });
    const { config } = await addDevice(options({ tpm: 'none', keystore: 'secret-service' }));
    expect([...store.keys()][0]).toMatch(/^prtlab-device\/[0-9a-f-]{36}$/);
    await expect(stat(join(deviceDir(data, config.name), 'keystore.key'))).rejects.toThrow();
    const agent = await openDeviceAgent({ dataDir: data, name: config.name, clock });
    try {
      const status = await agent.deviceStatus();
      expect(status.TpmProtected).toBe('NO');
      expect(status.Tpm).toMatch(/Secret Service item service="prtlab-device"/);
    } finally {
      await agent.close();
    }
    store.clear();
    const err = await openDeviceAgent({ dataDir: data, name: config.name, clock }).catch(
      (e: unknown) => e,
    );
    expect((err as { code?: string }).code).toBe('ERR_KEY_MISSING');
  });
});

describe('a long-running agent', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('renews the PRT on its real-time tick once 4 hours have passed', async () => {
    const { config } = await addDevice(options());
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const agent = await openDeviceAgent({
      dataDir: data,
      name: config.name,
      clock,
      tickMs: 60_000,
    });
    try {
      await agent.signIn(user.upn, PASSWORD);
      const first = (await agent.deviceStatus()).AzureAdPrtUpdateTime;
      realMs += 3 * 3600_000;
      vi.advanceTimersByTime(60_000);
      await agent.idle();
      expect((await agent.deviceStatus()).AzureAdPrtUpdateTime).toBe(first);
      realMs += 3600_000;
      vi.advanceTimersByTime(60_000);
      await agent.idle();
      expect((await agent.deviceStatus()).AzureAdPrtUpdateTime).not.toBe(first);
    } finally {
      await agent.close();
    }
  });
});
