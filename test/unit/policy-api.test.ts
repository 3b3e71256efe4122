import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RESOURCE_IDS } from '../../cloud/ca/catalog.ts';
import { APP_IDS } from '../../cloud/directory/seed.ts';
import type { Application, User } from '../../cloud/directory/types.ts';
import { coreRoutes } from '../../cloud/routes.ts';
import type { CloudHandle } from '../../cloud/server.ts';
import { httpsRequest } from '../prt-client/http.ts';
import { createUser, startTestCloud, stopTestCloud, withJson } from '../shared/cloud.ts';
import { adminToken, expectGraphError, graphRequest } from '../shared/graph.ts';

const POLICIES = '/beta/identity/conditionalAccess/policies';

let dir: string;
let cloud: CloudHandle;
let ca: string;
let admin: User;
let reader: User;
let exchange: Application;

const call = (method: string, path: string, bearer?: string, body?: unknown) =>
  graphRequest(cloud, ca, method, path, bearer, body);
const token = (user: User, resource?: Application) => adminToken(cloud, user, resource);

const policy = {
  displayName: 'Token protection',
  state: 'enabledForReportingButNotEnforced',
  conditions: {
    users: { includeUsers: ['All'], excludeUsers: ['GuestsOrExternalUsers'] },
    applications: { includeApplications: [RESOURCE_IDS.exchangeOnline] },
    clientAppTypes: ['mobileAppsAndDesktopClients'],
    platforms: { includePlatforms: ['windows'] },
  },
  sessionControls: { secureSignInSession: { isEnabled: true } },
};

beforeAll(async () => {
  ({ dir, cloud, ca } = await startTestCloud('prtlab-policy-api-', { routes: coreRoutes() }));
  admin = await createUser(cloud, 'caadmin', { roles: ['Conditional Access Administrator'] });
  reader = await createUser(cloud, 'reader', { roles: ['Global Reader'] });
  exchange = (await cloud.directory.applications.get(APP_IDS.exchangeOnline))!;
}, 60_000);

afterAll(() => stopTestCloud(cloud, dir));

describe('/beta/identity/conditionalAccess/policies', () => {
  it('creates, reads, lists, patches and deletes a policy', async () => {
    const t = await token(admin);
    const created = await call('POST', POLICIES, t, policy);
    expect(created.status, created.body).toBe(201);
    const { id, createdDateTime, modifiedDateTime, warnings, ...rest } = created.json;
    expect(rest).toEqual(policy);
    expect(modifiedDateTime).toBeNull();
    expect(createdDateTime).toBeTruthy();
    expect(warnings.map((w: { code: string }) => w.code)).toEqual(['no-exclusion']);
    expect(created.headers.location).toBe(`${cloud.url}${POLICIES}/${id}`);

    const got = await call('GET', `${POLICIES}/${id}`, t);
    expect(got.status).toBe(200);
    expect(got.json).toEqual({ id, ...policy, createdDateTime, modifiedDateTime: null });

    const list = await call('GET', POLICIES, t);
    expect(list.json.value.map((p: { id: string }) => p.id)).toEqual([id]);

    const patched = await call('PATCH', `${POLICIES}/${id}`, t, { state: 'enabled' });
    expect(patched.status, patched.body).toBe(200);
    expect(patched.json.state).toBe('enabled');
    expect(patched.json.modifiedDateTime).toBeTruthy();
    expect(patched.json.warnings.map((w: { code: string }) => w.code)).toEqual(['no-exclusion']);

    const bad = await call('PATCH', `${POLICIES}/${id}`, t, { state: 'on' });
    expectGraphError(bad, 400, 'BadRequest');
    expect(bad.json.error.message).toMatch(/^state:/);

    expect((await call('DELETE', `${POLICIES}/${id}`, t)).status).toBe(204);
    expectGraphError(await call('GET', `${POLICIES}/${id}`, t), 404, 'ResourceNotFound');
    expectGraphError(await call('DELETE', `${POLICIES}/${id}`, t), 404, 'ResourceNotFound');
    expectGraphError(await call('PATCH', `${POLICIES}/x`, t, {}), 404, 'ResourceNotFound');
  });

  it('warns on create about an enabled policy that was never report-only', async () => {
    const t = await token(admin);
    const r = await call('POST', POLICIES, t, { ...policy, state: 'enabled' });
    expect(r.status).toBe(201);
    expect(r.json.warnings.map((w: { code: string }) => w.code)).toContain(
      'enabled-without-report-only',
    );
    await call('DELETE', `${POLICIES}/${r.json.id}`, t);
  });

  it('refuses invalid policies and non-JSON bodies with 400', async () => {
    const t = await token(admin);
    expectGraphError(await call('POST', POLICIES, t, { displayName: 'x' }), 400, 'BadRequest');
    const notJson = withJson(
      await httpsRequest(`${cloud.url}${POLICIES}`, {
        method: 'POST',
        ca,
        headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' },
        body: '{',
      }),
    );
    expectGraphError(notJson, 400, 'BadRequest');
  });

  it('answers 401 without a valid Graph token and 403 without an admin role', async () => {
    expectGraphError(await call('GET', POLICIES), 401, 'InvalidAuthenticationToken');
    expectGraphError(await call('GET', POLICIES, 'x.y.z'), 401, 'InvalidAuthenticationToken');
    const forExchange = await call('GET', POLICIES, await token(admin, exchange));
    expectGraphError(forExchange, 401, 'InvalidAuthenticationToken');
    const denied = await call('POST', POLICIES, await token(reader), policy);
    expectGraphError(denied, 403, 'Authorization_RequestDenied');
    expectGraphError(
      await call('GET', POLICIES, await token(reader)),
      403,
      'Authorization_RequestDenied',
    );
    expect((await cloud.directory.policies.list()).length).toBe(0);
  });

  it('lets Security Administrators and Global Administrators in', async () => {
    for (const role of ['Security Administrator', 'Global Administrator']) {
      const user = await createUser(cloud, role.split(' ')[0]!.toLowerCase(), { roles: [role] });
      expect((await call('GET', POLICIES, await token(user))).status).toBe(200);
    }
  });
});
