/**
 * Native-client stubs as data (DESIGN "clients/"): who each client is to Entra (app id), which
 * version it reports, which resource it calls by default, and whether that version signs in
 * through the broker (WAM). One runner (run.ts) drives any of them.
 *
 * Broker use follows the token-protection requirement catalog: a client signs in through the
 * broker from the minimum version the catalog lists for it, and never when the catalog lists it
 * as unsupported. The numbers are copied from the cloud's catalog (cloud/ca/catalog.ts, editions
 * 2023-preview and 2025-ga), which cites docs/token-protection.md §1.4-§1.5; the device side does
 * not import the cloud (DESIGN "Boundaries": they meet only on the wire). App ids are from
 * docs/token-protection.md §4.2 unless a row says otherwise.
 */

export const RESOURCE_NAMES = ['exchange', 'sharepoint', 'graph'] as const;
export type ResourceName = (typeof RESOURCE_NAMES)[number];

export const PROFILE_NAMES = [
  'onedrive',
  'teams',
  'outlook',
  'office-perpetual',
  'powerbi',
  'powerquery',
  'visualstudio',
  'vscode',
  'exchange-powershell',
  'graph-powershell',
  'azure-cli',
] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];

/** When a client version signs in through the broker. */
export type BrokerRule =
  /** Every version (the catalog lists the client as supported with no minimum). */
  | { readonly use: 'always'; readonly source: string }
  /** No version (the catalog lists the client as unsupported, or it has no broker path). */
  | { readonly use: 'never'; readonly source: string }
  /** From this dotted version on (the catalog's minimum for the client). */
  | { readonly use: 'from'; readonly minVersion: string; readonly source: string };

export interface ClientProfile {
  readonly name: ProfileName;
  /** The client application's name as sign-in logs show it (`appDisplayName`). */
  readonly displayName: string;
  readonly appId: string;
  /** Where the app id comes from. */
  readonly appIdSource: string;
  /** The version the stub reports unless told otherwise (a current release). */
  readonly version: string;
  /** The resource it calls unless told otherwise. */
  readonly resource: ResourceName;
  readonly broker: BrokerRule;
  /**
   * User-Agent of its own (non-broker) HTTP requests; `{version}` is replaced. Every one names
   * Windows (the lab device's platform, which Conditional Access reads from it for requests
   * without a device) and none looks like a browser's (which would make it a `browser` request).
   */
  readonly userAgent: string;
}

const CATALOG = 'cloud/ca/catalog.ts';

const PROFILE_LIST: readonly ClientProfile[] = [
  {
    name: 'onedrive',
    displayName: 'OneDrive SyncEngine',
    appId: 'ab9b8c07-8f02-4f72-87fa-80105867a763',
    appIdSource: '[FP-APPS]',
    version: '24.201.1006.0005',
    resource: 'sharepoint',
    broker: {
      use: 'from',
      minVersion: '22.217',
      source: `${CATALOG} 2023-preview and 2025-ga ("OneDrive sync client 22.217+"; [AZ-TP-2306])`,
    },
    userAgent: 'Microsoft SkyDriveSync {version} ship; Windows NT 10.0 (22631)',
  },
  {
    name: 'teams',
    displayName: 'Microsoft Teams',
    appId: '1fec8e78-bce4-4aaf-ab1b-5451cc387264',
    appIdSource: '[FP-APPS]',
    version: '1.7.00.13456',
    resource: 'exchange',
    broker: {
      use: 'from',
      minVersion: '1.6.00.1331',
      source: `${CATALOG} 2023-preview and 2025-ga ("Teams native client 1.6.00.1331+"; [AZ-TP-2306])`,
    },
    userAgent: 'Microsoft Teams/{version} (Windows NT 10.0)',
  },
  {
    name: 'outlook',
    displayName: 'Microsoft Office',
    appId: 'd3590ed6-52b3-4102-aeff-aad2292ab01c',
    // §4.2 notes that Win32 Outlook signing in as "Microsoft Office" is uncertain.
    appIdSource: '[FP-APPS] (uncertain for Outlook, token-protection.md §4.2)',
    version: '16.0.17928.20114',
    resource: 'exchange',
    broker: {
      use: 'always',
      source: `${CATALOG} 2025-ga (Microsoft Office, no minimum; [EN-WIN])`,
    },
    userAgent: 'Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook {version}; Pro)',
  },
  {
    name: 'office-perpetual',
    displayName: 'Microsoft Office',
    appId: 'd3590ed6-52b3-4102-aeff-aad2292ab01c',
    appIdSource: '[FP-APPS] (the lab knows no separate id for volume-licensed Office)',
    version: '16.0.4266.1001',
    resource: 'sharepoint',
    broker: {
      use: 'never',
      source: `${CATALOG} 2023-preview ("Office perpetual clients aren't supported"; seed doc, [AZ-TP-2306])`,
    },
    userAgent: 'Microsoft Office/16.0 (Windows NT 10.0; Microsoft Word {version}; Pro)',
  },
  {
    name: 'powerbi',
    displayName: 'Power BI Desktop',
    appId: '7f67af8a-fedc-4b08-8b4e-37c4d127b6cf',
    appIdSource: '[PBI-DOC]',
    version: '2.128.751.0',
    resource: 'sharepoint',
    broker: {
      use: 'from',
      minVersion: '2.117.841.0',
      source: `${CATALOG} 2025-ga ("Power BI Desktop 2.117.841.0+"; [EN-TP-2406])`,
    },
    userAgent: 'PowerBIDesktop/{version} (Windows NT 10.0; Win64; x64)',
  },
  {
    name: 'powerquery',
    displayName: 'Microsoft Power Query for Excel',
    appId: 'a672d62c-fc7b-4e81-a576-e60dc46e951d',
    // Not in token-protection.md §4; Microsoft's first-party app list as merill/microsoft-info
    // exports it ([MERILL], "MicrosoftPowerQueryforExcel").
    appIdSource: '[MERILL] (not in token-protection.md §4.2)',
    version: '2.130.862.0',
    resource: 'sharepoint',
    broker: {
      use: 'never',
      source:
        'token-protection.md §1.5 (PowerQuery extension for Excel unsupported; [AZ-TP-2306], [EN-TP-2505])',
    },
    userAgent: 'Microsoft.Mashup/{version} (Windows NT 10.0; Win64; x64)',
  },
  {
    name: 'visualstudio',
    displayName: 'Visual Studio',
    appId: '872cd9fa-d31f-45e0-9eab-6e460a02d1f1',
    appIdSource: '[CODE-IDS] (third-party)',
    version: '17.10.4',
    resource: 'graph',
    broker: {
      use: 'from',
      minVersion: '17.0',
      source: `${CATALOG} 2025-ga ("Visual Studio 2022 or later" with the WAM option; [EN-TP-2406])`,
    },
    userAgent: 'VisualStudio/{version} (Windows NT 10.0; Win64; x64)',
  },
  {
    name: 'vscode',
    displayName: 'Visual Studio Code',
    appId: 'aebc6443-996d-45c2-90f0-388ff96faa56',
    appIdSource: '[CODE-IDS] (third-party; VS Code auth source)',
    version: '1.92.0',
    resource: 'exchange',
    broker: {
      use: 'never',
      source: `${CATALOG} 2023-preview and 2025-ga (VS Code extensions unsupported; [AZ-TP-2306], [EN-TP-2505])`,
    },
    userAgent: 'VSCode/{version} (Windows NT 10.0; Win64; x64) node/20 (extension host)',
  },
  {
    name: 'exchange-powershell',
    displayName: 'Microsoft Exchange REST API Based PowerShell',
    appId: 'fb78d390-0c51-40cd-8e17-fdbfab77341b',
    appIdSource: '[CODE-IDS] (third-party; EXO module Get-ExoDefaultClientId)',
    version: '3.7.1',
    resource: 'exchange',
    broker: {
      use: 'from',
      minVersion: '3.7.0',
      source: `${CATALOG} 2025-ga ("Exchange PowerShell module 3.7.0+"; [EN-TP-2505])`,
    },
    userAgent: 'ExchangeOnlineManagement/{version} PowerShell/7.4 (Windows NT 10.0; Win64)',
  },
  {
    name: 'graph-powershell',
    displayName: 'Microsoft Graph Command Line Tools',
    appId: '14d82eec-204b-4c2f-b7e8-296a70dab67e',
    appIdSource: '[CODE-IDS] (third-party)',
    version: '2.25.0',
    resource: 'graph',
    broker: {
      use: 'from',
      minVersion: '2.0.0',
      source: `${CATALOG} 2025-ga ("Graph PowerShell 2.0.0+ with EnableLoginByWAM"; [EN-TP-2505])`,
    },
    userAgent: 'Microsoft.Graph.PowerShell/{version} PowerShell/7.4 (Windows NT 10.0; Win64)',
  },
  {
    name: 'azure-cli',
    displayName: 'Microsoft Azure CLI',
    appId: '04b07795-8ddb-461a-bbee-02f9e1bf7b46',
    appIdSource: '[FP-APPS]',
    version: '2.64.0',
    resource: 'graph',
    broker: {
      use: 'never',
      // Not in the catalog. The lab's az signs in without WAM, as on Linux/WSL (no broker path,
      // [GH-AZCLI-31428]) or with its browser flow ([GH-AZCLI-31030]); it keeps its own cache.
      source: 'lab convention: no WAM ([GH-AZCLI-31428], [GH-AZCLI-31030])',
    },
    userAgent: 'AZURECLI/{version} (MSI) python/3.11 (Windows NT 10.0; Win64)',
  },
];

export const PROFILES: Readonly<Record<ProfileName, ClientProfile>> = Object.freeze(
  Object.fromEntries(PROFILE_LIST.map((p) => [p.name, Object.freeze(p)])) as Record<
    ProfileName,
    ClientProfile
  >,
);

export function isProfileName(name: string): name is ProfileName {
  return (PROFILE_NAMES as readonly string[]).includes(name);
}

export function isResourceName(name: string): name is ResourceName {
  return (RESOURCE_NAMES as readonly string[]).includes(name);
}

/** A version as clients report them: 1 to 6 dot-separated numbers. */
export function isDottedVersion(v: string): boolean {
  return /^\d{1,9}(\.\d{1,9}){0,5}$/.test(v);
}

/**
 * Compares dotted numeric versions part by part, missing parts as 0 (`1.6.00.1331` equals
 * `1.6.0.1331`), the way the cloud compares client minimums.
 */
export function compareDotted(a: string, b: string): number {
  if (!isDottedVersion(a) || !isDottedVersion(b))
    throw new RangeError(`not dotted versions: '${a}', '${b}'`);
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

/** Whether `version` of the client signs in through the broker. */
export function usesBroker(profile: ClientProfile, version: string = profile.version): boolean {
  const rule = profile.broker;
  if (rule.use === 'always') return true;
  if (rule.use === 'never') return false;
  return compareDotted(version, rule.minVersion) >= 0;
}

/** "yes", "no", or "from 22.217" for listings. */
export function brokerSummary(profile: ClientProfile): string {
  const rule = profile.broker;
  if (rule.use === 'from') return `from ${rule.minVersion}`;
  return rule.use === 'always' ? 'yes' : 'no';
}
