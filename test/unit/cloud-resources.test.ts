/**
 * The resource stubs (Exchange Online, SharePoint Online, Graph /me) over real HTTPS: a token for
 * the resource's audience is accepted; a token for another audience, an expired one, one with a
 * bad signature, or none at all gets a 401 with Entra's Bearer challenge. GET only.
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_IDS } from '../../cloud/directory/seed.ts';
import type { Application, User } from '../../cloud/directory/types.ts';
import { MAX_RESOURCE_DEPTH } from '../../cloud/resources/index.ts';
import { coreRoutes } from '../../cloud/routes.ts';
import type { CloudHandle } from '../../cloud/server.ts';
import { issueAccessToken } from '../../cloud/token-service/access-tokens.ts';
import { signRs256 } from '../../protocol/index.ts';
import { httpsRequest } from '../prt-client/http.ts';
import { type JsonReply, startTestCloud, stopTestCloud, withJson } from '../shared/cloud.ts';

const OUTLOOK_CLIENT = 'd3590ed6-52b3-4102-aeff-aad2292ab01c';

let dir: string;
let cloud: CloudHandle;
let ca: string;
let alice: User;
let skewMs = 0;
const apps: Record<'exchange' | 'sharepoint' | 'graph', Application> = {} as never;

async function get(path: string, bearer?: string, method = 'GET'): Promise<JsonReply> {
  return withJson(
    await httpsRequest(`${cloud.url}${path}`, {
      method,
      ca,
      headers: bearer === undefined ? {} : { authorization: `Bearer ${bearer}` },
    }),
  );
}

async function token(
  resource: Application,
  opts: { audience?: string; version?: 1 | 2; user?: User } = {},
): Promise<string> {
  const version = opts.version ?? 1;
  const { token: t } = await issueAccessToken(cloud.services, {
    user: opts.user ?? alice,
    clientId: OUTLOOK_CLIENT,
    resource,
    ...(version === 1 && opts.audience ? { audience: opts.audience } : {}),
    version,
    amr: ['pwd'],
    authTime: Math.floor(Date.now() / 1000),
  });
  return t;
}

function expectUnauthorized(r: JsonReply): void {
  expect(r.status, r.body).toBe(401);
  const challenge = String(r.headers['www-authenticate']);
  expect(
    challenge.startsWith(
      `Bearer realm="", authorization_uri="${cloud.url}/common/oauth2/authorize", error="invalid_token"`,
    ),
    challenge,
  ).toBe(true);
  expect(r.json.error_codes).toEqual([9990301]);
  expect(r.json.error_description).toMatch(/^AADSTS9990301: /);
  expect(r.body).not.toMatch(/\n\s+at /);
}

beforeAll(async () => {
  ({ dir, cloud, ca } = await startTestCloud('prtlab-resources-', {
    routes: coreRoutes(),
    clock: () => new Date(Date.now() + skewMs),
  }));
  alice = await cloud.directory.users.create({
    upn: `alice@${cloud.tenant.domain}`,
    password: 'Correct-Horse-9',
    displayName: 'Alice Lab',
  });
  apps.exchange = (await cloud.directory.applications.get(APP_IDS.exchangeOnline))!;
  apps.sharepoint = (await cloud.directory.applications.get(APP_IDS.sharePointOnline))!;
  apps.graph = (await cloud.directory.applications.get(APP_IDS.microsoftGraph))!;
}, 60_000);

afterAll(async () => {
  await stopTestCloud(cloud, dir);
});

describe('Exchange Online stub (/resources/exchange/...)', () => {
  it('lists messages for a token whose audience is https://outlook.office365.com', async () => {
    const t = await token(apps.exchange, { audience: 'https://outlook.office365.com' });
    const r = await get('/resources/exchange/api/v2.0/me/messages', t);
    expect(r.status, r.body).toBe(200);
    expect(r.json.value).toHaveLength(1);
    expect(r.json.value[0]).toMatchObject({
      subject: expect.any(String),
      toRecipients: [{ emailAddress: { address: alice.upn } }],
    });
  });

  it('accepts the app id audience (v2 token) on any path below it, up to the depth limit', async () => {
    const t = await token(apps.exchange, { version: 2 });
    const root = await get('/resources/exchange', t);
    expect(root.status).toBe(200);
    expect(root.json).toMatchObject({ service: 'Office 365 Exchange Online', path: '/' });
    const deep = `/resources/exchange${'/x'.repeat(MAX_RESOURCE_DEPTH)}`;
    const r = await get(deep, t);
    expect(r.status).toBe(200);
    expect(r.json.user).toEqual({ id: alice.id, userPrincipalName: alice.upn });
    expect((await get(`${deep}/y`, t)).status).toBe(404);
  });

  it('refuses a token for another resource, an expired one, a forged one and none', async () => {
    const path = '/resources/exchange/owa/';
    expectUnauthorized(await get(path, await token(apps.graph)));
    expectUnauthorized(await get(path, await token(apps.sharepoint, { version: 2 })));
    skewMs = -3 * 3600_000;
    const old = await token(apps.exchange, { audience: 'https://outlook.office365.com' });
    skewMs = 0;
    const expired = await get(path, old);
    expectUnauthorized(expired);
    expect(expired.json.error_description).toMatch(/expired/);
    const good = await token(apps.exchange, { audience: 'https://outlook.office365.com' });
    const [h, p] = good.split('.') as [string, string];
    const forged = signRs256(
      generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
      JSON.parse(Buffer.from(h, 'base64url').toString()),
      JSON.parse(Buffer.from(p, 'base64url').toString()),
    );
    expectUnauthorized(await get(path, forged));
    expectUnauthorized(await get(path));
    const basic = await httpsRequest(`${cloud.url}${path}`, {
      ca,
      headers: { authorization: 'Basic YWxpY2U6cHc=' },
    });
    expectUnauthorized({ ...basic, json: JSON.parse(basic.body) });
    expectUnauthorized(await get(path, 'x'.repeat(12_000)));
  });

  it('answers GET only (405 with Allow)', async () => {
    const t = await token(apps.exchange, { version: 2 });
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
      const r = await get('/resources/exchange/me/messages', t, method);
      expect(r.status).toBe(405);
      expect(r.json.error_codes).toEqual([900561]);
      expect(r.headers.allow).toBe('GET');
    }
  });
});

describe('SharePoint Online stub (/resources/sharepoint/...)', () => {
  it("takes the tenant's SharePoint host from the directory and returns a site", async () => {
    const host = apps.sharepoint.identifierUris[0]!;
    expect(host).toBe('https://contoso.sharepoint.com');
    for (const t of [
      await token(apps.sharepoint, { audience: host }),
      await token(apps.sharepoint, { version: 2 }),
    ]) {
      const r = await get('/resources/sharepoint/sites/lab/_api/web', t);
      expect(r.status, r.body).toBe(200);
      expect(r.json).toMatchObject({
        webUrl: `${host}/sites/lab`,
        path: '/sites/lab/_api/web',
        user: { id: alice.id },
      });
    }
  });

  it('refuses an Exchange token, an expired token and no token', async () => {
    const path = '/resources/sharepoint/sites/lab';
    expectUnauthorized(
      await get(path, await token(apps.exchange, { audience: 'https://outlook.office365.com' })),
    );
    skewMs = -3 * 3600_000;
    const old = await token(apps.sharepoint, { version: 2 });
    skewMs = 0;
    expectUnauthorized(await get(path, old));
    expectUnauthorized(await get(path));
    expect((await get(path, undefined, 'POST')).status).toBe(405);
  });
});

describe('Microsoft Graph /v1.0/me', () => {
  it('returns the signed-in user from the directory', async () => {
    const r = await get('/v1.0/me', await token(apps.graph, { version: 2 }));
    expect(r.status, r.body).toBe(200);
    expect(r.json).toMatchObject({
      id: alice.id,
      userPrincipalName: alice.upn,
      displayName: 'Alice Lab',
      userType: 'Member',
    });
    const v1 = await get(
      '/v1.0/me',
      await token(apps.graph, { audience: 'https://graph.microsoft.com' }),
    );
    expect(v1.status).toBe(200);
  });

  it('refuses other audiences, a forged token, no token, and a user the directory does not have', async () => {
    expectUnauthorized(await get('/v1.0/me', await token(apps.exchange, { version: 2 })));
    expectUnauthorized(await get('/v1.0/me', 'a.b.c'));
    expectUnauthorized(await get('/v1.0/me'));
    const ghost: User = { ...alice, id: randomUUID() };
    const r = await get('/v1.0/me', await token(apps.graph, { version: 2, user: ghost }));
    expect(r.status).toBe(400);
    expect(r.json.error_codes).toEqual([50034]);
    expect((await get('/v1.0/me', undefined, 'DELETE')).status).toBe(405);
  });
});
