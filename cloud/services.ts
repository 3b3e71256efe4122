/**
 * What every cloud route handler receives besides the request: the directory, the signing key,
 * the device CA and a clock. The token service and device registration reach the cloud's state
 * only through this object, so they never open files or databases themselves.
 */
import type { CloudPaths } from './data-dir.ts';
import type { Directory, Tenant } from './directory/types.ts';
import type { RouteHandler, RouteSpec } from './http/server.ts';
import type { Authority } from './pki/authority.ts';
import type { DeviceCertificateParams, IssuedDeviceCertificate } from './pki/device-cert.ts';
import type { SigningKey } from './pki/signing-key.ts';

export interface CloudServices {
  readonly directory: Directory;
  /** The lab's tenant (the one `{tenant}` resolves to). */
  readonly tenant: Tenant;
  readonly paths: CloudPaths;
  /** The RS256 token-signing key (kid = RFC 7638 thumbprint) that the JWKS publishes. */
  signingKey(): SigningKey;
  /** The `CN=MS-Organization-Access` CA. */
  readonly deviceCa: Authority;
  /**
   * Issues a device certificate from the device CA; `tenantId` and `region` default to the lab
   * tenant's.
   */
  issueDeviceCertificate(
    params: Omit<DeviceCertificateParams, 'tenantId' | 'region'> &
      Partial<Pick<DeviceCertificateParams, 'tenantId' | 'region'>>,
  ): Promise<IssuedDeviceCertificate>;
  /** The cloud's clock (tests may freeze it). */
  now(): Date;
  /** The server log (never pass secrets, tokens or bodies). */
  log(line: string): void;
  /**
   * Runs `cleanup` when the cloud closes, after the server has stopped taking requests and
   * before the directory closes (for instance: flush and close the sign-in log).
   */
  onClose(cleanup: () => void | Promise<void>): void;
}

export type CloudRouteHandler = RouteHandler<CloudServices>;
export type CloudRoute = RouteSpec<CloudServices>;
