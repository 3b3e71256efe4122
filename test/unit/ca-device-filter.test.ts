import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type DeviceFilterInput,
  deviceFilterPredicate,
  FILTER_PROPERTIES,
  type FilterNode,
  MAX_DEPTH,
  MAX_RULE_LENGTH,
  parseDeviceFilter,
  printDeviceFilter,
} from '../../cloud/ca/device-filter.ts';
import { isCaError } from '../../cloud/ca/errors.ts';

const cloudPc: DeviceFilterInput = { trustType: 'AzureAd', systemLabels: ['CloudPC'] };
const hybridCloudPc: DeviceFilterInput = { trustType: 'ServerAd', systemLabels: ['CloudPC'] };
const avd: DeviceFilterInput = { trustType: 'AzureAd', systemLabels: ['AzureVirtualDesktop'] };
const pa: DeviceFilterInput = { trustType: 'AzureAd', systemLabels: ['MicrosoftPowerAutomate'] };
const secureVm: DeviceFilterInput = {
  trustType: 'AzureAd',
  systemLabels: [],
  profileType: 'SecureVM',
};
const kiosk: DeviceFilterInput = { trustType: 'AzureAd', enrollmentProfileName: 'Kiosk-Bulk' };
const laptop: DeviceFilterInput = {
  trustType: 'AzureAd',
  systemLabels: [],
  operatingSystem: 'Windows',
  isCompliant: true,
};
const none: DeviceFilterInput = {};

describe('documented token-protection exclusions (token-protection.md §1.3, §2.5)', () => {
  const rows: [string, DeviceFilterInput, boolean][] = [
    ['systemLabels -eq "CloudPC" and trustType -eq "AzureAD"', cloudPc, true],
    ['systemLabels -eq "CloudPC" and trustType -eq "AzureAD"', hybridCloudPc, false],
    ['systemLabels -eq "CloudPC" and trustType -eq "AzureAD"', laptop, false],
    ['systemLabels -eq "AzureVirtualDesktop" and trustType -eq "AzureAD"', avd, true],
    ['systemLabels -eq "AzureVirtualDesktop" and trustType -eq "AzureAD"', cloudPc, false],
    ['systemLabels -eq "MicrosoftPowerAutomate" and trustType -eq "AzureAD"', pa, true],
    ['enrollmentProfileName -eq "Kiosk-Bulk"', kiosk, true],
    ['enrollmentProfileName -eq "Kiosk-Bulk"', laptop, false],
    ['profileType -eq "SecureVM" and trustType -eq "AzureAD"', secureVm, true],
    ['profileType -eq "SecureVM" and trustType -eq "AzureAD"', laptop, false],
    ['device.systemLabels -contains "CloudPC" -and device.trustType -eq "AzureAD"', cloudPc, true],
    ['device.systemLabels -contains "CloudPC" -and device.trustType -eq "AzureAD"', none, false],
    ['device.isCompliant -eq True', laptop, true],
    ['device.isCompliant -eq True', none, false],
    ['device.isCompliant -ne True', none, true],
    ['device.trustType -in ["ServerAD", "Workplace"]', hybridCloudPc, true],
    ['device.trustType -in ["ServerAD", "Workplace"]', cloudPc, false],
    ['device.operatingSystem -contains "win"', laptop, true],
    ['device.trustType -ne "AzureAD"', none, true],
    ['device.systemLabels -ne "CloudPC"', laptop, true],
    [
      '(device.systemLabels -eq "CloudPC" -or device.systemLabels -eq "AzureVirtualDesktop") -and device.trustType -eq "AzureAD"',
      avd,
      true,
    ],
    // -and binds tighter than -or.
    [
      'device.trustType -eq "Workplace" -or device.systemLabels -eq "CloudPC" -and device.trustType -eq "AzureAD"',
      cloudPc,
      true,
    ],
    ['DEVICE.TRUSTTYPE -EQ "azuread" -AND device.systemlabels -CONTAINS "cloudpc"', cloudPc, true],
  ];
  it.each(rows)('%s on %o -> %s', (rule, device, expected) => {
    expect(deviceFilterPredicate(rule)(device)).toBe(expected);
  });
});

describe('errors name the position', () => {
  const bad: [string, number][] = [
    ['device.trustType -eq', 20],
    ['device.trustType -eq "AzureAD', 21],
    ['device.color -eq "red"', 0],
    ['device.trustType -like "A*"', 17],
    ['(device.trustType -eq "AzureAD"', 31],
    ['device.trustType -eq "AzureAD")', 30],
    ['device.trustType -eq "AzureAD" -xor device.isCompliant -eq True', 31],
    ['device.isCompliant -eq "yes"', 19],
    ['device.trustType -eq True', 17],
    ['device.trustType -in "AzureAD"', 21],
    ['device.trustType -in ["a",]', 26],
    ['device.trustType -eq "a\\q"', 23],
    ['device.trustType -eq "a" $', 25],
    ['', 0],
  ];
  it.each(bad)('%j fails at %d', (rule, pos) => {
    let err: unknown;
    try {
      parseDeviceFilter(rule);
    } catch (e) {
      err = e;
    }
    expect(isCaError(err, 'ERR_CA_FILTER')).toBe(true);
    expect((err as { position: number }).position).toBe(pos);
    expect((err as Error).message).toContain(`position ${pos}`);
  });

  it('bounds length and depth', () => {
    const long = `device.trustType -eq "${'a'.repeat(MAX_RULE_LENGTH)}"`;
    expect(() => parseDeviceFilter(long)).toThrow(/longer than/);
    const deep = `${'('.repeat(MAX_DEPTH + 1)}device.isCompliant -eq True${')'.repeat(MAX_DEPTH + 1)}`;
    expect(() => parseDeviceFilter(deep)).toThrow(/nesting deeper/);
    const ok = `${'('.repeat(MAX_DEPTH)}device.isCompliant -eq True${')'.repeat(MAX_DEPTH)}`;
    expect(() => parseDeviceFilter(ok)).not.toThrow();
  });
});

describe('properties', () => {
  it('random strings throw only ERR_CA_FILTER', () => {
    const alphabet = fc.constantFrom(
      ...'()[],"\\- .aAdeEqnNoOrRiItTuUcCsSvV01'.split(''),
      'device.',
      'trustType',
      'systemLabels',
      '-eq',
      '-and',
      '-or',
      '-in',
      ' True',
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.array(alphabet, { maxLength: 40 }).map((a) => a.join('')),
        ),
        (s) => {
          try {
            parseDeviceFilter(s);
          } catch (e) {
            if (!isCaError(e, 'ERR_CA_FILTER')) throw e;
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  const str = fc.string({ maxLength: 12 });
  const stringProp = fc.constantFrom(...FILTER_PROPERTIES.filter((p) => p !== 'isCompliant'));
  const cmp: fc.Arbitrary<FilterNode> = fc.oneof(
    fc.record({
      type: fc.constant('cmp' as const),
      property: stringProp,
      op: fc.constantFrom('-eq' as const, '-ne' as const, '-contains' as const),
      value: str.map((value) => ({ kind: 'string' as const, value })),
    }),
    fc.record({
      type: fc.constant('cmp' as const),
      property: stringProp,
      op: fc.constant('-in' as const),
      value: fc
        .array(str, { minLength: 1, maxLength: 3 })
        .map((values) => ({ kind: 'list' as const, values })),
    }),
    fc.record({
      type: fc.constant('cmp' as const),
      property: fc.constant('isCompliant' as const),
      op: fc.constantFrom('-eq' as const, '-ne' as const),
      value: fc.boolean().map((value) => ({ kind: 'boolean' as const, value })),
    }),
  );
  const tree = fc.letrec<{ node: FilterNode }>((tie) => ({
    node: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      cmp,
      fc.record({
        type: fc.constantFrom('and' as const, 'or' as const),
        left: tie('node'),
        right: tie('node'),
      }),
    ),
  })).node;

  it('print then parse gives the same tree', () => {
    fc.assert(
      fc.property(tree, (node) => {
        const printed = printDeviceFilter(node);
        fc.pre(printed.length <= MAX_RULE_LENGTH);
        expect(parseDeviceFilter(printed)).toEqual(node);
      }),
      { numRuns: 1000 },
    );
  });
});
