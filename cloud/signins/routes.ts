/**
 * `GET /beta/auditLogs/signIns` (Graph beta): the sign-in log, newest first by default, with
 * `$top` (1..1000, default 50), `$orderby=createdDateTime [asc|desc]`, a `$filter` subset
 * (SIGN_IN_FILTER_SCHEMA) and `@odata.nextLink` paging through an HMAC-bound `$skiptoken`
 * (its key is per process: links do not survive a restart). Needs a Microsoft Graph access token
 * whose user holds one of READER_ROLES; otherwise 403 in Graph's error shape.
 */
import { randomBytes } from 'node:crypto';
import { DIRECTORY_ROLES } from '../directory/seed.ts';
import { GraphFilterError, parseTop } from '../graph/filter.ts';
import { buildNextLink, decodeSkipToken, encodeSkipToken, queryScope } from '../graph/paging.ts';
import type { CloudRequest, CloudResponse } from '../http/server.ts';
import { requireAccessToken } from '../resources/bearer.ts';
import type { CloudRoute, CloudServices } from '../services.ts';
import { signInStoreFor } from './registry.ts';

const GRAPH_APP_ID = '00000003-0000-0000-c000-000000000000';
const GRAPH_AUDIENCES = [GRAPH_APP_ID, 'https://graph.microsoft.com'];

/** Roles that may read sign-in logs (Graph's documented least-privileged set plus admins). */
export const READER_ROLES = [
  'Global Administrator',
  'Security Administrator',
  'Security Reader',
  'Global Reader',
  'Conditional Access Administrator',
] as const;

const READER_ROLE_IDS = new Set(
  DIRECTORY_ROLES.filter((r) => (READER_ROLES as readonly string[]).includes(r.displayName)).map(
    (r) => r.id,
  ),
);

function graphError(
  req: CloudRequest,
  cloud: CloudServices,
  status: number,
  code: string,
  message: string,
): CloudResponse {
  return {
    status,
    json: {
      error: {
        code,
        message,
        innerError: {
          date: cloud
            .now()
            .toISOString()
            .replace(/\.\d{3}Z$/, ''),
          'request-id': req.ids.traceId,
          'client-request-id': req.ids.correlationId,
        },
      },
    },
  };
}

export function signInRoutes(): CloudRoute[] {
  const skipKey = randomBytes(32);
  const handler = async (req: CloudRequest, cloud: CloudServices): Promise<CloudResponse> => {
    const claims = await requireAccessToken(req, cloud, GRAPH_AUDIENCES);
    const roles = claims.oid ? (await cloud.directory.users.memberOf(claims.oid)).roles : [];
    if (!roles.some((r) => READER_ROLE_IDS.has(r.id))) {
      return graphError(
        req,
        cloud,
        403,
        'Authorization_RequestDenied',
        'Insufficient privileges to complete the operation.',
      );
    }
    const url = `${req.baseUrl}${req.path}${req.query.size > 0 ? `?${req.query}` : ''}`;
    const scope = queryScope(url);
    try {
      const top = parseTop(req.query.get('$top'), 50);
      const skip = req.query.get('$skiptoken');
      const offset = skip ? (decodeSkipToken(skip, skipKey, scope).offset ?? 0) : 0;
      const filter = req.query.get('$filter');
      const orderBy = req.query.get('$orderby');
      const page = signInStoreFor(cloud).list({
        top,
        offset,
        ...(filter !== null ? { filter } : {}),
        ...(orderBy !== null ? { orderBy } : {}),
      });
      const json: Record<string, unknown> = {
        '@odata.context': 'https://graph.microsoft.com/beta/$metadata#auditLogs/signIns',
        value: page.value,
      };
      if (page.nextOffset !== undefined) {
        json['@odata.nextLink'] = buildNextLink(
          url,
          encodeSkipToken({ offset: page.nextOffset }, skipKey, scope),
        );
      }
      return { json };
    } catch (err) {
      if (err instanceof GraphFilterError)
        return graphError(req, cloud, 400, 'BadRequest', err.message);
      throw err;
    }
  };
  return [{ method: 'GET', path: '/beta/auditLogs/signIns', handler, options: { bodyLimit: 0 } }];
}
