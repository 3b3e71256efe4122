import { describe, expect, it } from 'vitest';
import type { AppliedConditionalAccessPolicy, SignInEntry } from '../../cloud/signins/entry.ts';
import { impactReport, parseDuration } from '../../cloud/signins/impact.ts';

const TP = 'tp-policy';
const OTHER = 'mfa-policy';

function policy(
  id: string,
  result: string,
  notSatisfied = false,
  tp = id === TP,
): AppliedConditionalAccessPolicy {
  return {
    id,
    displayName: id,
    enforcedGrantControls: [],
    enforcedSessionControls: tp ? ['SignInTokenProtection'] : [],
    sessionControlsNotSatisfied: notSatisfied ? ['SignInTokenProtection'] : [],
    result,
  };
}

function signIn(
  user: string,
  app: string,
  policies: AppliedConditionalAccessPolicy[],
  at = '2026-11-27T12:00:00.000Z',
  resource = 'Office 365 Exchange Online',
): SignInEntry {
  return {
    createdDateTime: at,
    userPrincipalName: user,
    appDisplayName: app,
    appId: `${app}-id`,
    resourceDisplayName: resource,
    resourceId: `${resource}-id`,
    appliedConditionalAccessPolicies: policies,
  } as unknown as SignInEntry;
}

const bound = (u: string, app = 'Outlook') => signIn(u, app, [policy(TP, 'reportOnlySuccess')]);
const unbound = (u: string, app = 'Outlook') =>
  signIn(u, app, [policy(TP, 'reportOnlyFailure', true)]);

describe('impactReport', () => {
  const cases: {
    name: string;
    entries: SignInEntry[];
    options?: Parameters<typeof impactReport>[1];
    apps: Record<string, unknown>[];
  }[] = [
    { name: 'empty log', entries: [], apps: [] },
    {
      name: 'bound and unbound requests of one app',
      entries: [bound('a@x'), bound('a@x'), unbound('b@x'), bound('b@x')],
      apps: [
        {
          app: 'Outlook',
          requests: 4,
          users: 2,
          block: 1,
          allow: 3,
          blockedUsers: 1,
          pctAllowed: 75,
        },
      ],
    },
    {
      name: 'notApplied and reportOnlyNotApplied are dropped',
      entries: [
        signIn('a@x', 'Outlook', [policy(TP, 'reportOnlyNotApplied')]),
        signIn('a@x', 'Outlook', [policy(TP, 'notApplied')]),
        signIn('a@x', 'Outlook', []),
      ],
      apps: [],
    },
    {
      name: 'enforced failure blocks; failure of another control without TP does not',
      entries: [
        signIn('a@x', 'Teams', [policy(TP, 'failure', true)]),
        signIn('b@x', 'Teams', [policy(TP, 'failure', false)]),
        signIn('c@x', 'Teams', [policy(TP, 'success')]),
      ],
      apps: [
        {
          app: 'Teams',
          requests: 3,
          users: 3,
          block: 1,
          allow: 2,
          blockedUsers: 1,
          pctAllowed: 66.67,
        },
      ],
    },
    {
      name: 'non-TP policies are ignored without --policy',
      entries: [signIn('a@x', 'Outlook', [policy(OTHER, 'failure')]), bound('b@x', 'Teams')],
      apps: [
        {
          app: 'Teams',
          requests: 1,
          users: 1,
          block: 0,
          allow: 1,
          blockedUsers: 0,
          pctAllowed: 100,
        },
      ],
    },
    {
      name: '--policy selects one policy by id, TP or not',
      entries: [signIn('a@x', 'Outlook', [policy(OTHER, 'success')]), bound('b@x', 'Teams')],
      options: { policyId: 'MFA-POLICY' },
      apps: [
        {
          app: 'Outlook',
          requests: 1,
          users: 1,
          block: 0,
          allow: 1,
          blockedUsers: 0,
          pctAllowed: 100,
        },
      ],
    },
    {
      name: 'two TP policies on one request count it once',
      entries: [
        signIn('a@x', 'Outlook', [
          policy(TP, 'reportOnlySuccess'),
          policy('tp2', 'reportOnlyFailure', true, true),
        ]),
      ],
      apps: [
        {
          app: 'Outlook',
          requests: 1,
          users: 1,
          block: 1,
          allow: 0,
          blockedUsers: 1,
          pctAllowed: 0,
        },
      ],
    },
    {
      name: 'the older Binding control name counts too',
      entries: [
        signIn('a@x', 'Outlook', [
          {
            ...policy('old', 'reportOnlyFailure'),
            enforcedSessionControls: ['Binding'],
            sessionControlsNotSatisfied: ['Binding'],
          },
        ]),
      ],
      apps: [
        {
          app: 'Outlook',
          requests: 1,
          users: 1,
          block: 1,
          allow: 0,
          blockedUsers: 1,
          pctAllowed: 0,
        },
      ],
    },
    {
      name: '--since drops older sign-ins; apps sort by requests',
      entries: [
        signIn('a@x', 'Old', [policy(TP, 'reportOnlySuccess')], '2026-11-01T00:00:00Z'),
        bound('a@x', 'Teams'),
        unbound('a@x', 'Outlook'),
        unbound('b@x', 'Outlook'),
      ],
      options: { since: new Date('2026-11-20T00:00:00Z') },
      apps: [
        {
          app: 'Outlook',
          requests: 2,
          users: 2,
          block: 2,
          allow: 0,
          blockedUsers: 2,
          pctAllowed: 0,
        },
        {
          app: 'Teams',
          requests: 1,
          users: 1,
          block: 0,
          allow: 1,
          blockedUsers: 0,
          pctAllowed: 100,
        },
      ],
    },
  ];
  it.each(cases)('$name', ({ entries, options, apps }) => {
    expect(impactReport(entries, options).apps).toEqual(apps);
  });

  it('reports per user, app and resource', () => {
    const r = impactReport([
      bound('b@x'),
      unbound('b@x'),
      unbound('a@x', 'Teams'),
      signIn('a@x', 'Teams', [policy(TP, 'reportOnlySuccess')], undefined, 'SharePoint'),
    ]);
    expect(r.scanned).toBe(4);
    expect(
      r.users.map((u) => [u.user, u.app, u.resource, u.requests, u.block, u.pctAllowed]),
    ).toEqual([
      ['a@x', 'Teams', 'Office 365 Exchange Online', 1, 1, 0],
      ['a@x', 'Teams', 'SharePoint', 1, 0, 100],
      ['b@x', 'Outlook', 'Office 365 Exchange Online', 2, 1, 50],
    ]);
  });
});

describe('parseDuration', () => {
  it.each([
    ['7d', 7 * 86_400_000],
    ['24h', 86_400_000],
    ['30m', 1_800_000],
  ])('%s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });
  it.each(['', '7', '0d', '1w', '-1d', '1.5h', 'd'])('refuses %j', (text) => {
    expect(() => parseDuration(text)).toThrow(RangeError);
  });
});
