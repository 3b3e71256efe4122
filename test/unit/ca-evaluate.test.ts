import { describe, expect, it } from 'vitest';
import { CLIENT_IDS, type Edition, RESOURCE_IDS } from '../../cloud/ca/catalog.ts';
import {
  type CaRequest,
  type CaRequestDevice,
  compilePolicies,
  evaluate,
  type PolicyResult,
  type RequestClientAppType,
} from '../../cloud/ca/evaluate.ts';
import {
  type ConditionalAccessPolicy,
  type PolicyState,
  parsePolicy,
} from '../../cloud/ca/policy.ts';

const PILOT = '22222222-2222-4222-8222-222222222222';
const BREAK_GLASS = '11111111-1111-4111-8111-111111111111';
const ALICE = '44444444-4444-4444-8444-444444444444';
const GUEST = '55555555-5555-4555-8555-555555555555';
const OTHER = '66666666-6666-4666-8666-666666666666';
const SECURITY_ADMIN = '194ae4cb-b126-40b2-bd5b-6091b380977d';
const EXO = RESOURCE_IDS.exchangeOnline;
const SPO = RESOURCE_IDS.sharePointOnline;
const TEAMS_SVC = RESOURCE_IDS.teamsServices;
const GRAPH = RESOURCE_IDS.microsoftGraph;

type PolicyKind = 'seed' | 'broad' | 'filtered' | 'roles' | 'block';

/** The §2.5 seed policy and variants, each run through parsePolicy as a tenant's would be. */
function policy(kind: PolicyKind, state: PolicyState): ConditionalAccessPolicy {
  const users =
    kind === 'broad' || kind === 'filtered'
      ? { includeUsers: ['All'], excludeUsers: [BREAK_GLASS] }
      : kind === 'roles'
        ? { includeUsers: [], includeRoles: [SECURITY_ADMIN] }
        : {
            includeUsers: [],
            excludeUsers: [BREAK_GLASS],
            includeGroups: [PILOT],
            excludeGuestsOrExternalUsers: {
              guestOrExternalUserTypes:
                'internalGuest,b2bCollaborationGuest,b2bCollaborationMember',
              externalTenants: { membershipKind: 'all' },
            },
          };
  return parsePolicy({
    id:
      '33333333-3333-4333-8333-33333333333' +
      ['seed', 'broad', 'filtered', 'roles', 'block'].indexOf(kind),
    displayName: `TP ${kind}`,
    state,
    conditions: {
      users,
      applications: {
        includeApplications:
          kind === 'broad' ? ['Office365'] : kind === 'block' ? ['All'] : [EXO, SPO, TEAMS_SVC],
        excludeApplications: [],
      },
      platforms:
        kind === 'broad' ? { includePlatforms: ['all'] } : { includePlatforms: ['windows'] },
      clientAppTypes: kind === 'broad' ? ['all'] : ['mobileAppsAndDesktopClients'],
      devices:
        kind === 'filtered'
          ? {
              deviceFilter: {
                mode: 'exclude',
                rule: 'device.systemLabels -contains "CloudPC" -and device.trustType -eq "AzureAD"',
              },
            }
          : null,
    },
    grantControls: kind === 'block' ? { operator: 'OR', builtInControls: ['block'] } : null,
    sessionControls: kind === 'block' ? null : { secureSignInSession: { isEnabled: true } },
  });
}

function win(over: Partial<CaRequestDevice> = {}): CaRequestDevice {
  return {
    id: 'dev-1',
    joinType: 0,
    trustType: 'AzureAd',
    operatingSystem: 'Windows',
    operatingSystemVersion: '10.0.19045.4046',
    systemLabels: [],
    ...over,
  };
}

const DEVICES: Record<string, CaRequestDevice | undefined> = {
  joined: win(),
  hybrid: win({ joinType: 6, trustType: 'ServerAd' }),
  registered: win({ joinType: 4, trustType: 'Workplace' }),
  none: undefined,
  win81: win({ operatingSystemVersion: '6.3.9600' }),
  server2019Hybrid: win({
    joinType: 6,
    trustType: 'ServerAd',
    operatingSystem: 'Windows Server',
    operatingSystemVersion: '10.0.17763.1',
  }),
  server2019Joined: win({
    operatingSystem: 'Windows Server',
    operatingSystemVersion: '10.0.17763.1',
  }),
  cloudPc: win({ systemLabels: ['CloudPC'] }),
  avdHybrid: win({ joinType: 6, trustType: 'ServerAd', systemLabels: ['AzureVirtualDesktop'] }),
  surfaceHub: win({ operatingSystem: 'Windows 10 Team' }),
  teamsRoom: win({ systemLabels: ['MicrosoftTeamsRoom'] }),
  secureVm: win({ profileType: 'SecureVM' }),
  mac: win({ operatingSystem: 'macOS', operatingSystemVersion: '14.5' }),
};

type UserKey = 'pilot' | 'breakGlass' | 'other' | 'guest' | 'secAdmin';
const USERS: Record<UserKey, CaRequest['user']> = {
  pilot: { id: ALICE, kind: 'member', groupIds: [PILOT], roleIds: [] },
  breakGlass: { id: BREAK_GLASS, kind: 'member', groupIds: [PILOT], roleIds: [] },
  other: { id: OTHER, kind: 'member', groupIds: [], roleIds: [] },
  guest: { id: GUEST, kind: 'guest', groupIds: [PILOT], roleIds: [] },
  secAdmin: { id: OTHER, kind: 'member', groupIds: [], roleIds: [SECURITY_ADMIN] },
};

const CLIENTS = {
  teams: [CLIENT_IDS.teams, '1.6.00.1331'],
  teamsOld: [CLIENT_IDS.teams, '1.5.00.9'],
  teamsNoVersion: [CLIENT_IDS.teams, undefined],
  oneDrive: [CLIENT_IDS.oneDriveSync, '23.1.0'],
  powerBi: [CLIENT_IDS.powerBiDesktop, '2.117.841.0'],
  vsCode: [CLIENT_IDS.vsCode, '1.90.0'],
  azCli: [CLIENT_IDS.azureCli, '2.60.0'],
  exoPs: [CLIENT_IDS.exchangePowerShell, '3.7.0'],
  teamsWeb: [CLIENT_IDS.teamsWeb, undefined],
} as const;

interface Row {
  name: string;
  edition: Edition;
  policy: PolicyKind;
  state: PolicyState;
  user: UserKey;
  resource: string;
  client: keyof typeof CLIENTS;
  appType: RequestClientAppType;
  device: keyof typeof DEVICES;
  broker?: boolean;
  prt?: boolean;
  userAgent?: string;
  result: PolicyResult;
  errorCode?: number;
  code?: 1002 | 1003 | 1005 | 1006 | 1008;
}

const E = 'enabled' as const;
const RO = 'enabledForReportingButNotEnforced' as const;
const OFF = 'disabled' as const;
const M = 'mobileAppsAndDesktopClients' as const;
const P23 = '2023-preview' as const;
const G25 = '2025-ga' as const;

// biome-ignore format: one row per line reads as a table.
const ROWS: Row[] = [
  // --- bound requests --------------------------------------------------------------------------
  { name: 'joined + Teams min version', edition: P23, policy: 'seed', state: E, user: 'pilot', resource: EXO, client: 'teams', appType: M, device: 'joined', result: 'success' },
  { name: 'hybrid + OneDrive', edition: P23, policy: 'seed', state: E, user: 'pilot', resource: SPO, client: 'oneDrive', appType: M, device: 'hybrid', result: 'success' },
  { name: 'registered + Teams, report-only', edition: P23, policy: 'seed', state: RO, user: 'pilot', resource: EXO, client: 'teams', appType: M, device: 'registered', result: 'reportOnlySuccess' },
  { name: 'GA: Teams Services resource', edition: G25, policy: 'seed', state: E, user: 'pilot', resource: TEAMS_SVC, client: 'teams', appType: M, device: 'joined', result: 'success' },
  { name: 'GA: Power BI 2.117.841.0 supported', edition: G25, policy: 'seed', state: E, user: 'pilot', resource: SPO, client: 'powerBi', appType: M, device: 'joined', result: 'success' },
  { name: 'GA: Exchange PowerShell 3.7.0', edition: G25, policy: 'seed', state: E, user: 'pilot', resource: EXO, client: 'exoPs', appType: M, device: 'joined', result: 'success' },
  { name: 'GA: Server 2019 hybrid supported', edition: G25, policy: 'seed', state: E, user: 'pilot', resource: EXO, client: 'teams', appType: M, device: 'server2019Hybrid', result: 'success' },
  { name: 'GA: hybrid AVD supported', edition: G25, policy: 'seed', state: E, user: 'pilot', resource: EXO, client: 'teams', appType: M, device: 'avdHybrid', result: 'success' },
  { name: 'preview: Cloud PC not listed', edition: P23, policy: 'seed', state: E, user: 'pilot', resource: EXO, client: 'teams', appType: M, device: 'cloudPc', result: 'success' },
  { name: 'GA: guest with good home device', edition: G25, policy: 'broad', state: E, user: 'guest', resource: EXO, client: 'teams', appType: M, device: 'joined', result: 'success' },
  { name: 'role-targeted policy', edition: P23, policy: 'roles', state: E, user: 'secAdmin', resource: EXO, client: 'teams', appType: M, device: 'joined', result: 'success' },
  // --- 1002 no device --------------------------------------------------------------------------
  { name: 'no device, enabled', edition: P23, policy: 'seed', state: E, user: 'pilot', resource: EXO, client: 'teams', appType: M, device: 'none', userAgent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64)', result: 'failure', errorCode: 53003, code: 1002 },
  { name: 'GA: no device, enabled -> 530084', edition: G25, policy: 'seed', state: E, user: 'pilot', resource: SPO, client: 'oneDrive', appType: M, device: 'none', userAgent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64)', result: 'failure', errorCode: 530084, code: 1002 },
  { name: 'no device, report-only', edition: G25, policy: 'seed', state: RO, user: 'pilot', resource: EXO, client: 'teams', appType: M, device: 'none', userAgent: 'Mozilla/5.0 (Windows NT 10.0)', result: 'reportOnlyFailure', code: 1002 },
  { name: 'no device, UA macOS -> platform not included', edition: P23, policy: 'seed', state: E, user: 'pilot', resource: EXO, client: 'teams', appType: M, device: 'none', userAgent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5)', result: 'notApplied', code: 1002 },
  // --- 1003 unsupported device / registration ---------------------------------------------------
  { name: 'preview: Windows Server even hybrid', edition: P23, policy: 'seed', state: E, user: 'pilot', resource: EXO, client: 'teams', appType: M, device: 'server2019Hybrid', result: 'failure', errorCode: 53003, code: 1003 },
  { name: 'GA: Windows Server Entra-joined', edition: G25, policy: 'seed', state: E, user: 'pilot', resource: EXO, client: 'teams', appType: M, device: 'server2019Joined', result: 'failure', errorCode: 530084, code: 1003 },
  { name: 'GA: Cloud PC Entra-joined', edition: G25, policy: 'seed', state: RO, user: 'pilot', resource: EXO, client: 'teams', appType: M, device: 'cloudPc', result: 'reportOnlyFailure', code: 1003 },
  { name: 'GA: Cloud PC excluded by device filter', edition: G25, policy: 'filtered', state: E, user: 'pilot', resource: EXO, client: 'teams', appType: M, device: 'cloudPc', result: 'notApplied', code: 1003 },
  { name: 'GA: filter keeps ordinary device', edition: G25, policy: 'filtered', state: E, user: 'pilot', resource: EXO, client: 'teams', appType: M, device: 'joined', result: 'success' },
  { name: 'preview: AVD any join', edition: P23, policy: 'seed', state: E, user: 'pilot', resource: EXO, client: 'teams', appType: M, device: 'avdHybrid', result: 'failure', errorCode: 53003, code: 1003 },
  { name: 'Surface Hub', edition: G25, policy: 'seed', state: E, user: 'pilot', resource: EXO, client: 'teams', appType: M, device: 'surfaceHub', result: 'failure', errorCode: 530084, code: 1003 },
  { name: 'Teams Rooms (report-only)', edition: P23, policy: 'seed', state: RO, user: 'pilot', resource: EXO, client: 'teams', appType: M, device: 'teamsRoom', result: 'reportOnlyFailure', code: 1003 },
  { name: 'GA: SecureVM Entra login extension', edition: G25, policy: 'seed', state: E, user: 'pilot', resource: SPO, client: 'teams', appType: M, device: 'secureVm', result: 'failure', errorCode: 530084, code: 1003 },
  // --- 1006 OS ---------------------------------------------------------------------------------
  { name: 'Windows 8.1', edition: P23, policy: 'seed', state: E, user: 'pilot', resource: EXO, client: 'teams', appType: M, device: 'win81', result: 'failure', errorCode: 53003, code: 1006 },
  { name: 'macOS under broad policy', edition: G25, policy: 'broad', state: E, user: 'pilot', resource: EXO, client: 'teams', appType: M, device: 'mac', result: 'failure', errorCode: 530084, code: 1006 },
  // --- 1008 client / broker ----------------------------------------------------------------------
  { name: 'Teams below 1.6.00.1331', edition: P23, policy: 'seed', state: E, user: 'pilot', resource: EXO, client: 'teamsOld', appType: M, device: 'joined', result: 'failure', errorCode: 53003, code: 1008 },
  { name: 'Teams without a version', edition: P23, policy: 'seed', state: RO, user: 'pilot', resource: EXO, client: 'teamsNoVersion', appType: M, device: 'joined', result: 'reportOnlyFailure', code: 1008 },
  { name: 'preview: Power BI unsupported', edition: P23, policy: 'seed', state: E, user: 'pilot', resource: SPO, client: 'powerBi', appType: M, device: 'joined', result: 'failure', errorCode: 53003, code: 1008 },
  { name: 'VS Code extension', edition: G25, policy: 'seed', state: E, user: 'pilot', resource: SPO, client: 'vsCode', appType: M, device: 'joined', result: 'failure', errorCode: 530084, code: 1008 },
  { name: 'not via broker', edition: G25, policy: 'seed', state: E, user: 'pilot', resource: EXO, client: 'teams', appType: M, device: 'joined', broker: false, result: 'failure', errorCode: 530084, code: 1008 },
  { name: 'browser excluded by client app type', edition: P23, policy: 'seed', state: E, user: 'pilot', resource: EXO, client: 'teamsWeb', appType: 'browser', device: 'joined', broker: false, result: 'notApplied', code: 1008 },
  { name: 'browser, broad policy blocks', edition: P23, policy: 'broad', state: E, user: 'pilot', resource: EXO, client: 'teamsWeb', appType: 'browser', device: 'joined', broker: false, result: 'failure', errorCode: 53003, code: 1008 },
  // --- 1005 other ------------------------------------------------------------------------------
  { name: 'broker without PRT signature', edition: P23, policy: 'seed', state: E, user: 'pilot', resource: EXO, client: 'teams', appType: M, device: 'joined', prt: false, result: 'failure', errorCode: 53003, code: 1005 },
  { name: 'client the edition does not list', edition: P23, policy: 'seed', state: RO, user: 'pilot', resource: EXO, client: 'azCli', appType: M, device: 'joined', result: 'reportOnlyFailure', code: 1005 },
  { name: 'preview: Office365 group reaches Teams Services', edition: P23, policy: 'broad', state: E, user: 'pilot', resource: TEAMS_SVC, client: 'teams', appType: M, device: 'joined', result: 'failure', errorCode: 53003, code: 1005 },
  { name: 'preview: guest under broad policy', edition: P23, policy: 'broad', state: E, user: 'guest', resource: EXO, client: 'teams', appType: M, device: 'joined', result: 'failure', errorCode: 53003, code: 1005 },
  // --- not applied / not enabled ---------------------------------------------------------------
  { name: 'guest excluded by seed policy', edition: P23, policy: 'seed', state: E, user: 'guest', resource: EXO, client: 'teams', appType: M, device: 'none', result: 'notApplied', code: 1005 },
  { name: 'break-glass excluded', edition: P23, policy: 'seed', state: E, user: 'breakGlass', resource: EXO, client: 'teams', appType: M, device: 'none', result: 'notApplied', code: 1002 },
  { name: 'user not in pilot group', edition: G25, policy: 'seed', state: RO, user: 'other', resource: EXO, client: 'teams', appType: M, device: 'none', result: 'reportOnlyNotApplied', code: 1002 },
  { name: 'Graph not targeted', edition: G25, policy: 'seed', state: E, user: 'pilot', resource: GRAPH, client: 'azCli', appType: M, device: 'joined', result: 'notApplied', code: 1005 },
  { name: 'Graph not in Office365 group', edition: G25, policy: 'broad', state: E, user: 'pilot', resource: GRAPH, client: 'azCli', appType: M, device: 'joined', result: 'notApplied', code: 1005 },
  { name: 'disabled policy', edition: P23, policy: 'seed', state: OFF, user: 'pilot', resource: EXO, client: 'teams', appType: M, device: 'none', result: 'notEnabled', code: 1002 },
  { name: 'disabled policy, GA', edition: G25, policy: 'seed', state: OFF, user: 'pilot', resource: EXO, client: 'teams', appType: M, device: 'joined', result: 'notEnabled' },
  // --- grant block (not token protection): generic 53003 in both editions ------------------------
  { name: 'grant block', edition: G25, policy: 'block', state: E, user: 'pilot', resource: GRAPH, client: 'azCli', appType: M, device: 'joined', result: 'failure', errorCode: 53003, code: 1005 },
];

function request(row: Row): CaRequest {
  const [clientAppId, clientVersion] = CLIENTS[row.client];
  const device = DEVICES[row.device];
  return {
    user: USERS[row.user],
    resourceAppId: row.resource,
    clientAppId,
    ...(clientVersion === undefined ? {} : { clientVersion }),
    clientAppType: row.appType,
    ...(row.userAgent === undefined ? {} : { userAgent: row.userAgent }),
    ...(device === undefined ? {} : { device }),
    bound: { prtSigned: row.prt ?? true, viaBroker: row.broker ?? true },
    edition: row.edition,
  };
}

describe('evaluate: token protection matrix', () => {
  it.each(ROWS)('$name', (row) => {
    const compiled = compilePolicies([policy(row.policy, row.state)]);
    const out = evaluate(compiled, request(row));
    expect(out.applied).toHaveLength(1);
    const [entry] = out.applied;
    expect(entry!.result).toBe(row.result);
    expect(out.errorCode).toBe(row.errorCode);
    expect(out.blocked).toBe(row.errorCode !== undefined);
    const expectedStatus =
      row.errorCode !== undefined ? 'failure' : row.result === 'success' ? 'success' : 'notApplied';
    expect(out.conditionalAccessStatus).toBe(expectedStatus);
    expect(out.tokenProtection).toEqual(
      row.code === undefined
        ? { signInSessionStatus: 'bound' }
        : { signInSessionStatus: 'unbound', signInSessionStatusCode: row.code },
    );
    const applied = !['notApplied', 'reportOnlyNotApplied', 'notEnabled'].includes(row.result);
    const tp = row.policy !== 'block';
    expect(entry!.enforcedSessionControls).toEqual(applied && tp ? ['SignInTokenProtection'] : []);
    const tpFailed = tp && (row.result === 'failure' || row.result === 'reportOnlyFailure');
    expect(entry!.sessionControlsNotSatisfied).toEqual(tpFailed ? ['SignInTokenProtection'] : []);
  });

  it('covers every result value and status code', () => {
    const results = new Set(ROWS.map((r) => r.result));
    for (const r of [
      'success',
      'failure',
      'notApplied',
      'notEnabled',
      'reportOnlySuccess',
      'reportOnlyFailure',
      'reportOnlyNotApplied',
    ]) {
      expect(results.has(r as PolicyResult)).toBe(true);
    }
    const codes = new Set(ROWS.map((r) => r.code));
    for (const c of [1002, 1003, 1005, 1006, 1008]) expect(codes.has(c as Row['code'])).toBe(true);
  });
});

describe('evaluate: several policies', () => {
  it('report-only failure alongside an enabled success does not block', () => {
    const compiled = compilePolicies([policy('seed', E), policy('broad', RO), policy('seed', OFF)]);
    const out = evaluate(compiled, {
      user: USERS.pilot,
      resourceAppId: EXO,
      clientAppId: CLIENT_IDS.teams,
      clientVersion: '1.7.0.0',
      clientAppType: M,
      device: DEVICES.joined!,
      bound: { prtSigned: true, viaBroker: true },
    });
    expect(out.applied.map((a) => a.result)).toEqual([
      'success',
      'reportOnlySuccess',
      'notEnabled',
    ]);
    expect(out.conditionalAccessStatus).toBe('success');
    expect(out.blocked).toBe(false);
  });

  it('defaults to the 2023 edition (53003)', () => {
    const out = evaluate(compilePolicies([policy('seed', E)]), {
      user: USERS.pilot,
      resourceAppId: EXO,
      clientAppId: CLIENT_IDS.teams,
      clientVersion: '1.7.0.0',
      clientAppType: M,
      platform: 'windows',
      bound: { prtSigned: false, viaBroker: false },
    });
    expect(out.errorCode).toBe(53003);
    expect(out.tokenProtection.signInSessionStatusCode).toBe(1002);
  });
});
