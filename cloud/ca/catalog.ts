/**
 * Token protection requirements as DATA, one record per documented edition. `2023-preview` is the
 * seed document (docs/seed-token-binding-preview.md, Feb 2023) plus the June 2023 preview doc;
 * `2025-ga` is the May/Aug 2025 docs. Every entry cites its source tag from
 * docs/token-protection.md; "(inferred)" marks a lab reading, not a documented fact.
 * evaluate.ts reads these tables and holds no requirement of its own.
 */

import type { TrustType } from '../directory/types.ts';
import type { JoinType } from '../pki/device-cert.ts';

export const EDITIONS = ['2023-preview', '2025-ga'] as const;
export type Edition = (typeof EDITIONS)[number];
export const DEFAULT_EDITION: Edition = '2023-preview';

/** The unbound reasons the sign-in log reports (§3.3). */
export type UnboundStatusCode = 1002 | 1003 | 1004 | 1005 | 1006 | 1008;

/** A device kind that cannot hold a bound session; all produce 1003 (§3.3, §3.5). */
export interface UnsupportedDevice {
  readonly name: string;
  /** Matches when the device's operatingSystem starts with one of these (case-insensitive). */
  readonly operatingSystemPrefixes?: readonly string[];
  /** Matches when one of the device's systemLabels is one of these (case-insensitive). */
  readonly systemLabels?: readonly string[];
  /** Matches when profileType equals this (case-insensitive). */
  readonly profileType?: string;
  /** Only devices with one of these trust types match; absent = any trust type. */
  readonly trustTypes?: readonly TrustType[];
  /** Supported after all when trust type and minimum OS version both hold. */
  readonly exceptWhen?: { readonly trustType: TrustType; readonly minOsVersion: string };
  readonly source: string;
}

export interface SupportedClient {
  readonly appId: string;
  readonly name: string;
  /** Dotted minimum version; absent = any version. */
  readonly minVersion?: string;
  readonly source: string;
}

export interface UnsupportedClient {
  readonly appId: string;
  readonly name: string;
  readonly source: string;
}

export interface EditionCatalog {
  readonly edition: Edition;
  /** AADSTS code of a token-protection block (§3.4). */
  readonly blockErrorCode: number;
  /** DRS join types (0 joined, 4 registered, 6 hybrid) and matching Graph trust types. */
  readonly supportedJoinTypes: readonly JoinType[];
  readonly supportedTrustTypes: readonly TrustType[];
  /** Minimum OS version per device-record operatingSystem family (case-insensitive prefix). */
  readonly osMinimums: readonly { readonly family: string; readonly minVersion: string }[];
  readonly unsupportedDevices: readonly UnsupportedDevice[];
  readonly supportedClients: readonly SupportedClient[];
  readonly unsupportedClients: readonly UnsupportedClient[];
  /** Whether guests (B2B) can be bound; otherwise their requests are unbound with this code. */
  readonly b2b: { readonly supported: boolean; readonly unsupportedStatusCode: UnboundStatusCode };
  /** Resources the policy may target; any other targeted resource is unbound (1005, inferred). */
  readonly resources: readonly string[];
  /** Members of the `Office365` application group. */
  readonly office365Members: readonly string[];
  /**
   * Whether a device whose registration is not hardware-backed (no verified TPM attestation,
   * cloud/registration/attestation.ts) is unbound with 1004 "registration not hardware-backed".
   */
  readonly requireHardwareBackedDevice: { readonly required: boolean; readonly source: string };
}

export const RESOURCE_IDS = Object.freeze({
  exchangeOnline: '00000002-0000-0ff1-ce00-000000000000', // [FP-APPS]
  sharePointOnline: '00000003-0000-0ff1-ce00-000000000000', // [FP-APPS]
  microsoftGraph: '00000003-0000-0000-c000-000000000000', // [FP-APPS]
  teamsServices: 'cc15fd57-2c6c-4117-a88c-83b1d56b4bbe', // [FP-APPS]
  azureVirtualDesktop: '9cdead84-a844-4324-93f2-b2e6bb768d07', // [AVD-MFA-DOC]
  windows365: '0af06dc6-e4b5-4f28-818e-e78e62d137a5', // [CODE-W365] (third-party)
  windowsCloudLogin: '270efc09-cd0d-444b-a71f-39af4910ec45', // [CODE-W365] (third-party)
  azureResourceManager: '797f4846-ba00-4fd7-ba43-dac1f8f63013', // [FP-APPS], [EN-WEB]
});

export const CLIENT_IDS = Object.freeze({
  oneDriveSync: 'ab9b8c07-8f02-4f72-87fa-80105867a763', // [FP-APPS]
  teams: '1fec8e78-bce4-4aaf-ab1b-5451cc387264', // [FP-APPS]
  teamsWeb: '5e3ce6c0-2b1f-4285-8d4b-75ee78787346', // [FP-APPS]
  office: 'd3590ed6-52b3-4102-aeff-aad2292ab01c', // [FP-APPS]
  oneNote: '2d4d3d8e-2be3-4bef-9f87-7875a61c29de', // [FP-APPS]
  azureCli: '04b07795-8ddb-461a-bbee-02f9e1bf7b46', // [FP-APPS]
  powerBiDesktop: '7f67af8a-fedc-4b08-8b4e-37c4d127b6cf', // [PBI-DOC]
  azurePowerShell: '1950a258-227b-4e31-a9cf-717495945fc2', // [CODE-IDS] (third-party)
  graphPowerShell: '14d82eec-204b-4c2f-b7e8-296a70dab67e', // [CODE-IDS] (third-party)
  exchangePowerShell: 'fb78d390-0c51-40cd-8e17-fdbfab77341b', // [CODE-IDS] (third-party)
  visualStudio: '872cd9fa-d31f-45e0-9eab-6e460a02d1f1', // [CODE-IDS] (third-party)
  vsCode: 'aebc6443-996d-45c2-90f0-388ff96faa56', // [CODE-IDS] (third-party)
  sharePointShell: '9bc3ab49-b65d-410a-85ad-de819febfddc', // (uncertain)
  // "Microsoft Power Query for Excel" in the community first-party app list (merill), not in the
  // product documents: uncertain, chosen so the PowerQuery rows below have an id.
  powerQuery: 'a672d62c-fc7b-4e81-a576-e60dc46e951d',
});

/**
 * The `Office365` app group, restricted to the ids the lab knows: EXO, SPO, Teams Services,
 * OneDrive SyncEngine, Microsoft Teams, Microsoft Office, OneNote. [GR-APPS], [EN-O365]
 * The same in both editions (the group's membership is not edition-specific in the docs).
 */
export const OFFICE365_MEMBERS: readonly string[] = Object.freeze([
  RESOURCE_IDS.exchangeOnline,
  RESOURCE_IDS.sharePointOnline,
  RESOURCE_IDS.teamsServices,
  CLIENT_IDS.oneDriveSync,
  CLIENT_IDS.teams,
  CLIENT_IDS.office,
  CLIENT_IDS.oneNote,
]);

/**
 * How unsupported devices are recognised is a lab convention (inferred): Windows Server by the
 * operatingSystem "Windows Server", Surface Hub by operatingSystem "Windows 10 Team"/"Windows Team"
 * or the lab label "SurfaceHub", Teams Rooms by the lab label "MicrosoftTeamsRoom"; AVD, Cloud PC
 * and Power Automate by the systemLabels the doc's own device filters use [EN-TP-2505].
 */
const SURFACE_HUB: UnsupportedDevice = {
  name: 'Surface Hub',
  operatingSystemPrefixes: ['Windows 10 Team', 'Windows Team'],
  systemLabels: ['SurfaceHub'],
  source: '[AZ-TP-2306], [EN-TP-2505]; seed doc',
};
const TEAMS_ROOMS: UnsupportedDevice = {
  name: 'Windows-based Microsoft Teams Rooms',
  systemLabels: ['MicrosoftTeamsRoom'],
  source: '[AZ-TP-2306], [GH-110499], [EN-TP-2505]',
};

const EDITION_2023: EditionCatalog = Object.freeze<EditionCatalog>({
  edition: '2023-preview',
  blockErrorCode: 53003, // [EN-TP-2505] ("changing from 53003"), [ERR-CODES], [GH-AZCLI-31030]
  // "Azure AD joined, hybrid Azure AD joined, or Azure AD registered" — seed doc, [AZ-TP-2306]
  supportedJoinTypes: [0, 6, 4],
  supportedTrustTypes: ['AzureAd', 'ServerAd', 'Workplace'],
  // "Windows 10 or newer" — seed doc, [AZ-TP-2306]; Windows 10 reports version 10.0.x.
  osMinimums: [{ family: 'Windows', minVersion: '10.0' }],
  unsupportedDevices: [
    {
      name: 'Windows Server',
      operatingSystemPrefixes: ['Windows Server'],
      source: 'seed doc, [AZ-TP-2306]',
    },
    SURFACE_HUB,
    TEAMS_ROOMS,
    {
      // The seed doc lists "Microsoft Azure Virtual Desktop" without a join-type qualifier.
      name: 'Azure Virtual Desktop',
      systemLabels: ['AzureVirtualDesktop'],
      source: 'seed doc',
    },
  ],
  supportedClients: [
    {
      appId: CLIENT_IDS.oneDriveSync,
      name: 'OneDrive sync client',
      minVersion: '22.217',
      source: 'seed doc, [AZ-TP-2306]',
    },
    {
      appId: CLIENT_IDS.teams,
      name: 'Teams native client',
      minVersion: '1.6.00.1331',
      source: 'seed doc, [AZ-TP-2306]',
    },
  ],
  unsupportedClients: [
    {
      appId: CLIENT_IDS.powerBiDesktop,
      name: 'Power BI Desktop',
      source: 'seed doc, [AZ-TP-2306]',
    },
    {
      appId: CLIENT_IDS.exchangePowerShell,
      name: 'Exchange PowerShell module',
      source: 'seed doc, [AZ-TP-2306]',
    },
    {
      appId: CLIENT_IDS.graphPowerShell,
      name: 'Microsoft Graph PowerShell',
      source: 'seed doc, [AZ-TP-2306]',
    },
    {
      appId: CLIENT_IDS.sharePointShell,
      name: 'SharePoint Online Management Shell',
      source: 'seed doc, [AZ-TP-2306]',
    },
    {
      appId: CLIENT_IDS.vsCode,
      name: 'Visual Studio Code extensions',
      source: 'seed doc, [AZ-TP-2306]',
    },
    { appId: CLIENT_IDS.visualStudio, name: 'Visual Studio', source: 'seed doc, [AZ-TP-2306]' },
    {
      appId: CLIENT_IDS.powerQuery,
      name: 'PowerQuery extension for Excel',
      source: 'seed doc, [AZ-TP-2306]',
    },
    // "Office Perpetual clients aren't supported" — seed doc; the lab has no perpetual-Office id.
  ],
  // "External users (Azure AD B2B) aren't supported" — seed doc, [AZ-TP-2306]; 1005 (inferred).
  b2b: { supported: false, unsupportedStatusCode: 1005 },
  resources: [RESOURCE_IDS.exchangeOnline, RESOURCE_IDS.sharePointOnline], // seed doc, [AZ-TP-2306]
  office365Members: OFFICE365_MEMBERS,
  // The 2023 documents list 1002, 1003, 1005, 1006 and 1008 only; no requirement on how the
  // device's keys are held, so a registration without attestation is not unbound for it (and
  // devices registered before attestation was recorded keep working). [AZ-TP-2306], seed doc
  requireHardwareBackedDevice: {
    required: false,
    source: 'seed doc, [AZ-TP-2306] (no such code)',
  },
});

const EDITION_2025: EditionCatalog = Object.freeze<EditionCatalog>({
  edition: '2025-ga',
  blockErrorCode: 530084, // [EN-TP-2505], [GH-AZCLI-31428], [GH-AZD-7704]
  supportedJoinTypes: [0, 6, 4], // [EN-TP-2505], [EN-WIN]
  supportedTrustTypes: ['AzureAd', 'ServerAd', 'Workplace'],
  osMinimums: [
    // Windows Server 2019 is 10.0.17763; only reachable when hybrid-joined (below). [EN-TP-2505]
    { family: 'Windows Server', minVersion: '10.0.17763' },
    { family: 'Windows', minVersion: '10.0' }, // [EN-TP-2505], [EN-WIN]
  ],
  unsupportedDevices: [
    {
      name: 'Windows Server (unless hybrid joined, 2019 or later)',
      operatingSystemPrefixes: ['Windows Server'],
      exceptWhen: { trustType: 'ServerAd', minOsVersion: '10.0.17763' },
      source: '[EN-TP-2505]',
    },
    SURFACE_HUB,
    TEAMS_ROOMS,
    {
      name: 'Entra-joined Azure Virtual Desktop session host',
      systemLabels: ['AzureVirtualDesktop'],
      trustTypes: ['AzureAd'],
      source: '[EN-TP-2505], [EN-WIN]',
    },
    {
      name: 'Entra-joined Windows 365 Cloud PC',
      systemLabels: ['CloudPC'],
      trustTypes: ['AzureAd'],
      source: '[EN-TP-2505], [EN-WIN]',
    },
    {
      name: 'Entra-joined Power Automate hosted machine',
      systemLabels: ['MicrosoftPowerAutomate'],
      trustTypes: ['AzureAd'],
      source: '[EN-TP-2505]',
    },
    {
      // The doc's exclusion `profileType -eq "SecureVM" and trustType -eq "AzureAD"` pairs with
      // "Azure Windows VMs joined via the Entra-login VM extension" (inferred).
      name: 'Azure VM joined through the Entra login extension',
      profileType: 'SecureVM',
      trustTypes: ['AzureAd'],
      source: '[EN-TP-2505] (inferred pairing)',
    },
    // Bulk enrollment and Autopilot self-deploying mode are not visible in the device record the
    // lab keeps (only via enrollmentProfileName, whose values are tenant-chosen): not modelled.
  ],
  supportedClients: [
    {
      appId: CLIENT_IDS.oneDriveSync,
      name: 'OneDrive sync client',
      minVersion: '22.217',
      source: '[AZ-TP-2306], [EN-WIN]',
    },
    {
      appId: CLIENT_IDS.teams,
      name: 'Teams native client',
      minVersion: '1.6.00.1331',
      source: '[AZ-TP-2306], [EN-WIN]',
    },
    {
      appId: CLIENT_IDS.powerBiDesktop,
      name: 'Power BI Desktop',
      minVersion: '2.117.841.0',
      source: '[EN-TP-2406]',
    },
    // "Visual Studio 2022 or later" (WAM option); VS 2022 is version 17. [EN-TP-2406]
    {
      appId: CLIENT_IDS.visualStudio,
      name: 'Visual Studio',
      minVersion: '17.0',
      source: '[EN-TP-2406]',
    },
    {
      appId: CLIENT_IDS.exchangePowerShell,
      name: 'Exchange PowerShell module',
      minVersion: '3.7.0',
      source: '[EN-TP-2505]',
    },
    {
      appId: CLIENT_IDS.graphPowerShell,
      name: 'Microsoft Graph PowerShell (EnableLoginByWAM)',
      minVersion: '2.0.0',
      source: '[EN-TP-2505]',
    },
    // Windows App >= 2.0.379.0 [EN-TP-2505]: no public app id in the doc, so not listed.
    {
      appId: CLIENT_IDS.office,
      name: 'Microsoft Office (Word/Excel/PowerPoint/Outlook)',
      source: '[EN-WIN]',
    },
    { appId: CLIENT_IDS.oneNote, name: 'OneNote', source: '[EN-WIN]' },
  ],
  unsupportedClients: [
    {
      appId: CLIENT_IDS.sharePointShell,
      name: 'PowerShell modules accessing SharePoint',
      source: '[EN-TP-2505]',
    },
    { appId: CLIENT_IDS.vsCode, name: 'Visual Studio Code extensions', source: '[EN-TP-2505]' },
    { appId: CLIENT_IDS.powerQuery, name: 'PowerQuery for Excel', source: '[EN-TP-2505]' },
  ],
  // B2B supported when the home-tenant device satisfies the requirements. [EN-TP-2505], [EN-APPLE]
  b2b: { supported: true, unsupportedStatusCode: 1005 },
  resources: [
    RESOURCE_IDS.exchangeOnline, // [EN-TP-2505]
    RESOURCE_IDS.sharePointOnline, // [EN-TP-2505]
    RESOURCE_IDS.teamsServices, // [EN-TP-2508]
    RESOURCE_IDS.azureVirtualDesktop, // [EN-TP-2505] (Windows App)
    RESOURCE_IDS.windows365, // [EN-TP-2505] (Windows App)
    RESOURCE_IDS.windowsCloudLogin, // [EN-TP-2505] (Windows App)
  ],
  office365Members: OFFICE365_MEMBERS,
  // 1004 "registration not hardware-backed" is documented for Apple devices ([EN-APPLE], 2026;
  // self-remediable by re-registering); the lab applies it to every device in this edition
  // (inferred): a registration without verified TPM attestation is unbound.
  requireHardwareBackedDevice: { required: true, source: '[EN-APPLE] (inferred for Windows)' },
});

export const CATALOG: Readonly<Record<Edition, EditionCatalog>> = Object.freeze({
  '2023-preview': EDITION_2023,
  '2025-ga': EDITION_2025,
});

export function isEdition(v: unknown): v is Edition {
  return v === '2023-preview' || v === '2025-ga';
}

/**
 * Compares dotted numeric versions ("1.6.00.1331" vs "1.6.0.1331" are equal). Returns null when
 * either is not dotted digits, so callers can fail closed.
 */
export function compareVersions(a: string, b: string): number | null {
  const re = /^\d{1,9}(\.\d{1,9}){0,5}$/;
  if (!re.test(a) || !re.test(b)) return null;
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  const n = Math.max(pa.length, pb.length);
  for (let i = 0; i < n; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}
