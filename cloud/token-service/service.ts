/**
 * The token endpoint, `POST /{tenant}/oauth2/token` (v1) and `/{tenant}/oauth2/v2.0/token` (v2),
 * as a table of grants. `urn:ietf:params:oauth:grant-type:jwt-bearer` splits on the request JWT's
 * algorithm: RS256 is a PRT request signed by a device key, HS256 a request signed with a PRT's
 * session key. Beside it, the authorization endpoint `GET /{tenant}/oauth2/authorize` and
 * `/{tenant}/oauth2/v2.0/authorize` (authorize/index.ts: browser SSO with the PRT cookie), whose
 * codes `authorization_code` redeems; the two share the keys and the used-codes set.
 */
import { isProtocolError, parseCompact } from '../../protocol/index.ts';
import { CloudError, CloudRequestError, echo } from '../errors.ts';
import type { CloudRequest, CloudResponse, RouteSpec } from '../http/server.ts';
import type { CloudServices } from '../services.ts';
import { buildSignIn } from '../signins/entry.ts';
import { setSignInStore, signInStoreFor } from '../signins/registry.ts';
import type { SignInStore } from '../signins/store.ts';
import { newAuthCodeKey, UsedCodes } from '../tokens/auth-code.ts';
import { deriveTokenKeys, type TokenKeys } from '../tokens/keys.ts';
import { issueNonce, NONCE_LIFETIME_MS } from '../tokens/nonce.ts';
import { ReplayCache } from '../tokens/replay-cache.ts';
import { authorizeHandler } from './authorize/index.ts';
import {
  ConditionalAccessCache,
  directoryPolicySource,
  type PolicySource,
  type SignInDraft,
} from './conditional-access.ts';
import { type AuthCodes, optional, required, type TokenContext } from './context.ts';
import { authorizationCodeGrant } from './grants/authorization-code.ts';
import { passwordGrant } from './grants/password.ts';
import { prtRequestGrant } from './grants/prt-request.ts';
import { prtSignedGrant } from './grants/prt-signed.ts';
import { refreshTokenGrant } from './grants/refresh-token.ts';
import { loadOrCreateMasterKey } from './master-key.ts';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** The signed `request` JWT: a device certificate plus claims fits easily. */
const MAX_REQUEST_JWT = 32 * 1024;

async function jwtBearer(ctx: TokenContext): Promise<CloudResponse> {
  const request = required(ctx.form, 'request');
  let parsed: ReturnType<typeof parseCompact>;
  try {
    parsed = parseCompact(request, { maxLength: MAX_REQUEST_JWT, what: 'request' });
  } catch (err) {
    if (isProtocolError(err))
      throw new CloudRequestError(9002313, {
        description: 'Invalid request. The request JWT is malformed.',
        detail: err.message,
      });
    throw err;
  }
  if (parsed.header.alg === 'RS256') return { json: await prtRequestGrant(ctx, parsed, request) };
  if (parsed.header.alg === 'HS256') {
    ctx.signIn.incomingTokenType = 'primaryRefreshToken';
    return { body: await prtSignedGrant(ctx, parsed, request), contentType: 'application/jose' };
  }
  throw new CloudRequestError(9002313, {
    description: `Invalid request. Unsupported request alg '${echo(String(parsed.header.alg))}'.`,
  });
}

type Grant = (ctx: TokenContext) => Promise<CloudResponse>;

const GRANTS: Readonly<Record<string, Grant>> = {
  // A nonce for the next signed request (prt-protocol §3); answered without authentication.
  srv_challenge: async (ctx) => ({ json: { Nonce: issueNonce(ctx.keys.nonce, ctx.now * 1000) } }),
  password: async (ctx) => ({ json: await passwordGrant(ctx) }),
  refresh_token: async (ctx) => ({ json: await refreshTokenGrant(ctx) }),
  // RFC 6749 §4.1.3: the code of a PRT cookie sign-in at /authorize.
  authorization_code: async (ctx) => ({ json: await authorizationCodeGrant(ctx) }),
  [JWT_BEARER]: jwtBearer,
};

export interface TokenServiceOptions {
  /** Conditional Access policies; default: the directory's policy store. */
  readonly policies?: PolicySource;
  /** The sign-in log; default `<data>/cloud/signins.sqlite`, opened on the first request. */
  readonly signIns?: SignInStore;
  /**
   * Whether token requests are written to the sign-in log; default true. `false` turns logging
   * off entirely (no store is opened); the policy benchmark uses it to measure logging's cost.
   */
  readonly signInLog?: boolean;
}

/**
 * Client display names for the log, each kept for a minute: a directory read per token request
 * only to name the app costs more than the rest of the log entry. A rename shows within a minute.
 */
class AppNames {
  static readonly TTL_MS = 60_000;
  static readonly MAX = 1024;
  readonly #names = new Map<string, { name: string; until: number }>();

  async get(cloud: CloudServices, clientId: string): Promise<string> {
    const now = Date.now();
    const hit = this.#names.get(clientId);
    if (hit && hit.until > now) return hit.name;
    const name = (await cloud.directory.applications.get(clientId))?.displayName ?? '';
    if (this.#names.size >= AppNames.MAX) this.#names.clear();
    this.#names.set(clientId, { name, until: now + AppNames.TTL_MS });
    return name;
  }
}

/** Logs one token request; a logging failure never changes the answer. */
async function logSignIn(
  cloud: CloudServices,
  store: SignInStore,
  appNames: AppNames,
  ctx: TokenContext,
  err: unknown,
): Promise<void> {
  try {
    const d: SignInDraft = ctx.signIn;
    const clientId = d.clientId ?? optional(ctx.form, 'client_id') ?? '';
    const appName = clientId ? await appNames.get(cloud, clientId) : '';
    const ua = ctx.req.headers['user-agent'];
    const errorCode = err === undefined ? 0 : err instanceof CloudError ? err.aadsts : 50000;
    const entry = buildSignIn({
      id: ctx.req.ids.traceId,
      correlationId: ctx.req.ids.correlationId,
      createdAt: new Date(ctx.now * 1000),
      tenantId: cloud.tenant.id,
      ...(d.user ? { user: d.user } : {}),
      ...(d.attemptedUpn ? { attemptedUpn: d.attemptedUpn } : {}),
      app: { id: clientId, displayName: appName },
      ...(d.resource
        ? { resource: { id: d.resource.appId, displayName: d.resource.displayName } }
        : {}),
      // The directory Device: isCompliant and hardwareBacked become deviceDetail's members.
      ...(d.device ? { device: d.device } : {}),
      clientAppType: d.clientAppType ?? 'mobileAppsAndDesktopClients',
      incomingTokenType: d.incomingTokenType,
      errorCode,
      ...(err instanceof CloudError ? { failureReason: err.description } : {}),
      ...(d.evaluation ? { evaluation: d.evaluation } : {}),
      ...(d.sessionId ? { sessionId: d.sessionId } : {}),
      ...(typeof ua === 'string' ? { userAgent: ua } : {}),
    });
    store.add(entry);
  } catch (e) {
    cloud.log(`sign-in log: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** The token service's routes; keys are loaded once, on the first request. */
export function tokenRoutes(
  cloud: CloudServices,
  options: TokenServiceOptions = {},
): RouteSpec<CloudServices>[] {
  let keys: Promise<TokenKeys> | undefined;
  const loadKeys = (): Promise<TokenKeys> =>
    (keys ??= loadOrCreateMasterKey(cloud.paths).then((master) => {
      const k = deriveTokenKeys(master);
      master.fill(0);
      return k;
    }));
  // Codes live in this process only (cloud/tokens/auth-code.ts): a restart voids them.
  const authCodes: AuthCodes = { key: newAuthCodeKey(), used: new UsedCodes() };
  let replay: ReplayCache | undefined;
  const appNames = new AppNames();
  const conditionalAccess = new ConditionalAccessCache(
    options.policies ?? directoryPolicySource(cloud),
    (line) => cloud.log(line),
  );
  if (options.signIns) setSignInStore(cloud, options.signIns);
  const handler =
    (version: 1 | 2) =>
    async (req: CloudRequest): Promise<CloudResponse> => {
      const k = await loadKeys();
      replay ??= new ReplayCache(k.replay, NONCE_LIFETIME_MS);
      const form = await req.form();
      const ctx: TokenContext = {
        cloud,
        keys: k,
        replay,
        req,
        form,
        version,
        now: Math.floor(cloud.now().getTime() / 1000),
        conditionalAccess,
        signIn: { incomingTokenType: 'none' },
        authCodes,
      };
      const grantType = required(form, 'grant_type');
      const grant = GRANTS[grantType];
      if (!grant)
        throw new CloudRequestError(70003, {
          description: `The app requested an unsupported grant type '${echo(grantType)}'.`,
        });
      // Nonces are not sign-ins; every other request leaves one log entry, success or failure
      // (unless the log is off).
      if (grantType === 'srv_challenge' || options.signInLog === false) return grant(ctx);
      if (grantType === 'refresh_token') ctx.signIn.incomingTokenType = 'refreshToken';
      const store = signInStoreFor(cloud);
      try {
        const response = await grant(ctx);
        await logSignIn(cloud, store, appNames, ctx, undefined);
        return response;
      } catch (err) {
        await logSignIn(cloud, store, appNames, ctx, err);
        throw err;
      }
    };
  const authorizeDeps = { keys: loadKeys, authCodeKey: authCodes.key };
  return [
    { method: 'POST', path: '/{tenant}/oauth2/token', handler: handler(1) },
    { method: 'POST', path: '/{tenant}/oauth2/v2.0/token', handler: handler(2) },
    {
      method: 'GET',
      path: '/{tenant}/oauth2/authorize',
      handler: authorizeHandler(cloud, 1, authorizeDeps),
    },
    {
      method: 'GET',
      path: '/{tenant}/oauth2/v2.0/authorize',
      handler: authorizeHandler(cloud, 2, authorizeDeps),
    },
  ];
}
