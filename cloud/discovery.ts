/**
 * OpenID discovery and the signing keys, in Entra's shapes: the v1 document (issuer
 * `https://sts.windows.net/<tid>/`) and the v2 document (issuer
 * `https://login.microsoftonline.com/<tid>/v2.0`), and the JWKS at `/{tenant}/discovery/keys`
 * (v1) and `/{tenant}/discovery/v2.0/keys` (v2). Issuers are Entra's real ones, because tokens
 * carry them; endpoints use the lab's own base URL, because that is where clients must go.
 *
 * For `common` and `organizations` Entra answers with the `{tenantid}` placeholder in the issuer
 * and the alias in the endpoints; for a tenant id or domain, with the tenant id. So does the lab.
 */
import { AADSTS_CODES, aadstsEntry, CloudRequestError } from './errors.ts';
import type { CloudRequest, CloudResponse } from './http/server.ts';
import type { TenantMatch } from './http/tenant.ts';
import type { CloudRoute, CloudServices } from './services.ts';

const V1_ISSUER = 'https://sts.windows.net';
const V2_ISSUER_HOST = 'https://login.microsoftonline.com';
/** Discovery documents and keys change only when the data directory is reset. */
const CACHEABLE = { 'cache-control': 'private, max-age=3600' };

const COMMON_METADATA = {
  token_endpoint_auth_methods_supported: [
    'client_secret_post',
    'private_key_jwt',
    'client_secret_basic',
  ],
  response_modes_supported: ['query', 'fragment', 'form_post'],
  subject_types_supported: ['pairwise'],
  id_token_signing_alg_values_supported: ['RS256'],
  http_logout_supported: true,
  frontchannel_logout_supported: true,
  cloud_instance_name: 'microsoftonline.com',
  cloud_graph_host_name: 'graph.windows.net',
  msgraph_host: 'graph.microsoft.com',
  rbac_url: 'https://pas.windows.net',
};

function isAlias(match: TenantMatch): boolean {
  return match.alias === 'common' || match.alias === 'organizations';
}

/** The tenant segment endpoints use, and the tenant id (or placeholder) issuers use. */
function names(match: TenantMatch): { segment: string; tid: string } {
  return isAlias(match)
    ? { segment: match.alias, tid: '{tenantid}' }
    : { segment: match.tenant.id, tid: match.tenant.id };
}

function tenantOf(req: CloudRequest): TenantMatch {
  // Every route here has a {tenant} segment; its absence is a routing-table bug.
  if (req.tenant === undefined) throw new TypeError('discovery route without {tenant}');
  return req.tenant;
}

/** The claims both documents list first, in Entra's order. */
const COMMON_CLAIMS = [
  'sub',
  'iss',
  'cloud_instance_name',
  'cloud_instance_host_name',
  'cloud_graph_host_name',
  'msgraph_host',
  'aud',
  'exp',
  'iat',
  'auth_time',
  'acr',
];

/** What the v1 and v2 documents do not share; members are emitted in Entra's order. */
interface DocumentVersion {
  /** The OAuth 2.0 endpoints' path below the tenant segment. */
  readonly oauth2: string;
  readonly jwksUri: (baseUrl: string, base: string) => string;
  readonly responseTypes: readonly string[];
  readonly scopes: readonly string[];
  readonly issuer: (tid: string) => string;
  /** The one member between issuer and authorization_endpoint. */
  readonly flag: Readonly<Record<string, boolean>>;
  /** The claims after COMMON_CLAIMS. */
  readonly claims: readonly string[];
}

function v2Issuer(tid: string): string {
  return `${V2_ISSUER_HOST}/${tid}/v2.0`;
}

const V1: DocumentVersion = {
  oauth2: 'oauth2',
  jwksUri: (baseUrl) => `${baseUrl}/common/discovery/keys`,
  responseTypes: ['code', 'id_token', 'code id_token', 'token id_token', 'token'],
  scopes: ['openid'],
  issuer: (tid) => `${V1_ISSUER}/${tid}/`,
  flag: { microsoft_multi_refresh_token: true },
  claims: ['amr', 'nonce', 'email', 'given_name', 'family_name', 'nickname'],
};

const V2: DocumentVersion = {
  oauth2: 'oauth2/v2.0',
  jwksUri: (_baseUrl, base) => `${base}/discovery/v2.0/keys`,
  responseTypes: ['code', 'id_token', 'code id_token', 'id_token token'],
  scopes: ['openid', 'profile', 'email', 'offline_access'],
  issuer: v2Issuer,
  flag: { request_uri_parameter_supported: false },
  claims: ['nonce', 'preferred_username', 'name', 'tid', 'ver', 'at_hash', 'c_hash', 'email'],
};

function openIdConfiguration(req: CloudRequest, version: DocumentVersion): CloudResponse {
  const match = tenantOf(req);
  const { segment, tid } = names(match);
  const base = `${req.baseUrl}/${segment}`;
  return {
    headers: CACHEABLE,
    json: {
      token_endpoint: `${base}/${version.oauth2}/token`,
      ...COMMON_METADATA,
      jwks_uri: version.jwksUri(req.baseUrl, base),
      response_types_supported: [...version.responseTypes],
      scopes_supported: [...version.scopes],
      issuer: version.issuer(tid),
      ...version.flag,
      authorization_endpoint: `${base}/${version.oauth2}/authorize`,
      end_session_endpoint: `${base}/${version.oauth2}/logout`,
      claims_supported: [...COMMON_CLAIMS, ...version.claims],
      tenant_region_scope: isAlias(match) ? null : match.tenant.region,
    },
  };
}

export function openIdConfigurationV1(req: CloudRequest): CloudResponse {
  return openIdConfiguration(req, V1);
}

export function openIdConfigurationV2(req: CloudRequest): CloudResponse {
  return openIdConfiguration(req, V2);
}

export function keysV1(_req: CloudRequest, cloud: CloudServices): CloudResponse {
  return { headers: CACHEABLE, json: { keys: [cloud.signingKey().jwk] } };
}

export function keysV2(req: CloudRequest, cloud: CloudServices): CloudResponse {
  const { tid } = names(tenantOf(req));
  return {
    headers: CACHEABLE,
    json: { keys: [{ ...cloud.signingKey().jwk, issuer: v2Issuer(tid) }] },
  };
}

/** `GET /error?code=N`: the table row an error's `error_uri` points at. */
export function errorInfo(req: CloudRequest): CloudResponse {
  const code = Number(req.query.get('code'));
  const entry = Number.isSafeInteger(code) ? aadstsEntry(code) : undefined;
  if (entry === undefined) {
    throw new CloudRequestError(9990404, {
      description: `No AADSTS code ${req.query.get('code')?.slice(0, 16) ?? ''} in this lab; known: ${AADSTS_CODES.length} codes.`,
    });
  }
  return { json: entry };
}

/** The discovery routes, registered by startCloud. */
export function discoveryRoutes(): CloudRoute[] {
  return [
    {
      method: 'GET',
      path: '/{tenant}/.well-known/openid-configuration',
      handler: openIdConfigurationV1,
    },
    {
      method: 'GET',
      path: '/{tenant}/v2.0/.well-known/openid-configuration',
      handler: openIdConfigurationV2,
    },
    { method: 'GET', path: '/{tenant}/discovery/keys', handler: keysV1 },
    { method: 'GET', path: '/{tenant}/discovery/v2.0/keys', handler: keysV2 },
    { method: 'GET', path: '/error', handler: errorInfo },
  ];
}
