/**
 * The cloud's routes besides discovery and the token service: device registration (DRS,
 * cloud/registration) and the resource stubs (cloud/resources). `prtlab cloud serve` passes them
 * to startCloud together with the token routes, e.g.
 *
 *   startCloud({ ..., routes: (cloud) => [...tokenRoutes(cloud), ...coreRoutes(cloud)] })
 *
 * Each call returns a fresh set with its own DRS nonce key and replay caches, so call it once per
 * cloud.
 */
import { graphDirectoryRoutes } from './graph-directory/routes.ts';
import { policyRoutes } from './policies/routes.ts';
import { registrationRoutes } from './registration/index.ts';
import { resourceRoutes } from './resources/index.ts';
import type { CloudRoute, CloudServices } from './services.ts';
import { signInRoutes } from './signins/routes.ts';

/**
 * The DRS, resource and Conditional Access policy (cloud/policies) routes. The services argument is optional and unused (the handlers get
 * them per request); it is accepted so the call reads like `tokenRoutes(cloud)`.
 */
export function coreRoutes(_cloud?: CloudServices): CloudRoute[] {
  return [
    ...registrationRoutes(),
    ...resourceRoutes(),
    ...policyRoutes(),
    ...signInRoutes(),
    ...graphDirectoryRoutes(),
  ];
}
