/**
 * Which resource a request is for: v1 sends `resource` (a URI or an app id), v2 a `scope` list
 * whose resource scopes are `<resource URI>/<permission>` (e.g. `https://graph.microsoft.com/.default`).
 * OIDC scopes (openid, profile, email, offline_access) and the broker's (aza, ugs) name none; a
 * request naming no resource gets Microsoft Graph, as Entra gives.
 */

import { APP_IDS } from '../directory/seed.ts';
import type { Application } from '../directory/types.ts';
import { CloudRequestError, echo } from '../errors.ts';
import type { CloudServices } from '../services.ts';

const OIDC_SCOPES = new Set(['openid', 'profile', 'email', 'offline_access', 'aza', 'ugs']);

export interface ResolvedResource {
  readonly app: Application;
  /** The audience as asked (v1: the resource value; v2: the resource URI of the scope). */
  readonly audience: string;
  /** `scp` for the access token. */
  readonly scp: string;
  /** The scope string echoed in the response. */
  readonly scope: string;
}

function splitScope(scope: string): { uri: string; permission: string } | undefined {
  const i = scope.lastIndexOf('/');
  if (i <= 0 || i === scope.length - 1) return undefined;
  return { uri: scope.slice(0, i), permission: scope.slice(i + 1) };
}

export async function resolveResource(
  cloud: CloudServices,
  args: { resource?: string | undefined; scope?: string | undefined },
): Promise<ResolvedResource> {
  if (args.resource) {
    const app = await cloud.directory.applications.findResource(args.resource);
    if (app?.kind !== 'resource') {
      throw new CloudRequestError(50001, {
        description: `The resource '${echo(args.resource)}' is disabled or does not exist.`,
      });
    }
    return { app, audience: args.resource, scp: 'user_impersonation', scope: 'user_impersonation' };
  }
  const scopes = (args.scope ?? '').split(/\s+/).filter(Boolean);
  const resourceScopes = scopes.filter((s) => !OIDC_SCOPES.has(s));
  if (resourceScopes.length === 0) {
    const graph = await cloud.directory.applications.get(APP_IDS.microsoftGraph);
    if (!graph) throw new CloudRequestError(50001);
    return {
      app: graph,
      audience: graph.appId,
      scp: 'User.Read',
      scope: [...scopes, 'https://graph.microsoft.com/User.Read'].join(' '),
    };
  }
  const parts = resourceScopes.map(splitScope);
  const first = parts[0];
  if (!first || parts.some((p) => !p || p.uri !== first.uri)) {
    throw new CloudRequestError(70011, {
      description:
        'The provided value for the input parameter scope is not valid: scopes must name one resource.',
    });
  }
  const app = await cloud.directory.applications.findResource(first.uri);
  if (app?.kind !== 'resource') {
    throw new CloudRequestError(50001, {
      description: `The resource '${echo(first.uri)}' is disabled or does not exist.`,
    });
  }
  const perms = parts.map((p) => p!.permission).filter((p) => p !== '.default');
  const scp = perms.length > 0 ? perms.join(' ') : 'user_impersonation';
  return { app, audience: first.uri, scp, scope: scopes.join(' ') };
}
