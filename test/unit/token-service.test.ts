import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CloudHandle } from '../../cloud/server.ts';
import { tokenRoutes } from '../../cloud/token-service/service.ts';
import { PrtTestClient } from '../prt-client/client.ts';
import { AZ_CLI, entraError, PASSWORD, startTestCloud, stopTestCloud } from '../shared/cloud.ts';

const GRAPH = 'https://graph.microsoft.com';

let dir: string;
let cloud: CloudHandle;
let client: PrtTestClient;
let upn: string;

function decodeJwt(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString());
}

beforeAll(async () => {
  let ca: string;
  ({ dir, cloud, ca } = await startTestCloud('prtlab-token-', { routes: tokenRoutes }));
  upn = `adele@${cloud.tenant.domain}`;
  await cloud.directory.users.create({ upn, password: PASSWORD, displayName: 'Adele Vance' });
  client = new PrtTestClient({
    baseUrl: cloud.url,
    tenant: cloud.tenant.domain,
    ca,
  });
}, 60_000);

afterAll(() => stopTestCloud(cloud, dir));

describe('the token endpoint without a device', () => {
  it('srv_challenge returns a fresh opaque nonce', async () => {
    const a = await client.nonce();
    const b = await client.nonce();
    expect(a).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    expect(a).not.toBe(b);
  });

  it('password (v1, resource) issues an RS256 access token with Entra v1 claims and an unbound refresh token', async () => {
    const r = await client.passwordGrant({
      clientId: AZ_CLI,
      username: upn,
      password: PASSWORD,
      resource: GRAPH,
    });
    expect(r.status).toBe(200);
    const j = JSON.parse(r.body);
    expect(j.token_type).toBe('Bearer');
    expect(typeof j.expires_in).toBe('string');
    expect(j.resource).toBe(GRAPH);
    const claims = decodeJwt(j.access_token);
    expect(claims).toMatchObject({
      aud: GRAPH,
      iss: `https://sts.windows.net/${cloud.tenant.id}/`,
      tid: cloud.tenant.id,
      upn,
      appid: AZ_CLI,
      ver: '1.0',
      amr: ['pwd'],
    });
    expect(claims.deviceid).toBeUndefined();
    const header = JSON.parse(Buffer.from(j.access_token.split('.')[0], 'base64url').toString());
    expect(header).toMatchObject({ alg: 'RS256', kid: cloud.signingKey().kid });
    expect(j.refresh_token).toBeTruthy();
  });

  it('password (v2, scope) issues a v2 token whose audience is the resource app id', async () => {
    const r = await client.passwordGrant({
      clientId: AZ_CLI,
      username: upn,
      password: PASSWORD,
      scope: `${GRAPH}/.default offline_access`,
    });
    expect(r.status).toBe(200);
    const claims = decodeJwt(JSON.parse(r.body).access_token);
    expect(claims).toMatchObject({
      aud: '00000003-0000-0000-c000-000000000000',
      iss: `https://login.microsoftonline.com/${cloud.tenant.id}/v2.0`,
      azp: AZ_CLI,
      ver: '2.0',
    });
  });

  it('a plain refresh token is redeemed once and rotated', async () => {
    const first = JSON.parse(
      (
        await client.passwordGrant({
          clientId: AZ_CLI,
          username: upn,
          password: PASSWORD,
          resource: GRAPH,
        })
      ).body,
    );
    const r = await client.plainRefresh({
      clientId: AZ_CLI,
      refreshToken: first.refresh_token,
      resource: GRAPH,
    });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).refresh_token).not.toBe(first.refresh_token);
    const again = await client.plainRefresh({
      clientId: AZ_CLI,
      refreshToken: first.refresh_token,
      resource: GRAPH,
    });
    expect(again.status).toBe(400);
    expect(entraError(again.body)).toMatchObject({ error: 'invalid_grant', code: 50173 });
  });

  it('refuses with Entra-shaped errors: wrong password, unknown user, unknown client, bad grant, forged token, malformed request', async () => {
    const bad = await client.passwordGrant({
      clientId: AZ_CLI,
      username: upn,
      password: 'wrong-password',
      resource: GRAPH,
    });
    expect(entraError(bad.body)).toMatchObject({ error: 'invalid_grant', code: 50126 });
    const nobody = await client.passwordGrant({
      clientId: AZ_CLI,
      username: `nobody@${cloud.tenant.domain}`,
      password: PASSWORD,
      resource: GRAPH,
    });
    expect(entraError(nobody.body).code).toBe(50034);
    const app = await client.passwordGrant({
      clientId: '11111111-2222-3333-4444-555555555555',
      username: upn,
      password: PASSWORD,
      resource: GRAPH,
    });
    expect(entraError(app.body)).toMatchObject({ code: 700016 });
    const grant = await client.token({ grant_type: 'client_credentials' });
    expect(entraError(grant.body)).toMatchObject({ error: 'unsupported_grant_type', code: 70003 });
    const forged = await client.plainRefresh({
      clientId: AZ_CLI,
      refreshToken: '1.Rnot-a-token',
      resource: GRAPH,
    });
    expect(entraError(forged.body)).toMatchObject({ error: 'invalid_grant', code: 70000 });
    const junk = await client.token({
      grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
      request: 'not.a.jwt!',
    });
    expect(entraError(junk.body)).toMatchObject({ error: 'invalid_request', code: 9002313 });
    const missing = await client.token({ grant_type: 'password', client_id: AZ_CLI });
    expect(entraError(missing.body).code).toBe(900144);
    const resource = await client.passwordGrant({
      clientId: AZ_CLI,
      username: upn,
      password: PASSWORD,
      resource: 'https://nowhere.example',
    });
    expect(entraError(resource.body).code).toBe(50001);
  });

  it('a disabled user is refused after the right password (AADSTS50057)', async () => {
    const u = await cloud.directory.users.create({
      upn: `off@${cloud.tenant.domain}`,
      password: PASSWORD,
    });
    await cloud.directory.users.setEnabled(u.id, false);
    const r = await client.passwordGrant({
      clientId: AZ_CLI,
      username: u.upn,
      password: PASSWORD,
      resource: GRAPH,
    });
    expect(entraError(r.body).code).toBe(50057);
  });
});
