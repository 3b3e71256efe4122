/**
 * `grant_type=password` (ROPC, v1 with `resource`, v2 with `scope`): what non-broker clients use.
 * The refresh token it returns is unbound: a bearer token, as the CA token-protection policy
 * later has to reckon with. This is also how a client gets a DRS token for device registration.
 */
import { CloudRequestError, echo } from '../../errors.ts';
import { issueAccessToken } from '../access-tokens.ts';
import { enforceConditionalAccess } from '../conditional-access.ts';
import { REFRESH_TOKEN_LIFETIME_S, required, type TokenContext } from '../context.ts';
import { issueRefreshToken } from '../refresh-tokens.ts';
import { resolveResource } from '../resources.ts';
import { tokenResponse } from '../response.ts';

export async function knownClient(ctx: TokenContext, clientId: string) {
  const app = await ctx.cloud.directory.applications.get(clientId);
  if (app?.kind !== 'client') {
    throw new CloudRequestError(700016, {
      description: `Application with identifier '${echo(clientId)}' was not found in the directory '${ctx.cloud.tenant.domain}'.`,
    });
  }
  return app;
}

export async function passwordGrant(ctx: TokenContext) {
  const clientId = required(ctx.form, 'client_id');
  ctx.signIn.clientId = clientId;
  await knownClient(ctx, clientId);
  const username = required(ctx.form, 'username');
  ctx.signIn.attemptedUpn = username;
  const password = required(ctx.form, 'password');
  const resource = await resolveResource(ctx.cloud, {
    resource: ctx.version === 1 ? (ctx.form.get('resource') ?? undefined) : undefined,
    scope: ctx.form.get('scope') ?? undefined,
  });
  ctx.signIn.resource = resource.app;
  const user = await ctx.cloud.directory.users.authenticate(username, password);
  ctx.signIn.user = user;
  await enforceConditionalAccess(ctx, { user, clientId, resource: resource.app, prtSigned: false });
  const amr = ['pwd'];
  const at = await issueAccessToken(ctx.cloud, {
    user,
    clientId,
    resource: resource.app,
    audience: resource.audience,
    version: ctx.version,
    scope: resource.scp,
    amr,
    authTime: ctx.now,
  });
  const refreshToken = await issueRefreshToken(ctx, {
    tid: ctx.cloud.tenant.id,
    uid: user.id,
    client: clientId,
    ...(ctx.version === 1 ? { resource: resource.audience } : { scope: resource.scope }),
    authTime: ctx.now,
    amr,
  });
  return tokenResponse(ctx, {
    accessToken: at,
    resource,
    refreshToken,
    refreshExpiresIn: REFRESH_TOKEN_LIFETIME_S,
  });
}
