/**
 * Access tokens: RS256 JWTs signed with the key the JWKS publishes (kid = RFC 7638 thumbprint),
 * with claims shaped like Entra's v1.0 and v2.0 tokens (aud, iss, tid, oid, sub, upn, appid or
 * azp, scp, deviceid when a device is known, amr, iat, nbf, exp). Resources check them with
 * verifyAccessToken.
 */
import { constants, createHash, randomBytes, sign } from 'node:crypto';
import { promisify } from 'node:util';
import { parseCompact, signRs256With, verifyRs256 } from '../../protocol/index.ts';
import type { Application, User } from '../directory/types.ts';
import { CloudRequestError } from '../errors.ts';
import type { CloudServices } from '../services.ts';

export interface AccessTokenClaims {
  aud: string;
  iss: string;
  tid: string;
  oid: string;
  sub: string;
  upn?: string;
  appid?: string;
  azp?: string;
  scp?: string;
  deviceid?: string;
  amr: string[];
  iat: number;
  nbf: number;
  exp: number;
  ver: '1.0' | '2.0';
  [k: string]: unknown;
}

const signAsync = promisify(sign);

/** Entra gives access tokens a lifetime of 60-90 minutes; the lab uses the middle, fixed. */
export const ACCESS_TOKEN_LIFETIME_S = 75 * 60;
/** Clock skew accepted when checking nbf/exp. */
const SKEW_S = 60;
const MAX_TOKEN_CHARS = 16 * 1024;

export function v1Issuer(tenantId: string): string {
  return `https://sts.windows.net/${tenantId}/`;
}

export function v2Issuer(tenantId: string): string {
  return `https://login.microsoftonline.com/${tenantId}/v2.0`;
}

/** `sub` is pairwise per application in Entra; here a stable hash of user and client. */
function pairwiseSub(userId: string, clientId: string): string {
  return createHash('sha256').update(`${userId}|${clientId}`).digest('base64url').slice(0, 43);
}

export async function issueAccessToken(
  cloud: CloudServices,
  args: {
    user: User;
    clientId: string;
    resource: Application;
    /** The audience as the client asked for it (v1: the resource URI or id); default: the resource's app id. */
    audience?: string;
    version: 1 | 2;
    scope?: string;
    deviceId?: string;
    amr: string[];
    authTime: number;
  },
): Promise<{ token: string; expiresIn: number; expiresOn: number; claims: AccessTokenClaims }> {
  const key = cloud.signingKey();
  const now = Math.floor(cloud.now().getTime() / 1000);
  const tid = cloud.tenant.id;
  const v1 = args.version === 1;
  const claims: AccessTokenClaims = {
    // v2 tokens carry the resource's app id as audience; v1 the resource as requested.
    aud: v1
      ? (args.audience ?? args.resource.identifierUris[0] ?? args.resource.appId)
      : args.resource.appId,
    iss: v1 ? v1Issuer(tid) : v2Issuer(tid),
    iat: now,
    nbf: now,
    exp: now + ACCESS_TOKEN_LIFETIME_S,
    amr: args.amr,
    auth_time: args.authTime,
    ...(v1 ? { appid: args.clientId, appidacr: '0' } : { azp: args.clientId, azpacr: '0' }),
    ...(args.deviceId ? { deviceid: args.deviceId } : {}),
    name: args.user.displayName,
    oid: args.user.id,
    scp: args.scope ?? 'user_impersonation',
    sub: pairwiseSub(args.user.id, args.clientId),
    tid,
    ...(v1
      ? { unique_name: args.user.upn, upn: args.user.upn }
      : { preferred_username: args.user.upn }),
    uti: randomBytes(16).toString('base64url'),
    ver: v1 ? '1.0' : '2.0',
  };
  // Signed on libuv's thread pool (sign with a callback): the RSA private-key operation is most of
  // a token request's CPU, and off the event loop it runs beside the next request's parsing.
  const token = await signRs256With(
    (input) =>
      signAsync('sha256', input, { key: key.privateKey, padding: constants.RSA_PKCS1_PADDING }),
    { typ: 'JWT', alg: 'RS256', x5t: key.x5t, kid: key.kid },
    claims,
  );
  return { token, expiresIn: ACCESS_TOKEN_LIFETIME_S, expiresOn: claims.exp, claims };
}

function unauthorized(base: string, description: string, detail?: string): CloudRequestError {
  return new CloudRequestError(9990301, {
    status: 401,
    description,
    ...(detail ? { detail } : {}),
    headers: {
      'www-authenticate': `Bearer realm="", authorization_uri="${base}/common/oauth2/authorize", error="invalid_token", error_description="${description}"`,
    },
  });
}

/**
 * Checks a bearer access token: the cloud's signature and kid, an issuer of this tenant (v1 or v2
 * form), an audience in `audiences`, and the lifetime. Any failure is a 401 with a Bearer
 * challenge (RFC 6750 §3), with one generic description for signature failures (no oracle).
 */
export async function verifyAccessToken(
  cloud: CloudServices,
  token: string,
  opts: { audiences: readonly string[]; baseUrl?: string },
): Promise<AccessTokenClaims> {
  const base = opts.baseUrl ?? '';
  const key = cloud.signingKey();
  let claims: AccessTokenClaims;
  try {
    const parsed = parseCompact(token, { maxLength: MAX_TOKEN_CHARS, what: 'access token' });
    if (parsed.header.alg !== 'RS256' || parsed.header.kid !== key.kid)
      throw new Error('unknown key');
    verifyRs256(key.publicKey, parsed, 'access token');
    claims = parsed.payload as AccessTokenClaims;
  } catch (err) {
    throw unauthorized(
      base,
      'The access token is invalid.',
      err instanceof Error ? err.message : undefined,
    );
  }
  const tid = cloud.tenant.id;
  if (claims.tid !== tid || (claims.iss !== v1Issuer(tid) && claims.iss !== v2Issuer(tid))) {
    throw unauthorized(base, 'The access token was issued by another tenant.');
  }
  const wanted = new Set(opts.audiences.map((a) => a.toLowerCase().replace(/\/$/, '')));
  if (typeof claims.aud !== 'string' || !wanted.has(claims.aud.toLowerCase().replace(/\/$/, ''))) {
    throw unauthorized(base, 'The access token is not for this resource.');
  }
  const now = Math.floor(cloud.now().getTime() / 1000);
  if (
    typeof claims.exp !== 'number' ||
    typeof claims.nbf !== 'number' ||
    now > claims.exp + SKEW_S ||
    now + SKEW_S < claims.nbf
  ) {
    throw unauthorized(base, 'The access token has expired.');
  }
  return claims;
}
