/**
 * `grant_type=refresh_token` with a bearer refresh token. Unbound tokens (from password or plain
 * refresh flows) are redeemed and rotated; a bound token (obtained through PRT-signed requests) is
 * refused: it is only good in a request signed with its session key (issue; prt-protocol §7 says
 * Entra's own behaviour here is not public, so this is the lab's rule, with lab code 9990105).
 */
import { CloudRequestError } from '../../errors.ts';
import { openRefreshToken, type RefreshTokenClaims } from '../../tokens/claims.ts';
import { issueAccessToken } from '../access-tokens.ts';
import { enforceConditionalAccess } from '../conditional-access.ts';
import { REFRESH_TOKEN_LIFETIME_S, required, type TokenContext } from '../context.ts';
import { issueRefreshToken } from '../refresh-tokens.ts';
import { resolveResource } from '../resources.ts';
import { tokenResponse } from '../response.ts';
import { knownClient } from './password.ts';

/** Opens a refresh token and checks what every redemption needs: ours, not expired, not revoked. */
export async function liveRefreshToken(
  ctx: TokenContext,
  token: string,
): Promise<RefreshTokenClaims> {
  const rt = openRefreshToken(ctx.keys.refreshToken, token);
  if (!rt || rt.tid !== ctx.cloud.tenant.id) throw new CloudRequestError(70000);
  if (rt.exp <= ctx.now) throw new CloudRequestError(70008);
  const record = await ctx.cloud.directory.tokens.get(rt.jti);
  if (!record || record.revokedAt !== null) throw new CloudRequestError(50173);
  return rt;
}

export async function refreshTokenGrant(ctx: TokenContext) {
  const clientId = required(ctx.form, 'client_id');
  ctx.signIn.clientId = clientId;
  await knownClient(ctx, clientId);
  const rt = await liveRefreshToken(ctx, required(ctx.form, 'refresh_token'));
  if (rt.bound) throw new CloudRequestError(9990105);
  if (rt.client !== clientId)
    throw new CloudRequestError(70000, {
      description: 'The refresh token was issued to another client.',
    });
  const user = await ctx.cloud.directory.users.get(rt.uid);
  if (!user) throw new CloudRequestError(50034);
  ctx.signIn.user = user;
  if (!user.enabled) throw new CloudRequestError(50057);
  const resource = await resolveResource(ctx.cloud, {
    resource: ctx.version === 1 ? (ctx.form.get('resource') ?? rt.resource) : undefined,
    scope: ctx.form.get('scope') ?? rt.scope,
  });
  ctx.signIn.resource = resource.app;
  await enforceConditionalAccess(ctx, { user, clientId, resource: resource.app, prtSigned: false });
  const at = await issueAccessToken(ctx.cloud, {
    user,
    clientId,
    resource: resource.app,
    audience: resource.audience,
    version: ctx.version,
    scope: resource.scp,
    amr: rt.amr,
    authTime: rt.authTime,
    ...(rt.did ? { deviceId: rt.did } : {}),
  });
  // Rotation: the old token is revoked and a new one issued with the same claims.
  await ctx.cloud.directory.tokens.revoke(rt.jti, ctx.now);
  const { jti: _jti, iat: _iat, exp: _exp, ...kept } = rt;
  const next = await issueRefreshToken(ctx, kept);
  return tokenResponse(ctx, {
    accessToken: at,
    resource,
    refreshToken: next,
    refreshExpiresIn: REFRESH_TOKEN_LIFETIME_S,
  });
}
