/**
 * Conditional Access evaluation for token protection, following token-protection.md §3.5 (itself
 * a lab reading of the docs). `compilePolicies` turns validated policies into Sets and compiled
 * device-filter predicates once; `evaluate` then answers one token request without allocating
 * more than its result.
 *
 * Per policy:
 * - state `disabled` -> `notEnabled` (conditions not evaluated). [GR-ACP-BETA]
 * - conditions (users, applications, platforms, client app types, device filter) not all met ->
 *   `notApplied` / `reportOnlyNotApplied`. [EN-RO]
 * - applies: grant `block` fails; `compliantDevice` / `domainJoinedDevice` check the device
 *   (operator AND/OR); `secureSignInSession.isEnabled` is satisfied only by a bound request.
 *   All satisfied -> `success` / `reportOnlySuccess`, else `failure` / `reportOnlyFailure`
 *   with `sessionControlsNotSatisfied: ['SignInTokenProtection']` when TP is what failed.
 * Top level: any enabled policy failing -> `failure`, blocked, errorCode = the edition's TP block
 * code (53003 / 530084) when token protection failed, else 53003 (generic CA block); any enabled
 * policy applied -> `success`; otherwise `notApplied`. Report-only policies never move the
 * top-level status (§3.5: "assume they don't — uncertain").
 */

import type { TrustType } from '../directory/types.ts';
import type { JoinType } from '../pki/device-cert.ts';
import {
  CATALOG,
  compareVersions,
  type Edition,
  type EditionCatalog,
  OFFICE365_MEMBERS,
  type UnboundStatusCode,
} from './catalog.ts';
import {
  type DeviceFilterInput,
  type DevicePredicate,
  deviceFilterPredicate,
} from './device-filter.ts';
import { CaError } from './errors.ts';
import type { BuiltInControl, ConditionalAccessPolicy, GuestsOrExternalUsers } from './policy.ts';

export type RequestClientAppType =
  | 'browser'
  | 'mobileAppsAndDesktopClients'
  | 'exchangeActiveSync'
  | 'other';

export type Platform = 'android' | 'iOS' | 'windows' | 'windowsPhone' | 'macOS' | 'linux';

export interface CaRequestDevice {
  readonly id: string;
  readonly joinType: JoinType;
  readonly trustType: TrustType;
  readonly operatingSystem: string;
  readonly operatingSystemVersion: string;
  readonly systemLabels: readonly string[];
  readonly enrollmentProfileName?: string;
  readonly profileType?: string;
  readonly isCompliant?: boolean;
  /**
   * Whether the device's registration had verified TPM attestation. The token service always
   * says (a directory device without attestation is false); undefined means the caller did not
   * tell, and the 1004 rule is not applied.
   */
  readonly hardwareBacked?: boolean;
}

export interface CaRequest {
  readonly user: {
    readonly id: string;
    readonly kind: 'member' | 'guest';
    readonly groupIds: readonly string[];
    readonly roleIds: readonly string[];
  };
  readonly resourceAppId: string;
  readonly clientAppId: string;
  readonly clientVersion?: string;
  readonly clientAppType: RequestClientAppType;
  /** A platform the caller already knows; the device record wins, the user agent is last. */
  readonly platform?: Platform;
  readonly userAgent?: string;
  /** The registered device the request proved (absent: no device state). */
  readonly device?: CaRequestDevice;
  /** Whether the request was signed with the device's PRT session key and came via the broker. */
  readonly bound: { readonly prtSigned: boolean; readonly viaBroker: boolean };
  /** The tenant's edition; default `2023-preview`. */
  readonly edition?: Edition;
}

export type PolicyResult =
  | 'success'
  | 'failure'
  | 'notApplied'
  | 'notEnabled'
  | 'reportOnlySuccess'
  | 'reportOnlyFailure'
  | 'reportOnlyNotApplied';

export interface AppliedPolicy {
  readonly id: string;
  readonly displayName: string;
  readonly result: PolicyResult;
  readonly enforcedSessionControls: string[];
  readonly sessionControlsNotSatisfied: string[];
}

export interface TokenProtectionStatus {
  readonly signInSessionStatus: 'bound' | 'unbound';
  readonly signInSessionStatusCode?: UnboundStatusCode;
}

export interface CaEvaluation {
  readonly conditionalAccessStatus: 'success' | 'failure' | 'notApplied';
  readonly blocked: boolean;
  readonly errorCode?: number;
  readonly applied: AppliedPolicy[];
  readonly tokenProtection: TokenProtectionStatus;
}

/** The sign-in log's name for the TP session control (since late June 2023). [AZ-TP-2307] */
export const TP_SESSION_CONTROL = 'SignInTokenProtection';
/** Generic "blocked by Conditional Access". [ERR-CODES] */
export const GENERIC_BLOCK_CODE = 53003;

// ---------------------------------------------------------------------------------------------
// Compilation

interface IdSet {
  readonly all: boolean;
  readonly ids: ReadonlySet<string>;
}

interface GuestRule {
  /** A guest (the lab does not distinguish guest sub-types) matches when the flags name one. */
  readonly matchesGuest: boolean;
}

interface CompiledPolicy {
  readonly id: string;
  readonly displayName: string;
  readonly state: ConditionalAccessPolicy['state'];
  readonly includeUsers: IdSet;
  readonly includeGuests: boolean;
  readonly excludeUsers: ReadonlySet<string>;
  readonly excludeGuests: boolean;
  readonly includeGroups: ReadonlySet<string>;
  readonly excludeGroups: ReadonlySet<string>;
  readonly includeRoles: ReadonlySet<string>;
  readonly excludeRoles: ReadonlySet<string>;
  readonly includeApps: IdSet;
  readonly excludeApps: ReadonlySet<string>;
  /** null: platforms not configured. */
  readonly includePlatforms: IdSet | null;
  readonly excludePlatforms: IdSet;
  /** null: any client app type. */
  readonly clientAppTypes: ReadonlySet<RequestClientAppType> | null;
  readonly deviceFilter: { readonly include: boolean; readonly match: DevicePredicate } | null;
  readonly grant: { readonly and: boolean; readonly controls: readonly BuiltInControl[] } | null;
  readonly requireTokenProtection: boolean;
  /**
   * The policy's log entries, one per distinct outcome, made once and shared (frozen): a tenant
   * has few outcomes per policy, and the sign-in log stores each distinct entry once.
   */
  readonly outcomes: Map<string, AppliedPolicy>;
}

export interface CompiledPolicies {
  readonly policies: readonly CompiledPolicy[];
}

const SIMULATED_GRANTS: ReadonlySet<BuiltInControl> = new Set([
  'block',
  'compliantDevice',
  'domainJoinedDevice',
]);

function guestRule(g: GuestsOrExternalUsers | null | undefined): GuestRule {
  if (!g) return { matchesGuest: false };
  const flags = g.guestOrExternalUserTypes.split(',').map((s) => s.trim());
  const anyGuestFlag = flags.some((f) => f !== 'none' && f !== 'unknownFutureValue');
  // An enumerated tenant list cannot match: the request carries no home tenant (lab limit).
  const tenants = g.externalTenants?.membershipKind ?? 'all';
  return { matchesGuest: anyGuestFlag && tenants === 'all' };
}

function expandApps(ids: readonly string[] | undefined): Set<string> {
  const out = new Set<string>();
  for (const id of ids ?? []) {
    if (id === 'Office365') for (const m of OFFICE365_MEMBERS) out.add(m.toLowerCase());
    // MicrosoftAdminPortals: no admin-portal app exists in the lab, so it expands to nothing.
    else if (id !== 'MicrosoftAdminPortals') out.add(id.toLowerCase());
  }
  return out;
}

function lowerSet(ids: readonly string[] | undefined): Set<string> {
  return new Set((ids ?? []).map((s) => s.toLowerCase()));
}

function compileOne(p: ConditionalAccessPolicy, index: number): CompiledPolicy {
  const u = p.conditions.users;
  const includeUsers = u.includeUsers ?? [];
  const a = p.conditions.applications;
  const includeApps = a.includeApplications ?? [];
  const plat = p.conditions.platforms;
  const types = p.conditions.clientAppTypes ?? [];
  const filter = p.conditions.devices?.deviceFilter;
  const grant = p.grantControls;
  const controls = grant?.builtInControls ?? [];
  for (const [i, c] of controls.entries()) {
    if (!SIMULATED_GRANTS.has(c)) {
      throw new CaError(
        'ERR_CA_POLICY',
        `policies[${index}].grantControls.builtInControls[${i}]: '${c}' is not simulated`,
        { path: `policies[${index}].grantControls.builtInControls[${i}]` },
      );
    }
  }
  let clientAppTypes: Set<RequestClientAppType> | null = null;
  if (types.length > 0 && !types.includes('all')) {
    clientAppTypes = new Set();
    for (const t of types) {
      if (t === 'easSupported' || t === 'easUnsupported') clientAppTypes.add('exchangeActiveSync');
      else if (t !== 'all') clientAppTypes.add(t);
    }
  }
  const includePlatforms = plat?.includePlatforms ?? [];
  return {
    id: p.id ?? '',
    displayName: p.displayName,
    state: p.state,
    includeUsers: {
      all: includeUsers.includes('All'),
      ids: lowerSet(includeUsers.filter((x) => GUID_LIKE.test(x))),
    },
    includeGuests:
      includeUsers.includes('GuestsOrExternalUsers') ||
      guestRule(u.includeGuestsOrExternalUsers).matchesGuest,
    excludeUsers: lowerSet((u.excludeUsers ?? []).filter((x) => GUID_LIKE.test(x))),
    excludeGuests:
      (u.excludeUsers ?? []).includes('GuestsOrExternalUsers') ||
      guestRule(u.excludeGuestsOrExternalUsers).matchesGuest,
    includeGroups: lowerSet(u.includeGroups),
    excludeGroups: lowerSet(u.excludeGroups),
    includeRoles: lowerSet(u.includeRoles),
    excludeRoles: lowerSet(u.excludeRoles),
    includeApps: { all: includeApps.includes('All'), ids: expandApps(includeApps) },
    excludeApps: expandApps(a.excludeApplications),
    includePlatforms:
      includePlatforms.length === 0
        ? null
        : { all: includePlatforms.includes('all'), ids: new Set(includePlatforms) },
    excludePlatforms: {
      all: (plat?.excludePlatforms ?? []).includes('all'),
      ids: new Set(plat?.excludePlatforms ?? []),
    },
    clientAppTypes,
    deviceFilter: filter
      ? { include: filter.mode === 'include', match: deviceFilterPredicate(filter.rule) }
      : null,
    grant: controls.length > 0 ? { and: grant?.operator !== 'OR', controls } : null,
    requireTokenProtection: p.sessionControls?.secureSignInSession?.isEnabled === true,
    outcomes: new Map(),
  };
}

const GUID_LIKE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Precompiles validated policies (see parsePolicy) for repeated evaluation. */
export function compilePolicies(policies: readonly ConditionalAccessPolicy[]): CompiledPolicies {
  return { policies: policies.map(compileOne) };
}

// ---------------------------------------------------------------------------------------------
// Request-derived facts

/** The device record's operatingSystem mapped to a CA platform (case-insensitive prefixes). */
export function platformFromOperatingSystem(os: string): Platform | undefined {
  const s = os.toLowerCase();
  if (s.startsWith('windowsphone') || s.startsWith('windows phone')) return 'windowsPhone';
  if (s.startsWith('windows')) return 'windows';
  if (s.startsWith('ios') || s.startsWith('ipados')) return 'iOS';
  if (s.startsWith('macos') || s.startsWith('macmdm') || s.startsWith('mac os')) return 'macOS';
  if (s.startsWith('android')) return 'android';
  if (s.startsWith('linux') || s.startsWith('ubuntu')) return 'linux';
  return undefined;
}

/** A coarse user-agent reading (order matters: Android UAs say Linux, iPhone UAs say Mac OS X). */
export function platformFromUserAgent(ua: string): Platform | undefined {
  if (/Windows Phone/i.test(ua)) return 'windowsPhone';
  if (/Windows NT|Win64|Windows/i.test(ua)) return 'windows';
  if (/iPhone|iPad|iPod|\biOS\b/i.test(ua)) return 'iOS';
  if (/Android/i.test(ua)) return 'android';
  if (/Macintosh|Mac OS X/i.test(ua)) return 'macOS';
  if (/Linux|X11/i.test(ua)) return 'linux';
  return undefined;
}

export function resolvePlatform(req: CaRequest): Platform | undefined {
  if (req.device) {
    const p = platformFromOperatingSystem(req.device.operatingSystem);
    if (p) return p;
  }
  if (req.platform) return req.platform;
  return req.userAgent === undefined ? undefined : platformFromUserAgent(req.userAgent);
}

function hasLabel(labels: readonly string[], wanted: readonly string[]): boolean {
  for (const l of labels) {
    const ll = l.toLowerCase();
    for (const w of wanted) if (w.toLowerCase() === ll) return true;
  }
  return false;
}

function startsWithAny(s: string, prefixes: readonly string[]): boolean {
  const ls = s.toLowerCase();
  return prefixes.some((p) => ls.startsWith(p.toLowerCase()));
}

/**
 * Whether the request's sign-in session is bound, and if not, why (§3.3 codes; the ORDER of the
 * checks is inferred: edition-wide refusals, then device state, then device type, then OS, then
 * client/broker, then the PRT signature).
 */
export function tokenProtectionStatus(req: CaRequest, cat: EditionCatalog): TokenProtectionStatus {
  const unbound = (code: UnboundStatusCode): TokenProtectionStatus => ({
    signInSessionStatus: 'unbound',
    signInSessionStatusCode: code,
  });
  // Guests: unsupported in the preview (seed doc); 1005 because no code names it (inferred).
  if (req.user.kind === 'guest' && !cat.b2b.supported)
    return unbound(cat.b2b.unsupportedStatusCode);
  // A resource outside the documented list cannot issue bound tokens (inferred from the
  // "Office 365 group may result in unintended failures" warning). [AZ-TP-2306]
  if (!cat.resources.includes(req.resourceAppId.toLowerCase())) return unbound(1005);
  const d = req.device;
  if (!d) return unbound(1002); // [EN-TP-2505]
  if (
    !cat.supportedJoinTypes.includes(d.joinType) ||
    !cat.supportedTrustTypes.includes(d.trustType)
  ) {
    return unbound(1003);
  }
  for (const u of cat.unsupportedDevices) {
    if (u.trustTypes && !u.trustTypes.includes(d.trustType)) continue;
    const matched =
      (u.operatingSystemPrefixes !== undefined &&
        startsWithAny(d.operatingSystem, u.operatingSystemPrefixes)) ||
      (u.systemLabels !== undefined && hasLabel(d.systemLabels, u.systemLabels)) ||
      (u.profileType !== undefined && d.profileType?.toLowerCase() === u.profileType.toLowerCase());
    if (!matched) continue;
    if (u.exceptWhen && d.trustType === u.exceptWhen.trustType) {
      const cmp = compareVersions(d.operatingSystemVersion, u.exceptWhen.minOsVersion);
      if (cmp !== null && cmp >= 0) continue;
    }
    return unbound(1003); // [EN-TP-2505]
  }
  // Registration not hardware-backed, where the edition asks for it (catalog.ts). [EN-APPLE]
  if (cat.requireHardwareBackedDevice.required && d.hardwareBacked === false) return unbound(1004);
  // OS: the first family whose name prefixes the device's operatingSystem; none -> unsupported.
  const os = cat.osMinimums.find((m) => startsWithAny(d.operatingSystem, [m.family]));
  if (!os) return unbound(1006);
  const osCmp = compareVersions(d.operatingSystemVersion, os.minVersion);
  if (osCmp === null || osCmp < 0) return unbound(1006); // [EN-TP-2505]
  // Client: not through the broker, a listed unsupported client, or below its minimum version ->
  // 1008 "not integrated with the platform broker" (the minimum versions are where the clients
  // gained broker-bound sign-in: inferred). [EN-TP-2505]
  if (!req.bound.viaBroker) return unbound(1008);
  const clientId = req.clientAppId.toLowerCase();
  if (cat.unsupportedClients.some((c) => c.appId === clientId)) return unbound(1008);
  const client = cat.supportedClients.find((c) => c.appId === clientId);
  if (!client) return unbound(1005); // a client the edition does not list (inferred)
  if (client.minVersion !== undefined) {
    const cmp =
      req.clientVersion === undefined
        ? null
        : compareVersions(req.clientVersion, client.minVersion);
    if (cmp === null || cmp < 0) return unbound(1008);
  }
  if (!req.bound.prtSigned) return unbound(1005);
  return { signInSessionStatus: 'bound' };
}

function filterInput(d: CaRequestDevice | undefined): DeviceFilterInput {
  if (!d) return {};
  return {
    // The directory spells trust types AzureAd/ServerAd; the filter compares case-insensitively.
    trustType: d.trustType,
    systemLabels: d.systemLabels,
    operatingSystem: d.operatingSystem,
    enrollmentProfileName: d.enrollmentProfileName ?? null,
    profileType: d.profileType ?? null,
    isCompliant: d.isCompliant ?? null,
  };
}

function anyIn(ids: readonly string[], set: ReadonlySet<string>): boolean {
  if (set.size === 0) return false;
  for (const id of ids) if (set.has(id.toLowerCase())) return true;
  return false;
}

function usersMatch(p: CompiledPolicy, req: CaRequest, userId: string): boolean {
  const u = req.user;
  const guest = u.kind === 'guest';
  const included =
    p.includeUsers.all ||
    p.includeUsers.ids.has(userId) ||
    (guest && p.includeGuests) ||
    anyIn(u.groupIds, p.includeGroups) ||
    anyIn(u.roleIds, p.includeRoles);
  if (!included) return false;
  return !(
    p.excludeUsers.has(userId) ||
    (guest && p.excludeGuests) ||
    anyIn(u.groupIds, p.excludeGroups) ||
    anyIn(u.roleIds, p.excludeRoles)
  );
}

function grantSatisfied(
  grant: NonNullable<CompiledPolicy['grant']>,
  d: CaRequestDevice | undefined,
): boolean {
  const one = (c: BuiltInControl): boolean =>
    c === 'compliantDevice'
      ? d?.isCompliant === true
      : c === 'domainJoinedDevice'
        ? d?.trustType === 'ServerAd'
        : false; // block
  return grant.and ? grant.controls.every(one) : grant.controls.some(one);
}

// ---------------------------------------------------------------------------------------------
// Evaluation

export function evaluate(compiled: CompiledPolicies, req: CaRequest): CaEvaluation {
  const cat = CATALOG[req.edition ?? '2023-preview'];
  const tp = tokenProtectionStatus(req, cat);
  const bound = tp.signInSessionStatus === 'bound';
  const userId = req.user.id.toLowerCase();
  const resource = req.resourceAppId.toLowerCase();
  let platform: Platform | undefined | null = null; // null: not yet resolved
  let device: DeviceFilterInput | null = null;

  const applied: AppliedPolicy[] = [];
  let anyEnabledApplied = false;
  let tpBlock = false;
  let grantBlock = false;

  for (const p of compiled.policies) {
    if (p.state === 'disabled') {
      applied.push(entry(p, 'notEnabled', [], []));
      continue;
    }
    const reportOnly = p.state === 'enabledForReportingButNotEnforced';
    let applies =
      (p.includeApps.all || p.includeApps.ids.has(resource)) &&
      !p.excludeApps.has(resource) &&
      usersMatch(p, req, userId) &&
      (p.clientAppTypes === null || p.clientAppTypes.has(req.clientAppType));
    if (applies && (p.includePlatforms !== null || p.excludePlatforms.ids.size > 0)) {
      if (platform === null) platform = resolvePlatform(req);
      // Unknown platforms are covered by 'all' only (how "block unknown platforms" works).
      const inc =
        p.includePlatforms === null ||
        p.includePlatforms.all ||
        (platform !== undefined && p.includePlatforms.ids.has(platform));
      const exc =
        p.excludePlatforms.all || (platform !== undefined && p.excludePlatforms.ids.has(platform));
      applies = inc && !exc;
    }
    if (applies && p.deviceFilter) {
      device ??= filterInput(req.device);
      const m = p.deviceFilter.match(device);
      applies = p.deviceFilter.include ? m : !m;
    }
    if (!applies) {
      applied.push(entry(p, reportOnly ? 'reportOnlyNotApplied' : 'notApplied', [], []));
      continue;
    }
    const grantOk = p.grant === null || grantSatisfied(p.grant, req.device);
    const tpOk = !p.requireTokenProtection || bound;
    const ok = grantOk && tpOk;
    const enforced = p.requireTokenProtection ? [TP_SESSION_CONTROL] : [];
    const notSatisfied = tpOk ? [] : [TP_SESSION_CONTROL];
    if (reportOnly) {
      applied.push(
        entry(p, ok ? 'reportOnlySuccess' : 'reportOnlyFailure', enforced, notSatisfied),
      );
      continue;
    }
    anyEnabledApplied = true;
    if (!grantOk) grantBlock = true;
    if (!tpOk) tpBlock = true;
    applied.push(entry(p, ok ? 'success' : 'failure', enforced, notSatisfied));
  }

  const blocked = tpBlock || grantBlock;
  const base = {
    conditionalAccessStatus: blocked ? 'failure' : anyEnabledApplied ? 'success' : 'notApplied',
    blocked,
    applied,
    tokenProtection: tp,
  } as const;
  if (!blocked) return base;
  return { ...base, errorCode: tpBlock ? cat.blockErrorCode : GENERIC_BLOCK_CODE };
}

function entry(
  p: CompiledPolicy,
  result: PolicyResult,
  enforcedSessionControls: string[],
  sessionControlsNotSatisfied: string[],
): AppliedPolicy {
  // enforcedSessionControls follows from the policy alone; what varies is the result and whether
  // the session control was satisfied.
  const key = sessionControlsNotSatisfied.length === 0 ? result : `${result}!`;
  let e = p.outcomes.get(key);
  if (!e) {
    e = Object.freeze({
      id: p.id,
      displayName: p.displayName,
      result,
      enforcedSessionControls: Object.freeze(enforcedSessionControls) as string[],
      sessionControlsNotSatisfied: Object.freeze(sessionControlsNotSatisfied) as string[],
    });
    p.outcomes.set(key, e);
  }
  return e;
}
