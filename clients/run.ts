/**
 * The one runner that drives any client profile the way the real client signs in:
 *
 *   - through the broker (profiles.ts `usesBroker`): with a password, acquireTokenInteractive
 *     (the password stands in for the sign-in UI); without, acquireTokenSilent for the cached
 *     account. The client never sees a refresh token (prt-protocol §6.2).
 *   - on its own: with a password, the password grant (ROPC); without, the access token in its
 *     own plain cache file while fresh, else its refresh token (`grant_type=refresh_token`). Both
 *     are bearer grants: whatever they return is unbound (prt-protocol §7).
 *
 * It then calls the resource stub with the access token and reports what happened, including
 * the AADSTS code when the cloud refused.
 */
import { randomUUID } from 'node:crypto';
import { BrokerClient, type TokenResult } from '../broker/client.ts';
import { type BrokerRpcError, isBrokerError } from '../broker/errors.ts';
import { ClientError, type ClientRefusal } from './errors.ts';
import { https } from './http.ts';
import {
  type ClientProfile,
  isDottedVersion,
  PROFILES,
  type ProfileName,
  type ResourceName,
  usesBroker,
} from './profiles.ts';
import { describeAnswer, RESOURCES, type ResourceTarget } from './resources.ts';
import { ClientTokenCache } from './token-cache.ts';

/** Where the client runs: the device's cloud (from its configuration) and its directory. */
export interface ClientEnvironment {
  /** The cloud's base URL, e.g. https://127.0.0.1:8443. */
  readonly cloudUrl: string;
  /** Tenant id (or domain) for the token endpoint. */
  readonly tenant: string;
  /** The lab CA the device trusts for the cloud's certificate. */
  readonly caPem: string;
  /** `<data>/devices/<NAME>`: broker.json and the non-broker clients' cache files. */
  readonly deviceDir: string;
  /** How to reach the broker; default: the broker named by `<deviceDir>/broker.json`. */
  readonly connectBroker?: () => Promise<BrokerClient>;
  /** Milliseconds since the epoch. */
  readonly clock?: () => number;
}

export interface RunOptions {
  readonly profile: ProfileName | string;
  readonly version?: string;
  readonly resource?: ResourceName | string;
  readonly user?: string;
  readonly password?: string;
}

export type SignInOutcome =
  | {
      readonly ok: true;
      /** How the token was obtained. */
      readonly how:
        | 'broker cache'
        | 'broker, PRT-signed request'
        | 'broker sign-in with password'
        | 'own token cache'
        | 'own refresh token'
        | 'own password sign-in';
      readonly upn: string;
      readonly expiresOn: number;
      readonly correlationId?: string;
      /** The access token carries a device id (issued to a PRT session). */
      readonly deviceBound: boolean;
    }
  | ({ readonly ok: false; readonly message: string } & ClientRefusal);

export interface RunReport {
  readonly profile: ClientProfile;
  readonly version: string;
  readonly viaBroker: boolean;
  readonly resource: ResourceTarget;
  readonly signIn: SignInOutcome;
  /** The resource call; absent when sign-in failed. */
  readonly call?: { readonly status: number; readonly summary: string };
}

/** Access tokens with less than this left are renewed (MSAL's offset). */
const REFRESH_OFFSET_S = 300;

function claims(jwt: string): Record<string, unknown> {
  try {
    return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8'));
  } catch {
    return {};
  }
}

/** Checks the run's names and version (ERR_CLIENT) and picks the defaults. */
export function resolveRun(options: RunOptions): {
  profile: ClientProfile;
  version: string;
  resource: ResourceTarget;
  viaBroker: boolean;
} {
  const profile = Object.hasOwn(PROFILES, options.profile)
    ? PROFILES[options.profile as ProfileName]
    : undefined;
  if (!profile)
    throw new ClientError(
      `no client profile '${String(options.profile).slice(0, 64)}' (see prtlab client list)`,
    );
  const version = options.version ?? profile.version;
  if (!isDottedVersion(version))
    throw new ClientError(
      `${profile.name}: version '${version.slice(0, 64)}' is not a dotted version such as ${profile.version}`,
    );
  const resourceName = options.resource ?? profile.resource;
  const resource = Object.hasOwn(RESOURCES, resourceName)
    ? RESOURCES[resourceName as ResourceName]
    : undefined;
  if (!resource)
    throw new ClientError(
      `${profile.name}: no resource '${String(resourceName).slice(0, 64)}' (exchange, sharepoint or graph)`,
    );
  if (options.password !== undefined && options.user === undefined)
    throw new ClientError(`${profile.name}: a password needs a user (--user UPN)`);
  return { profile, version, resource, viaBroker: usesBroker(profile, version) };
}

export async function runClient(env: ClientEnvironment, options: RunOptions): Promise<RunReport> {
  const { profile, version, resource, viaBroker } = resolveRun(options);
  const base = { profile, version, resource, viaBroker };
  const got = viaBroker
    ? await viaTheBroker(env, profile, version, resource, options)
    : await onItsOwn(env, profile, version, resource, options);
  if (!got.outcome.ok) return { ...base, signIn: got.outcome };
  const call = await callResource(env, profile, version, resource, got.accessToken);
  return { ...base, signIn: got.outcome, call };
}

interface Got {
  outcome: SignInOutcome;
  accessToken: string;
}

/** Untyped refusal fields (the broker's error data, the token endpoint's answer) as they arrived. */
interface RefusalFields {
  error?: unknown;
  aadsts?: unknown;
  correlationId?: unknown;
  subError?: unknown;
}

/** A ClientRefusal of `r`: each field kept when it has its type, else the fallback or null. */
function refusalOf(
  r: RefusalFields,
  fallback: { error: string; correlationId: string | null },
): ClientRefusal {
  return {
    error: typeof r.error === 'string' ? r.error : fallback.error,
    aadsts: typeof r.aadsts === 'number' ? r.aadsts : null,
    correlationId: typeof r.correlationId === 'string' ? r.correlationId : fallback.correlationId,
    subError: typeof r.subError === 'string' ? r.subError : null,
  };
}

function refused(message: string, r: RefusalFields): Got {
  return {
    accessToken: '',
    outcome: {
      ok: false,
      message,
      ...refusalOf(r, { error: 'unknown_error', correlationId: null }),
    },
  };
}

async function viaTheBroker(
  env: ClientEnvironment,
  profile: ClientProfile,
  version: string,
  resource: ResourceTarget,
  options: RunOptions,
): Promise<Got> {
  let broker: BrokerClient;
  try {
    broker = await (env.connectBroker?.() ?? BrokerClient.forDevice(env.deviceDir));
  } catch (err) {
    throw new ClientError(
      `${profile.name} signs in through the broker, which cannot be reached: ${(err as Error).message} (is 'prtlab device start' running?)`,
      { cause: err },
    );
  }
  try {
    let token: TokenResult;
    let how: 'broker cache' | 'broker, PRT-signed request' | 'broker sign-in with password';
    if (options.password !== undefined && options.user !== undefined) {
      token = await broker.acquireTokenInteractive({
        clientId: profile.appId,
        resource: resource.resource,
        username: options.user,
        password: options.password,
        clientVersion: version,
      });
      how = 'broker sign-in with password';
    } else {
      const { accounts } = await broker.getAccounts();
      const wanted = options.user?.toLowerCase();
      const account =
        wanted !== undefined
          ? accounts.find((a) => a.upn.toLowerCase() === wanted)
          : accounts.length === 1
            ? accounts[0]
            : undefined;
      if (!account)
        throw new ClientError(
          accounts.length === 0 || wanted !== undefined
            ? `${profile.name}: no account${wanted ? ` ${options.user}` : ''} is signed in on this device; give --user and --password`
            : `${profile.name}: several accounts are signed in on this device; give --user`,
        );
      token = await broker.acquireTokenSilent({
        clientId: profile.appId,
        resource: resource.resource,
        accountId: account.id,
        clientVersion: version,
      });
      how = token.fromCache ? 'broker cache' : 'broker, PRT-signed request';
    }
    return {
      accessToken: token.accessToken,
      outcome: {
        ok: true,
        how,
        upn: token.account.upn,
        expiresOn: token.expiresOn,
        // A cache hit's id names no request to the cloud, so no sign-in log entry has it.
        ...(token.fromCache ? {} : { correlationId: token.correlationId }),
        deviceBound: typeof claims(token.accessToken).deviceid === 'string',
      },
    };
  } catch (err) {
    if (isBrokerError(err, 'ERR_BROKER_RPC')) {
      const e = err as BrokerRpcError;
      return refused(e.message, { ...e.data });
    }
    throw err;
  } finally {
    await broker.close();
  }
}

async function onItsOwn(
  env: ClientEnvironment,
  profile: ClientProfile,
  version: string,
  resource: ResourceTarget,
  options: RunOptions,
): Promise<Got> {
  const now = Math.floor((env.clock ?? Date.now)() / 1000);
  const cache = await ClientTokenCache.open(env.deviceDir, profile.name, profile.appId);
  const token = (fields: Record<string, string>) => tokenRequest(env, profile, version, fields);

  let how: 'own token cache' | 'own refresh token' | 'own password sign-in';
  let answer: TokenAnswer;
  if (options.password !== undefined && options.user !== undefined) {
    answer = await token({
      grant_type: 'password',
      client_id: profile.appId,
      username: options.user,
      password: options.password,
      resource: resource.resource,
    });
    how = 'own password sign-in';
  } else {
    const account = cache.account(options.user);
    if (!account)
      throw new ClientError(
        cache.accountCount > 1 && options.user === undefined
          ? `${profile.name}: several accounts in ${cache.path}; give --user`
          : `${profile.name}: no sign-in${options.user ? ` for ${options.user}` : ''} in ${cache.path}; give --user and --password`,
      );
    const cached = account.accessTokens[resource.resource];
    if (cached && cached.expiresOn - now > REFRESH_OFFSET_S) {
      return {
        accessToken: cached.accessToken,
        outcome: {
          ok: true,
          how: 'own token cache',
          upn: account.upn,
          expiresOn: cached.expiresOn,
          deviceBound: typeof claims(cached.accessToken).deviceid === 'string',
        },
      };
    }
    if (account.refreshToken === undefined)
      throw new ClientError(
        `${profile.name}: the cached sign-in of ${account.upn} has expired; give --user and --password`,
      );
    answer = await token({
      grant_type: 'refresh_token',
      client_id: profile.appId,
      refresh_token: account.refreshToken,
      resource: resource.resource,
    });
    how = 'own refresh token';
    if (!answer.ok && answer.refusal.error === 'invalid_grant') {
      cache.forgetRefreshToken(account.upn);
      await cache.save();
    }
  }
  if (!answer.ok) return refused(answer.message, answer.refusal);
  const upn = String(claims(answer.accessToken).upn ?? options.user ?? '');
  cache.store(upn, resource.resource, {
    accessToken: answer.accessToken,
    expiresOn: answer.expiresOn,
    ...(answer.refreshToken !== undefined ? { refreshToken: answer.refreshToken } : {}),
  });
  await cache.save();
  return {
    accessToken: answer.accessToken,
    outcome: {
      ok: true,
      how,
      upn,
      expiresOn: answer.expiresOn,
      correlationId: answer.correlationId,
      deviceBound: typeof claims(answer.accessToken).deviceid === 'string',
    },
  };
}

type TokenAnswer =
  | {
      ok: true;
      accessToken: string;
      expiresOn: number;
      refreshToken?: string;
      correlationId: string;
    }
  | { ok: false; message: string; refusal: ClientRefusal };

/** One POST to the v1 token endpoint, as the client itself sends it. */
async function tokenRequest(
  env: ClientEnvironment,
  profile: ClientProfile,
  version: string,
  fields: Record<string, string>,
): Promise<TokenAnswer> {
  const correlationId = randomUUID();
  const res = await https(`${env.cloudUrl}/${encodeURIComponent(env.tenant)}/oauth2/token`, {
    method: 'POST',
    ca: env.caPem,
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'user-agent': profile.userAgent.replace('{version}', version),
      // The lab's header for a client's version outside a signed request (README "Conditional
      // Access"); MSAL sends x-client-ver for its own version the same way.
      'x-app-ver': version,
      'client-request-id': correlationId,
    },
    body: new URLSearchParams(fields).toString(),
  });
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(res.body);
  } catch {
    // reported below with the status
  }
  if (res.status === 200 && typeof json.access_token === 'string') {
    const expiresOn = Number(json.expires_on);
    return {
      ok: true,
      accessToken: json.access_token,
      expiresOn: Number.isFinite(expiresOn) ? expiresOn : 0,
      ...(typeof json.refresh_token === 'string' ? { refreshToken: json.refresh_token } : {}),
      correlationId,
    };
  }
  const codes = Array.isArray(json.error_codes) ? json.error_codes : [];
  return {
    ok: false,
    message:
      typeof json.error_description === 'string'
        ? json.error_description
        : `the token endpoint answered HTTP ${res.status}`,
    refusal: refusalOf(
      {
        error: json.error,
        aadsts: codes[0],
        correlationId: json.correlation_id,
        subError: json.suberror,
      },
      { error: `http_${res.status}`, correlationId },
    ),
  };
}

async function callResource(
  env: ClientEnvironment,
  profile: ClientProfile,
  version: string,
  resource: ResourceTarget,
  accessToken: string,
): Promise<{ status: number; summary: string }> {
  const res = await https(`${env.cloudUrl}${resource.path}`, {
    ca: env.caPem,
    headers: {
      authorization: `Bearer ${accessToken}`,
      'user-agent': profile.userAgent.replace('{version}', version),
    },
  });
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(res.body);
  } catch {
    json = undefined;
  }
  if (res.status === 200) return { status: 200, summary: describeAnswer(resource.name, json) };
  const codes = Array.isArray(json?.error_codes) ? (json?.error_codes as unknown[]) : [];
  const what = [
    typeof json?.error === 'string' ? json.error : undefined,
    typeof codes[0] === 'number' ? `AADSTS${codes[0]}` : undefined,
  ]
    .filter(Boolean)
    .join(' ');
  return { status: res.status, summary: what || 'refused' };
}

/** The report as the command prints it, one fact per line. */
export function formatReport(r: RunReport, now: number = Date.now()): string {
  const lines: string[] = [];
  const p = r.profile;
  lines.push(
    `client    ${p.displayName} ${r.version} (app id ${p.appId}, profile ${p.name}): ${
      r.viaBroker ? 'signs in through the broker' : 'signs in on its own (no broker)'
    }`,
  );
  const s = r.signIn;
  if (s.ok) {
    const left = Math.round((s.expiresOn - now / 1000) / 60);
    lines.push(
      `sign-in   ${s.upn}: token for ${r.resource.displayName} from the ${s.how}` +
        ` (${s.deviceBound ? 'device-bound' : 'not device-bound'}, expires in ${left} min` +
        `${s.correlationId ? `, correlation id ${s.correlationId}` : ''})`,
    );
  } else {
    lines.push(
      `sign-in   refused: ${s.aadsts !== null ? `AADSTS${s.aadsts} ` : ''}${s.error}` +
        `${s.subError ? ` (${s.subError})` : ''}` +
        `${s.correlationId ? `, correlation id ${s.correlationId}` : ''}`,
    );
    lines.push(`          ${s.message.split(' Trace ID:')[0]}`);
  }
  if (r.call) lines.push(`call      GET ${r.resource.path} -> ${r.call.status}: ${r.call.summary}`);
  return `${lines.join('\n')}\n`;
}
