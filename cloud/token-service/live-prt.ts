/**
 * The checks every use of a PRT starts with, shared by session-key-signed requests (§6.1) and
 * the browser SSO cookie (§6.3): this cloud sealed it for this tenant, it has not expired, and
 * its session has not been revoked (a deleted device or a revoked PRT, prt-protocol §10).
 */
import { CloudRequestError } from '../errors.ts';
import type { CloudServices } from '../services.ts';
import { openPrt, type PrtClaims } from '../tokens/claims.ts';

/**
 * The PRT's claims; undefined when `token` is not a PRT this cloud sealed (the caller decides
 * what else it may be). A PRT of another tenant is 70000, an expired one 70008, a revoked
 * session 50173.
 */
export async function livePrt(
  cloud: CloudServices,
  prtKey: Buffer,
  token: unknown,
  now: number,
): Promise<PrtClaims | undefined> {
  const prt = openPrt(prtKey, token);
  if (!prt) return undefined;
  if (prt.tid !== cloud.tenant.id) throw new CloudRequestError(70000);
  if (prt.exp <= now) throw new CloudRequestError(70008);
  const record = await cloud.directory.tokens.get(prt.sid);
  if (!record || record.revokedAt !== null) throw new CloudRequestError(50173);
  return prt;
}
