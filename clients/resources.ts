/**
 * The resources a client stub can call: the cloud's resource stubs (cloud/resources/index.ts
 * documents the paths). Tokens are asked for with a v1 `resource`, as the Office clients do.
 * SharePoint's audience is its app id rather than the tenant's `https://<tenant>.sharepoint.com`
 * host, which the device does not know; the stub accepts either.
 */
import type { ResourceName } from './profiles.ts';

export interface ResourceTarget {
  readonly name: ResourceName;
  readonly displayName: string;
  /** The `resource` a token is requested for. */
  readonly resource: string;
  /** GET path on the cloud's base URL. */
  readonly path: string;
}

export const RESOURCES: Readonly<Record<ResourceName, ResourceTarget>> = Object.freeze({
  exchange: {
    name: 'exchange',
    displayName: 'Office 365 Exchange Online',
    resource: 'https://outlook.office365.com',
    path: '/resources/exchange/api/v2.0/me/messages',
  },
  sharepoint: {
    name: 'sharepoint',
    displayName: 'Office 365 SharePoint Online',
    resource: '00000003-0000-0ff1-ce00-000000000000',
    path: '/resources/sharepoint/_api/web',
  },
  graph: {
    name: 'graph',
    displayName: 'Microsoft Graph',
    resource: 'https://graph.microsoft.com',
    path: '/v1.0/me',
  },
});

/** One line about what a resource stub answered (no token, no personal data beyond the UPN). */
export function describeAnswer(name: ResourceName, json: unknown): string {
  const j = (json ?? {}) as Record<string, unknown>;
  switch (name) {
    case 'exchange': {
      const value = Array.isArray(j.value) ? j.value : undefined;
      if (value) return `${value.length} message${value.length === 1 ? '' : 's'}`;
      return `mailbox path ${String(j.path ?? '/')}`;
    }
    case 'sharepoint':
      return `site '${String(j.displayName ?? '?')}' (${String(j.webUrl ?? '?')})`;
    case 'graph':
      return `user ${String(j.userPrincipalName ?? '?')} (${String(j.displayName ?? '?')})`;
  }
}
