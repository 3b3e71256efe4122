/**
 * Fixed directory content: the built-in directory roles (with their well-known role template
 * ids) and the first-party applications the lab knows (docs/token-protection.md §4 and, for DRS
 * and the Windows broker, docs/prt-protocol.md §2 and §4). Applications are re-seeded on every
 * open, so a newer prtlab's list reaches an existing data directory.
 */
import type { Application, DirectoryRole } from './types.ts';

/** Built-in directory roles; ids are Entra's role template ids, the same in every tenant. */
export const DIRECTORY_ROLES: readonly DirectoryRole[] = Object.freeze([
  { id: '62e90394-69f5-4237-9190-012177145e10', displayName: 'Global Administrator' },
  { id: 'f2ef992c-3afb-46b9-b7cf-a126ee74c451', displayName: 'Global Reader' },
  { id: '7698a772-787b-4ac8-901f-60d6b08affd2', displayName: 'Cloud Device Administrator' },
  { id: 'b1be1c3e-b65d-4f19-8427-f6fa0d97feb9', displayName: 'Conditional Access Administrator' },
  { id: '194ae4cb-b126-40b2-bd5b-6091b380977d', displayName: 'Security Administrator' },
  { id: '5d6b6bb7-de71-4623-b4af-96380a352509', displayName: 'Security Reader' },
  { id: 'fe930be7-5e62-47db-91af-98c3a49a38b1', displayName: 'User Administrator' },
  { id: '3a2c62db-5318-420d-8d74-23affee5d9d5', displayName: 'Intune Administrator' },
  {
    id: '9f06204d-73c1-4d4c-880a-6edb90606fd8',
    displayName: 'Azure AD Joined Device Local Administrator',
  },
  // The default roles of members and guests (Entra's "User" and "Guest User" templates).
  { id: 'a0b1b346-4d3e-4e8b-98f8-753987be4970', displayName: 'User' },
  { id: '10dae51f-b6af-4016-8d66-8c2a99b929b3', displayName: 'Guest User' },
]);

/** Application ids other modules refer to by name. */
export const APP_IDS = Object.freeze({
  exchangeOnline: '00000002-0000-0ff1-ce00-000000000000',
  sharePointOnline: '00000003-0000-0ff1-ce00-000000000000',
  microsoftGraph: '00000003-0000-0000-c000-000000000000',
  deviceRegistrationService: '01cb2876-7ebd-4aa4-9cc9-d28bd4d359a9',
  microsoftAuthenticationBroker: '29d9ed98-a469-4536-ade2-f981bc1d605e',
  windowsSignIn: '38aa3b87-a06d-4817-b275-7a316988d93b',
});

/** The audience DRS tokens carry (§2). */
export const DRS_RESOURCE_URI = 'urn:ms-drs:enterpriseregistration.windows.net';

type Seed = Omit<Application, 'publicClient'> & { publicClient?: boolean };

function resource(appId: string, displayName: string, identifierUris: string[]): Seed {
  return { appId, displayName, kind: 'resource', identifierUris, brokerCapable: false };
}

function client(appId: string, displayName: string, brokerCapable: boolean): Seed {
  return {
    appId,
    displayName,
    kind: 'client',
    identifierUris: [],
    brokerCapable,
    publicClient: true,
  };
}

/**
 * The first-party applications for a tenant whose default domain is `domain`. SharePoint's
 * audience is the tenant's own host, `https://<first label of the domain>.sharepoint.com`.
 * Resources whose audience no source states (Azure Virtual Desktop, Windows 365, Windows Cloud
 * Login) are left out until a scenario needs them.
 */
export function firstPartyApplications(domain: string): Application[] {
  const tenantLabel = domain.split('.')[0] ?? 'contoso';
  const seeds: Seed[] = [
    resource(APP_IDS.exchangeOnline, 'Office 365 Exchange Online', [
      'https://outlook.office365.com',
      'https://outlook.office.com',
    ]),
    resource(APP_IDS.sharePointOnline, 'Office 365 SharePoint Online', [
      `https://${tenantLabel}.sharepoint.com`,
    ]),
    resource(APP_IDS.microsoftGraph, 'Microsoft Graph', ['https://graph.microsoft.com']),
    resource('cc15fd57-2c6c-4117-a88c-83b1d56b4bbe', 'Microsoft Teams Services', [
      'https://api.spaces.skype.com',
    ]),
    resource('797f4846-ba00-4fd7-ba43-dac1f8f63013', 'Windows Azure Service Management API', [
      'https://management.core.windows.net/',
      'https://management.azure.com/',
    ]),
    resource('00000002-0000-0000-c000-000000000000', 'Windows Azure Active Directory', [
      'https://graph.windows.net',
    ]),
    resource(APP_IDS.deviceRegistrationService, 'Device Registration Service', [DRS_RESOURCE_URI]),
    // Clients: brokerCapable marks the ones that sign in through WAM on Windows, which is what
    // lets them hold device-bound tokens (token-protection.md §1.4-§1.5).
    client(APP_IDS.windowsSignIn, 'Windows Sign In', true),
    client(APP_IDS.microsoftAuthenticationBroker, 'Microsoft Authentication Broker', true),
    client('ab9b8c07-8f02-4f72-87fa-80105867a763', 'OneDrive SyncEngine', true),
    client('1fec8e78-bce4-4aaf-ab1b-5451cc387264', 'Microsoft Teams', true),
    client('5e3ce6c0-2b1f-4285-8d4b-75ee78787346', 'Microsoft Teams Web Client', false),
    client('d3590ed6-52b3-4102-aeff-aad2292ab01c', 'Microsoft Office', true),
    client('27922004-5251-4030-b22d-91ecd9a37ea4', 'Outlook Mobile', false),
    client('2d4d3d8e-2be3-4bef-9f87-7875a61c29de', 'OneNote', true),
    client('04b07795-8ddb-461a-bbee-02f9e1bf7b46', 'Microsoft Azure CLI', true),
    client('7f67af8a-fedc-4b08-8b4e-37c4d127b6cf', 'Power BI Desktop', true),
    client('1950a258-227b-4e31-a9cf-717495945fc2', 'Microsoft Azure PowerShell', true),
    client('14d82eec-204b-4c2f-b7e8-296a70dab67e', 'Microsoft Graph Command Line Tools', true),
    client(
      'fb78d390-0c51-40cd-8e17-fdbfab77341b',
      'Microsoft Exchange REST API Based PowerShell',
      true,
    ),
    client('872cd9fa-d31f-45e0-9eab-6e460a02d1f1', 'Visual Studio', true),
    client('aebc6443-996d-45c2-90f0-388ff96faa56', 'Visual Studio Code', true),
    client('9bc3ab49-b65d-410a-85ad-de819febfddc', 'SharePoint Online Management Shell', false),
    // The id is uncertain (cloud/ca/catalog.ts CLIENT_IDS.powerQuery).
    client('a672d62c-fc7b-4e81-a576-e60dc46e951d', 'Microsoft Power Query for Excel', false),
  ];
  return seeds.map((s) => ({ ...s, publicClient: s.publicClient ?? false }));
}
