/**
 * Token protection and hardware-backed registration (issue 7): the catalog edition decides
 * whether a device whose registration had no verified TPM attestation is unbound with 1004
 * "registration not hardware-backed" (docs/token-protection.md §3.3, [EN-APPLE]): 2025-ga yes,
 * 2023-preview no. End to end, the sign-in log's tokenProtectionStatusDetails shows it, and its
 * deviceDetail.isHardwareBacked (a lab member) shows the device record's hardwareBacked.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDeviceAgent } from '../../agent/devices.ts';
import { addDevice } from '../../agent/register.ts';
import { CATALOG, CLIENT_IDS, RESOURCE_IDS } from '../../cloud/ca/catalog.ts';
import { type CaRequest, tokenProtectionStatus } from '../../cloud/ca/evaluate.ts';
import type { User } from '../../cloud/directory/types.ts';
import { addTrustedManufacturer } from '../../cloud/registration/index.ts';
import { coreRoutes } from '../../cloud/routes.ts';
import type { CloudServices } from '../../cloud/services.ts';
import { buildSignIn } from '../../cloud/signins/entry.ts';
import { signInStoreFor } from '../../cloud/signins/registry.ts';
import { tokenRoutes } from '../../cloud/token-service/service.ts';
import { loadOrCreateManufacturerCa } from '../../tpm-sim/index.ts';
import { startTestCloud, stopTestCloud, type TestCloud } from '../shared/cloud.ts';

const PASSWORD = 'Correct-Horse-9';

function request(hardwareBacked: boolean | undefined): CaRequest {
  return {
    user: { id: randomUUID(), kind: 'member', groupIds: [], roleIds: [] },
    resourceAppId: RESOURCE_IDS.exchangeOnline,
    clientAppId: CLIENT_IDS.oneDriveSync,
    clientVersion: '24.1.0',
    clientAppType: 'mobileAppsAndDesktopClients',
    device: {
      id: randomUUID(),
      joinType: 0,
      trustType: 'AzureAd',
      operatingSystem: 'Windows',
      operatingSystemVersion: '10.0.22631',
      systemLabels: [],
      ...(hardwareBacked !== undefined ? { hardwareBacked } : {}),
    },
    bound: { prtSigned: true, viaBroker: true },
  };
}

describe('the 1004 rule per catalog edition', () => {
  it('2025-ga: a device that is not hardware-backed is unbound with 1004', () => {
    expect(tokenProtectionStatus(request(false), CATALOG['2025-ga'])).toEqual({
      signInSessionStatus: 'unbound',
      signInSessionStatusCode: 1004,
    });
    expect(tokenProtectionStatus(request(true), CATALOG['2025-ga'])).toEqual({
      signInSessionStatus: 'bound',
    });
    // A caller that does not say (not the token service, which always does) is not judged on it.
    expect(tokenProtectionStatus(request(undefined), CATALOG['2025-ga']).signInSessionStatus).toBe(
      'bound',
    );
  });

  it('2023-preview: no such requirement, the same device is bound', () => {
    expect(CATALOG['2023-preview'].requireHardwareBackedDevice.required).toBe(false);
    expect(CATALOG['2025-ga'].requireHardwareBackedDevice.required).toBe(true);
    expect(tokenProtectionStatus(request(false), CATALOG['2023-preview'])).toEqual({
      signInSessionStatus: 'bound',
    });
  });
});

describe('deviceDetail.isHardwareBacked (a lab member of the sign-in log)', () => {
  const base = {
    id: randomUUID(),
    createdAt: new Date(),
    tenantId: randomUUID(),
    app: { id: CLIENT_IDS.oneDriveSync, displayName: 'OneDrive SyncEngine' },
    clientAppType: 'mobileAppsAndDesktopClients',
    incomingTokenType: 'primaryRefreshToken',
    errorCode: 0,
  } as const;
  const device = {
    id: randomUUID(),
    displayName: 'PC-1',
    operatingSystem: 'Windows',
    operatingSystemVersion: '10.0.22631',
    trustType: 'AzureAd',
  } as const;

  it("is the device's hardwareBacked, false when not said or without a device", () => {
    const of = (d?: typeof device & { hardwareBacked?: boolean }) =>
      buildSignIn({ ...base, ...(d ? { device: d } : {}) }).deviceDetail.isHardwareBacked;
    expect(of({ ...device, hardwareBacked: true })).toBe(true);
    expect(of({ ...device, hardwareBacked: false })).toBe(false);
    expect(of(device)).toBe(false);
    expect(of()).toBe(false);
  });
});

describe('the sign-in log of a bound request from an unattested and an attested device', () => {
  let tc: TestCloud;
  let services: CloudServices | undefined;
  let data: string;
  let adele: User;

  beforeAll(async () => {
    tc = await startTestCloud('prtlab-attest-ca-', {
      routes: (c) => {
        services = c;
        return [...tokenRoutes(c), ...coreRoutes(c)];
      },
    });
    data = await mkdtemp(join(tmpdir(), 'prtlab-attest-ca-data-'));
    await loadOrCreateManufacturerCa(data);
    await addTrustedManufacturer(tc.cloud.paths.root, join(data, 'tpm-manufacturer', 'ca.pem'));
    adele = await tc.cloud.directory.users.create({
      upn: `adele@${tc.cloud.tenant.domain}`,
      password: PASSWORD,
    });
  }, 120_000);

  afterAll(async () => {
    await tc?.cloud.directory.policies.setEdition('2023-preview');
    await stopTestCloud(tc?.cloud, tc?.dir);
    if (data) await rm(data, { recursive: true, force: true });
  });

  /** Adds device `name` on `tpm`, signs adele in, gets an Exchange token; its log entry. */
  async function signInOf(name: string, tpm: string) {
    await addDevice({
      dataDir: data,
      name,
      tpm,
      cloudUrl: tc.cloud.url,
      cloudCaPem: tc.ca,
      user: { upn: adele.upn, password: PASSWORD },
    });
    const agent = await openDeviceAgent({ dataDir: data, name });
    try {
      await agent.signIn(adele.upn, PASSWORD);
      const correlationId = randomUUID();
      await agent.acquireToken({
        accountId: adele.id,
        clientId: CLIENT_IDS.oneDriveSync,
        resource: RESOURCE_IDS.exchangeOnline,
        clientVersion: '24.1.0',
        correlationId,
      });
      const entries = signInStoreFor(services!)
        .list({ top: 10_000 })
        .value.filter((e) => e.correlationId === correlationId);
      expect(entries).toHaveLength(1);
      return entries[0]!;
    } finally {
      await agent.close();
    }
  }

  async function tokenProtectionOf(name: string, tpm: string) {
    return (await signInOf(name, tpm)).tokenProtectionStatusDetails;
  }

  it('2025-ga: software keys are unbound 1004, the attested built-in TPM is bound', async () => {
    await tc.cloud.directory.policies.setEdition('2025-ga');
    expect(await tokenProtectionOf('SOFT-1', 'none')).toEqual({
      signInSessionStatus: 'unbound',
      signInSessionStatusCode: 1004,
    });
    expect(await tokenProtectionOf('TPM-1', 'builtin')).toEqual({
      signInSessionStatus: 'bound',
      signInSessionStatusCode: 0,
    });
  });

  it('2023-preview (the default): the unattested device is bound', async () => {
    await tc.cloud.directory.policies.setEdition('2023-preview');
    expect(await tokenProtectionOf('SOFT-2', 'none')).toEqual({
      signInSessionStatus: 'bound',
      signInSessionStatusCode: 0,
    });
  });

  it('deviceDetail.isHardwareBacked: true for the attested device, false for software keys', async () => {
    const attested = await signInOf('TPM-3', 'builtin');
    expect(attested.deviceDetail).toMatchObject({ isManaged: true, isHardwareBacked: true });
    const record = await tc.cloud.directory.devices.get(attested.deviceDetail.deviceId);
    expect(record?.hardwareBacked).toBe(true);
    const software = await signInOf('SOFT-3', 'none');
    expect(software.deviceDetail).toMatchObject({ isManaged: true, isHardwareBacked: false });
    expect(software.deviceDetail.deviceId).not.toBe(attested.deviceDetail.deviceId);
    expect(
      (await tc.cloud.directory.devices.get(software.deviceDetail.deviceId))?.hardwareBacked,
    ).toBe(false);
  });
});
