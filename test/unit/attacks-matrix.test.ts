/**
 * The whole matrix of issue 6: every shipped scenario, each in a fresh lab, under each policy
 * state, the attacker as a process of its own. The scenario files hold the expectations; this
 * suite checks that the observations meet them, then looks at the evidence behind a few rows.
 * The copied-TPM scenario's OS-keystore case needs dbus and gnome-keyring (it fails, naming the
 * Debian packages, when they are missing).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatReport, REPORT_FORMATS } from '../../attacks/report.ts';
import { type AttackRun, type Row, runAttacks } from '../../attacks/runner.ts';
import { loadScenarios } from '../../attacks/scenario.ts';
import { buildSourcePrograms, type SourcePrograms } from '../shared/attacks.ts';

describe('the stolen-token replay matrix', () => {
  let built: SourcePrograms;
  let run: AttackRun;
  const progress: string[] = [];

  beforeAll(async () => {
    built = await buildSourcePrograms();
    run = await runAttacks({
      scenarios: await loadScenarios(),
      programs: built.programs,
      progress: (line) => progress.push(line),
    });
  }, 600_000);

  afterAll(async () => {
    await built?.remove();
  });

  const rows = (scenario: string, item: string): Row[] =>
    run.rows.filter((r) => r.scenario.id === scenario && r.item.id === item);
  const at = (scenario: string, item: string, state: Row['state']): Row => {
    const r = rows(scenario, item).find((x) => x.state === state);
    if (!r) throw new Error(`no row ${scenario}/${item}/${state}`);
    return r;
  };

  it('observes what every scenario expects, in every policy state', () => {
    const differing = run.rows
      .filter((r) => r.differences.length > 0)
      .map((r) => `${r.scenario.id}/${r.item.id} [${r.state}]: ${r.differences.join('; ')}`);
    expect(differing).toEqual([]);
    expect(run.ok).toBe(true);
    expect(run.rows).toHaveLength(93);
    expect(new Set(run.rows.map((r) => r.scenario.number)).size).toBe(11);
  });

  it('shows progress for every scenario and every row', () => {
    expect(progress.filter((l) => /^\[\d+\/11\] /.test(l))).toHaveLength(11);
    expect(progress.filter((l) => / \[(off|reportOnly|on)\]: /.test(l))).toHaveLength(93);
  });

  it('blocks the stolen CLI refresh token only when the policy is on, and logs why each time', () => {
    const states = rows('cli-refresh-token', 'redeem-for-exchange').map((r) => [
      r.state,
      r.observed.outcome,
      r.observed.signIn.result,
      r.observed.signIn.tokenProtection,
    ]);
    expect(states).toEqual([
      ['off', 'allowed', 'notEnabled', 'unbound 1002'],
      ['reportOnly', 'allowed', 'reportOnlyFailure', 'unbound 1002'],
      ['on', 'blocked', 'failure', 'unbound 1002'],
    ]);
    expect(at('cli-refresh-token', 'redeem-for-exchange', 'on').observed.aadsts).toBe(53003);
    expect(at('cli-refresh-token', 'redeem-for-exchange', 'off').observed.got).toMatchObject({
      kind: 'access token',
      deviceBound: false,
    });
  });

  it('gives the attacker bound tokens for a device of its own, a new one in each state', () => {
    const ids = rows('register-own-device', 'register-and-use').map((r) => {
      expect(r.observed.got?.deviceBound).toBe(true);
      expect(r.observed.signIn.trustType).toBe('Azure AD joined');
      return r.observed.signIn.deviceId;
    });
    expect(new Set(ids).size).toBe(3);
  });

  it('refuses the same join when the tenant requires attestation, for that replay only', () => {
    const attested = rows('register-own-device', 'register-with-attestation-required');
    expect(attested.map((r) => [r.state, r.observed.outcome, r.observed.aadsts])).toEqual([
      ['off', 'refused', 9990220],
      ['reportOnly', 'refused', 9990220],
      ['on', 'refused', 9990220],
    ]);
    for (const r of attested) {
      expect(r.context.tenant).toEqual({ requireAttestation: true });
      expect(r.observed.status).toBe(403);
      expect(r.observed.error).toBe('access_denied');
      // The password still buys a DRS token; the join is what is refused, so no PRT, no token.
      expect(r.observed.requests.map((q) => q.status)).toEqual([200, 403]);
      expect(r.observed.got).toBeUndefined();
      expect(r.observed.signIn.result).toBe('noSignIn');
    }
    // The setting was put back after each attested replay: the plain join, which runs next in
    // the following state, is allowed again, and its rows name no tenant setting.
    for (const r of rows('register-own-device', 'register-and-use')) {
      expect(r.observed.outcome).toBe('allowed');
      expect(r.context.tenant).toBeUndefined();
    }
    expect(formatReport(run, 'md')).toContain(
      'tenant setting requireAttestation on for this replay',
    );
  });

  it("opens a copied device only with its key file; the copy is the victim's device", () => {
    for (const r of rows('copied-tpm-state', 'state-key-in-os-keystore')) {
      expect(r.observed.localError?.code).toBe('ERR_KEY_MISSING');
      expect(r.observed.requests).toEqual([]);
    }
    const copied = rows('copied-tpm-state', 'state-key-in-file');
    expect(new Set(copied.map((r) => r.observed.signIn.deviceId)).size).toBe(1);
    expect(copied[0]?.observed.got?.deviceBound).toBe(true);
  });

  it('lets malware on the device get bound tokens through the broker in every state', () => {
    for (const r of rows('malware-asks-broker', 'ask-as-teams')) {
      expect(r.observed.outcome).toBe('allowed');
      expect(r.observed.signIn.tokenProtection).toBe('bound');
      expect(r.observed.signIn.deviceId).toBeTruthy();
    }
  });

  it('refuses a replayed PRT-signed request as a replay, an edited one for its signature', () => {
    expect(at('captured-signed-request', 'as-captured', 'on').observed.aadsts).toBe(9990102);
    expect(at('captured-signed-request', 'payload-edited', 'on').observed.aadsts).toBe(9990103);
  });

  it('writes reports that hold no token, no password and no session key', () => {
    for (const format of REPORT_FORMATS) {
      const text = formatReport(run, format);
      // Lab tokens are JWTs (base64url of '{"') or sealed blobs; lab passwords start with 'Lab-'.
      expect(text, format).not.toMatch(/eyJ[A-Za-z0-9_-]{20,}/);
      expect(text, format).not.toMatch(/Lab-[A-Za-z0-9_-]{20,}/);
      expect(text, format).not.toMatch(/[A-Za-z0-9_-]{120,}/);
    }
  });
});
