/**
 * Read-only Graph (beta) directory endpoints:
 *
 *   GET /beta/users      GET /beta/users/{id}     ({id}: object id or userPrincipalName)
 *   GET /beta/groups     GET /beta/groups/{id}
 *   GET /beta/devices    GET /beta/devices/{id}   ({id}: the directory object id)
 *
 * Lists take `$filter` (DIRECTORY_FILTER_SCHEMAS, cloud/graph/filter.ts), `$top` (1..1000,
 * default 100) and follow `@odata.nextLink` with an HMAC-bound `$skiptoken` (its key is per
 * process). Callers need a Microsoft Graph access token whose user holds one of
 * DIRECTORY_READER_ROLES: the policy API's admin roles plus Global Reader and Security Reader,
 * since these endpoints only read. Errors are Graph-shaped (policies/routes.ts `graphError`).
 *
 * Devices carry two lab members Graph's `device` has none of: `hardwareBacked` and `attestation`
 * ({status, reason}), the registration's TPM attestation (cloud/registration/attestation.ts), so
 * that `$filter=hardwareBacked eq true` finds the devices whose keys are provably in a TPM.
 */
import { randomBytes } from 'node:crypto';
import { APP_IDS, DIRECTORY_ROLES } from '../directory/seed.ts';
import type { Device, Group, User } from '../directory/types.ts';
import { isCloudError } from '../errors.ts';
import { type FilterSchema, filterPredicate, GraphFilterError, parseTop } from '../graph/filter.ts';
import { buildNextLink, decodeSkipToken, encodeSkipToken, queryScope } from '../graph/paging.ts';
import type { CloudRequest, CloudResponse } from '../http/server.ts';
import { graphError } from '../policies/routes.ts';
import { bearerToken } from '../resources/bearer.ts';
import type { CloudRoute, CloudServices } from '../services.ts';
import { verifyAccessToken } from '../token-service/access-tokens.ts';

/** Roles that may read users, groups and devices here. */
export const DIRECTORY_READER_ROLES = [
  'Conditional Access Administrator',
  'Security Administrator',
  'Global Administrator',
  'Global Reader',
  'Security Reader',
] as const;

const READER_ROLE_IDS = new Set(
  DIRECTORY_ROLES.filter((r) =>
    (DIRECTORY_READER_ROLES as readonly string[]).includes(r.displayName),
  ).map((r) => r.id),
);

const GRAPH_AUDIENCES = [APP_IDS.microsoftGraph, 'https://graph.microsoft.com'];
const DEFAULT_TOP = 100;

export interface GraphUser {
  id: string;
  userPrincipalName: string;
  displayName: string;
  userType: 'Member' | 'Guest';
  accountEnabled: boolean;
}

export interface GraphGroup {
  id: string;
  displayName: string;
  description: string;
}

export interface GraphDevice {
  id: string;
  deviceId: string;
  displayName: string;
  operatingSystem: string;
  operatingSystemVersion: string;
  trustType: 'AzureAd' | 'Workplace' | 'ServerAd';
  accountEnabled: boolean;
  systemLabels: string[];
  isCompliant: boolean | null;
  enrollmentProfileName: string | null;
  profileType: string | null;
  /** Lab member (Graph has none): the registration's TPM attestation was verified. */
  hardwareBacked: boolean;
  /** Lab member (Graph has none): how DRS judged that attestation, and why. */
  attestation: { status: 'verified' | 'absent'; reason: string };
}

export function graphUser(u: User): GraphUser {
  return {
    id: u.id,
    userPrincipalName: u.upn,
    displayName: u.displayName,
    userType: u.kind === 'guest' ? 'Guest' : 'Member',
    accountEnabled: u.enabled,
  };
}

export function graphGroup(g: Group): GraphGroup {
  return { id: g.id, displayName: g.displayName, description: g.description };
}

export function graphDevice(d: Device): GraphDevice {
  return {
    id: d.objectId,
    deviceId: d.id,
    displayName: d.displayName,
    operatingSystem: d.operatingSystem,
    operatingSystemVersion: d.operatingSystemVersion,
    trustType: d.trustType,
    accountEnabled: d.enabled,
    systemLabels: [...d.systemLabels],
    isCompliant: d.isCompliant,
    enrollmentProfileName: d.enrollmentProfileName,
    profileType: d.profileType,
    hardwareBacked: d.hardwareBacked,
    attestation: { status: d.attestation.status, reason: d.attestation.reason },
  };
}

/** The `$filter` fields of each collection. */
export const DIRECTORY_FILTER_SCHEMAS = {
  users: {
    id: 'string',
    userPrincipalName: 'string',
    displayName: 'string',
    userType: 'string',
    accountEnabled: 'boolean',
  },
  groups: { id: 'string', displayName: 'string', description: 'string' },
  devices: {
    id: 'string',
    deviceId: 'string',
    displayName: 'string',
    operatingSystem: 'string',
    operatingSystemVersion: 'string',
    trustType: 'string',
    accountEnabled: 'boolean',
    systemLabels: { collection: 'string' },
    isCompliant: 'boolean',
    enrollmentProfileName: 'string',
    profileType: 'string',
    // Lab members (graphDevice).
    hardwareBacked: 'boolean',
    'attestation/status': 'string',
  },
} as const satisfies Record<string, FilterSchema>;

type Collection = keyof typeof DIRECTORY_FILTER_SCHEMAS;

/** The caller may read, or the Graph error to answer. */
async function refusal(req: CloudRequest, cloud: CloudServices): Promise<CloudResponse | null> {
  let oid: unknown;
  try {
    const claims = await verifyAccessToken(cloud, bearerToken(req), {
      audiences: GRAPH_AUDIENCES,
      baseUrl: req.baseUrl,
    });
    oid = claims.oid;
  } catch (err) {
    if (!isCloudError(err)) throw err;
    return graphError(req, 401, 'InvalidAuthenticationToken', 'Access token is empty or invalid.', {
      'www-authenticate': `Bearer realm="", authorization_uri="${req.baseUrl}/common/oauth2/authorize", error="invalid_token"`,
    });
  }
  const user = typeof oid === 'string' ? await cloud.directory.users.get(oid) : undefined;
  const roles = user?.enabled ? (await cloud.directory.users.memberOf(user.id)).roles : [];
  if (roles.some((r) => READER_ROLE_IDS.has(r.id))) return null;
  return graphError(
    req,
    403,
    'Authorization_RequestDenied',
    'Insufficient privileges to complete the operation.',
  );
}

async function listAll(cloud: CloudServices, what: Collection): Promise<unknown[]> {
  switch (what) {
    case 'users':
      return (await cloud.directory.users.list()).map(graphUser);
    case 'groups':
      return (await cloud.directory.groups.list()).map(graphGroup);
    case 'devices':
      return (await cloud.directory.devices.list()).map(graphDevice);
  }
}

async function getOne(cloud: CloudServices, what: Collection, id: string): Promise<unknown> {
  switch (what) {
    case 'users': {
      const u = await cloud.directory.users.find(id);
      return u && graphUser(u);
    }
    case 'groups': {
      const g = await cloud.directory.groups.get(id.toLowerCase());
      return g && graphGroup(g);
    }
    case 'devices': {
      const d = await cloud.directory.devices.find(id.toLowerCase());
      return d && d.objectId === id.toLowerCase() ? graphDevice(d) : undefined;
    }
  }
}

function collectionRoutes(what: Collection, skipKey: Buffer): CloudRoute[] {
  const path = `/beta/${what}`;
  const list = async (req: CloudRequest, cloud: CloudServices): Promise<CloudResponse> => {
    const refused = await refusal(req, cloud);
    if (refused) return refused;
    const url = `${req.baseUrl}${req.path}${req.query.size > 0 ? `?${req.query}` : ''}`;
    const scope = queryScope(url);
    try {
      const top = parseTop(req.query.get('$top'), DEFAULT_TOP);
      const skip = req.query.get('$skiptoken');
      const offset = skip ? (decodeSkipToken(skip, skipKey, scope).offset ?? 0) : 0;
      const filter = req.query.get('$filter');
      const predicate =
        filter === null || filter === ''
          ? undefined
          : filterPredicate(filter, DIRECTORY_FILTER_SCHEMAS[what]);
      let items = await listAll(cloud, what);
      if (predicate) items = items.filter(predicate);
      const value = items.slice(offset, offset + top);
      const json: Record<string, unknown> = {
        '@odata.context': `https://graph.microsoft.com/beta/$metadata#${what}`,
        value,
      };
      if (offset + value.length < items.length) {
        json['@odata.nextLink'] = buildNextLink(
          url,
          encodeSkipToken({ offset: offset + value.length }, skipKey, scope),
        );
      }
      return { json };
    } catch (err) {
      if (err instanceof GraphFilterError) return graphError(req, 400, 'BadRequest', err.message);
      throw err;
    }
  };
  const one = async (req: CloudRequest, cloud: CloudServices): Promise<CloudResponse> => {
    const refused = await refusal(req, cloud);
    if (refused) return refused;
    const id = String(req.params.id ?? '');
    const found = id === '' ? undefined : await getOne(cloud, what, id);
    if (found === undefined) {
      return graphError(
        req,
        404,
        'Request_ResourceNotFound',
        `Resource '${id.slice(0, 64)}' does not exist or one of its queried reference-property objects are not present.`,
      );
    }
    return {
      json: {
        '@odata.context': `https://graph.microsoft.com/beta/$metadata#${what}/$entity`,
        ...(found as Record<string, unknown>),
      },
    };
  };
  return [
    { method: 'GET', path, handler: list, options: { bodyLimit: 0 } },
    { method: 'GET', path: `${path}/{id}`, handler: one, options: { bodyLimit: 0 } },
  ];
}

export function graphDirectoryRoutes(): CloudRoute[] {
  const skipKey = randomBytes(32);
  return [
    ...collectionRoutes('users', skipKey),
    ...collectionRoutes('groups', skipKey),
    ...collectionRoutes('devices', skipKey),
  ];
}
