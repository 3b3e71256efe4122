/** Shared by the Conditional Access tests: policy documents as Graph holds them. */

/**
 * The seed token-protection policy (token-protection.md §2.5) in the full form Graph returns, for
 * Exchange Online and SharePoint Online on Windows desktop clients, with its placeholders filled:
 * `pilotGroupId` included, `breakGlassUserId` excluded. `id` comes first when given.
 */
export function seedTokenProtectionPolicy(fill: {
  id?: string;
  displayName: string;
  state: string;
  breakGlassUserId: string;
  pilotGroupId: string;
}): Record<string, unknown> {
  return {
    ...(fill.id === undefined ? {} : { id: fill.id }),
    displayName: fill.displayName,
    state: fill.state,
    conditions: {
      users: {
        includeUsers: [],
        excludeUsers: [fill.breakGlassUserId],
        includeGroups: [fill.pilotGroupId],
        excludeGroups: [],
        includeRoles: [],
        excludeRoles: [],
        includeGuestsOrExternalUsers: null,
        excludeGuestsOrExternalUsers: {
          guestOrExternalUserTypes:
            'internalGuest,b2bCollaborationGuest,b2bCollaborationMember,b2bDirectConnectUser,otherExternalUser,serviceProvider',
          externalTenants: {
            '@odata.type': '#microsoft.graph.conditionalAccessAllExternalTenants',
            membershipKind: 'all',
          },
        },
      },
      applications: {
        includeApplications: [
          '00000002-0000-0ff1-ce00-000000000000',
          '00000003-0000-0ff1-ce00-000000000000',
        ],
        excludeApplications: [],
        includeUserActions: [],
      },
      platforms: { includePlatforms: ['windows'], excludePlatforms: [] },
      clientAppTypes: ['mobileAppsAndDesktopClients'],
      locations: null,
      devices: null,
      signInRiskLevels: [],
      userRiskLevels: [],
    },
    grantControls: null,
    sessionControls: {
      applicationEnforcedRestrictions: null,
      cloudAppSecurity: null,
      persistentBrowser: null,
      signInFrequency: null,
      disableResilienceDefaults: null,
      secureSignInSession: { isEnabled: true },
    },
  };
}
