/**
 * The token-protection impact report (docs/token-protection.md §1.8): the documented Log
 * Analytics queries over the sign-in log, as a pure function. Per sign-in, the policies counted
 * are the token-protection ones (`enforcedSessionControls` or `sessionControlsNotSatisfied`
 * naming SignInTokenProtection, or the older "Binding"), or only the policy given by id; results
 * `notApplied` and `reportOnlyNotApplied` are dropped. A sign-in is a "block" (would be blocked)
 * when one of those policies answered `failure` or `reportOnlyFailure` with the token-protection
 * control not satisfied, else an "allow".
 *
 * One difference from the KQL: it counts sign-ins, not (sign-in, policy) rows after
 * `mv-expand`, so two token-protection policies on one request count it once.
 */
import { TP_SESSION_CONTROL } from '../ca/evaluate.ts';
import type { AppliedConditionalAccessPolicy, SignInEntry } from './entry.ts';

/** Session-control names that mean token protection (the 2023 queries matched "Binding"). */
export const TP_CONTROL_NAMES: readonly string[] = [TP_SESSION_CONTROL, 'Binding'];

export interface ImpactCounts {
  /** Sign-ins a counted policy applied to. */
  requests: number;
  /** Distinct users (UPN) among them. */
  users: number;
  /** Sign-ins a counted policy blocked or would block. */
  block: number;
  allow: number;
  /** Distinct users with at least one block. */
  blockedUsers: number;
  /** 100 * allow / requests, two decimals. */
  pctAllowed: number;
}

export interface AppImpact extends ImpactCounts {
  readonly app: string;
}

export interface UserImpact extends ImpactCounts {
  readonly user: string;
  readonly app: string;
  readonly resource: string;
}

export interface ImpactReport {
  /** ISO time of the window's start; undefined means the whole log. */
  readonly since: string | undefined;
  /** The policy asked for, or undefined for every token-protection policy. */
  readonly policyId: string | undefined;
  /** Sign-ins in the window, before the policy selection. */
  readonly scanned: number;
  /** By requests, most first, then by name. */
  readonly apps: AppImpact[];
  /** By user, then app, then resource. */
  readonly users: UserImpact[];
}

export interface ImpactOptions {
  /** Only this policy (by id, case-insensitive), token protection or not. */
  readonly policyId?: string;
  /** Only sign-ins at or after this instant. */
  readonly since?: Date;
}

const DURATION_RE = /^(\d{1,6})([dhm])$/;
const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000 } as const;

/** `7d`, `24h`, `30m` in milliseconds; throws RangeError otherwise. */
export function parseDuration(text: string): number {
  const m = DURATION_RE.exec(text.trim());
  if (!m || Number(m[1]) === 0) {
    throw new RangeError(`duration must be a positive number of d, h or m, e.g. 7d; got '${text}'`);
  }
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

function isTokenProtection(p: AppliedConditionalAccessPolicy): boolean {
  return (
    p.enforcedSessionControls.some((c) => TP_CONTROL_NAMES.includes(c)) ||
    p.sessionControlsNotSatisfied.some((c) => TP_CONTROL_NAMES.includes(c))
  );
}

function blocks(p: AppliedConditionalAccessPolicy): boolean {
  return (
    (p.result === 'failure' || p.result === 'reportOnlyFailure') &&
    p.sessionControlsNotSatisfied.some((c) => TP_CONTROL_NAMES.includes(c))
  );
}

class Tally {
  requests = 0;
  block = 0;
  readonly users = new Set<string>();
  readonly blockedUsers = new Set<string>();

  add(user: string, blocked: boolean): void {
    this.requests++;
    this.users.add(user);
    if (blocked) {
      this.block++;
      this.blockedUsers.add(user);
    }
  }

  counts(): ImpactCounts {
    const allow = this.requests - this.block;
    return {
      requests: this.requests,
      users: this.users.size,
      block: this.block,
      allow,
      blockedUsers: this.blockedUsers.size,
      pctAllowed: this.requests === 0 ? 0 : Math.round((10_000 * allow) / this.requests) / 100,
    };
  }
}

/** The per-app and per-user impact of token-protection policies in `entries`. */
export function impactReport(
  entries: readonly SignInEntry[],
  options: ImpactOptions = {},
): ImpactReport {
  const sinceMs = options.since?.getTime();
  const policyId = options.policyId?.toLowerCase();
  const apps = new Map<string, Tally>();
  const users = new Map<string, { user: string; app: string; resource: string; tally: Tally }>();
  let scanned = 0;
  for (const e of entries) {
    if (sinceMs !== undefined && !(Date.parse(e.createdDateTime) >= sinceMs)) continue;
    scanned++;
    const counted = e.appliedConditionalAccessPolicies.filter(
      (p) =>
        p.result !== 'notApplied' &&
        p.result !== 'reportOnlyNotApplied' &&
        (policyId === undefined ? isTokenProtection(p) : p.id.toLowerCase() === policyId),
    );
    if (counted.length === 0) continue;
    const blocked = counted.some(blocks);
    const app = e.appDisplayName || e.appId;
    const resource = e.resourceDisplayName || e.resourceId;
    const user = e.userPrincipalName;
    const a = apps.get(app) ?? new Tally();
    apps.set(app, a);
    a.add(user, blocked);
    const key = JSON.stringify([user, app, resource]);
    const u = users.get(key) ?? { user, app, resource, tally: new Tally() };
    users.set(key, u);
    u.tally.add(user, blocked);
  }
  const byName = (x: string, y: string): number => (x < y ? -1 : x > y ? 1 : 0);
  return {
    since: options.since?.toISOString(),
    policyId: options.policyId,
    scanned,
    apps: [...apps]
      .map(([app, t]) => ({ app, ...t.counts() }))
      .sort((x, y) => y.requests - x.requests || byName(x.app, y.app)),
    users: [...users.values()]
      .map(({ user, app, resource, tally }) => ({ user, app, resource, ...tally.counts() }))
      .sort(
        (x, y) => byName(x.user, y.user) || byName(x.app, y.app) || byName(x.resource, y.resource),
      ),
  };
}
