/**
 * Warnings for a Conditional Access policy that asks for token protection in a way the docs warn
 * against. They never block a create or update: the admin API returns them next to the policy
 * (`warnings`) and the CLI prints them.
 */
import { CATALOG, DEFAULT_EDITION, type Edition } from '../ca/catalog.ts';
import type { ConditionalAccessPolicy } from '../ca/policy.ts';

export type LintCode =
  | 'office365-group'
  | 'client-app-types'
  | 'guests-unsupported'
  | 'no-exclusion'
  | 'enabled-without-report-only';

export interface LintWarning {
  readonly code: LintCode;
  readonly message: string;
}

export interface LintOptions {
  /** Whether the policy was ever report-only (StoredPolicy.reportOnlySince !== null). */
  readonly reportOnlyHistory: boolean;
  readonly edition?: Edition;
}

function hasGuestFlags(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return false;
  const flags = (v as { guestOrExternalUserTypes?: unknown }).guestOrExternalUserTypes;
  return typeof flags === 'string' && flags.split(',').some((f) => f.trim() !== 'none');
}

/** The warnings for `policy` (already validated by parsePolicy), in a fixed order. */
export function lintPolicy(policy: ConditionalAccessPolicy, options: LintOptions): LintWarning[] {
  const catalog = CATALOG[options.edition ?? DEFAULT_EDITION];
  const out: LintWarning[] = [];
  const users = policy.conditions.users;
  const apps = policy.conditions.applications;

  if ((apps.includeApplications ?? []).includes('Office365')) {
    out.push({
      code: 'office365-group',
      message:
        "the policy targets the 'Office365' application group; token protection supports only " +
        'Exchange Online and SharePoint Online, so select those applications instead',
    });
  }

  const types = policy.conditions.clientAppTypes ?? [];
  if (types.length === 0 || types.includes('all') || types.includes('browser')) {
    out.push({
      code: 'client-app-types',
      message:
        types.length === 0
          ? 'client app types are not configured; token protection applies only to ' +
            "'mobileAppsAndDesktopClients' (browsers cannot hold bound sessions)"
          : "client app types include browsers; select only 'mobileAppsAndDesktopClients'",
    });
  }

  const guestsIn =
    (users.includeUsers ?? []).some((u) => u === 'All' || u === 'GuestsOrExternalUsers') ||
    hasGuestFlags(users.includeGuestsOrExternalUsers);
  const guestsOut =
    (users.excludeUsers ?? []).includes('GuestsOrExternalUsers') ||
    hasGuestFlags(users.excludeGuestsOrExternalUsers);
  if (!catalog.b2b.supported && guestsIn && !guestsOut) {
    out.push({
      code: 'guests-unsupported',
      message:
        `the policy includes guests, but external (B2B) users are not supported in the ` +
        `${catalog.edition} edition; exclude 'GuestsOrExternalUsers'`,
    });
  }

  const excludedAccounts = [
    ...(users.excludeUsers ?? []).filter((u) => u !== 'GuestsOrExternalUsers'),
    ...(users.excludeGroups ?? []),
  ];
  if (excludedAccounts.length === 0) {
    out.push({
      code: 'no-exclusion',
      message:
        'no user or group is excluded; exclude an emergency-access (break-glass) account so a ' +
        'policy mistake cannot lock every administrator out',
    });
  }

  if (policy.state === 'enabled' && !options.reportOnlyHistory) {
    out.push({
      code: 'enabled-without-report-only',
      message:
        'the policy is enabled but was never report-only; run it in report-only mode first and ' +
        'check the sign-in logs for sessions it would block',
    });
  }
  return out;
}
