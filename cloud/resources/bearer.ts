/**
 * Bearer access tokens at the cloud's protected endpoints (DRS and the resource stubs): the
 * `Authorization: Bearer` header (RFC 6750 §2.1) is read here and the token checked with the
 * token service's verifyAccessToken (signature, issuer, audience, lifetime). Every refusal is a
 * 401 with the challenge Entra's resources send:
 *
 *   WWW-Authenticate: Bearer realm="", authorization_uri="<base>/common/oauth2/authorize", error="invalid_token"
 *
 * A missing token gets the same challenge, as Exchange Online answers it. Tokens are never logged
 * or echoed.
 */

import { CloudRequestError } from '../errors.ts';
import type { CloudRequest } from '../http/server.ts';
import type { CloudServices } from '../services.ts';
import { type AccessTokenClaims, verifyAccessToken } from '../token-service/access-tokens.ts';

/** An access token is a compact JWS; anything longer than this is not one of the cloud's. */
const MAX_BEARER_CHARS = 16 * 1024;

export function bearerChallenge(baseUrl: string): string {
  return `Bearer realm="", authorization_uri="${baseUrl}/common/oauth2/authorize", error="invalid_token"`;
}

function noToken(req: CloudRequest): CloudRequestError {
  return new CloudRequestError(9990301, {
    description: 'No bearer access token was presented.',
    headers: { 'www-authenticate': bearerChallenge(req.baseUrl) },
  });
}

/** The bearer token of `req`; 401 (AADSTS9990301) if there is none or the header is malformed. */
export function bearerToken(req: CloudRequest): string {
  const header = req.headers.authorization;
  if (typeof header !== 'string') throw noToken(req);
  // One scheme, one token68 (RFC 6750 §2.1); the scheme is case-insensitive (RFC 9110 §11.1).
  const m = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i.exec(header.trim());
  if (!m || m[1]!.length > MAX_BEARER_CHARS) throw noToken(req);
  return m[1]!;
}

/**
 * Verifies the request's bearer token for one of `audiences` and returns its claims. Failures are
 * verifyAccessToken's 401s (AADSTS9990301, with the challenge above).
 */
export async function requireAccessToken(
  req: CloudRequest,
  cloud: CloudServices,
  audiences: readonly string[],
): Promise<AccessTokenClaims> {
  const token = bearerToken(req);
  return verifyAccessToken(cloud, token, { audiences, baseUrl: req.baseUrl });
}
