/**
 * `startCloud`: the simulated Entra ID on one HTTPS port. It opens the data directory (creating
 * the lab CA, device CA, server certificate, signing key and directory on first start), serves
 * discovery and the JWKS, and takes further routes (token service, device registration) either
 * as a list at start-up or through `route()` afterwards.
 */
import type { CloudPaths } from './data-dir.ts';
import { ensureCloudDirs } from './data-dir.ts';
import { openDirectory, type ScryptParams } from './directory/index.ts';
import type { Directory, Tenant } from './directory/types.ts';
import { discoveryRoutes } from './discovery.ts';
import { checkListenHost, checkListenPort } from './http/loopback.ts';
import type { HttpMethod } from './http/router.ts';
import {
  type HttpLimits,
  type RouteOptions,
  type RouteSpec,
  startHttpServer,
} from './http/server.ts';
import { resolveTenantSegment } from './http/tenant.ts';
import { issueDeviceCertificate, openLabPki } from './pki/index.ts';
import type { SigningKey } from './pki/signing-key.ts';
import type { CloudRouteHandler, CloudServices } from './services.ts';

export const DEFAULT_CLOUD_HOST = '127.0.0.1';
export const DEFAULT_CLOUD_PORT = 8443;

export interface StartCloudOptions {
  /** The lab's data directory; the cloud lives in `<dataDir>/cloud`. */
  dataDir: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Allow a non-loopback host (the cloud issues tokens to whoever reaches it). */
  allowRemote?: boolean;
  /** One line per request and per server-side error; never bodies, tokens or passwords. */
  log?: (line: string) => void;
  /** Routes to serve besides discovery, or a function building them from the services. */
  routes?:
    | readonly RouteSpec<CloudServices>[]
    | ((cloud: CloudServices) => readonly RouteSpec<CloudServices>[]);
  limits?: Partial<HttpLimits>;
  clock?: () => Date;
  /** First start only: the tenant's domain, display name and region. */
  tenant?: { domain?: string; displayName?: string; region?: string };
  /** scrypt parameters for new password hashes (tests lower them). */
  scrypt?: ScryptParams;
  /** Base URL to advertise, if clients reach the cloud under another name. */
  publicUrl?: string;
}

export interface CloudHandle {
  /** https://127.0.0.1:8443, no trailing slash. */
  readonly url: string;
  readonly address: string;
  readonly port: number;
  readonly tenant: Tenant;
  /** The lab root CA certificate clients must trust. */
  readonly caPath: string;
  /** True if this start created the lab CA (first start on this data directory). */
  readonly caCreated: boolean;
  readonly paths: CloudPaths;
  readonly directory: Directory;
  readonly services: CloudServices;
  signingKey(): SigningKey;
  /** Adds a route, e.g. `route('POST', '/{tenant}/oauth2/token', handler)`. */
  route(method: HttpMethod, path: string, handler: CloudRouteHandler, options?: RouteOptions): void;
  /** Stops listening, lets in-flight requests finish briefly, closes the directory. */
  close(): Promise<void>;
}

export async function startCloud(options: StartCloudOptions): Promise<CloudHandle> {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('options must be an object');
  const host = options.host ?? DEFAULT_CLOUD_HOST;
  const port = options.port ?? DEFAULT_CLOUD_PORT;
  const clock = options.clock ?? (() => new Date());
  const log = options.log ?? (() => {});
  // Refuse a bad address before anything is created on disk.
  checkListenHost(host, options.allowRemote ?? false);
  checkListenPort(port);
  const paths = await ensureCloudDirs(options.dataDir);
  const pki = await openLabPki(paths, [host], clock());
  const directory = await openDirectory(paths, {
    clock,
    ...(options.tenant ? { tenant: options.tenant } : {}),
    ...(options.scrypt ? { scrypt: options.scrypt } : {}),
  });
  const tenant = directory.tenant;
  const cleanups: (() => void | Promise<void>)[] = [];
  const runCleanups = async () => {
    for (const c of cleanups.splice(0).reverse()) {
      try {
        await c();
      } catch (err) {
        log(`close: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  };
  const services: CloudServices = Object.freeze<CloudServices>({
    directory,
    tenant,
    paths,
    deviceCa: pki.deviceCa,
    signingKey: () => pki.signingKey,
    issueDeviceCertificate: (params) =>
      issueDeviceCertificate(pki.deviceCa, {
        ...params,
        tenantId: params.tenantId ?? tenant.id,
        region: params.region ?? tenant.region,
        now: params.now ?? clock(),
      }),
    now: clock,
    log,
    onClose: (cleanup) => {
      cleanups.push(cleanup);
    },
  });
  try {
    const http = await startHttpServer<CloudServices>({
      key: pki.server.key,
      cert: pki.server.cert,
      host,
      port,
      allowRemote: options.allowRemote ?? false,
      context: services,
      resolveTenant: (segment) => resolveTenantSegment(segment, tenant),
      ...(options.limits ? { limits: options.limits } : {}),
      log,
      clock,
      ...(options.publicUrl ? { publicUrl: options.publicUrl } : {}),
    });
    try {
      const extra =
        typeof options.routes === 'function' ? options.routes(services) : (options.routes ?? []);
      for (const r of [...discoveryRoutes(), ...extra])
        http.route(r.method, r.path, r.handler, r.options);
    } catch (err) {
      await http.close();
      throw err;
    }
    let closing: Promise<void> | undefined;
    return Object.freeze({
      url: http.url,
      address: http.address,
      port: http.port,
      tenant,
      caPath: paths.labCaCert,
      caCreated: pki.caCreated,
      paths,
      directory,
      services,
      signingKey: () => pki.signingKey,
      route: http.route,
      close(): Promise<void> {
        closing ??= (async () => {
          await http.close();
          await runCleanups();
          await directory.close();
        })();
        return closing;
      },
    });
  } catch (err) {
    await runCleanups();
    await directory.close();
    throw err;
  }
}
