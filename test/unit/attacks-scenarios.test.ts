/**
 * Scenario files (attacks/scenarios/*.json): the shipped ones load and cover issue 6's list; a
 * malformed file is refused with ERR_ATTACK naming the file and the JSON path (attacks/scenario.ts).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AttackError } from '../../attacks/errors.ts';
import { POLICY_STATES, type Scenario } from '../../attacks/model.ts';
import {
  defaultScenarioDir,
  loadScenarios,
  parseScenario,
  parseScenarioText,
  selectScenarios,
} from '../../attacks/scenario.ts';

// biome-ignore lint/suspicious/noExplicitAny: documents are edited field by field below
type Doc = any;

async function shipped(file: string): Promise<Doc> {
  return JSON.parse(await readFile(join(defaultScenarioDir(), file), 'utf8'));
}

/** The ERR_ATTACK a document is refused with. */
function refusal(doc: unknown, file = 'x.json'): AttackError {
  try {
    parseScenario(doc, file);
  } catch (err) {
    expect(err).toBeInstanceOf(AttackError);
    expect((err as AttackError).code).toBe('ERR_ATTACK');
    return err as AttackError;
  }
  throw new Error('the document was accepted');
}

describe('the shipped scenarios', () => {
  it('load, numbered 1 to 11 as issue 6 lists them, each with a reason for every expectation', async () => {
    const all = await loadScenarios();
    expect(all.map((s) => s.number)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    for (const s of all) {
      const items = s.kind === 'attack' ? s.replays : s.cases;
      expect(items.length, s.id).toBeGreaterThan(0);
      for (const item of items)
        for (const state of POLICY_STATES)
          expect(item.expect[state].why.length, `${s.id}/${item.id}/${state}`).toBeGreaterThan(20);
    }
  });

  it('say in their reasons where token protection does not help', async () => {
    const byId = new Map((await loadScenarios()).map((s) => [s.id, s]));
    const why = (id: string, item: string) => {
      const s = byId.get(id) as Scenario;
      const items = s.kind === 'attack' ? s.replays : s.cases;
      return items.find((i) => i.id === item)!.expect.on.why;
    };
    expect(why('register-own-device', 'register-and-use')).toMatch(/alone does not stop this/);
    expect(why('register-own-device', 'register-with-attestation-required')).toMatch(
      /closes the gap token protection leaves/,
    );
    expect(why('register-own-device', 'register-with-attestation-required')).toMatch(
      /copied EK certificate could be paired with a software AK/,
    );
    expect(why('copied-tpm-state', 'state-key-in-file')).toMatch(/software TPM cannot stop this/);
    expect(why('stolen-access-token', 'within-lifetime')).toMatch(
      /bearer|allowed, enforced or not/i,
    );
    expect(why('malware-asks-broker', 'ask-as-teams')).toMatch(/does not stop this/);
  });

  it("run scenario 3's join twice: as it is, and with the tenant requiring attestation", async () => {
    const s = (await loadScenarios()).find((x) => x.number === 3);
    if (s?.kind !== 'attack') throw new Error('no attack scenario 3');
    expect(s.replays.map((r) => [r.id, r.action, r.artifact, r.tenant])).toEqual([
      ['register-and-use', 'register-device', 'credentials', {}],
      [
        'register-with-attestation-required',
        'register-device',
        'credentials',
        { requireAttestation: true },
      ],
    ]);
    const [plain, attested] = s.replays;
    for (const state of POLICY_STATES) {
      expect(plain?.expect[state]).toMatchObject({ outcome: 'allowed', tokenProtection: 'bound' });
      expect(attested?.expect[state]).toMatchObject({ outcome: 'refused', aadsts: 9990220 });
    }
    // No other shipped replay changes a tenant setting.
    for (const other of (await loadScenarios()).filter((x) => x.number !== 3))
      if (other.kind === 'attack')
        for (const r of other.replays) expect(r.tenant, `${other.id}/${r.id}`).toEqual({});
  });

  it('cover the rollout cases: clients, versions, devices, a guest and the break-glass account', async () => {
    const rollout = (await loadScenarios()).find((s) => s.kind === 'rollout');
    if (rollout?.kind !== 'rollout') throw new Error('no rollout scenario');
    const devices = new Set(rollout.cases.map((c) => c.device));
    expect([...devices].sort()).toEqual(
      ['avd', 'surface-hub', 'teams-room', 'windows', 'windows-server'].sort(),
    );
    expect(rollout.cases.map((c) => c.client)).toEqual(
      expect.arrayContaining(['powerbi', 'exchange-powershell', 'vscode', 'onedrive', 'teams']),
    );
    expect(rollout.cases.map((c) => c.user)).toEqual(
      expect.arrayContaining(['guest', 'break-glass']),
    );
  });

  it('are picked by id or number; an unknown one is ERR_ATTACK listing the known ones', async () => {
    const all = await loadScenarios();
    expect(selectScenarios(all, ['7', 'phished-password']).map((s) => s.number)).toEqual([7, 2]);
    expect(selectScenarios(all, [])).toHaveLength(all.length);
    expect(() => selectScenarios(all, ['no-such'])).toThrow(/no scenario 'no-such' \(known: 1 /);
  });
});

describe('a malformed scenario', () => {
  it('names the file and JSON path of an unknown member', async () => {
    const doc = await shipped('02-phished-password.json');
    doc.replays[1].expect.on.color = 'red';
    const err = refusal(doc, '02.json');
    expect(err.message).toBe('02.json: replays[1].expect.on.color: unknown member');
    expect(err.path).toBe('02.json: replays[1].expect.on.color');
  });

  it('needs a reason for every expectation', async () => {
    const doc = await shipped('02-phished-password.json');
    delete doc.replays[0].expect.reportOnly.why;
    expect(refusal(doc).message).toBe("x.json: replays[0].expect.reportOnly: missing 'why'");
  });

  it('needs an expectation for each of the three policy states', async () => {
    const doc = await shipped('09-malware-asks-broker.json');
    delete doc.replays[0].expect.on;
    expect(refusal(doc).message).toBe("x.json: replays[0].expect: missing 'on'");
  });

  it('refuses an action that does not take the artifact it names', async () => {
    const doc = await shipped('04-broker-bound-refresh-token.json');
    doc.replays[0].action = 'call-resource';
    doc.replays[0].with = { resource: 'exchange' };
    expect(refusal(doc).message).toMatch(
      /replays\[0\]\.artifact: action 'call-resource' takes access-token, not broker-cache-entry/,
    );
  });

  it('refuses a replay of an artifact nobody stole', async () => {
    const doc = await shipped('05-prt-without-session-key.json');
    doc.replays[1].artifact = 'session-key';
    expect(refusal(doc).message).toBe(
      "x.json: replays[1].artifact: no stolen artifact is named 'session-key'",
    );
  });

  it('checks action parameters against the action table', async () => {
    const doc = await shipped('01-cli-refresh-token.json');
    doc.replays[0].with.resource = 'teams-chat';
    expect(refusal(doc).message).toMatch(
      /replays\[0\]\.with\.resource: must be one of exchange, sharepoint, graph/,
    );
    delete doc.replays[0].with.resource;
    expect(refusal(doc).message).toBe("x.json: replays[0].with: missing 'resource'");
  });

  it('checks the sign-in evidence it expects', async () => {
    const doc = await shipped('01-cli-refresh-token.json');
    doc.replays[0].expect.on.tokenProtection = 'unbound 42';
    expect(refusal(doc).message).toMatch(/tokenProtection: 'unbound 42' is not/);
    doc.replays[0].expect.on.tokenProtection = 'unbound 1002';
    doc.replays[0].expect.on.signInResult = 'blocked';
    expect(refusal(doc).message).toMatch(/signInResult: must be one of success, failure/);
  });

  it('has no AADSTS code on an allowed outcome', async () => {
    const doc = await shipped('01-cli-refresh-token.json');
    doc.replays[0].expect.off.aadsts = 53003;
    expect(refusal(doc).message).toBe(
      'x.json: replays[0].expect.off.aadsts: an allowed outcome has no AADSTS code',
    );
  });

  it('refuses two replays with one id, and rollout cases with an unknown device kind', async () => {
    const doc = await shipped('02-phished-password.json');
    doc.replays[1].id = doc.replays[0].id;
    expect(refusal(doc).message).toMatch(
      /replays\[1\]\.id: 'as-windows-desktop-client' is used twice/,
    );
    const rollout = await shipped('11-rollout-impact.json');
    rollout.cases[0].device = 'mainframe';
    expect(refusal(rollout).message).toMatch(/cases\[0\]\.device: must be one of windows/);
  });

  it("takes a replay's tenant settings: known ones only, each a boolean, at least one", async () => {
    const doc = await shipped('03-register-own-device.json');
    doc.replays[0].tenant = { requireAttestation: false };
    const parsed = parseScenario(doc, 'x.json');
    if (parsed.kind !== 'attack') throw new Error('not an attack');
    expect(parsed.replays.map((r) => r.tenant)).toEqual([
      { requireAttestation: false },
      { requireAttestation: true },
    ]);

    doc.replays[1].tenant = { requireAttestation: 'on' };
    const notBoolean = refusal(doc);
    expect(notBoolean.message).toBe(
      'x.json: replays[1].tenant.requireAttestation: must be a boolean',
    );
    expect(notBoolean.path).toBe('x.json: replays[1].tenant.requireAttestation');
    doc.replays[1].tenant = { requireAttestation: null };
    expect(refusal(doc).message).toBe(
      'x.json: replays[1].tenant.requireAttestation: must be a boolean',
    );
    doc.replays[1].tenant = { requireAttestation: true, requireMfa: true };
    expect(refusal(doc).message).toBe('x.json: replays[1].tenant.requireMfa: unknown member');
    doc.replays[1].tenant = {};
    expect(refusal(doc).message).toBe(
      'x.json: replays[1].tenant: sets no setting (known: requireAttestation)',
    );
    for (const bad of [true, 'requireAttestation', ['requireAttestation'], null]) {
      doc.replays[1].tenant = bad;
      expect(refusal(doc).message).toBe('x.json: replays[1].tenant: must be an object');
    }
  });

  it('is refused when it is not JSON, or not an object of a known kind', () => {
    expect(() => parseScenarioText('{"kind":', 'bad.json')).toThrow(/^bad\.json: not JSON: /);
    expect(refusal([]).message).toBe('x.json: must be an object');
    expect(refusal({ kind: 'heist' }).message).toMatch(
      /^x\.json: kind: must be one of attack, rollout/,
    );
  });

  it('in a scenario directory stops the load, as does a clash of numbers', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'prtlab-attack-scenarios-'));
    try {
      const doc = await shipped('02-phished-password.json');
      await writeFile(join(dir, 'a.json'), JSON.stringify(doc));
      await writeFile(join(dir, 'b.json'), JSON.stringify({ ...doc, id: 'another-id' }));
      await expect(loadScenarios(dir)).rejects.toThrow(
        /b\.json: id 'another-id' or number 2 is already used by a\.json/,
      );
      await rm(join(dir, 'b.json'));
      await writeFile(join(dir, 'c.json'), '[1,2');
      await expect(loadScenarios(dir)).rejects.toThrow(/^c\.json: not JSON/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
