/**
 * The Graph beta `conditionalAccessPolicy` subset the simulator evaluates (token-protection.md §2)
 * and a validating parser from untrusted JSON. The parser checks every field it knows and keeps
 * any other Graph field (e.g. `locations`, `signInRiskLevels`, `includeUserActions`) as a bounded
 * JSON copy, so `JSON.stringify(parsePolicy(x))` reproduces `x`. Failures throw
 * CaError('ERR_CA_POLICY') whose message starts with the JSON path of the bad value.
 */
import { parseDeviceFilter } from './device-filter.ts';
import { CaError, isCaError } from './errors.ts';

export type PolicyState = 'enabled' | 'disabled' | 'enabledForReportingButNotEnforced';

export const CLIENT_APP_TYPES = [
  'all',
  'browser',
  'mobileAppsAndDesktopClients',
  'exchangeActiveSync',
  'easSupported',
  'easUnsupported',
  'other',
] as const;
export type PolicyClientAppType = (typeof CLIENT_APP_TYPES)[number];

export const PLATFORMS = [
  'android',
  'iOS',
  'windows',
  'windowsPhone',
  'macOS',
  'linux',
  'all',
  'unknownFutureValue',
] as const;
export type PolicyPlatform = (typeof PLATFORMS)[number];

export const GUEST_TYPES = [
  'none',
  'internalGuest',
  'b2bCollaborationGuest',
  'b2bCollaborationMember',
  'b2bDirectConnectUser',
  'otherExternalUser',
  'serviceProvider',
  'unknownFutureValue',
] as const;

export const BUILT_IN_CONTROLS = [
  'block',
  'mfa',
  'compliantDevice',
  'domainJoinedDevice',
  'approvedApplication',
  'compliantApplication',
  'passwordChange',
] as const;
export type BuiltInControl = (typeof BUILT_IN_CONTROLS)[number];

export interface GuestsOrExternalUsers {
  /** Comma-separated GUEST_TYPES flags (Graph serializes the flags enum as one string). */
  readonly guestOrExternalUserTypes: string;
  readonly externalTenants?: {
    readonly '@odata.type'?: string;
    readonly membershipKind: 'all' | 'enumerated' | 'unknownFutureValue';
    readonly members?: readonly string[];
  } | null;
}

export interface PolicyUsers {
  readonly includeUsers?: readonly string[];
  readonly excludeUsers?: readonly string[];
  readonly includeGroups?: readonly string[];
  readonly excludeGroups?: readonly string[];
  readonly includeRoles?: readonly string[];
  readonly excludeRoles?: readonly string[];
  readonly includeGuestsOrExternalUsers?: GuestsOrExternalUsers | null;
  readonly excludeGuestsOrExternalUsers?: GuestsOrExternalUsers | null;
}

export interface PolicyConditions {
  readonly users: PolicyUsers;
  readonly applications: {
    readonly includeApplications?: readonly string[];
    readonly excludeApplications?: readonly string[];
  };
  readonly platforms?: {
    readonly includePlatforms?: readonly PolicyPlatform[];
    readonly excludePlatforms?: readonly PolicyPlatform[];
  } | null;
  readonly clientAppTypes?: readonly PolicyClientAppType[];
  readonly devices?: {
    readonly deviceFilter?: { readonly mode: 'include' | 'exclude'; readonly rule: string } | null;
  } | null;
}

export interface ConditionalAccessPolicy {
  readonly id?: string;
  readonly displayName: string;
  readonly state: PolicyState;
  readonly conditions: PolicyConditions;
  readonly grantControls?: {
    readonly operator?: 'AND' | 'OR';
    readonly builtInControls?: readonly BuiltInControl[];
  } | null;
  readonly sessionControls?: {
    readonly secureSignInSession?: { readonly isEnabled: boolean } | null;
  } | null;
}

// ---------------------------------------------------------------------------------------------
// Bounds

export const POLICY_LIMITS = Object.freeze({
  /** Entries in any one id list (Graph's own caps are lower; a lab bound). */
  maxListLength: 1000,
  maxStringLength: 4096,
  /** Nesting depth and node count of fields kept without validation. */
  maxPassthroughDepth: 8,
  maxPassthroughNodes: 10_000,
});

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function fail(path: string, message: string, cause?: unknown): never {
  throw new CaError('ERR_CA_POLICY', `${path}: ${message}`, { path, cause });
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function obj(v: unknown, path: string): Obj {
  if (!isObj(v)) fail(path, 'not an object');
  return v;
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

/** Copies a JSON value, refusing non-JSON values and anything past the bounds. */
function cloneJson(v: unknown, path: string, depth: number, budget: { n: number }): unknown {
  if (--budget.n < 0) fail(path, `more than ${POLICY_LIMITS.maxPassthroughNodes} JSON values`);
  if (v === null || typeof v === 'boolean') return v;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) fail(path, 'not a finite number');
    return v;
  }
  if (typeof v === 'string') {
    if (v.length > POLICY_LIMITS.maxStringLength) fail(path, 'string too long');
    return v;
  }
  if (depth >= POLICY_LIMITS.maxPassthroughDepth) fail(path, 'nested too deeply');
  if (Array.isArray(v)) {
    if (v.length > POLICY_LIMITS.maxListLength) fail(path, 'list too long');
    return v.map((x, i) => cloneJson(x, `${path}[${i}]`, depth + 1, budget));
  }
  if (isObj(v)) {
    const out: Obj = {};
    for (const [k, x] of Object.entries(v)) out[k] = cloneJson(x, join(path, k), depth + 1, budget);
    return out;
  }
  return fail(path, 'not a JSON value');
}

/**
 * Validates the known keys of `v` with `known` and copies the rest; key order is kept so the
 * output serializes like the input.
 */
function record(
  v: Obj,
  path: string,
  budget: { n: number },
  known: Record<string, (value: unknown, path: string) => unknown>,
): Obj {
  const out: Obj = {};
  for (const [k, x] of Object.entries(v)) {
    const check = known[k];
    out[k] = check ? check(x, join(path, k)) : cloneJson(x, join(path, k), 1, budget);
  }
  return out;
}

function str(v: unknown, path: string, max: number = POLICY_LIMITS.maxStringLength): string {
  if (typeof v !== 'string') fail(path, 'not a string');
  if (v.length > max) fail(path, `longer than ${max} characters`);
  return v;
}

function list<T>(
  v: unknown,
  path: string,
  item: (x: unknown, p: string) => T,
  nullable = false,
): T[] | null {
  if (v === null && nullable) return null;
  if (!Array.isArray(v)) fail(path, 'not a list');
  if (v.length > POLICY_LIMITS.maxListLength) {
    fail(path, `more than ${POLICY_LIMITS.maxListLength} entries`);
  }
  return v.map((x, i) => item(x, `${path}[${i}]`));
}

function guidOr(keywords: readonly string[]) {
  const shown = keywords.map((k) => `'${k}'`).join('/');
  const what = keywords.length === 0 ? 'not a GUID' : `not a GUID or ${shown}`;
  return (x: unknown, p: string): string => {
    if (typeof x !== 'string' || !(GUID.test(x) || keywords.includes(x))) fail(p, what);
    return x;
  };
}

function oneOf<T extends string>(values: readonly T[]) {
  return (x: unknown, p: string): T => {
    if (typeof x !== 'string' || !values.includes(x as T)) {
      fail(p, `not one of ${values.join(', ')}`);
    }
    return x as T;
  };
}

function idList(keywords: readonly string[]) {
  const item = guidOr(keywords);
  return (v: unknown, p: string) => list(v, p, item);
}

function guests(budget: { n: number }) {
  return (v: unknown, p: string): unknown => {
    if (v === null) return null;
    return record(obj(v, p), p, budget, {
      guestOrExternalUserTypes: (x, q) => {
        const s = str(x, q, 512);
        s.split(',').forEach((flag, i) => {
          if (!(GUEST_TYPES as readonly string[]).includes(flag.trim())) {
            fail(q, `flag ${i} (${JSON.stringify(flag)}) is not one of ${GUEST_TYPES.join(', ')}`);
          }
        });
        return s;
      },
      externalTenants: (x, q) => {
        if (x === null) return null;
        return record(obj(x, q), q, budget, {
          membershipKind: oneOf(['all', 'enumerated', 'unknownFutureValue'] as const),
          members: (m, r) => list(m, r, guidOr([]), true),
        });
      },
    });
  };
}

/**
 * Validates `json` (parsed JSON from an untrusted source) as a conditionalAccessPolicy.
 * Unknown keys are kept as bounded JSON; known keys are type-checked, and `deviceFilter.rule`
 * is parsed so a bad rule fails here, not at evaluation.
 */
export function parsePolicy(json: unknown): ConditionalAccessPolicy {
  const budget = { n: POLICY_LIMITS.maxPassthroughNodes };
  const root = obj(json, '(policy)');
  for (const required of ['displayName', 'state', 'conditions'] as const) {
    if (!(required in root)) fail(required, 'missing');
  }
  const out = record(root, '', budget, {
    id: (v, p) => guidOr([])(v, p),
    displayName: (v, p) => {
      const s = str(v, p, 256);
      if (s.trim() === '') fail(p, 'empty');
      return s;
    },
    state: oneOf(['enabled', 'disabled', 'enabledForReportingButNotEnforced'] as const),
    conditions: (v, p) => {
      const c = obj(v, p);
      if (!isObj(c.users)) fail(join(p, 'users'), 'missing or not an object');
      if (!isObj(c.applications)) fail(join(p, 'applications'), 'missing or not an object');
      return record(c, p, budget, {
        users: (u, q) =>
          record(obj(u, q), q, budget, {
            includeUsers: idList(['All', 'None', 'GuestsOrExternalUsers']),
            excludeUsers: idList(['GuestsOrExternalUsers']),
            includeGroups: idList([]),
            excludeGroups: idList([]),
            includeRoles: idList([]),
            excludeRoles: idList([]),
            includeGuestsOrExternalUsers: guests(budget),
            excludeGuestsOrExternalUsers: guests(budget),
          }),
        applications: (a, q) =>
          record(obj(a, q), q, budget, {
            includeApplications: idList(['All', 'None', 'Office365', 'MicrosoftAdminPortals']),
            excludeApplications: idList(['Office365', 'MicrosoftAdminPortals']),
          }),
        platforms: (x, q) => {
          if (x === null) return null;
          return record(obj(x, q), q, budget, {
            includePlatforms: (l, r) => list(l, r, oneOf(PLATFORMS)),
            excludePlatforms: (l, r) => list(l, r, oneOf(PLATFORMS)),
          });
        },
        clientAppTypes: (l, q) => list(l, q, oneOf(CLIENT_APP_TYPES)),
        devices: (x, q) => {
          if (x === null) return null;
          return record(obj(x, q), q, budget, {
            deviceFilter: (f, r) => {
              if (f === null) return null;
              const filter = obj(f, r);
              if (!('mode' in filter)) fail(join(r, 'mode'), 'missing');
              if (!('rule' in filter)) fail(join(r, 'rule'), 'missing');
              return record(filter, r, budget, {
                mode: oneOf(['include', 'exclude'] as const),
                rule: (s, w) => {
                  const rule = str(s, w);
                  try {
                    parseDeviceFilter(rule);
                  } catch (err) {
                    if (isCaError(err)) fail(w, err.message, err);
                    throw err;
                  }
                  return rule;
                },
              });
            },
          });
        },
      });
    },
    grantControls: (v, p) => {
      if (v === null) return null;
      return record(obj(v, p), p, budget, {
        operator: oneOf(['AND', 'OR'] as const),
        builtInControls: (l, q) => list(l, q, oneOf(BUILT_IN_CONTROLS)),
      });
    },
    sessionControls: (v, p) => {
      if (v === null) return null;
      return record(obj(v, p), p, budget, {
        secureSignInSession: (s, q) => {
          if (s === null) return null;
          const o = obj(s, q);
          return record(o, q, budget, {
            isEnabled: (b, r) => {
              if (typeof b !== 'boolean') fail(r, 'not a boolean');
              return b;
            },
          });
        },
      });
    },
  });
  return out as unknown as ConditionalAccessPolicy;
}
