/**
 * The agent's side of attested registration (agent/register.ts `joinWithAttestation`): the
 * built-in TPM always sends attestation; when the cloud does not trust its manufacturer
 * (AADSTS9990215: the device's data directory is not the cloud's, and nobody ran `prtlab cloud
 * trust-tpm-ca`), the device registers once more without it and says so (ABSENT, not
 * hardware-backed); when the tenant requires attestation that second try is refused too, and the
 * first refusal is the one reported. Trusting the CA makes the next registration verified.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentCloudError, addDevice, deviceDir, openDeviceAgent } from '../../agent/index.ts';
import type { User } from '../../cloud/directory/types.ts';
import { isCloudError } from '../../cloud/errors.ts';
import type { RouteSpec } from '../../cloud/http/server.ts';
import { coreRoutes } from '../../cloud/routes.ts';
import type { CloudServices } from '../../cloud/services.ts';
import { tokenRoutes } from '../../cloud/token-service/service.ts';
import { runCli } from '../shared/cli.ts';
import { PASSWORD, startTestCloud, stopTestCloud, type TestCloud } from '../shared/cloud.ts';

let tc: TestCloud;
/** The devices' data directory: not the cloud's, so its TPM manufacturer CA is not trusted. */
let data: string;
let adele: User;
/** The outcome of each POST /EnrollmentServer/device (a join): 'ok' or the AADSTS refusal. */
let joins: (number | 'ok')[] = [];

/** The DRS join route, recording each outcome. */
function countingJoins(route: RouteSpec<CloudServices>): RouteSpec<CloudServices> {
  if (route.method !== 'POST' || route.path !== '/EnrollmentServer/device') return route;
  return {
    ...route,
    handler: async (req, context) => {
      try {
        const response = await route.handler(req, context);
        joins.push('ok');
        return response;
      } catch (err) {
        joins.push(isCloudError(err) ? err.aadsts : -1);
        throw err;
      }
    },
  };
}

function add(name: string) {
  return addDevice({
    dataDir: data,
    name,
    tpm: 'builtin',
    cloudUrl: tc.cloud.url,
    cloudCaPem: tc.ca,
    user: { upn: adele.upn, password: PASSWORD },
  });
}

/** The agent's status and the cloud's device record of device `name`. */
async function statusOf(name: string) {
  const agent = await openDeviceAgent({ dataDir: data, name });
  try {
    const status = await agent.deviceStatus();
    const record = await tc.cloud.directory.devices.get(agent.config.deviceId);
    return { status, record: record! };
  } finally {
    await agent.close();
  }
}

beforeAll(async () => {
  tc = await startTestCloud('prtlab-attest-agent-', {
    routes: (c) => [...tokenRoutes(c), ...coreRoutes(c)].map(countingJoins),
  });
  data = await mkdtemp(join(tmpdir(), 'prtlab-attest-agent-data-'));
  adele = await tc.cloud.directory.users.create({
    upn: `adele@${tc.cloud.tenant.domain}`,
    password: PASSWORD,
  });
}, 120_000);

afterAll(async () => {
  await stopTestCloud(tc?.cloud, tc?.dir);
  if (data) await rm(data, { recursive: true, force: true });
});

describe('a built-in TPM whose manufacturer the cloud does not trust', () => {
  it('still registers, without attestation: status ABSENT, HardwareBacked NO, the cloud says absent', async () => {
    joins = [];
    const result = await add('UNTRUSTED-1');
    expect(result.state).toBe('registered');
    // The attested join was refused for the chain, the plain one accepted.
    expect(joins).toEqual([9990215, 'ok']);
    const { status, record } = await statusOf('UNTRUSTED-1');
    expect(status).toMatchObject({
      AzureAdJoined: 'YES',
      TpmProtected: 'YES',
      AttestationStatus: 'ABSENT',
      HardwareBacked: 'NO',
    });
    expect(status.AttestationReason).toMatch(/no TPM attestation was presented/);
    expect(record.hardwareBacked).toBe(false);
    expect(record.attestation.status).toBe('absent');
    expect(record.attestation.reason).toBe(status.AttestationReason);
    expect(record.registeringUserId).toBe(adele.id);
  });

  it('is refused with the first refusal (9990215) when the tenant requires attestation', async () => {
    const policies = tc.cloud.directory.policies;
    await policies.setRequireHardwareBackedRegistration(true);
    joins = [];
    try {
      const err = await add('UNTRUSTED-2').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(AgentCloudError);
      expect((err as AgentCloudError).refusal.aadsts).toBe(9990215);
    } finally {
      await policies.setRequireHardwareBackedRegistration(false);
    }
    // The plain retry was made and refused for the tenant setting.
    expect(joins).toEqual([9990215, 9990220]);
    // A refused registration leaves no device behind.
    await expect(stat(deviceDir(data, 'UNTRUSTED-2'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(
      (await tc.cloud.directory.devices.list()).filter((d) => d.displayName === 'UNTRUSTED-2'),
    ).toEqual([]);
  });

  it('registers attested once `prtlab cloud trust-tpm-ca` trusts its manufacturer CA', async () => {
    const trusted = await runCli([
      'cloud',
      'trust-tpm-ca',
      join(data, 'tpm-manufacturer', 'ca.pem'),
      '--data',
      tc.dir,
    ]);
    expect(trusted.code, trusted.err).toBe(0);
    joins = [];
    await add('TRUSTED-1');
    expect(joins).toEqual(['ok']);
    const { status, record } = await statusOf('TRUSTED-1');
    expect(status).toMatchObject({ AttestationStatus: 'VERIFIED', HardwareBacked: 'YES' });
    expect(record.hardwareBacked).toBe(true);
    expect(record.attestation.status).toBe('verified');
    expect(record.attestation.reason).toContain('trusted-tpm-manufacturers/');
    // The earlier device keeps its record: trust applies from the next registration.
    expect((await statusOf('UNTRUSTED-1')).record.hardwareBacked).toBe(false);
  });
});
