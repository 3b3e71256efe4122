/**
 * The PRT request (prt-protocol §4): `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`
 * with a `request` JWT signed RS256 by the device key, the device certificate in `x5c` (string or
 * array), and the user's proof inside (password, or a refresh token). The answer carries the PRT
 * (opaque, sealed), `session_key_jwe` (the fresh session key encrypted to the registered transport
 * key), an unsigned id_token and the documented lifetimes. Conditional Access is not evaluated
 * at PRT issuance ([OAPXBC 3.2.5.1.2.3]).
 */
import { randomBytes, randomUUID, X509Certificate } from 'node:crypto';
import {
  buildSessionKeyJwe,
  type ParsedJws,
  parseRsaBlob,
  verifyRs256,
  WINDOWS_BROKER_CLIENT_ID,
  x5cOf,
} from '../../../protocol/index.ts';
import type { User } from '../../directory/types.ts';
import { CloudRequestError } from '../../errors.ts';
import { certificateThumbprint } from '../../pki/index.ts';
import { type PrtClaims, sealPrt } from '../../tokens/claims.ts';
import { PRT_LIFETIME_S, type TokenContext } from '../context.ts';
import { clientInfo, unsignedIdToken } from '../id-token.ts';
import { checkFreshness } from './nonce-and-replay.ts';
import { liveRefreshToken } from './refresh-token.ts';

/** The device behind a device-signed request: registered, enabled, and the signer of `parsed`. */
export async function signingDevice(ctx: TokenContext, parsed: ParsedJws) {
  let der: Buffer;
  try {
    const certs = x5cOf(parsed.header, 'request');
    der = certs[0]!;
  } catch (err) {
    throw new CloudRequestError(50155, { detail: `x5c: ${(err as Error).message}` });
  }
  const device = await ctx.cloud.directory.devices.findByThumbprint(certificateThumbprint(der));
  if (!device) throw new CloudRequestError(700003);
  // The certificate is one this cloud issued (its thumbprint is on record), so its key is the
  // device key the registration bound to this device.
  try {
    verifyRs256(new X509Certificate(der).publicKey, parsed, 'request');
  } catch {
    throw new CloudRequestError(50155, { detail: 'request signature' });
  }
  if (!device.enabled || device.state !== 'registered') throw new CloudRequestError(135011);
  return device;
}

async function userOf(
  ctx: TokenContext,
  p: Record<string, unknown>,
): Promise<{ user: User; amr: string[]; authTime: number }> {
  const grant = p.grant_type;
  if (grant === 'password') {
    if (typeof p.username !== 'string' || typeof p.password !== 'string') {
      throw new CloudRequestError(900144, {
        description: "The request must contain 'username' and 'password'.",
      });
    }
    const user = await ctx.cloud.directory.users.authenticate(p.username, p.password);
    // 'rsa': the request was signed by the device key ([KAT] id_token amr ["pwd","rsa"]).
    return { user, amr: ['pwd', 'rsa'], authTime: ctx.now };
  }
  if (grant === 'refresh_token') {
    if (typeof p.refresh_token !== 'string')
      throw new CloudRequestError(900144, {
        description: "The request must contain 'refresh_token'.",
      });
    const rt = await liveRefreshToken(ctx, p.refresh_token);
    if (rt.bound) throw new CloudRequestError(9990105);
    const user = await ctx.cloud.directory.users.get(rt.uid);
    if (!user) throw new CloudRequestError(50034);
    if (!user.enabled) throw new CloudRequestError(50057);
    return { user, amr: [...new Set([...rt.amr, 'rsa'])], authTime: rt.authTime };
  }
  throw new CloudRequestError(70003, {
    description: 'The PRT request carries an unsupported grant_type.',
  });
}

export async function prtRequestGrant(ctx: TokenContext, parsed: ParsedJws, request: string) {
  const p = parsed.payload as Record<string, unknown>;
  // The sign-in log shows PRT acquisition as the user's sign-in to the requesting client (Windows
  // Sign In unless the request names another), from this device: interactive with a password,
  // non-interactive when a refresh token is traded for the PRT.
  const clientId = typeof p.client_id === 'string' ? p.client_id : WINDOWS_BROKER_CLIENT_ID;
  ctx.signIn.clientId = clientId;
  if (typeof p.username === 'string') ctx.signIn.attemptedUpn = p.username;
  if (p.grant_type === 'refresh_token') ctx.signIn.incomingTokenType = 'refreshToken';
  const device = await signingDevice(ctx, parsed);
  ctx.signIn.device = device;
  checkFreshness(ctx, p, request);
  const { user, amr, authTime } = await userOf(ctx, p);
  ctx.signIn.user = user;
  if (!device.transportKey)
    throw new CloudRequestError(700003, { detail: 'device has no transport key' });
  const transportKey = parseRsaBlob(device.transportKey).publicKey;
  // kdf_ver 2 (a number) declares KDFv2 for the session (prt-protocol §5.2, §5.4); else KDFv1.
  const kdf: 1 | 2 = parsed.header.kdf_ver === 2 ? 2 : 1;
  const sessionKey = randomBytes(32);
  const claims: PrtClaims = {
    sid: randomUUID(),
    tid: ctx.cloud.tenant.id,
    uid: user.id,
    did: device.id,
    sk: sessionKey.toString('base64'),
    kdf,
    authTime,
    amr,
    iat: ctx.now,
    exp: ctx.now + PRT_LIFETIME_S,
  };
  ctx.signIn.sessionId = claims.sid;
  await ctx.cloud.directory.tokens.add({
    id: claims.sid,
    kind: 'prt',
    userId: user.id,
    deviceId: device.id,
    clientId: WINDOWS_BROKER_CLIENT_ID,
    issuedAt: ctx.now,
    expiresAt: claims.exp,
  });
  const json = {
    // The spec says "pop" for the PRT response ([OAPXBC 3.2.5.1.2.2]); Entra's own value is uncertain.
    token_type: 'pop',
    expires_in: String(PRT_LIFETIME_S),
    ext_expires_in: '0',
    expires_on: String(claims.exp),
    refresh_token: sealPrt(ctx.keys.prt, claims),
    refresh_token_expires_in: PRT_LIFETIME_S,
    session_key_jwe: buildSessionKeyJwe(sessionKey, transportKey),
    id_token: unsignedIdToken({ user, tenantId: ctx.cloud.tenant.id, clientId, amr, now: ctx.now }),
    ...(ctx.form.get('client_info') === '1'
      ? { client_info: clientInfo(user.id, ctx.cloud.tenant.id) }
      : {}),
  };
  sessionKey.fill(0);
  return json;
}
