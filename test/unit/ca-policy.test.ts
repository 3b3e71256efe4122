import { describe, expect, it } from 'vitest';
import { isCaError } from '../../cloud/ca/errors.ts';
import { parsePolicy } from '../../cloud/ca/policy.ts';
import { seedTokenProtectionPolicy } from '../shared/policies.ts';

// biome-ignore lint/suspicious/noExplicitAny: tests patch arbitrary JSON paths.
type Patchable = Record<string, any>;

const BREAK_GLASS = '11111111-1111-4111-8111-111111111111';
const PILOT = '22222222-2222-4222-8222-222222222222';

/** token-protection.md §2.5, with the placeholders filled. */
function seedPolicyJson(): Record<string, unknown> {
  return seedTokenProtectionPolicy({
    displayName: 'CA-TP-01 Require token protection - EXO/SPO - Windows desktop (report-only)',
    state: 'enabledForReportingButNotEnforced',
    breakGlassUserId: BREAK_GLASS,
    pilotGroupId: PILOT,
  });
}

function refusal(json: unknown): { path: string; message: string } {
  try {
    parsePolicy(json);
  } catch (e) {
    if (isCaError(e, 'ERR_CA_POLICY')) return { path: e.path ?? '', message: e.message };
    throw e;
  }
  throw new Error('expected a refusal');
}

function withPatch(patch: (p: Patchable) => void): Record<string, unknown> {
  const p = seedPolicyJson();
  patch(p as Patchable);
  return p;
}

describe('parsePolicy', () => {
  it('parses the seed policy and round-trips it unchanged', () => {
    const json = seedPolicyJson();
    const text = JSON.stringify(json);
    const policy = parsePolicy(JSON.parse(text));
    expect(JSON.stringify(policy)).toBe(text);
    expect(policy.state).toBe('enabledForReportingButNotEnforced');
    expect(policy.sessionControls?.secureSignInSession?.isEnabled).toBe(true);
    expect(policy.conditions.users.includeGroups).toEqual([PILOT]);
  });

  it('accepts the GA variant with a device filter', () => {
    const p = parsePolicy(
      withPatch((p) => {
        p.id = '33333333-3333-4333-8333-333333333333';
        p.state = 'enabled';
        p.conditions.devices = {
          deviceFilter: {
            mode: 'exclude',
            rule: 'device.systemLabels -contains "CloudPC" -and device.trustType -eq "AzureAD"',
          },
        };
      }),
    );
    expect(p.conditions.devices?.deviceFilter?.mode).toBe('exclude');
  });

  const bad: [string, (p: Patchable) => void, string, RegExp][] = [
    [
      'bad user id',
      (p) => p.conditions.users.excludeUsers.push('x', 'y'),
      'conditions.users.excludeUsers[1]',
      /not a GUID or 'GuestsOrExternalUsers'/,
    ],
    [
      'bad include user',
      (p) => {
        p.conditions.users.includeUsers = [BREAK_GLASS, 'All', 'everyone'];
      },
      'conditions.users.includeUsers[2]',
      /not a GUID or 'All'\/'None'\/'GuestsOrExternalUsers'/,
    ],
    [
      'state',
      (p) => {
        p.state = 'on';
      },
      'state',
      /not one of/,
    ],
    [
      'missing state',
      (p) => {
        delete p.state;
      },
      'state',
      /missing/,
    ],
    [
      'missing users',
      (p) => {
        delete p.conditions.users;
      },
      'conditions.users',
      /missing/,
    ],
    [
      'platform',
      (p) => {
        p.conditions.platforms.includePlatforms = ['windows', 'amiga'];
      },
      'conditions.platforms.includePlatforms[1]',
      /not one of/,
    ],
    [
      'client app type',
      (p) => {
        p.conditions.clientAppTypes = ['desktop'];
      },
      'conditions.clientAppTypes[0]',
      /not one of/,
    ],
    [
      'app keyword',
      (p) => {
        p.conditions.applications.excludeApplications = ['All'];
      },
      'conditions.applications.excludeApplications[0]',
      /not a GUID/,
    ],
    [
      'guest flags',
      (p) => {
        p.conditions.users.excludeGuestsOrExternalUsers.guestOrExternalUserTypes =
          'internalGuest,alien';
      },
      'conditions.users.excludeGuestsOrExternalUsers.guestOrExternalUserTypes',
      /flag 1/,
    ],
    [
      'isEnabled',
      (p) => {
        p.sessionControls.secureSignInSession.isEnabled = 'yes';
      },
      'sessionControls.secureSignInSession.isEnabled',
      /not a boolean/,
    ],
    [
      'grant',
      (p) => {
        p.grantControls = { operator: 'AND', builtInControls: ['teleport'] };
      },
      'grantControls.builtInControls[0]',
      /not one of/,
    ],
    [
      'filter mode',
      (p) => {
        p.conditions.devices = {
          deviceFilter: { mode: 'maybe', rule: 'device.isCompliant -eq True' },
        };
      },
      'conditions.devices.deviceFilter.mode',
      /not one of/,
    ],
    [
      'filter rule',
      (p) => {
        p.conditions.devices = {
          deviceFilter: { mode: 'include', rule: 'device.isCompliant -eq' },
        };
      },
      'conditions.devices.deviceFilter.rule',
      /position 22/,
    ],
    [
      'deep passthrough',
      (p) => {
        let v: unknown = 1;
        for (let i = 0; i < 20; i++) v = [v];
        p.conditions.locations = v;
      },
      'conditions.locations[0][0][0][0][0][0][0]',
      /nested too deeply/,
    ],
    [
      'long list',
      (p) => {
        p.conditions.users.includeGroups = Array(1001).fill(PILOT);
      },
      'conditions.users.includeGroups',
      /more than 1000/,
    ],
    [
      'empty name',
      (p) => {
        p.displayName = ' ';
      },
      'displayName',
      /empty/,
    ],
  ];
  it.each(bad)('%s', (_name, patch, path, message) => {
    const r = refusal(withPatch(patch));
    expect(r.path).toBe(path);
    expect(r.message.startsWith(`${path}: `)).toBe(true);
    expect(r.message).toMatch(message);
  });

  it('refuses non-objects', () => {
    expect(refusal(null).path).toBe('(policy)');
    expect(refusal([1]).path).toBe('(policy)');
  });
});
