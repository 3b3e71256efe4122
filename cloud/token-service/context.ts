/** What every grant handler gets: the cloud, the token keys, the request and its form. */

import { CloudRequestError } from '../errors.ts';
import type { CloudRequest } from '../http/server.ts';
import type { CloudServices } from '../services.ts';
import type { UsedCodes } from '../tokens/auth-code.ts';
import type { TokenKeys } from '../tokens/keys.ts';
import type { ReplayCache } from '../tokens/replay-cache.ts';
import type { ConditionalAccessCache, SignInDraft } from './conditional-access.ts';

export interface TokenContext {
  readonly cloud: CloudServices;
  readonly keys: TokenKeys;
  readonly replay: ReplayCache;
  readonly req: CloudRequest;
  readonly form: URLSearchParams;
  /** 1 for /oauth2/token, 2 for /oauth2/v2.0/token. */
  readonly version: 1 | 2;
  /** Unix seconds. */
  readonly now: number;
  /** The Conditional Access policies evaluated at access-token issuance, compiled. */
  readonly conditionalAccess: ConditionalAccessCache;
  /** What the grant learns about the request, for the sign-in log (filled as it goes). */
  readonly signIn: SignInDraft;
  /** Authorization codes (cloud/tokens/auth-code.ts): this process's sealing key, codes used. */
  readonly authCodes: AuthCodes;
}

export interface AuthCodes {
  readonly key: Buffer;
  readonly used: UsedCodes;
}

/** PRT lifetime: 14 days, as Entra answers (refresh_token_expires_in 1209599, prt-protocol §9). */
export const PRT_LIFETIME_S = 1_209_599;
/** App refresh tokens: 90 days (Entra's documented default lifetime). */
export const REFRESH_TOKEN_LIFETIME_S = 90 * 24 * 3600;

/** A required form field; AADSTS900144 when absent or empty. */
export function required(form: URLSearchParams, name: string): string {
  const v = form.get(name);
  if (v === null || v === '') {
    throw new CloudRequestError(900144, {
      description: `The request body must contain the following parameter: '${name}'.`,
    });
  }
  return v;
}

export function optional(form: URLSearchParams, name: string): string | undefined {
  const v = form.get(name);
  return v === null || v === '' ? undefined : v;
}
