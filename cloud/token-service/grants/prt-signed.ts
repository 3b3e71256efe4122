/**
 * Requests signed with the PRT's session key (prt-protocol §6.1): HS256 with `ctx`, the key
 * derived by KDFv1 or KDFv2 (the version declared when the PRT was issued is enforced; KDFv2
 * hashes the exact received payload bytes). Three uses:
 *   - an app token through the PRT (`refresh_token` = the PRT, a resource): an access token and a
 *     refresh token bound to this device and session;
 *   - PRT renewal (`aza` in scope, no resource): a new PRT with the same session key;
 *   - redemption of a bound app refresh token (`refresh_token` = that token).
 * The answer is a dir/A256GCM JWE keyed by KDFv1(session key, fresh ctx) (§5.5, §6.2).
 */
import {
  encryptResponse,
  isProtocolError,
  type ParsedJws,
  verifyWithSessionKey,
} from '../../../protocol/index.ts';
import { CloudRequestError } from '../../errors.ts';
import { type PrtClaims, type RefreshTokenClaims, sealPrt } from '../../tokens/claims.ts';
import { issueAccessToken } from '../access-tokens.ts';
import { enforceConditionalAccess } from '../conditional-access.ts';
import { PRT_LIFETIME_S, REFRESH_TOKEN_LIFETIME_S, type TokenContext } from '../context.ts';
import { unsignedIdToken } from '../id-token.ts';
import { livePrt } from '../live-prt.ts';
import { issueRefreshToken } from '../refresh-tokens.ts';
import { resolveResource } from '../resources.ts';
import { tokenResponse } from '../response.ts';
import { checkFreshness } from './nonce-and-replay.ts';
import { knownClient } from './password.ts';
import { liveRefreshToken } from './refresh-token.ts';
import { sessionDeviceAndUser } from './session-subjects.ts';

interface Session {
  sid: string;
  sessionKey: Buffer;
  kdf: 1 | 2;
  uid: string;
  did: string;
  authTime: number;
  amr: string[];
  prt?: PrtClaims;
  boundRt?: RefreshTokenClaims;
}

async function sessionOf(ctx: TokenContext, token: unknown): Promise<Session> {
  const prt = await livePrt(ctx.cloud, ctx.keys.prt, token, ctx.now);
  if (prt) {
    return {
      sid: prt.sid,
      sessionKey: Buffer.from(prt.sk, 'base64'),
      kdf: prt.kdf,
      uid: prt.uid,
      did: prt.did,
      authTime: prt.authTime,
      amr: prt.amr,
      prt,
    };
  }
  if (typeof token !== 'string')
    throw new CloudRequestError(900144, {
      description: "The request must contain 'refresh_token'.",
    });
  const rt = await liveRefreshToken(ctx, token);
  // An unbound token has no session key to check the signature with.
  if (!rt.bound)
    throw new CloudRequestError(9990103, {
      detail: 'unbound refresh token in a session-signed request',
    });
  const prtRecord = await ctx.cloud.directory.tokens.get(rt.bound.sid);
  if (!prtRecord || prtRecord.revokedAt !== null) throw new CloudRequestError(50173);
  return {
    sid: rt.bound.sid,
    sessionKey: Buffer.from(rt.bound.sk, 'base64'),
    kdf: rt.bound.kdf,
    uid: rt.uid,
    did: rt.bound.did,
    authTime: rt.authTime,
    amr: rt.amr,
    boundRt: rt,
  };
}

export async function prtSignedGrant(ctx: TokenContext, parsed: ParsedJws, request: string) {
  const p = parsed.payload as Record<string, unknown>;
  const session = await sessionOf(ctx, p.refresh_token);
  ctx.signIn.sessionId = session.sid;
  try {
    let declared: 1 | 2;
    try {
      declared = verifyWithSessionKey(parsed, session.sessionKey, 'request').kdfVersion;
    } catch (err) {
      if (isProtocolError(err)) throw new CloudRequestError(9990103, { detail: err.message });
      throw err;
    }
    if (declared !== session.kdf)
      throw new CloudRequestError(9990104, { detail: `kdf ${declared}, session ${session.kdf}` });
    checkFreshness(ctx, p, request);
    const { device, user } = await sessionDeviceAndUser(ctx, session.did, session.uid);
    const clientId = typeof p.client_id === 'string' ? p.client_id : '';
    ctx.signIn.clientId = clientId;
    if (!clientId)
      throw new CloudRequestError(900144, { description: "The request must contain 'client_id'." });
    await knownClient(ctx, clientId);
    const scopes = typeof p.scope === 'string' ? p.scope.split(/\s+/).filter(Boolean) : [];
    const wantsNewPrt = session.prt !== undefined && scopes.includes('aza');
    const resourceParam = typeof p.resource === 'string' ? p.resource : undefined;
    const namesResource = resourceParam !== undefined || scopes.some((s) => s.includes('/'));
    const newPrt = () =>
      sealPrt(ctx.keys.prt, { ...session.prt!, iat: ctx.now, exp: ctx.now + PRT_LIFETIME_S });
    const idToken = unsignedIdToken({
      user,
      tenantId: ctx.cloud.tenant.id,
      clientId,
      amr: session.amr,
      now: ctx.now,
    });

    let json: Record<string, unknown>;
    if (wantsNewPrt && !namesResource) {
      // Renewal: a new PRT, same session (and session key); no access token ([RT-dev renew_prt]).
      json = {
        token_type: 'Bearer',
        scope: scopes.join(' '),
        refresh_token: newPrt(),
        refresh_token_expires_in: PRT_LIFETIME_S,
        id_token: idToken,
      };
    } else {
      const resource = await resolveResource(ctx.cloud, {
        resource: resourceParam,
        scope: scopes.join(' '),
      });
      ctx.signIn.resource = resource.app;
      await enforceConditionalAccess(ctx, {
        user,
        clientId,
        resource: resource.app,
        device,
        prtSigned: true,
        // The lab's way for a client to state its version in a signed request (README).
        ...(typeof p.app_ver === 'string' ? { clientVersion: p.app_ver } : {}),
      });
      const at = await issueAccessToken(ctx.cloud, {
        user,
        clientId,
        resource: resource.app,
        audience: resource.audience,
        version: resourceParam !== undefined ? 1 : 2,
        scope: resource.scp,
        deviceId: session.did,
        amr: session.amr,
        authTime: session.authTime,
      });
      let refreshToken: string;
      let refreshExpiresIn: number;
      if (wantsNewPrt) {
        refreshToken = newPrt();
        refreshExpiresIn = PRT_LIFETIME_S;
      } else {
        if (session.boundRt) await ctx.cloud.directory.tokens.revoke(session.boundRt.jti, ctx.now);
        refreshToken = await issueRefreshToken(
          ctx,
          {
            tid: ctx.cloud.tenant.id,
            uid: user.id,
            client: clientId,
            ...(resourceParam !== undefined
              ? { resource: resource.audience }
              : { scope: resource.scope }),
            did: session.did,
            bound: {
              did: session.did,
              sid: session.sid,
              sk: session.sessionKey.toString('base64'),
              kdf: session.kdf,
            },
            authTime: session.authTime,
            amr: session.amr,
          },
          // Revoking the PRT session revokes every token obtained with it.
          { parentId: session.sid },
        );
        refreshExpiresIn = REFRESH_TOKEN_LIFETIME_S;
      }
      json = tokenResponse(
        { ...ctx, version: resourceParam !== undefined ? 1 : 2 },
        { accessToken: at, resource, refreshToken, refreshExpiresIn, extra: { id_token: idToken } },
      );
    }
    return encryptResponse(session.sessionKey, json);
  } finally {
    session.sessionKey.fill(0);
  }
}
