/**
 * Builds one sign-in log entry in the Graph beta `signIn` shape (docs/token-protection.md §3)
 * from what the token service knows about a token request. The §3.5 mapping itself lives in
 * cloud/ca/evaluate.ts; this module only renders its result.
 *
 * One lab member Graph's `deviceDetail` has none of: `isHardwareBacked`, whether the device's
 * registration had a verified TPM attestation (cloud/registration/attestation.ts); false
 * without a device, as `isCompliant` is.
 */
import type { AppliedPolicy, CaEvaluation, RequestClientAppType } from '../ca/evaluate.ts';
import type { TrustType } from '../directory/types.ts';

export type IncomingTokenType = 'none' | 'primaryRefreshToken' | 'refreshToken';
export type SignInEventType = 'interactiveUser' | 'nonInteractiveUser';

export interface AppliedConditionalAccessPolicy {
  id: string;
  displayName: string;
  enforcedGrantControls: string[];
  enforcedSessionControls: string[];
  sessionControlsNotSatisfied: string[];
  result: string;
}

export interface SignInEntry {
  id: string;
  createdDateTime: string;
  userId: string;
  userPrincipalName: string;
  userDisplayName: string;
  userType: 'member' | 'guest';
  appId: string;
  appDisplayName: string;
  resourceId: string;
  resourceDisplayName: string;
  correlationId: string;
  originalRequestId: string;
  sessionId: string;
  isInteractive: boolean;
  signInEventTypes: SignInEventType[];
  incomingTokenType: IncomingTokenType;
  crossTenantAccessType: 'none';
  homeTenantId: string;
  resourceTenantId: string;
  clientAppUsed: string;
  userAgent: string;
  status: { errorCode: number; failureReason: string; additionalDetails: string | null };
  deviceDetail: {
    deviceId: string;
    displayName: string;
    operatingSystem: string;
    browser: string;
    isCompliant: boolean;
    isManaged: boolean;
    trustType: string;
    /** Lab member (Graph has none): the device record's `hardwareBacked`. */
    isHardwareBacked: boolean;
  };
  conditionalAccessStatus: 'success' | 'failure' | 'notApplied';
  appliedConditionalAccessPolicies: AppliedConditionalAccessPolicy[];
  signInTokenProtectionStatus: 'none' | 'bound' | 'unbound';
  tokenProtectionStatusDetails: {
    signInSessionStatus: 'none' | 'bound' | 'unbound';
    signInSessionStatusCode: number;
  };
}

export interface SignInInput {
  readonly id: string;
  readonly createdAt: Date;
  readonly tenantId: string;
  /** The signed-in user; absent when the request failed before one was known. */
  readonly user?: {
    readonly id: string;
    readonly upn: string;
    readonly displayName: string;
    readonly kind: 'member' | 'guest';
  };
  /** The UPN the request named, for failures without a known user. */
  readonly attemptedUpn?: string;
  readonly app: { readonly id: string; readonly displayName: string };
  readonly resource?: { readonly id: string; readonly displayName: string };
  readonly device?: {
    readonly id: string;
    readonly displayName: string;
    readonly operatingSystem: string;
    readonly operatingSystemVersion: string;
    readonly trustType: TrustType;
    readonly isCompliant?: boolean | null;
    /** The device record's `hardwareBacked` (verified TPM attestation); absent reads false. */
    readonly hardwareBacked?: boolean;
  };
  readonly clientAppType: RequestClientAppType;
  readonly incomingTokenType: IncomingTokenType;
  readonly errorCode: number;
  readonly failureReason?: string;
  readonly evaluation?: CaEvaluation;
  readonly correlationId?: string;
  readonly sessionId?: string;
  readonly userAgent?: string;
}

/** `clientAppUsed` strings as the log shows them (§3.1). */
export const CLIENT_APP_USED: Readonly<Record<RequestClientAppType, string>> = {
  browser: 'Browser',
  mobileAppsAndDesktopClients: 'Mobile Apps and Desktop clients',
  exchangeActiveSync: 'Exchange ActiveSync',
  other: 'Other clients',
};

/** `deviceDetail.trustType` as the log spells it (§3.1), not as the directory does. */
export const LOG_TRUST_TYPES: Readonly<Record<TrustType, string>> = {
  AzureAd: 'Azure AD joined',
  ServerAd: 'Hybrid Azure AD joined',
  Workplace: 'Azure AD registered',
};

function browserOf(ua: string | undefined): string {
  if (!ua) return '';
  // Most specific first: Edge's UA also names Chrome and Safari, Chrome's names Safari.
  for (const [token, name] of [
    ['Edg', 'Edge'],
    ['Firefox', 'Firefox'],
    ['Chrome', 'Chrome'],
    ['Safari', 'Safari'],
  ] as const) {
    const m = new RegExp(`${token}/(\\d+)`).exec(ua);
    if (m) return `${name} ${m[1]}`;
  }
  return '';
}

/**
 * Log forms of evaluation outcomes. The evaluator shares one frozen outcome per policy and result
 * (cloud/ca/evaluate.ts), so the log shares one frozen entry per outcome too: no per-request
 * copies of every policy, and the store can recognise an entry it has already written.
 */
const LOG_FORMS = new WeakMap<AppliedPolicy, AppliedConditionalAccessPolicy>();

function logForm(p: AppliedPolicy): AppliedConditionalAccessPolicy {
  const known = LOG_FORMS.get(p);
  if (known) return known;
  const form: AppliedConditionalAccessPolicy = Object.freeze({
    id: p.id,
    displayName: p.displayName,
    enforcedGrantControls: Object.freeze([]) as unknown as string[],
    enforcedSessionControls: Object.freeze([...p.enforcedSessionControls]) as string[],
    sessionControlsNotSatisfied: Object.freeze([...p.sessionControlsNotSatisfied]) as string[],
    result: p.result,
  });
  // Only a frozen outcome can be trusted not to change under the cached form.
  if (Object.isFrozen(p)) LOG_FORMS.set(p, form);
  return form;
}

export function buildSignIn(input: SignInInput): SignInEntry {
  const interactive = input.incomingTokenType === 'none';
  const ev = input.evaluation;
  const tp = ev?.tokenProtection;
  const tpStatus = tp?.signInSessionStatus ?? 'none';
  const d = input.device;
  const clientAppUsed = CLIENT_APP_USED[input.clientAppType];
  return {
    id: input.id,
    createdDateTime: input.createdAt.toISOString(),
    userId: input.user?.id ?? '',
    userPrincipalName: (input.user?.upn ?? input.attemptedUpn ?? '').toLowerCase(),
    userDisplayName: input.user?.displayName ?? '',
    userType: input.user?.kind ?? 'member',
    appId: input.app.id,
    appDisplayName: input.app.displayName,
    resourceId: input.resource?.id ?? '',
    resourceDisplayName: input.resource?.displayName ?? '',
    correlationId: input.correlationId ?? input.id,
    originalRequestId: input.id,
    sessionId: input.sessionId ?? '',
    isInteractive: interactive,
    signInEventTypes: [interactive ? 'interactiveUser' : 'nonInteractiveUser'],
    incomingTokenType: input.incomingTokenType,
    crossTenantAccessType: 'none',
    homeTenantId: input.tenantId,
    resourceTenantId: input.tenantId,
    clientAppUsed,
    userAgent: input.userAgent ?? '',
    status: {
      errorCode: input.errorCode,
      failureReason: input.errorCode === 0 ? 'Other.' : (input.failureReason ?? ''),
      additionalDetails: null,
    },
    deviceDetail: {
      deviceId: d?.id ?? '',
      displayName: d?.displayName ?? '',
      operatingSystem: d ? `${d.operatingSystem} ${d.operatingSystemVersion.split('.')[0]}` : '',
      browser: input.clientAppType === 'browser' ? browserOf(input.userAgent) : '',
      isCompliant: d?.isCompliant === true,
      isManaged: d !== undefined,
      trustType: d ? LOG_TRUST_TYPES[d.trustType] : '',
      isHardwareBacked: d?.hardwareBacked === true,
    },
    conditionalAccessStatus: ev?.conditionalAccessStatus ?? 'notApplied',
    appliedConditionalAccessPolicies: (ev?.applied ?? []).map(logForm),
    signInTokenProtectionStatus: tpStatus,
    tokenProtectionStatusDetails: {
      signInSessionStatus: tpStatus,
      signInSessionStatusCode: tp?.signInSessionStatusCode ?? 0,
    },
  };
}
