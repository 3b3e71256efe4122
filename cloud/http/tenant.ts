/**
 * The `{tenant}` path segment, resolved as Entra does: `common` and `organizations` (any work
 * tenant; the lab has one), the tenant id, or one of its domains. A well-formed but unknown id or
 * domain is AADSTS90002; a segment that is neither a GUID nor a domain is AADSTS900023.
 */

import type { Tenant } from '../directory/types.ts';
import { CloudRequestError, echo } from '../errors.ts';
import { isDnsName, isGuid } from '../ids.ts';

/** How the request named the tenant; discovery documents answer `common` differently. */
export type TenantAlias = 'common' | 'organizations' | 'id' | 'domain';

export interface TenantMatch {
  readonly tenant: Tenant;
  readonly alias: TenantAlias;
  /** The segment as the client sent it. */
  readonly segment: string;
}

export function resolveTenantSegment(segment: string, tenant: Tenant): TenantMatch {
  const s = segment.toLowerCase();
  if (s === 'common' || s === 'organizations') return Object.freeze({ tenant, alias: s, segment });
  if (isGuid(s) && s === tenant.id) return Object.freeze({ tenant, alias: 'id', segment });
  if (isDnsName(s) && s === tenant.domain)
    return Object.freeze({ tenant, alias: 'domain', segment });
  // `consumers` is a real alias (personal accounts), but the lab has no consumer tenant.
  if (isGuid(s) || isDnsName(s) || s === 'consumers') {
    throw new CloudRequestError(90002, {
      description:
        `Tenant '${echo(segment)}' not found. Check to make sure you have the correct tenant ID ` +
        'and are signing into the correct cloud.',
    });
  }
  throw new CloudRequestError(900023, {
    description: `Specified tenant identifier '${echo(segment)}' is neither a valid DNS name, nor a valid external domain.`,
  });
}
