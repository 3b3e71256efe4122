/**
 * Observed beside expected: what the attacker's decisive request got (HTTP status, OAuth error,
 * AADSTS code, correlation id), the sign-in log entry the cloud wrote for it (found by correlation
 * id: the token-protection policy's result and tokenProtectionStatusDetails), the outcome that
 * makes, and how it differs from the scenario's expectation.
 */
import type { SignInEntry } from '../cloud/signins/entry.ts';
import type { Observation, RequestRecord, TokenFacts } from './attacker/protocol.ts';
import type { Expectation, Outcome, SignInResult } from './model.ts';

/** Conditional Access blocks (2023-preview and 2025-ga editions, docs/token-protection.md §3.4). */
export const CA_BLOCK_CODES: ReadonlySet<number> = new Set([53003, 530084]);

export interface SignInEvidence {
  /** The token-protection policy's result, `notEvaluated` or `noSignIn`. */
  readonly result: SignInResult;
  /** tokenProtectionStatusDetails as `bound`, `unbound <code>` or `none`. */
  readonly tokenProtection: string;
  readonly conditionalAccessStatus?: string;
  readonly errorCode?: number;
  readonly userPrincipalName?: string;
  readonly appDisplayName?: string;
  readonly resourceDisplayName?: string;
  readonly deviceId?: string;
  readonly trustType?: string;
  readonly correlationId?: string;
}

export interface Observed {
  readonly outcome: Outcome | 'error';
  readonly status?: number;
  readonly error?: string;
  readonly aadsts?: number;
  readonly correlationId?: string;
  readonly signIn: SignInEvidence;
  readonly requests: readonly RequestRecord[];
  readonly stolen?: TokenFacts;
  readonly got?: TokenFacts;
  /** The artifact did not work on the attacker's host. */
  readonly localError?: { readonly code: string; readonly message: string };
  /** The harness could not run this row (the report says why; the row fails). */
  readonly harnessError?: string;
}

export const NO_SIGN_IN: SignInEvidence = { result: 'noSignIn', tokenProtection: 'none' };

/** The evidence of one sign-in log entry for the policy `policyId`. */
export function signInEvidence(entry: SignInEntry | undefined, policyId: string): SignInEvidence {
  if (!entry) return NO_SIGN_IN;
  const applied = entry.appliedConditionalAccessPolicies.find((p) => p.id === policyId);
  const tp = entry.tokenProtectionStatusDetails;
  return {
    result: (applied?.result as SignInResult | undefined) ?? 'notEvaluated',
    tokenProtection:
      tp.signInSessionStatus === 'unbound'
        ? `unbound ${tp.signInSessionStatusCode}`
        : tp.signInSessionStatus,
    conditionalAccessStatus: entry.conditionalAccessStatus,
    errorCode: entry.status.errorCode,
    userPrincipalName: entry.userPrincipalName,
    appDisplayName: entry.appDisplayName,
    resourceDisplayName: entry.resourceDisplayName,
    ...(entry.deviceDetail.deviceId ? { deviceId: entry.deviceDetail.deviceId } : {}),
    ...(entry.deviceDetail.trustType ? { trustType: entry.deviceDetail.trustType } : {}),
    correlationId: entry.correlationId,
  };
}

/** The outcome of an answer: allowed on 2xx, blocked on a Conditional Access code, else refused. */
export function outcomeOf(request: RequestRecord | undefined): Outcome {
  if (!request) return 'unusable';
  if (request.status >= 200 && request.status < 300) return 'allowed';
  if (request.aadsts !== undefined && CA_BLOCK_CODES.has(request.aadsts)) return 'blocked';
  return 'refused';
}

/** Builds the observed side from the attacker's observation and a sign-in log lookup. */
export function observe(
  observation: Observation,
  lookup: (correlationId: string | undefined) => SignInEvidence,
): Observed {
  const decisive =
    observation.decisive === undefined ? undefined : observation.requests[observation.decisive];
  const outcome: Outcome = observation.localError ? 'unusable' : outcomeOf(decisive);
  return {
    outcome,
    ...(decisive
      ? {
          status: decisive.status,
          ...(decisive.error !== undefined ? { error: decisive.error } : {}),
          ...(decisive.aadsts !== undefined ? { aadsts: decisive.aadsts } : {}),
          ...(decisive.correlationId !== undefined
            ? { correlationId: decisive.correlationId }
            : {}),
        }
      : {}),
    signIn: decisive ? lookup(decisive.correlationId) : NO_SIGN_IN,
    requests: observation.requests,
    ...(observation.stolen ? { stolen: observation.stolen } : {}),
    ...(observation.got ? { got: observation.got } : {}),
    ...(observation.localError ? { localError: observation.localError } : {}),
  };
}

/** A row the harness could not run: it fails, and says why. */
export function harnessFailure(message: string): Observed {
  return { outcome: 'error', signIn: NO_SIGN_IN, requests: [], harnessError: message };
}

/** Every way `observed` differs from `expected` (empty: as expected). */
export function differences(expected: Expectation, observed: Observed): string[] {
  const out: string[] = [];
  if (observed.harnessError !== undefined) return [`the harness failed: ${observed.harnessError}`];
  if (observed.outcome !== expected.outcome)
    out.push(`outcome: expected ${expected.outcome}, observed ${observed.outcome}`);
  if (expected.aadsts !== undefined && observed.aadsts !== expected.aadsts)
    out.push(`AADSTS: expected ${expected.aadsts}, observed ${observed.aadsts ?? 'none'}`);
  if (expected.signInResult !== undefined && observed.signIn.result !== expected.signInResult)
    out.push(
      `sign-in log policy result: expected ${expected.signInResult}, observed ${observed.signIn.result}`,
    );
  if (
    expected.tokenProtection !== undefined &&
    observed.signIn.tokenProtection !== expected.tokenProtection
  )
    out.push(
      `token protection: expected ${expected.tokenProtection}, observed ${observed.signIn.tokenProtection}`,
    );
  return out;
}
