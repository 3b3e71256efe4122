/**
 * The client profiles as data: every profile the issue names, app ids from token-protection.md
 * §4.2, and broker use that follows the cloud's requirement catalog (whose numbers the profiles
 * copy, since the device side must not import the cloud).
 */
import { describe, expect, it } from 'vitest';
import {
  brokerSummary,
  compareDotted,
  PROFILE_NAMES,
  PROFILES,
  usesBroker,
} from '../../clients/profiles.ts';
import { resolveRun } from '../../clients/run.ts';
import { CATALOG, CLIENT_IDS, EDITIONS } from '../../cloud/ca/catalog.ts';
import { firstPartyApplications } from '../../cloud/directory/seed.ts';

describe('client profiles', () => {
  it('has the eleven command-line names', () => {
    expect([...PROFILE_NAMES]).toEqual([
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
    ]);
    for (const name of PROFILE_NAMES) expect(PROFILES[name].name).toBe(name);
  });

  it('uses the documented app ids', () => {
    expect(PROFILES.onedrive.appId).toBe(CLIENT_IDS.oneDriveSync);
    expect(PROFILES.teams.appId).toBe(CLIENT_IDS.teams);
    expect(PROFILES.outlook.appId).toBe(CLIENT_IDS.office);
    expect(PROFILES['office-perpetual'].appId).toBe(CLIENT_IDS.office);
    expect(PROFILES.powerbi.appId).toBe(CLIENT_IDS.powerBiDesktop);
    expect(PROFILES.visualstudio.appId).toBe(CLIENT_IDS.visualStudio);
    expect(PROFILES.vscode.appId).toBe(CLIENT_IDS.vsCode);
    expect(PROFILES['exchange-powershell'].appId).toBe(CLIENT_IDS.exchangePowerShell);
    expect(PROFILES['graph-powershell'].appId).toBe(CLIENT_IDS.graphPowerShell);
    expect(PROFILES['azure-cli'].appId).toBe(CLIENT_IDS.azureCli);
    expect(PROFILES.powerquery.appId).toBe('a672d62c-fc7b-4e81-a576-e60dc46e951d');
  });

  it('every profile but Power Query is an application the lab directory knows, by its display name', () => {
    const apps = new Map(firstPartyApplications('contoso.test').map((a) => [a.appId, a]));
    for (const name of PROFILE_NAMES) {
      if (name === 'powerquery') continue;
      const p = PROFILES[name];
      expect(apps.get(p.appId)?.displayName, name).toBe(p.displayName);
    }
  });

  it('copies the catalog minimum versions exactly, for the edition that lists each client', () => {
    for (const name of PROFILE_NAMES) {
      const rule = PROFILES[name].broker;
      const listed = EDITIONS.flatMap((e) =>
        CATALOG[e].supportedClients.filter((c) => c.appId === PROFILES[name].appId),
      );
      if (rule.use === 'from') {
        expect(listed.length, name).toBeGreaterThan(0);
        for (const c of listed) expect(c.minVersion, name).toBe(rule.minVersion);
      }
      if (rule.use === 'always') expect(listed.some((c) => c.minVersion === undefined)).toBe(true);
    }
  });

  it('old OneDrive and Teams versions do not use the broker; current ones do', () => {
    expect(usesBroker(PROFILES.onedrive, '21.220.1024.0005')).toBe(false);
    expect(usesBroker(PROFILES.onedrive, '22.217')).toBe(true);
    expect(usesBroker(PROFILES.onedrive)).toBe(true);
    expect(usesBroker(PROFILES.teams, '1.5.00.9000')).toBe(false);
    expect(usesBroker(PROFILES.teams, '1.6.0.1331')).toBe(true);
    expect(usesBroker(PROFILES.powerbi, '2.116.0.0')).toBe(false);
    expect(usesBroker(PROFILES['graph-powershell'], '1.28.0')).toBe(false);
  });

  it('the unsupported clients never use the broker, whatever the version', () => {
    for (const name of ['office-perpetual', 'powerquery', 'vscode', 'azure-cli'] as const) {
      expect(usesBroker(PROFILES[name], '999.0'), name).toBe(false);
      expect(brokerSummary(PROFILES[name])).toBe('no');
    }
    expect(brokerSummary(PROFILES.outlook)).toBe('yes');
    expect(brokerSummary(PROFILES.onedrive)).toBe('from 22.217');
  });

  it('compares versions part by part, missing parts as zero', () => {
    expect(compareDotted('1.6.00.1331', '1.6.0.1331')).toBe(0);
    expect(compareDotted('22.217', '22.217.0.0')).toBe(0);
    expect(compareDotted('2.10', '2.9')).toBe(1);
    expect(() => compareDotted('2.x', '1')).toThrow(RangeError);
  });
});

describe('resolveRun', () => {
  it('picks the profile defaults', () => {
    const r = resolveRun({ profile: 'teams' });
    expect(r).toMatchObject({ version: PROFILES.teams.version, viaBroker: true });
    expect(r.resource.name).toBe('exchange');
  });

  it('refuses unknown profiles, versions that are not dotted numbers and unknown resources (ERR_CLIENT)', () => {
    for (const bad of [
      { profile: 'netscape' },
      { profile: 'toString' },
      { profile: 'teams', version: 'latest' },
      { profile: 'teams', resource: 'yammer' },
      { profile: 'teams', password: 'x' },
    ]) {
      expect(() => resolveRun(bad), JSON.stringify(bad)).toThrow(
        expect.objectContaining({ code: 'ERR_CLIENT' }),
      );
    }
  });
});

describe('user agents', () => {
  it('name Windows and do not look like a browser', () => {
    for (const name of PROFILE_NAMES) {
      const ua = PROFILES[name].userAgent;
      expect(ua, name).toMatch(/Windows NT 10\.0/);
      expect(ua, name).not.toMatch(/Mozilla\/|Chrome\/|Safari\/|Firefox\/|Edg\//);
      expect(ua, name).toContain('{version}');
    }
  });
});
