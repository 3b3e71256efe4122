/**
 * `grant_type=authorization_code` (RFC 6749 §4.1.3): redeems a code `/authorize` issued for a
 * PRT cookie sign-in (authorize/index.ts). The code must be this process's, unexpired, issued to
 * this client with this exact redirect URI at this endpoint version, proved by the PKCE verifier
 * when the request had a challenge (RFC 7636 §4.5, §4.6), and redeemed only once (RFC 6749
 * §4.1.2). The answer is an access token and an **unbound** refresh token: the browser flow is
 * not device-bound (prt-protocol §8, "Cookie-only": the tokens are "long-lived and not bound";
 * docs/token-protection.md §1.5: browsers are outside token protection's native-client scope).
 *
 * Conditional Access runs as at every issuance, with client app type `browser`. The sign-in log
 * entry: incoming token type `primaryRefreshToken` (the PRT in the cookie authenticated the
 * sign-in; signIn.incomingTokenType "the token types that were presented to authenticate the
 * actor"), hence non-interactive, as Microsoft's sign-in log documentation lists both "a client
 * uses an OAuth 2.0 authorization code to get an access token and refresh token" and SSO "on a
 * Microsoft Entra joined PC (without providing an authentication factor ...)" under
 * non-interactive sign-ins; the device the PRT names in `deviceDetail`; the PRT session as
 * `sessionId`.
 *
 * Errors use the table's numbers (cloud/errors.ts): 70008 for an expired code, 70000 for the
 * rest, each with its own description. Entra answers a second redemption with AADSTS54005 and a
 * PKCE mismatch with AADSTS50148, which the lab's table does not carry (yet).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { CloudRequestError } from '../../errors.ts';
import { openAuthCode } from '../../tokens/auth-code.ts';
import { issueAccessToken } from '../access-tokens.ts';
import { enforceConditionalAccess } from '../conditional-access.ts';
import { optional, REFRESH_TOKEN_LIFETIME_S, required, type TokenContext } from '../context.ts';
import { mintRefreshToken } from '../refresh-tokens.ts';
import { resolveResource } from '../resources.ts';
import { tokenResponse } from '../response.ts';
import { knownClient } from './password.ts';
import { sessionDeviceAndUser } from './session-subjects.ts';

/** RFC 7636 §4.1: 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~". */
const CODE_VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/;

const invalidCode = (description: string) =>
  new CloudRequestError(70000, {
    description: `The authorization code is invalid: ${description}`,
  });

/** RFC 7636 §4.6: BASE64URL(SHA256(ASCII(code_verifier))) == code_challenge, in constant time. */
function pkceMatches(verifier: string, challenge: string): boolean {
  const computed = Buffer.from(
    createHash('sha256').update(verifier, 'ascii').digest('base64url'),
    'ascii',
  );
  const expected = Buffer.from(challenge, 'ascii');
  return computed.length === expected.length && timingSafeEqual(computed, expected);
}

export async function authorizationCodeGrant(ctx: TokenContext) {
  // In this lab every code comes from a PRT cookie sign-in (/authorize issues no other).
  ctx.signIn.incomingTokenType = 'primaryRefreshToken';
  const clientId = required(ctx.form, 'client_id');
  ctx.signIn.clientId = clientId;
  await knownClient(ctx, clientId);
  const code = required(ctx.form, 'code');
  const redirectUri = required(ctx.form, 'redirect_uri');
  const verifier = optional(ctx.form, 'code_verifier');

  const c = openAuthCode(ctx.authCodes.key, code);
  if (!c || c.tid !== ctx.cloud.tenant.id) throw invalidCode('not a code this cloud issued.');
  ctx.signIn.sessionId = c.sid;
  if (c.exp <= ctx.now) throw new CloudRequestError(70008);
  // RFC 6749 §4.1.3: issued to this client, and the redirect URI identical to the authorize one.
  if (c.client !== clientId) throw invalidCode('it was issued to another client.');
  if (c.redirectUri !== redirectUri)
    throw invalidCode('the redirect_uri differs from the authorization request.');
  if (c.ver !== ctx.version) throw invalidCode('it was issued by the other endpoint version.');
  if (c.cc !== undefined) {
    if (verifier === undefined || !CODE_VERIFIER.test(verifier) || !pkceMatches(verifier, c.cc))
      throw invalidCode('the code_verifier does not match the code_challenge.');
  } else if (verifier !== undefined) {
    // A verifier for a code issued without a challenge: refused, so that a request cannot pass
    // for one that had PKCE (the downgrade OAuth 2.1 forbids).
    throw invalidCode('the authorization request had no code_challenge.');
  }
  // Single use (RFC 6749 §4.1.2): claimed before anything is issued, so two racing redemptions
  // cannot both pass; a second one also revokes what the first got.
  if (!ctx.authCodes.used.claim(c.jti, c.exp * 1000, ctx.now * 1000)) {
    const first = ctx.authCodes.used.reuse(c.jti);
    if (first !== undefined) await ctx.cloud.directory.tokens.revoke(first, ctx.now);
    throw invalidCode('it was already redeemed.');
  }

  // The PRT session the cookie proved must still stand (a revoked PRT or deleted device ends it).
  const session = await ctx.cloud.directory.tokens.get(c.sid);
  if (!session || session.revokedAt !== null) throw new CloudRequestError(50173);
  const { device, user } = await sessionDeviceAndUser(ctx, c.did, c.uid);

  const resource = await resolveResource(ctx.cloud, { resource: c.resource, scope: c.scope });
  ctx.signIn.resource = resource.app;
  await enforceConditionalAccess(ctx, {
    user,
    clientId,
    resource: resource.app,
    device,
    prtSigned: false,
    clientAppType: 'browser',
  });
  const at = await issueAccessToken(ctx.cloud, {
    user,
    clientId,
    resource: resource.app,
    audience: resource.audience,
    version: c.ver,
    scope: resource.scp,
    // The device claims carry over from the PRT (prt-protocol §6.3); the token is no more bound
    // for it than any bearer access token.
    deviceId: c.did,
    amr: c.amr,
    authTime: c.authTime,
  });
  const rt = await mintRefreshToken(
    ctx,
    {
      tid: ctx.cloud.tenant.id,
      uid: user.id,
      client: clientId,
      ...(c.ver === 1 && c.resource !== undefined
        ? { resource: resource.audience }
        : { scope: resource.scope }),
      did: c.did,
      authTime: c.authTime,
      amr: c.amr,
    },
    // Obtained with the PRT: revoking the PRT session (or deleting the device) revokes it too.
    { parentId: c.sid },
  );
  if (ctx.authCodes.used.attach(c.jti, rt.jti)) {
    // The code came back while this redemption was under way: its tokens go too (§4.1.2).
    await ctx.cloud.directory.tokens.revoke(rt.jti, ctx.now);
    throw invalidCode('it was already redeemed.');
  }
  return tokenResponse(
    { ...ctx, version: c.ver },
    {
      accessToken: at,
      resource,
      refreshToken: rt.token,
      refreshExpiresIn: REFRESH_TOKEN_LIFETIME_S,
    },
  );
}
