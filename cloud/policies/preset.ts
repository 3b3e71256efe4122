/**
 * The token-protection policy of the seed document (Feb 2023 preview): Exchange Online and
 * SharePoint Online, Windows devices, mobile apps and desktop clients only, session control
 * "require token protection for sign-in sessions", created in report-only mode.
 */
import { RESOURCE_IDS } from '../ca/catalog.ts';
import type { PolicyState } from '../ca/policy.ts';

export const PRESETS = ['token-protection'] as const;
export type Preset = (typeof PRESETS)[number];

export interface TokenProtectionPresetOptions {
  /** Default 'enabledForReportingButNotEnforced' (report-only), as the seed document says. */
  readonly state?: PolicyState;
  /** Group object ids to include; with none, the policy includes all users. */
  readonly includeGroups?: readonly string[];
  /** User object ids to exclude (break-glass accounts). */
  readonly excludeUsers?: readonly string[];
  readonly displayName?: string;
}

/** The preset as Graph beta `conditionalAccessPolicy` JSON, ready for PolicyStore.create. */
export function tokenProtectionPreset(
  options: TokenProtectionPresetOptions = {},
): Record<string, unknown> {
  const groups = options.includeGroups ?? [];
  return {
    displayName: options.displayName ?? 'Require token protection for sign-in sessions',
    state: options.state ?? 'enabledForReportingButNotEnforced',
    conditions: {
      users: {
        includeUsers: groups.length === 0 ? ['All'] : [],
        excludeUsers: [...(options.excludeUsers ?? [])],
        includeGroups: [...groups],
        excludeGroups: [],
      },
      applications: {
        includeApplications: [RESOURCE_IDS.exchangeOnline, RESOURCE_IDS.sharePointOnline],
      },
      platforms: { includePlatforms: ['windows'] },
      clientAppTypes: ['mobileAppsAndDesktopClients'],
    },
    sessionControls: { secureSignInSession: { isEnabled: true } },
  };
}
