/**
 * Browser SSO with the PRT cookie, end to end over HTTPS: `/authorize` with an
 * x-ms-RefreshTokenCredential minted by the independent test client (prt-protocol §6.3, as a
 * cookie or a header), the code it answers (RFC 6749 §4.1.2) and its redemption at the token
 * endpoint (RFC 6749 §4.1.3, PKCE per RFC 7636), Conditional Access at that redemption and the
 * sign-in log entry it leaves. The cloud's clock is offset, never waited for.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { coreRoutes } from '../../cloud/routes.ts';
import type { CloudHandle } from '../../cloud/server.ts';
import type { SignInEntry } from '../../cloud/signins/entry.ts';
import { SIGNINS_DB_NAME, SignInStore } from '../../cloud/signins/store.ts';
import { tokenRoutes } from '../../cloud/token-service/service.ts';
import { type Device, type Prt, PrtTestClient } from '../prt-client/client.ts';
import { type HttpResponse, httpsRequest } from '../prt-client/http.ts';
import {
  AZ_CLI,
  EXCHANGE,
  EXO_ID,
  entraError,
  ONEDRIVE,
  PASSWORD,
  startTestCloud,
  stopSignInCloud,
} from '../shared/cloud.ts';
import { devicePrt, joinDevice } from '../shared/devices.ts';

/** Microsoft Office: a public client; the redirect URI native clients use with Entra. */
const OFFICE = 'd3590ed6-52b3-4102-aeff-aad2292ab01c';
const NATIVE = 'https://login.microsoftonline.com/common/oauth2/nativeclient';
const GRAPH_SCOPE = 'https://graph.microsoft.com/User.Read offline_access';
const EDGE_UA =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87';
const MINUTE = 60_000;

let dir: string;
let cloud: CloudHandle;
let ca: string;
let store: SignInStore;
let client: PrtTestClient;
let upn: string;
let device: Device;
let prt: Prt;
let policies: unknown[] = [];
/** The cloud's clock runs `offset` ms ahead of the real one. */
let offset = 0;
const logLines: string[] = [];

const claimsOf = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

function location(r: HttpResponse): URL {
  expect(r.status, r.body).toBe(302);
  return new URL(String(r.headers.location));
}

/** An authorize request for Exchange (v1) as Microsoft Office, with `more` on top. */
function v1Query(more: Record<string, string> = {}): Record<string, string> {
  return {
    client_id: OFFICE,
    response_type: 'code',
    redirect_uri: NATIVE,
    resource: EXCHANGE,
    state: 'st-123',
    ...more,
  };
}

/** The code of a successful authorize answer, its state checked. */
function codeOf(r: HttpResponse, redirectUri = NATIVE, state = 'st-123'): string {
  const url = location(r);
  expect(`${url.origin}${url.pathname}`).toBe(redirectUri.replace(/\/$/, '') || redirectUri);
  expect(url.searchParams.get('state')).toBe(state);
  expect(url.searchParams.get('error')).toBeNull();
  const code = url.searchParams.get('code');
  expect(code).toBeTruthy();
  return code!;
}

async function signInCode(more: Record<string, string> = {}): Promise<string> {
  return codeOf(await client.authorize(v1Query(more), { credential: await client.prtCookie(prt) }));
}

function redeem(fields: Record<string, string>, v2 = false, userAgent = EDGE_UA) {
  return client.post(
    `/${client.tenant}/oauth2/${v2 ? 'v2.0/' : ''}token`,
    { grant_type: 'authorization_code', client_id: OFFICE, redirect_uri: NATIVE, ...fields },
    { 'user-agent': userAgent, 'client-request-id': randomUUID() },
  );
}

/** The interactive sign-in page: 200, HTML, no redirect, nothing about why. */
function expectInteractivePage(r: HttpResponse): void {
  expect(r.status).toBe(200);
  expect(r.headers.location).toBeUndefined();
  expect(String(r.headers['content-type'])).toMatch(/^text\/html/);
  expect(r.body).toContain('Interactive sign-in is required');
  expect(r.body).not.toMatch(/AADSTS|signature|nonce (expired|forged)|disabled/i);
}

/** The page with its per-request nonce blanked, to compare pages. */
const pageShape = (body: string) => body.replace(/data-sso-nonce="[^"]*"/, 'data-sso-nonce=""');

/**
 * The sign-in entries `match` selects. Found by content, not by position: some tests move the
 * cloud's clock ahead, so the newest entry is not always the last one written.
 */
function signIns(match: (e: SignInEntry) => boolean): SignInEntry[] {
  return store.list({ top: 1000 }).value.filter(match);
}

/** The sign-in entry of a token request redeem() sent (by its client-request-id). */
function signInOf(r: HttpResponse): SignInEntry {
  const id = String(r.headers['client-request-id']);
  const found = signIns((e) => e.correlationId === id);
  expect(found).toHaveLength(1);
  return found[0]!;
}

beforeAll(async () => {
  let s: SignInStore | undefined;
  ({ dir, cloud, ca } = await startTestCloud('prtlab-authorize-', {
    clock: () => new Date(Date.now() + offset),
    log: (line) => logLines.push(line),
    routes: (c) => {
      s = new SignInStore(join(c.paths.root, SIGNINS_DB_NAME));
      return [
        ...tokenRoutes(c, { policies: { list: async () => policies }, signIns: s }),
        ...coreRoutes(c),
      ];
    },
  }));
  store = s!;
  upn = `adele@${cloud.tenant.domain}`;
  await cloud.directory.users.create({ upn, password: PASSWORD, displayName: 'Adele Vance' });
  client = new PrtTestClient({ baseUrl: cloud.url, tenant: cloud.tenant.domain, ca });
  device = await joinDevice(client, upn, PASSWORD);
  prt = await devicePrt(client, device, { username: upn, password: PASSWORD });
}, 60_000);

afterAll(() => stopSignInCloud(store, cloud, dir));

beforeEach(() => {
  offset = 0;
  policies = [];
});

describe('/authorize with a valid PRT cookie (prt-protocol §6.3)', () => {
  it('v1, as a cookie: a code at the redirect URI, redeemed for an access token with the device and an unbound refresh token', async () => {
    const code = await signInCode();
    const r = await redeem({ code });
    expect(r.status, r.body).toBe(200);
    const j = JSON.parse(r.body);
    // A plain JSON answer: nothing is encrypted to the session key, unlike §6.1's.
    expect(j).toMatchObject({ token_type: 'Bearer', resource: EXCHANGE });
    expect(claimsOf(j.access_token)).toMatchObject({
      aud: EXCHANGE,
      appid: OFFICE,
      upn,
      deviceid: device.deviceId,
      amr: ['pwd', 'rsa'],
      ver: '1.0',
    });
    // Unbound: redeemable as a plain bearer refresh token, which a bound token never is (9990105).
    const again = await client.plainRefresh({
      clientId: OFFICE,
      refreshToken: j.refresh_token,
      resource: EXCHANGE,
    });
    expect(again.status, again.body).toBe(200);
  });

  it('v2, as a header, to a loopback redirect URI with a port: the code answers the scope', async () => {
    const redirectUri = 'http://localhost:8400/callback';
    const r = await client.authorize(
      {
        client_id: AZ_CLI,
        response_type: 'code',
        redirect_uri: redirectUri,
        scope: GRAPH_SCOPE,
        state: 'v2-state',
      },
      { credential: await client.prtCookie(prt), transport: 'header', v2: true },
    );
    const code = codeOf(r, redirectUri, 'v2-state');
    const t = await redeem({ code, client_id: AZ_CLI, redirect_uri: redirectUri }, true);
    expect(t.status, t.body).toBe(200);
    const j = JSON.parse(t.body);
    expect(j.scope).toBe(GRAPH_SCOPE);
    expect(claimsOf(j.access_token)).toMatchObject({
      aud: '00000003-0000-0000-c000-000000000000',
      azp: AZ_CLI,
      scp: 'User.Read',
      ver: '2.0',
    });
  });

  it('leaves no code, cookie or token in the server log', async () => {
    const cookie = await client.prtCookie(prt);
    const code = codeOf(await client.authorize(v1Query(), { credential: cookie }));
    const t = JSON.parse((await redeem({ code })).body);
    const log = logLines.join('\n');
    for (const secret of [cookie, code, prt.prt, t.access_token, t.refresh_token])
      expect(log).not.toContain(secret);
  });
});

describe('a credential that fails a check is ignored: the interactive page (§6.3)', () => {
  it('no cookie, a forged signature, a KDFv1 cookie for a KDFv2 session, a nonce not ours, a disabled device: the same page', async () => {
    const none = await client.authorize(v1Query());
    expectInteractivePage(none);
    const good = await client.prtCookie(prt);
    const [h, p, sig] = good.split('.') as [string, string, string];
    const forged = `${h}.${p}.${sig.startsWith('A') ? 'B' : 'A'}${sig.slice(1)}`;
    const kdf1 = await client.prtCookie(prt, undefined, 1);
    const notOurs = await client.prtCookie(prt, 'AQ'.padEnd(55, 'x'));
    for (const credential of [forged, kdf1, notOurs, 'not-a-jwt']) {
      for (const transport of ['cookie', 'header'] as const) {
        const r = await client.authorize(v1Query(), { credential, transport });
        expectInteractivePage(r);
        expect(pageShape(r.body)).toBe(pageShape(none.body));
      }
    }
    const other = await joinDevice(client, upn, PASSWORD);
    const otherPrt = await devicePrt(client, other, { username: upn, password: PASSWORD });
    await cloud.directory.devices.setEnabled(other.deviceId, false);
    const disabled = await client.authorize(v1Query(), {
      credential: await client.prtCookie(otherPrt),
    });
    expectInteractivePage(disabled);
    expect(pageShape(disabled.body)).toBe(pageShape(none.body));
  });

  it('the page hands out a nonce the cloud accepts for a new cookie', async () => {
    const page = await client.authorize(v1Query());
    const nonce = /data-sso-nonce="([^"]+)"/.exec(page.body)?.[1];
    expect(nonce).toBeTruthy();
    await signInCodeWithNonce(nonce!);
  });

  it('prompt=none answers interaction_required (AADSTS50058) at the redirect URI instead of a page', async () => {
    const url = location(await client.authorize(v1Query({ prompt: 'none' })));
    expect(`${url.origin}${url.pathname}`).toBe(NATIVE);
    expect(url.searchParams.get('error')).toBe('interaction_required');
    expect(url.searchParams.get('error_description')).toMatch(/^AADSTS50058: /);
    expect(url.searchParams.get('state')).toBe('st-123');
    expect(url.searchParams.get('code')).toBeNull();
    // With a valid cookie, prompt=none signs in silently.
    await signInCode({ prompt: 'none' });
  });

  it('prompt=login wants an interactive step: the page even with a valid cookie', async () => {
    const r = await client.authorize(v1Query({ prompt: 'login' }), {
      credential: await client.prtCookie(prt),
    });
    expectInteractivePage(r);
  });
});

async function signInCodeWithNonce(nonce: string): Promise<string> {
  return codeOf(
    await client.authorize(v1Query({ sso_nonce: nonce }), {
      credential: await client.prtCookie(prt, nonce),
    }),
  );
}

describe('a stale nonce: a fresh sso_nonce, once (prt-protocol §3 "Browser variant")', () => {
  it('redirects to the same authorize URL with a fresh sso_nonce; the same cookie again gets the page; a cookie over the new nonce signs in', async () => {
    const stale = await client.prtCookie(prt);
    offset = 6 * MINUTE; // past the 5-minute nonce lifetime
    const first = location(await client.authorize(v1Query(), { credential: stale }));
    expect(`${first.origin}${first.pathname}`).toBe(
      `${cloud.url}/${cloud.tenant.domain}/oauth2/authorize`,
    );
    for (const [k, v] of Object.entries(v1Query())) expect(first.searchParams.get(k)).toBe(v);
    const ssoNonce = first.searchParams.get('sso_nonce');
    expect(ssoNonce).toBeTruthy();
    // The attacker's case: the same cookie, re-presented at the URL with the fresh nonce.
    const query = Object.fromEntries(first.searchParams);
    expectInteractivePage(await client.authorize(query, { credential: stale }));
    // The browser's case: its SSO component signs a new cookie over the offered nonce.
    const code = codeOf(
      await client.authorize(query, { credential: await client.prtCookie(prt, ssoNonce) }),
    );
    expect((await redeem({ code })).status).toBe(200);
  });

  it('a cookie without a nonce (the older time-based form) is asked for one too', async () => {
    const r = await client.authorize(v1Query(), { credential: await client.prtCookie(prt, null) });
    expect(location(r).searchParams.get('sso_nonce')).toBeTruthy();
  });
});

describe('redirect URIs and request errors (RFC 6749 §4.1.2.1)', () => {
  it('refuses an unaccepted redirect URI with an AADSTS50011 page and never redirects to it', async () => {
    const cookie = await client.prtCookie(prt);
    for (const redirectUri of [
      'https://evil.example/callback',
      'urn:ietf:wg:oauth:2.0:oob',
      'http://localhost.evil.example/cb',
      'http://127.0.0.1@evil.example/cb',
      'http://localhost:8400/cb#frag',
      'https://localhost:8400/cb',
      `${NATIVE}/../evil`,
      'javascript:alert(1)//',
    ]) {
      const r = await client.authorize(v1Query({ redirect_uri: redirectUri }), {
        credential: cookie,
      });
      expect(r.status, redirectUri).toBe(400);
      expect(r.headers.location).toBeUndefined();
      expect(r.body).toMatch(/AADSTS50011: The redirect URI &#39;/);
      expect(r.body).not.toContain('code=');
    }
  });

  it('escapes what the error page echoes', async () => {
    const r = await client.authorize(
      v1Query({ redirect_uri: 'https://x.example/"><script>alert(1)</script>' }),
    );
    expect(r.status).toBe(400);
    expect(r.body).not.toContain('<script>');
    expect(r.body).toContain('&lt;script&gt;');
  });

  it('an unknown client or a missing redirect URI is a page too; a repeated parameter is refused', async () => {
    const unknown = await client.authorize(
      v1Query({ client_id: '11111111-2222-3333-4444-555555555555' }),
    );
    expect(unknown.status).toBe(400);
    expect(unknown.body).toContain('AADSTS700016');
    expect(unknown.headers.location).toBeUndefined();
    const { redirect_uri: _r, ...noRedirect } = v1Query();
    const missing = await client.authorize(noRedirect);
    expect(missing.body).toContain('AADSTS900144');
    expect(missing.headers.location).toBeUndefined();
    // RFC 6749 §3.1: parameters must not be repeated; which of two redirect URIs would count?
    const twice = await httpsRequest(
      `${cloud.url}/common/oauth2/authorize?${new URLSearchParams(v1Query())}&redirect_uri=${encodeURIComponent('https://evil.example/')}`,
      { ca },
    );
    expect(twice.status).toBe(400);
    expect(twice.body).toContain('AADSTS9002313');
    expect(twice.headers.location).toBeUndefined();
  });

  it('other errors go back to the redirect URI with error, description and state', async () => {
    const token = location(await client.authorize(v1Query({ response_type: 'token' })));
    expect(token.searchParams.get('error')).toBe('unsupported_response_type');
    expect(token.searchParams.get('state')).toBe('st-123');
    const resource = location(
      await client.authorize(v1Query({ resource: 'https://nowhere.example' })),
    );
    expect(resource.searchParams.get('error')).toBe('invalid_resource');
    expect(resource.searchParams.get('error_description')).toMatch(/^AADSTS50001: /);
    const plain = location(
      await client.authorize(v1Query({ code_challenge: 'x'.repeat(43) }), {
        credential: await client.prtCookie(prt),
      }),
    );
    expect(plain.searchParams.get('error')).toBe('invalid_request');
    expect(plain.searchParams.get('code')).toBeNull();
  });
});

describe('redeeming the code (RFC 6749 §4.1.3)', () => {
  it('is single use: a second redemption is refused and revokes what the first one got', async () => {
    const code = await signInCode();
    const first = await redeem({ code });
    expect(first.status).toBe(200);
    const again = await redeem({ code });
    expect(entraError(again.body)).toMatchObject({ error: 'invalid_grant', code: 70000 });
    expect(entraError(again.body).description).toMatch(/already redeemed/);
    const rt = JSON.parse(first.body).refresh_token;
    const refreshed = await client.plainRefresh({
      clientId: OFFICE,
      refreshToken: rt,
      resource: EXCHANGE,
    });
    expect(entraError(refreshed.body).code).toBe(50173);
  });

  it('is refused for another client, another redirect URI, the other endpoint version, or after 10 minutes', async () => {
    const code = await signInCode();
    const other = await redeem({ code, client_id: ONEDRIVE });
    expect(entraError(other.body).description).toMatch(/another client/);
    const redirect = await redeem({ code, redirect_uri: 'http://localhost:8400/' });
    expect(entraError(redirect.body).description).toMatch(/redirect_uri differs/);
    const v2 = await redeem({ code }, true);
    expect(entraError(v2.body).description).toMatch(/other endpoint version/);
    // Refusals for the wrong client do not spend the code: its own client still redeems it.
    expect((await redeem({ code })).status).toBe(200);
    const late = await signInCode();
    offset = 11 * MINUTE;
    expect(entraError((await redeem({ code: late })).body)).toMatchObject({
      error: 'invalid_grant',
      code: 70008,
    });
    const forged = await redeem({ code: `${late.slice(0, -4)}AAAA` });
    expect(entraError(forged.body).code).toBe(70000);
  });

  it('checks PKCE S256 (RFC 7636 §4.6): the right verifier passes, a wrong or missing one does not', async () => {
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const pkce = { code_challenge: challenge, code_challenge_method: 'S256' };
    const missing = await redeem({ code: await signInCode(pkce) });
    expect(entraError(missing.body).description).toMatch(/code_verifier does not match/);
    const wrong = await redeem({
      code: await signInCode(pkce),
      code_verifier: randomBytes(32).toString('base64url'),
    });
    expect(entraError(wrong.body).code).toBe(70000);
    const good = await redeem({ code: await signInCode(pkce), code_verifier: verifier });
    expect(good.status, good.body).toBe(200);
    // A verifier for a code issued without a challenge is refused (no PKCE downgrade).
    const unexpected = await redeem({ code: await signInCode(), code_verifier: verifier });
    expect(entraError(unexpected.body).description).toMatch(/no code_challenge/);
  });

  it('is refused once the PRT session is gone (the device deleted)', async () => {
    const other = await joinDevice(client, upn, PASSWORD);
    const otherPrt = await devicePrt(client, other, { username: upn, password: PASSWORD });
    const code = codeOf(
      await client.authorize(v1Query(), { credential: await client.prtCookie(otherPrt) }),
    );
    await cloud.directory.devices.delete(other.deviceId);
    expect(entraError((await redeem({ code })).body).code).toBe(50173);
  });
});

describe('Conditional Access and the sign-in log at the redemption', () => {
  const blockBrowsers = {
    id: '9c1e5a70-1d2e-4f3a-8b4c-5d6e7f8a9b0c',
    displayName: 'Block browser access',
    state: 'enabled',
    conditions: {
      users: { includeUsers: ['All'] },
      applications: { includeApplications: ['All'] },
      clientAppTypes: ['browser'],
    },
    grantControls: { operator: 'OR', builtInControls: ['block'] },
    sessionControls: null,
  };

  it('a policy blocking browser client apps blocks the code redemption (AADSTS53003)', async () => {
    const code = await signInCode();
    policies = [blockBrowsers];
    const r = await redeem({ code });
    expect(entraError(r.body)).toMatchObject({ error: 'invalid_grant', code: 53003 });
    const e = signInOf(r);
    expect(e).toMatchObject({ clientAppUsed: 'Browser', conditionalAccessStatus: 'failure' });
    expect(e.status.errorCode).toBe(53003);
    expect(e.appliedConditionalAccessPolicies[0]).toMatchObject({
      id: blockBrowsers.id,
      result: 'failure',
    });
  });

  it('is a browser request whatever the User-Agent: the same policy blocks a desktop-looking one', async () => {
    const code = await signInCode();
    policies = [blockBrowsers];
    const r = await redeem({ code }, false, 'Microsoft Office/16.0 (Windows NT 10.0)');
    expect(entraError(r.body).code).toBe(53003);
  });

  it('logs a non-interactive PRT sign-in from a browser, with the device and the PRT session', async () => {
    // The PRT session id as the log knows it, from a request signed with the same PRT (§6.1).
    expect(
      (await client.appTokenViaPrt(prt, { clientId: ONEDRIVE, resource: EXCHANGE })).json,
    ).toBeTruthy();
    const viaPrt = signIns((e) => e.appId === ONEDRIVE && e.status.errorCode === 0);
    expect(viaPrt).toHaveLength(1);
    const sessionId = viaPrt[0]!.sessionId;
    expect(sessionId).toMatch(/^[0-9a-f-]{36}$/);
    const code = await signInCode();
    const r = await redeem({ code });
    expect(r.status).toBe(200);
    const e = signInOf(r);
    expect(e).toMatchObject({
      userPrincipalName: upn,
      appId: OFFICE,
      appDisplayName: 'Microsoft Office',
      resourceId: EXO_ID,
      resourceDisplayName: 'Office 365 Exchange Online',
      isInteractive: false,
      signInEventTypes: ['nonInteractiveUser'],
      incomingTokenType: 'primaryRefreshToken',
      clientAppUsed: 'Browser',
      userAgent: EDGE_UA,
      sessionId,
      status: { errorCode: 0 },
      deviceDetail: {
        deviceId: device.deviceId,
        browser: 'Edge 126',
        trustType: 'Azure AD joined',
        isManaged: true,
      },
      conditionalAccessStatus: 'notApplied',
      // A browser session is not bound: the token-protection evaluation says why (1008).
      tokenProtectionStatusDetails: {
        signInSessionStatus: 'unbound',
        signInSessionStatusCode: 1008,
      },
    });
    expect(e.correlationId).toBe(String(r.headers['client-request-id']));
  });

  it('an authorize request alone leaves no sign-in entry', async () => {
    const before = store.count();
    await signInCode();
    expectInteractivePage(await client.authorize(v1Query()));
    expect(store.count()).toBe(before);
  });
});
