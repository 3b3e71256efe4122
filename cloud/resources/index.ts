/**
 * Resource stubs: just enough of Exchange Online, SharePoint Online and Microsoft Graph for a
 * client to spend an access token on and for the replay harness to see who accepted what
 * (DESIGN "Resource stubs under /resources/"). Each checks the bearer token for its own audiences
 * (bearer.ts) and answers a small JSON body:
 *
 *   GET /resources/exchange/...    audience 00000002-0000-0ff1-ce00-000000000000 or the Exchange
 *                                  URIs of the directory (https://outlook.office365.com, ...);
 *                                  `.../me/messages` lists the user's (fixed) messages
 *   GET /resources/sharepoint/...  audience 00000003-0000-0ff1-ce00-000000000000 or the tenant's
 *                                  SharePoint host from the directory (https://contoso.sharepoint.com)
 *   GET /v1.0/me                   audience Microsoft Graph: the signed-in user from the directory
 *
 * GET only: any other method on these paths is AADSTS900561 (405, with Allow) from the router.
 */
import { APP_IDS } from '../directory/seed.ts';
import type { Application } from '../directory/types.ts';
import { CloudInternalError, CloudRequestError } from '../errors.ts';
import type { CloudRequest, CloudResponse } from '../http/server.ts';
import type { CloudRoute, CloudServices } from '../services.ts';
import type { AccessTokenClaims } from '../token-service/access-tokens.ts';
import { requireAccessToken } from './bearer.ts';

export { bearerChallenge, bearerToken, requireAccessToken } from './bearer.ts';

/** How deep a path under /resources/<service>/ may go (the router matches whole segment lists). */
export const MAX_RESOURCE_DEPTH = 8;

/** The audiences a resource's tokens may carry: its app id and every identifier URI. */
async function audiencesOf(cloud: CloudServices, appId: string): Promise<Application> {
  const app = await cloud.directory.applications.get(appId);
  // The directory seeds these first-party applications on every open; missing is a lab bug.
  if (!app)
    throw new CloudInternalError(`first-party application ${appId} is not in the directory`);
  return app;
}

async function authorize(
  req: CloudRequest,
  cloud: CloudServices,
  appId: string,
): Promise<{ app: Application; claims: AccessTokenClaims }> {
  const app = await audiencesOf(cloud, appId);
  const claims = await requireAccessToken(req, cloud, [app.appId, ...app.identifierUris]);
  return { app, claims };
}

/** The path below /resources/<service>, as received (JSON-encoded in answers, never as HTML). */
function subPath(req: CloudRequest, prefix: string): string {
  const rest = req.path.slice(prefix.length);
  return rest === '' ? '/' : rest;
}

function who(claims: AccessTokenClaims): Record<string, unknown> {
  return {
    id: claims.oid,
    userPrincipalName: claims.upn ?? claims.preferred_username ?? null,
  };
}

async function exchange(req: CloudRequest, cloud: CloudServices): Promise<CloudResponse> {
  const { app, claims } = await authorize(req, cloud, APP_IDS.exchangeOnline);
  const path = subPath(req, '/resources/exchange');
  const segments = path.toLowerCase().split('/').filter(Boolean);
  if (segments.slice(-2).join('/') === 'me/messages') {
    return {
      json: {
        '@odata.context': `${req.baseUrl}/resources/exchange/$metadata#Me/Messages`,
        value: [
          {
            id: `AAMk-${claims.oid}-1`,
            subject: 'Welcome to the lab mailbox',
            from: { emailAddress: { name: 'prtlab', address: `noreply@${cloud.tenant.domain}` } },
            toRecipients: [{ emailAddress: { address: claims.upn ?? null } }],
            receivedDateTime: cloud.tenant.createdAt,
            isRead: false,
          },
        ],
      },
    };
  }
  return { json: { service: app.displayName, path, user: who(claims) } };
}

async function sharePoint(req: CloudRequest, cloud: CloudServices): Promise<CloudResponse> {
  const { app, claims } = await authorize(req, cloud, APP_IDS.sharePointOnline);
  const site = app.identifierUris[0] ?? `https://${cloud.tenant.domain}`;
  const host = new URL(site).host;
  return {
    json: {
      id: `${host},${cloud.tenant.id},${APP_IDS.sharePointOnline}`,
      displayName: `${cloud.tenant.displayName} Team Site`,
      webUrl: `${site}/sites/lab`,
      createdDateTime: cloud.tenant.createdAt,
      path: subPath(req, '/resources/sharepoint'),
      user: who(claims),
    },
  };
}

async function graphMe(req: CloudRequest, cloud: CloudServices): Promise<CloudResponse> {
  const { claims } = await authorize(req, cloud, APP_IDS.microsoftGraph);
  const user = await cloud.directory.users.get(claims.oid);
  if (!user) throw new CloudRequestError(50034);
  return {
    json: {
      '@odata.context': 'https://graph.microsoft.com/v1.0/$metadata#users/$entity',
      id: user.id,
      displayName: user.displayName,
      userPrincipalName: user.upn,
      mail: user.kind === 'member' ? user.upn : null,
      userType: user.kind === 'member' ? 'Member' : 'Guest',
      accountEnabled: user.enabled,
    },
  };
}

/** GET routes for every depth 0..MAX_RESOURCE_DEPTH below `prefix`. */
function subtree(
  prefix: string,
  handler: (req: CloudRequest, cloud: CloudServices) => Promise<CloudResponse>,
): CloudRoute[] {
  const routes: CloudRoute[] = [];
  let path = prefix;
  for (let depth = 0; depth <= MAX_RESOURCE_DEPTH; depth++) {
    routes.push({ method: 'GET', path, handler, options: { bodyLimit: 0 } });
    path += `/{p${depth + 1}}`;
  }
  return routes;
}

/** The resource stub routes. */
export function resourceRoutes(): CloudRoute[] {
  return [
    ...subtree('/resources/exchange', exchange),
    ...subtree('/resources/sharepoint', sharePoint),
    { method: 'GET', path: '/v1.0/me', handler: graphMe, options: { bodyLimit: 0 } },
  ];
}
