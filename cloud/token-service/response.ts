/**
 * The JSON token response (RFC 6749 §5.1, Entra's shape): expires_in and friends as strings, as
 * Entra sends them (prt-protocol §4.3, §10); `resource` echoed on v1, `scope` on v2.
 */
import type { TokenContext } from './context.ts';
import type { ResolvedResource } from './resources.ts';

export function tokenResponse(
  ctx: TokenContext,
  args: {
    accessToken?: { token: string; expiresIn: number; expiresOn: number };
    resource?: ResolvedResource;
    refreshToken?: string;
    refreshExpiresIn?: number;
    extra?: Record<string, unknown>;
  },
): Record<string, unknown> {
  const at = args.accessToken;
  return {
    token_type: 'Bearer',
    ...(args.resource ? { scope: args.resource.scope } : {}),
    ...(at
      ? {
          expires_in: String(at.expiresIn),
          ext_expires_in: String(at.expiresIn),
          expires_on: String(at.expiresOn),
          not_before: String(ctx.now),
          ...(ctx.version === 1 && args.resource ? { resource: args.resource.audience } : {}),
          access_token: at.token,
        }
      : {}),
    ...(args.refreshToken ? { refresh_token: args.refreshToken } : {}),
    ...(args.refreshExpiresIn !== undefined
      ? { refresh_token_expires_in: args.refreshExpiresIn }
      : {}),
    ...(args.extra ?? {}),
  };
}
