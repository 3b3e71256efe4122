/**
 * The Graph-shaped admin API for Conditional Access policies (beta):
 *
 *   GET|POST              /beta/identity/conditionalAccess/policies
 *   GET|PATCH|DELETE      /beta/identity/conditionalAccess/policies/{id}
 *
 * Callers need an access token for Microsoft Graph whose user holds Conditional Access
 * Administrator, Security Administrator or Global Administrator. Errors are Graph-shaped
 * (`{"error":{"code","message","innerError":{date,request-id,client-request-id}}}`), not Entra's
 * AADSTS shape. Create and update answer the policy plus `warnings` (lint.ts); GET answers the
 * policy as stored.
 */
import { isCaError } from '../ca/errors.ts';
import { parsePolicy } from '../ca/policy.ts';
import { APP_IDS, DIRECTORY_ROLES } from '../directory/seed.ts';
import type { StoredPolicy } from '../directory/types.ts';
import { isCloudError } from '../errors.ts';
import type { CloudRequest, CloudResponse } from '../http/server.ts';
import { bearerToken } from '../resources/bearer.ts';
import type { CloudRoute, CloudServices } from '../services.ts';
import { verifyAccessToken } from '../token-service/access-tokens.ts';
import { lintPolicy } from './lint.ts';

/** Roles allowed to read and write policies (template ids). */
export const POLICY_ADMIN_ROLES: readonly string[] = DIRECTORY_ROLES.filter((r) =>
  ['Conditional Access Administrator', 'Security Administrator', 'Global Administrator'].includes(
    r.displayName,
  ),
).map((r) => r.id);

const GRAPH_AUDIENCES = [APP_IDS.microsoftGraph, 'https://graph.microsoft.com'];
const POLICIES_PATH = '/beta/identity/conditionalAccess/policies';

/** A Graph-shaped error answer. */
export function graphError(
  req: CloudRequest,
  status: number,
  code: string,
  message: string,
  headers?: Record<string, string>,
): CloudResponse {
  return {
    status,
    ...(headers ? { headers } : {}),
    json: {
      error: {
        code,
        message,
        innerError: {
          date: req.receivedAt.toISOString().replace(/\.\d{3}Z$/, 'Z'),
          'request-id': req.ids.traceId,
          'client-request-id': req.ids.correlationId,
        },
      },
    },
  };
}

class GraphRefusal extends Error {
  readonly response: CloudResponse;
  constructor(response: CloudResponse) {
    super('graph refusal');
    this.response = response;
  }
}

/** Checks the bearer token (Graph audience) and the caller's roles; throws GraphRefusal. */
async function requirePolicyAdmin(req: CloudRequest, cloud: CloudServices): Promise<void> {
  let oid: string;
  try {
    const claims = await verifyAccessToken(cloud, bearerToken(req), {
      audiences: GRAPH_AUDIENCES,
      baseUrl: req.baseUrl,
    });
    oid = claims.oid;
  } catch (err) {
    if (!isCloudError(err)) throw err;
    throw new GraphRefusal(
      graphError(req, 401, 'InvalidAuthenticationToken', 'Access token is empty or invalid.', {
        'www-authenticate': `Bearer realm="", authorization_uri="${req.baseUrl}/common/oauth2/authorize", error="invalid_token"`,
      }),
    );
  }
  const user = typeof oid === 'string' ? await cloud.directory.users.get(oid) : undefined;
  const roles = user?.enabled ? (await cloud.directory.users.memberOf(user.id)).roles : [];
  if (!roles.some((r) => POLICY_ADMIN_ROLES.includes(r.id))) {
    throw new GraphRefusal(
      graphError(
        req,
        403,
        'Authorization_RequestDenied',
        'Insufficient privileges to complete the operation.',
      ),
    );
  }
}

async function body(req: CloudRequest): Promise<unknown> {
  try {
    return await req.json();
  } catch (err) {
    if (!isCloudError(err)) throw err;
    throw new GraphRefusal(graphError(req, 400, 'BadRequest', 'The request body is not JSON.'));
  }
}

function withWarnings(stored: StoredPolicy): Record<string, unknown> {
  const warnings = lintPolicy(parsePolicy(stored.policy), {
    reportOnlyHistory: stored.reportOnlySince !== null,
  });
  return { ...stored.policy, warnings };
}

function notFound(req: CloudRequest): CloudResponse {
  return graphError(
    req,
    404,
    'ResourceNotFound',
    `Policy '${String(req.params.id).slice(0, 64)}' was not found.`,
  );
}

/** Runs `fn` after the role check, turning refusals and invalid policies into Graph errors. */
function admin(
  fn: (req: CloudRequest, cloud: CloudServices) => Promise<CloudResponse>,
): (req: CloudRequest, cloud: CloudServices) => Promise<CloudResponse> {
  return async (req, cloud) => {
    try {
      await requirePolicyAdmin(req, cloud);
      return await fn(req, cloud);
    } catch (err) {
      if (err instanceof GraphRefusal) return err.response;
      if (isCaError(err)) return graphError(req, 400, 'BadRequest', err.message);
      throw err;
    }
  };
}

export function policyRoutes(): CloudRoute[] {
  const byId = `${POLICIES_PATH}/{id}`;
  return [
    {
      method: 'GET',
      path: POLICIES_PATH,
      options: { bodyLimit: 0 },
      handler: admin(async (req, cloud) => {
        const list = await cloud.directory.policies.list();
        return {
          json: {
            '@odata.context': `${req.baseUrl}/beta/$metadata#identity/conditionalAccess/policies`,
            value: list.map((p) => p.policy),
          },
        };
      }),
    },
    {
      method: 'POST',
      path: POLICIES_PATH,
      handler: admin(async (req, cloud) => {
        const stored = await cloud.directory.policies.create(await body(req));
        return {
          status: 201,
          headers: { location: `${req.baseUrl}${POLICIES_PATH}/${stored.id}` },
          json: withWarnings(stored),
        };
      }),
    },
    {
      method: 'GET',
      path: byId,
      options: { bodyLimit: 0 },
      handler: admin(async (req, cloud) => {
        const stored = await cloud.directory.policies.get(req.params.id ?? '');
        return stored ? { json: stored.policy } : notFound(req);
      }),
    },
    {
      method: 'PATCH',
      path: byId,
      handler: admin(async (req, cloud) => {
        const stored = await cloud.directory.policies.update(req.params.id ?? '', await body(req));
        return stored ? { json: withWarnings(stored) } : notFound(req);
      }),
    },
    {
      method: 'DELETE',
      path: byId,
      options: { bodyLimit: 0 },
      handler: admin(async (req, cloud) => {
        const gone = await cloud.directory.policies.delete(req.params.id ?? '');
        return gone ? { status: 204 } : notFound(req);
      }),
    },
  ];
}
