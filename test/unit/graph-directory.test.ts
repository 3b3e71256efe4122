import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_IDS } from '../../cloud/directory/seed.ts';
import type { Application, User } from '../../cloud/directory/types.ts';
import { coreRoutes } from '../../cloud/routes.ts';
import type { CloudHandle } from '../../cloud/server.ts';
import { createUser, PASSWORD, startTestCloud, stopTestCloud } from '../shared/cloud.ts';
import { adminToken, expectGraphError, graphRequest } from '../shared/graph.ts';

let dir: string;
let cloud: CloudHandle;
let ca: string;
let admin: User;
let reader: User;
let plain: User;
let exchange: Application;
const joinedId = randomUUID();
const registeredId = randomUUID();
const VERIFIED_REASON = 'TPM attestation verified (test fixture)';

const get = (path: string, bearer?: string) => graphRequest(cloud, ca, 'GET', path, bearer);
const token = (user: User, resource?: Application) => adminToken(cloud, user, resource);

const q = (s: string): string => encodeURIComponent(s);

beforeAll(async () => {
  ({ dir, cloud, ca } = await startTestCloud('prtlab-graph-dir-', { routes: coreRoutes() }));
  admin = await createUser(cloud, 'caadmin', { roles: ['Conditional Access Administrator'] });
  reader = await createUser(cloud, 'reader', { roles: ['Security Reader'] });
  plain = await createUser(cloud, 'plain');
  await cloud.directory.users.create({
    upn: 'guest_x@fabrikam.test',
    password: PASSWORD,
    kind: 'guest',
    displayName: 'Guest X',
  });
  await cloud.directory.groups.create('Pilot', 'Token protection pilot');
  await cloud.directory.groups.create('Finance');
  await cloud.directory.devices.create({
    id: joinedId,
    displayName: 'PC-JOINED',
    joinType: 0,
    operatingSystem: 'Windows',
    operatingSystemVersion: '10.0.26100.1',
    attestation: { status: 'verified', reason: VERIFIED_REASON },
  });
  await cloud.directory.devices.create({
    id: registeredId,
    displayName: 'PC-REGISTERED',
    joinType: 4,
    operatingSystem: 'Windows',
    operatingSystemVersion: '10.0.22631.1',
  });
  exchange = (await cloud.directory.applications.get(APP_IDS.exchangeOnline))!;
}, 60_000);

afterAll(() => stopTestCloud(cloud, dir));

describe('Graph directory endpoints', () => {
  it('lists users in the Graph shape and filters by userPrincipalName and userType', async () => {
    const t = await token(admin);
    const all = await get('/beta/users', t);
    expect(all.status, all.body).toBe(200);
    expect(all.json['@odata.context']).toBe('https://graph.microsoft.com/beta/$metadata#users');
    expect(all.json['@odata.nextLink']).toBeUndefined();
    const me = all.json.value.find((u: { id: string }) => u.id === admin.id);
    expect(me).toEqual({
      id: admin.id,
      userPrincipalName: admin.upn,
      displayName: admin.displayName,
      userType: 'Member',
      accountEnabled: true,
    });

    const one = await get(`/beta/users?$filter=${q(`userPrincipalName eq '${plain.upn}'`)}`, t);
    expect(one.json.value.map((u: { id: string }) => u.id)).toEqual([plain.id]);
    const guests = await get(`/beta/users?$filter=${q("userType eq 'Guest'")}`, t);
    expect(
      guests.json.value.map((u: { userPrincipalName: string }) => u.userPrincipalName),
    ).toEqual(['guest_x@fabrikam.test']);
  });

  it('gets one user by id or UPN, 404 otherwise', async () => {
    const t = await token(reader);
    const byId = await get(`/beta/users/${plain.id}`, t);
    expect(byId.status, byId.body).toBe(200);
    expect(byId.json.userPrincipalName).toBe(plain.upn);
    expect((await get(`/beta/users/${q(plain.upn)}`, t)).json.id).toBe(plain.id);
    expectGraphError(await get(`/beta/users/${randomUUID()}`, t), 404, 'Request_ResourceNotFound');
  });

  it('lists groups and filters by displayName', async () => {
    const t = await token(admin);
    const r = await get(`/beta/groups?$filter=${q("displayName eq 'pilot'")}`, t);
    expect(r.status, r.body).toBe(200);
    expect(r.json['@odata.context']).toBe('https://graph.microsoft.com/beta/$metadata#groups');
    expect(r.json.value).toHaveLength(1);
    expect(r.json.value[0]).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      displayName: 'Pilot',
      description: 'Token protection pilot',
    });
    expect((await get(`/beta/groups/${r.json.value[0].id}`, t)).json.displayName).toBe('Pilot');
  });

  it('lists devices with object id and device id, filters by trustType', async () => {
    const t = await token(admin);
    const r = await get(`/beta/devices?$filter=${q("trustType eq 'AzureAd'")}`, t);
    expect(r.status, r.body).toBe(200);
    expect(r.json.value).toHaveLength(1);
    const d = r.json.value[0];
    expect(d).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      deviceId: joinedId,
      displayName: 'PC-JOINED',
      operatingSystem: 'Windows',
      operatingSystemVersion: '10.0.26100.1',
      trustType: 'AzureAd',
      accountEnabled: true,
      systemLabels: [],
      isCompliant: null,
      enrollmentProfileName: null,
      profileType: null,
      hardwareBacked: true,
      attestation: { status: 'verified', reason: VERIFIED_REASON },
    });
    expect(d.id).not.toBe(joinedId);
    expect((await get(`/beta/devices/${d.id}`, t)).json.deviceId).toBe(joinedId);
    // {id} is the object id, as in Graph; the device id does not address the object.
    expectGraphError(await get(`/beta/devices/${joinedId}`, t), 404, 'Request_ResourceNotFound');
    const ws = await get(`/beta/devices?$filter=${q("trustType eq 'Workplace'")}`, t);
    expect(ws.json.value.map((x: { deviceId: string }) => x.deviceId)).toEqual([registeredId]);
    expect(ws.json.value[0]).toMatchObject({
      hardwareBacked: false,
      attestation: { status: 'absent', reason: expect.stringMatching(/no TPM attestation/) },
    });
  });

  it('carries the lab members hardwareBacked and attestation, filterable', async () => {
    const t = await token(admin);
    const deviceIds = (r: { json: { value: { deviceId: string }[] } }) =>
      r.json.value.map((x) => x.deviceId);
    const hw = await get(`/beta/devices?$filter=${q('hardwareBacked eq true')}`, t);
    expect(hw.status, hw.body).toBe(200);
    expect(deviceIds(hw)).toEqual([joinedId]);
    const soft = await get(`/beta/devices?$filter=${q('hardwareBacked eq false')}`, t);
    expect(deviceIds(soft)).toEqual([registeredId]);
    const absent = await get(`/beta/devices?$filter=${q("attestation/status eq 'absent'")}`, t);
    expect(deviceIds(absent)).toEqual([registeredId]);
    const both = await get(
      `/beta/devices?$filter=${q("hardwareBacked eq true and trustType eq 'Workplace'")}`,
      t,
    );
    expect(both.json.value).toEqual([]);
    // A boolean member compares with true or false only.
    expectGraphError(
      await get(`/beta/devices?$filter=${q("hardwareBacked eq 'yes'")}`, t),
      400,
      'BadRequest',
    );
    // The single-object answer carries them too.
    const one = await get(`/beta/devices/${hw.json.value[0].id}`, t);
    expect(one.json).toMatchObject({
      hardwareBacked: true,
      attestation: { status: 'verified', reason: VERIFIED_REASON },
    });
  });

  it('pages with $top and @odata.nextLink', async () => {
    const t = await token(admin);
    const first = await get('/beta/users?$top=2', t);
    expect(first.json.value).toHaveLength(2);
    const next = first.json['@odata.nextLink'] as string;
    expect(next).toMatch(/\/beta\/users\?(%24|\$)top=2&\$skiptoken=/);
    const seen = [...first.json.value];
    let link: string | undefined = next;
    while (link !== undefined) {
      const page = await get(link, t);
      expect(page.status, page.body).toBe(200);
      seen.push(...page.json.value);
      link = page.json['@odata.nextLink'];
    }
    const all = await get('/beta/users', t);
    expect(seen.map((u) => u.id)).toEqual(all.json.value.map((u: { id: string }) => u.id));
    // A token from one query is refused by another.
    const token2 = new URL(next).searchParams.get('$skiptoken')!;
    expectGraphError(await get(`/beta/groups?$skiptoken=${q(token2)}`, t), 400, 'BadRequest');
    expectGraphError(await get('/beta/users?$top=0', t), 400, 'BadRequest');
  });

  it('answers a bad $filter with 400 naming the position', async () => {
    const t = await token(admin);
    const unknown = await get(`/beta/users?$filter=${q("mail eq 'x'")}`, t);
    expectGraphError(unknown, 400, 'BadRequest');
    expect(unknown.json.error.message).toMatch(/^at position 1:/);
    const syntax = await get(`/beta/devices?$filter=${q("trustType eq 'AzureAd' and")}`, t);
    expectGraphError(syntax, 400, 'BadRequest');
    expect(syntax.json.error.message).toMatch(/^at position 27:/);
  });

  it('refuses missing tokens, other audiences and users without a reader role', async () => {
    expectGraphError(await get('/beta/users'), 401, 'InvalidAuthenticationToken');
    expectGraphError(
      await get('/beta/users', await token(admin, exchange)),
      401,
      'InvalidAuthenticationToken',
    );
    expectGraphError(
      await get('/beta/devices', await token(plain)),
      403,
      'Authorization_RequestDenied',
    );
    expect((await get('/beta/devices', await token(reader))).status).toBe(200);
  });
});
