/**
 * cloud/: the simulated Microsoft Entra ID. This file is its public surface for the rest of
 * prtlab (CLI, token service, device registration, tests).
 */
export {
  type CloudPaths,
  cloudPaths,
  DEFAULT_DATA_DIR_NAME,
  ensureCloudDirs,
  resolveDataDir,
} from './data-dir.ts';
export * from './directory/index.ts';
export {
  keysV1,
  keysV2,
  openIdConfigurationV1,
  openIdConfigurationV2,
} from './discovery.ts';
export {
  AADSTS_CODES,
  type AadstsCode,
  type AadstsEntry,
  aadstsEntry,
  CloudConfigError,
  CloudError,
  type CloudErrorCode,
  type CloudErrorOptions,
  CloudInternalError,
  CloudRequestError,
  CloudStateError,
  DirectoryError,
  echo,
  isCloudError,
  type OAuthError,
} from './errors.ts';
export { entraTimestamp, type RequestIds } from './http/entra-error.ts';
export { isLoopbackHost } from './http/loopback.ts';
export type { HttpMethod } from './http/router.ts';
export {
  type CloudRequest,
  type CloudResponse,
  DEFAULT_LIMITS,
  type HttpLimits,
  type RouteHandler,
  type RouteOptions,
  type RouteSpec,
} from './http/server.ts';
export { resolveTenantSegment, type TenantAlias, type TenantMatch } from './http/tenant.ts';
export { isDnsName, isGuid, newGuid, normalizeGuid } from './ids.ts';
export * from './pki/index.ts';
export {
  type CloudHandle,
  DEFAULT_CLOUD_HOST,
  DEFAULT_CLOUD_PORT,
  type StartCloudOptions,
  startCloud,
} from './server.ts';
export type { CloudRoute, CloudRouteHandler, CloudServices } from './services.ts';
