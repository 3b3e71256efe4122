/**
 * Conditional Access at token issuance and the sign-in log, end to end over HTTPS: the seed
 * token-protection policy (token-protection.md §2.5) report-only, then enabled, against a plain
 * password token and a PRT-signed token from a joined Windows device.
 */

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CloudHandle } from '../../cloud/server.ts';
import type { SignInEntry } from '../../cloud/signins/entry.ts';
import type { SignInStore } from '../../cloud/signins/store.ts';
import { type Device, PrtTestClient } from '../prt-client/client.ts';
import { httpsRequest } from '../prt-client/http.ts';
import {
  AZ_CLI,
  DESKTOP_UA,
  EXCHANGE,
  EXO_ID,
  entraError,
  ONEDRIVE,
  PASSWORD,
  passwordToken,
  startSignInCloud,
  stopSignInCloud,
} from '../shared/cloud.ts';
import { devicePrt, joinDevice } from '../shared/devices.ts';
import { seedTokenProtectionPolicy } from '../shared/policies.ts';

let dir: string;
let cloud: CloudHandle;
let ca: string;
let client: PrtTestClient;
let store: SignInStore;
let upn: string;
let device: Device;
let policies: unknown[] = [];

function seedPolicy(state: string, pilotGroupId: string): Record<string, unknown> {
  return seedTokenProtectionPolicy({
    id: '5b0f6c3e-2a8f-4c1e-9d4a-6f1e2b3c4d5e',
    displayName: 'CA-TP-01 Require token protection - EXO/SPO - Windows desktop',
    state,
    breakGlassUserId: randomUUID(),
    pilotGroupId,
  });
}

/** A password grant from a Windows desktop client (the user agent gives the platform). */
function desktopPassword(resource: string) {
  return passwordToken(cloud, ca, {
    clientId: AZ_CLI,
    username: upn,
    password: PASSWORD,
    resource,
    userAgent: DESKTOP_UA,
  });
}

function latest(): SignInEntry {
  const page = store.list({ top: 1 });
  expect(page.value).toHaveLength(1);
  return page.value[0]!;
}

let pilotId: string;

beforeAll(async () => {
  ({ dir, cloud, ca, store } = await startSignInCloud('prtlab-signins-', () => policies));
  const pilot = await cloud.directory.groups.create('TP Pilot');
  pilotId = pilot.id;
  upn = `adele@${cloud.tenant.domain}`;
  await cloud.directory.users.create({
    upn,
    password: PASSWORD,
    displayName: 'Adele Vance',
    groups: [pilot.id],
  });
  client = new PrtTestClient({ baseUrl: cloud.url, tenant: 'common', ca });
  device = await joinDevice(client, upn, PASSWORD);
}, 60_000);

afterAll(() => stopSignInCloud(store, cloud, dir));

describe('sign-in logs and Conditional Access at token issuance', () => {
  it('with no policies every token request is logged, CA notApplied', async () => {
    policies = [];
    const r = await desktopPassword(EXCHANGE);
    expect(r.status, r.body).toBe(200);
    const e = latest();
    expect(e).toMatchObject({
      userPrincipalName: upn.toLowerCase(),
      appId: AZ_CLI,
      resourceId: EXO_ID,
      isInteractive: true,
      signInEventTypes: ['interactiveUser'],
      incomingTokenType: 'none',
      clientAppUsed: 'Mobile Apps and Desktop clients',
      status: { errorCode: 0 },
      conditionalAccessStatus: 'notApplied',
      appliedConditionalAccessPolicies: [],
    });
  });

  it('PRT acquisition is logged as an interactive sign-in to Windows Sign In from the device', async () => {
    await devicePrt(client, device, { username: upn, password: PASSWORD });
    expect(latest()).toMatchObject({
      userPrincipalName: upn.toLowerCase(),
      userDisplayName: 'Adele Vance',
      appId: '38aa3b87-a06d-4817-b275-7a316988d93b',
      appDisplayName: 'Windows Sign In',
      isInteractive: true,
      incomingTokenType: 'none',
      status: { errorCode: 0 },
      deviceDetail: { deviceId: device.deviceId, trustType: 'Azure AD joined' },
      sessionId: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
  });

  it('report-only: a plain password token for Exchange is allowed and logged reportOnlyFailure (1002)', async () => {
    policies = [seedPolicy('enabledForReportingButNotEnforced', pilotId)];
    const r = await desktopPassword(EXCHANGE);
    expect(r.status, r.body).toBe(200);
    const e = latest();
    expect(e.status.errorCode).toBe(0);
    expect(e.conditionalAccessStatus).toBe('notApplied');
    expect(e.appliedConditionalAccessPolicies).toEqual([
      expect.objectContaining({
        result: 'reportOnlyFailure',
        enforcedSessionControls: ['SignInTokenProtection'],
        sessionControlsNotSatisfied: ['SignInTokenProtection'],
      }),
    ]);
    expect(e.tokenProtectionStatusDetails).toEqual({
      signInSessionStatus: 'unbound',
      signInSessionStatusCode: 1002,
    });
  });

  it('enabled: the same request is refused with invalid_grant AADSTS53003 and logged failure', async () => {
    policies = [seedPolicy('enabled', pilotId)];
    const r = await desktopPassword(EXCHANGE);
    expect(r.status).toBe(400);
    const err = entraError(r.body);
    expect(err.error).toBe('invalid_grant');
    expect(err.code).toBe(53003);
    expect(err.description).toMatch(/blocked by Conditional Access/);
    const e = latest();
    expect(e.status.errorCode).toBe(53003);
    expect(e.conditionalAccessStatus).toBe('failure');
    expect(e.appliedConditionalAccessPolicies[0]?.result).toBe('failure');
    expect(e.tokenProtectionStatusDetails.signInSessionStatus).toBe('unbound');
  });

  it('enabled: a PRT-signed OneDrive request from a joined Windows device is allowed and logged bound', async () => {
    policies = [seedPolicy('enabled', pilotId)];
    const prt = await devicePrt(client, device, { username: upn, password: PASSWORD });
    const r = await client.appTokenViaPrt(prt, {
      clientId: ONEDRIVE,
      resource: EXCHANGE,
      appVer: '24.226.1110.0004',
    });
    expect(r.response.status, r.response.body).toBe(200);
    const e = latest();
    expect(e).toMatchObject({
      appId: ONEDRIVE,
      resourceId: EXO_ID,
      isInteractive: false,
      signInEventTypes: ['nonInteractiveUser'],
      incomingTokenType: 'primaryRefreshToken',
      clientAppUsed: 'Mobile Apps and Desktop clients',
      status: { errorCode: 0 },
      conditionalAccessStatus: 'success',
      deviceDetail: { deviceId: device.deviceId, trustType: 'Azure AD joined' },
      tokenProtectionStatusDetails: { signInSessionStatus: 'bound' },
    });
    expect(e.appliedConditionalAccessPolicies[0]).toMatchObject({
      result: 'success',
      enforcedSessionControls: ['SignInTokenProtection'],
      sessionControlsNotSatisfied: [],
    });
  });

  it('a device filter on isCompliant reads what device management recorded', async () => {
    // Token protection for every device except those management reports compliant: the filter
    // excludes compliant devices, so the bound request is first in scope, then out of it.
    policies = [
      {
        ...seedPolicy('enabled', pilotId),
        conditions: {
          ...(seedPolicy('enabled', pilotId).conditions as Record<string, unknown>),
          devices: {
            deviceFilter: { mode: 'exclude', rule: 'device.isCompliant -eq True' },
          },
        },
      },
    ];
    const prt = await devicePrt(client, device, { username: upn, password: PASSWORD });
    const ask = () =>
      client.appTokenViaPrt(prt, {
        clientId: ONEDRIVE,
        resource: EXCHANGE,
        appVer: '24.226.1110.0004',
      });
    expect((await ask()).response.status).toBe(200);
    expect(latest().appliedConditionalAccessPolicies[0]?.result).toBe('success');
    expect(latest().deviceDetail.isCompliant).toBe(false);

    await cloud.directory.devices.update(device.deviceId, { isCompliant: true });
    expect((await ask()).response.status).toBe(200);
    expect(latest().appliedConditionalAccessPolicies[0]?.result).toBe('notApplied');
    expect(latest().deviceDetail.isCompliant).toBe(true);
    await cloud.directory.devices.update(device.deviceId, { isCompliant: null });
  });

  it('failures before CA are logged with their AADSTS code', async () => {
    policies = [];
    const r = await client.passwordGrant({
      clientId: AZ_CLI,
      username: upn,
      password: 'Wrong-Horse-0',
      resource: EXCHANGE,
    });
    expect(r.status).toBe(400);
    const e = latest();
    expect(e.status.errorCode).toBe(50126);
    expect(e.userPrincipalName).toBe(upn.toLowerCase());
    expect(store.list({ filter: 'status/errorCode eq 53003' }).value).toHaveLength(1);
  });
});

describe('GET /beta/auditLogs/signIns', () => {
  async function graphToken(who: string): Promise<string> {
    const r = await client.passwordGrant({
      clientId: AZ_CLI,
      username: who,
      password: PASSWORD,
      resource: 'https://graph.microsoft.com',
    });
    expect(r.status, r.body).toBe(200);
    return JSON.parse(r.body).access_token;
  }
  const get = (path: string, token: string) =>
    httpsRequest(path.startsWith('https:') ? path : `${cloud.url}${path}`, {
      ca,
      headers: { authorization: `Bearer ${token}` },
    });

  it('refuses a user without a reader role (403, Graph error shape)', async () => {
    policies = [];
    const r = await get('/beta/auditLogs/signIns', await graphToken(upn));
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body).error.code).toBe('Authorization_RequestDenied');
  });

  it('a Security Reader pages newest first with $top, nextLink and $filter', async () => {
    policies = [];
    const reader = `sam@${cloud.tenant.domain}`;
    await cloud.directory.users.create({
      upn: reader,
      password: PASSWORD,
      displayName: 'Sam Reader',
      roles: ['Security Reader'],
    });
    const token = await graphToken(reader);
    const r1 = await get('/beta/auditLogs/signIns?$top=2&$orderby=createdDateTime%20desc', token);
    expect(r1.status, r1.body).toBe(200);
    const p1 = JSON.parse(r1.body);
    expect(p1.value).toHaveLength(2);
    expect(p1.value[0].userPrincipalName).toBe(reader.toLowerCase());
    expect(p1['@odata.nextLink']).toMatch(/\$skiptoken=/);
    const r2 = await get(p1['@odata.nextLink'], token);
    expect(r2.status, r2.body).toBe(200);
    const p2 = JSON.parse(r2.body);
    expect(p2.value).toHaveLength(2);
    expect(p2.value[0].id).not.toBe(p1.value[0].id);
    const f = await get(
      `/beta/auditLogs/signIns?$filter=${encodeURIComponent('status/errorCode eq 53003')}`,
      token,
    );
    expect(JSON.parse(f.body).value).toHaveLength(1);
    const bad = await get(
      `/beta/auditLogs/signIns?$filter=${encodeURIComponent('nope eq 1')}`,
      token,
    );
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).error.code).toBe('BadRequest');
  });
});
