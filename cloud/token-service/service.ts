/**
 * The token endpoint, `POST /{tenant}/oauth2/token` (v1) and `/{tenant}/oauth2/v2.0/token` (v2),
 * as a table of grants. `urn:ietf:params:oauth:grant-type:jwt-bearer` splits on the request JWT's
 * algorithm: RS256 is a PRT request signed by a device key, HS256 a request signed with a PRT's
 * session key.
 */
import { isProtocolError, parseCompact } from '../../protocol/index.ts';
import { CloudRequestError, echo } from '../errors.ts';
import type { CloudRequest, CloudResponse, RouteSpec } from '../http/server.ts';
import type { CloudServices } from '../services.ts';
import { deriveTokenKeys, type TokenKeys } from '../tokens/keys.ts';
import { issueNonce, NONCE_LIFETIME_MS } from '../tokens/nonce.ts';
import { ReplayCache } from '../tokens/replay-cache.ts';
import { required, type TokenContext } from './context.ts';
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
  [JWT_BEARER]: jwtBearer,
};

/** The token service's routes; keys are loaded once, on the first request. */
export function tokenRoutes(cloud: CloudServices): RouteSpec<CloudServices>[] {
  let keys: Promise<TokenKeys> | undefined;
  let replay: ReplayCache | undefined;
  const handler =
    (version: 1 | 2) =>
    async (req: CloudRequest): Promise<CloudResponse> => {
      keys ??= loadOrCreateMasterKey(cloud.paths).then((master) => {
        const k = deriveTokenKeys(master);
        master.fill(0);
        return k;
      });
      const k = await keys;
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
      };
      const grantType = required(form, 'grant_type');
      const grant = GRANTS[grantType];
      if (!grant)
        throw new CloudRequestError(70003, {
          description: `The app requested an unsupported grant type '${echo(grantType)}'.`,
        });
      return grant(ctx);
    };
  return [
    { method: 'POST', path: '/{tenant}/oauth2/token', handler: handler(1) },
    { method: 'POST', path: '/{tenant}/oauth2/v2.0/token', handler: handler(2) },
  ];
}
