/**
 * The id_token of PRT responses: unsigned (`{"typ":"JWT","alg":"none"}`), `aud` the request's
 * client id, `iss` https://sts.windows.net/<tid>/, with the claims listed in prt-protocol §4.3.
 */
import type { User } from '../directory/types.ts';

const b64url = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');

export function unsignedIdToken(args: {
  user: User;
  tenantId: string;
  clientId: string;
  amr: string[];
  now: number;
  lifetime?: number;
}): string {
  const { user, tenantId, clientId, now } = args;
  const claims = {
    aud: clientId,
    iss: `https://sts.windows.net/${tenantId}/`,
    iat: now,
    nbf: now,
    exp: now + (args.lifetime ?? 3600),
    amr: args.amr,
    name: user.displayName,
    oid: user.id,
    sub: user.id,
    tid: tenantId,
    unique_name: user.upn,
    upn: user.upn,
    ver: '1.0',
  };
  return `${b64url({ typ: 'JWT', alg: 'none' })}.${b64url(claims)}.`;
}

/** client_info (client_info=1): b64url JSON of the user's id and tenant, as MSAL reads it. */
export function clientInfo(userId: string, tenantId: string): string {
  return Buffer.from(JSON.stringify({ uid: userId, utid: tenantId })).toString('base64url');
}
