/**
 * The runner: each scenario in a fresh temporary lab (lab.ts), each policy state in turn, and for
 * every replay or rollout case one row with the expectation beside the observation and its
 * evidence. States share the scenario's lab: a state change is one policy update, as an
 * administrator would make it; the victim's activity is run again in every state, so every state
 * gets artifacts of its own. A replay may set tenant settings (model.ts TENANT_SETTINGS) for its own
 * run: set after the theft, just before the replay, and reset to the lab's defaults after it.
 *
 * An attack replay runs the attacker program (attacker-main.ts) as a process of its own, on its
 * own "host": a new directory that is its working directory, HOME and data directory, holding the
 * lab CA and a copy of the stolen artifact and nothing else; its environment is built from
 * nothing (programs.ts); it has no TPM (a copied device brings its own TPM state). A rollout case
 * is no attack: the client signs in on the victim's device of the case's kind, as the case's
 * user, the way that client version does (see runCase).
 */
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { type BrokerRpcError, isBrokerError } from '../broker/errors.ts';
import { PROFILES, usesBroker } from '../clients/profiles.ts';
import { RESOURCES } from '../clients/resources.ts';
import { runClient } from '../clients/run.ts';
import {
  type AttackerSpec,
  parseObservation,
  type RequestRecord,
  type TokenFacts,
} from './attacker/protocol.ts';
import { AttackError } from './errors.ts';
import { differences, harnessFailure, type Observed, observe, signInEvidence } from './evidence.ts';
import { fingerprint, jwtClaims } from './fingerprint.ts';
import { VictimLab } from './lab.ts';
import {
  type AttackScenario,
  type Expectation,
  POLICY_STATES,
  type PolicyStateName,
  type Replay,
  type RolloutCase,
  type RolloutScenario,
  type Scenario,
  type StolenArtifact,
  type TenantSettings,
} from './model.ts';
import { defaultPrograms, hostEnv, type Programs, runProgram } from './programs.ts';
import { steal } from './victim.ts';

const ATTACKER_TIMEOUT_MS = 90_000;

/** What a row is about, besides its expectation. */
export interface RowContext {
  readonly action?: string;
  readonly runsOn?: Replay['runsOn'];
  readonly artifact?: Pick<StolenArtifact, 'name' | 'kind' | 'from' | 'where'>;
  /** The tenant settings the replay ran with, when it set any. */
  readonly tenant?: TenantSettings;
  readonly client?: string;
  readonly version?: string;
  readonly device?: string;
  readonly user?: string;
}

export interface Row {
  readonly scenario: { readonly number: number; readonly id: string; readonly title: string };
  readonly item: { readonly id: string; readonly title: string };
  readonly state: PolicyStateName;
  readonly context: RowContext;
  readonly expected: Expectation;
  readonly observed: Observed;
  /** Empty when the observation is what the scenario expects. */
  readonly differences: readonly string[];
}

export interface AttackRun {
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly states: readonly PolicyStateName[];
  /** The tenant's token-protection catalog edition (decides 53003 or 530084). */
  readonly edition: string;
  readonly scenarios: readonly Pick<Scenario, 'number' | 'id' | 'title' | 'summary' | 'kind'>[];
  readonly rows: readonly Row[];
  /** True when every row matches its expectation. */
  readonly ok: boolean;
}

export interface RunnerOptions {
  readonly scenarios: readonly Scenario[];
  /** Default: off, reportOnly, on. */
  readonly states?: readonly PolicyStateName[];
  /** How to start the attacker and victim-host programs; default: the built ones. */
  readonly programs?: Programs;
  /** One line per step (the CLI writes them to standard error). */
  readonly progress?: (line: string) => void;
  /** Where the labs' temporary directories go; default the system's. */
  readonly tempDir?: string;
}

export function checkStates(states: readonly string[]): PolicyStateName[] {
  if (states.length === 0) throw new AttackError('no policy state to run');
  const out: PolicyStateName[] = [];
  for (const s of states) {
    if (!(POLICY_STATES as readonly string[]).includes(s))
      throw new AttackError(`unknown policy state '${s.slice(0, 32)}' (off, reportOnly, on)`);
    if (!out.includes(s as PolicyStateName)) out.push(s as PolicyStateName);
  }
  return out;
}

class Recorder {
  readonly rows: Row[] = [];
  readonly #progress: (line: string) => void;

  constructor(progress: (line: string) => void) {
    this.#progress = progress;
  }

  add(
    scenario: Scenario,
    item: { id: string; title: string },
    state: PolicyStateName,
    context: RowContext,
    expected: Expectation,
    observed: Observed,
  ): void {
    const diff = differences(expected, observed);
    this.rows.push({
      scenario: { number: scenario.number, id: scenario.id, title: scenario.title },
      item: { id: item.id, title: item.title },
      state,
      context,
      expected,
      observed,
      differences: diff,
    });
    const code = observed.aadsts !== undefined ? ` AADSTS${observed.aadsts}` : '';
    this.#progress(
      `${scenario.number} ${scenario.id} / ${item.id} [${state}]: ${observed.outcome}${code}` +
        ` (expected ${expected.outcome})${diff.length === 0 ? '' : ` DIFFERS: ${diff.join('; ')}`}`,
    );
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export async function runAttacks(options: RunnerOptions): Promise<AttackRun> {
  const states = checkStates(options.states ?? POLICY_STATES);
  const programs = options.programs ?? defaultPrograms();
  const progress = options.progress ?? (() => {});
  const recorder = new Recorder(progress);
  const startedAt = new Date().toISOString();
  let edition = 'unknown';
  for (const [i, scenario] of options.scenarios.entries()) {
    progress(
      `[${i + 1}/${options.scenarios.length}] ${scenario.number} ${scenario.id}: ${scenario.title}`,
    );
    const root = await mkdtemp(join(options.tempDir ?? tmpdir(), `prtlab-attack-${scenario.id}-`));
    try {
      let lab: VictimLab;
      try {
        lab = await VictimLab.start(root);
        edition = await lab.cloud.directory.policies.edition();
      } catch (err) {
        failAll(recorder, scenario, states, `the lab did not start: ${message(err)}`);
        continue;
      }
      try {
        if (scenario.kind === 'attack')
          await runAttackScenario(lab, scenario, states, programs, recorder);
        else await runRollout(lab, scenario, states, recorder);
      } finally {
        await lab.close();
      }
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  }
  return {
    startedAt,
    finishedAt: new Date().toISOString(),
    states,
    edition,
    scenarios: options.scenarios.map((s) => ({
      number: s.number,
      id: s.id,
      title: s.title,
      summary: s.summary,
      kind: s.kind,
    })),
    rows: recorder.rows,
    ok: recorder.rows.every((r) => r.differences.length === 0),
  };
}

function items(
  scenario: Scenario,
): { id: string; title: string; expect: Record<PolicyStateName, Expectation> }[] {
  return scenario.kind === 'attack' ? [...scenario.replays] : [...scenario.cases];
}

function contextOf(scenario: Scenario, id: string): RowContext {
  if (scenario.kind === 'attack') {
    const r = scenario.replays.find((x) => x.id === id)!;
    const a = scenario.stolen.find((x) => x.name === r.artifact)!;
    return {
      action: r.action,
      runsOn: r.runsOn,
      artifact: { name: a.name, kind: a.kind, from: a.from, where: a.where },
      ...(Object.keys(r.tenant).length > 0 ? { tenant: r.tenant } : {}),
    };
  }
  const c = scenario.cases.find((x) => x.id === id)!;
  return {
    client: c.client,
    version: c.version ?? PROFILES[c.client].version,
    device: c.device,
    user: c.user,
  };
}

function failAll(
  recorder: Recorder,
  scenario: Scenario,
  states: readonly PolicyStateName[],
  why: string,
): void {
  for (const state of states)
    for (const item of items(scenario))
      recorder.add(
        scenario,
        item,
        state,
        contextOf(scenario, item.id),
        item.expect[state],
        harnessFailure(why),
      );
}

async function runAttackScenario(
  lab: VictimLab,
  scenario: AttackScenario,
  states: readonly PolicyStateName[],
  programs: Programs,
  recorder: Recorder,
): Promise<void> {
  for (const state of states) {
    // The victim's activity and the theft happen before the state under test is set.
    const lootDir = join(lab.root, `loot-${state}`);
    const loot = new Map<string, string>();
    const lootErrors = new Map<string, string>();
    try {
      await lab.setPolicyState('off');
      for (const stolen of scenario.stolen) {
        try {
          loot.set(stolen.name, await steal(lab, stolen, lootDir, programs));
        } catch (err) {
          lootErrors.set(stolen.name, `stealing '${stolen.name}' failed: ${message(err)}`);
        }
      }
      await lab.setPolicyState(state);
    } catch (err) {
      for (const r of scenario.replays) lootErrors.set(r.artifact, message(err));
    }
    for (const replay of scenario.replays) {
      const context = contextOf(scenario, replay.id);
      const path = loot.get(replay.artifact);
      let observed: Observed;
      if (path === undefined) {
        observed = harnessFailure(lootErrors.get(replay.artifact) ?? 'no artifact');
      } else {
        try {
          if (replay.advanceMinutes > 0) lab.clock.advance(replay.advanceMinutes * 60_000);
          observed = await withTenantSettings(lab, replay.tenant, () =>
            runReplay(lab, scenario, replay, state, lootDir, path, programs),
          );
        } catch (err) {
          observed = harnessFailure(message(err));
        }
      }
      recorder.add(scenario, replay, state, context, replay.expect[state], observed);
    }
  }
}

/**
 * Runs a replay with the tenant settings it names: set just before it and put back to the lab's
 * defaults just after (when it fails too), so other replays and states see the defaults. The
 * victim's own device is registered first, as it was before an administrator changed the setting
 * (its built-in TPM attests anyway: lab.ts).
 */
async function withTenantSettings<T>(
  lab: VictimLab,
  settings: TenantSettings,
  run: () => Promise<T>,
): Promise<T> {
  if (Object.keys(settings).length === 0) return run();
  await lab.device();
  await lab.setTenantSettings(settings);
  try {
    return await run();
  } finally {
    await lab.resetTenantSettings();
  }
}

/** One replay on a fresh attacker host. */
async function runReplay(
  lab: VictimLab,
  scenario: AttackScenario,
  replay: Replay,
  state: PolicyStateName,
  lootDir: string,
  lootPath: string,
  programs: Programs,
): Promise<Observed> {
  const stolen = scenario.stolen.find((s) => s.name === replay.artifact)!;
  const host = join(lab.root, `attacker-${state}-${replay.id}`);
  await mkdir(host, { recursive: true, mode: 0o700 });
  const caPath = join(host, 'lab-ca.pem');
  await writeFile(caPath, lab.caPem, { mode: 0o600 });
  const artifact = join(host, relative(lootDir, lootPath));
  await cp(lootPath, artifact, { recursive: true });
  const keystore = replay.attackerKeystore ? await lab.keystore() : undefined;
  try {
    const spec: AttackerSpec = {
      action: replay.action,
      with: replay.with,
      artifactKind: stolen.kind,
      artifact,
      cloudUrl: lab.cloud.url,
      tenant: lab.cloud.tenant.domain,
      caPath,
      dataDir: host,
    };
    const env = hostEnv(
      host,
      keystore ? { DBUS_SESSION_BUS_ADDRESS: keystore.env.DBUS_SESSION_BUS_ADDRESS ?? '' } : {},
    );
    const result = await runProgram(programs.attacker, {
      cwd: host,
      env,
      input: JSON.stringify(spec),
      timeoutMs: ATTACKER_TIMEOUT_MS,
    });
    const line = result.stdout.trim().split('\n').at(-1) ?? '';
    if (result.code !== 0 || line === '')
      return harnessFailure(
        `the attacker program exited with ${result.code}: ${result.stderr.trim().slice(-1200)}`,
      );
    return observe(parseObservation(line), (cid) =>
      signInEvidence(lab.signInEntry(cid), lab.policyId),
    );
  } finally {
    await keystore?.stop();
  }
}

const USER_OF = { pilot: 'pilot', guest: 'guest', 'break-glass': 'breakGlass' } as const;

async function runRollout(
  lab: VictimLab,
  scenario: RolloutScenario,
  states: readonly PolicyStateName[],
  recorder: Recorder,
): Promise<void> {
  for (const state of states) {
    await lab.setPolicyState(state);
    for (const c of scenario.cases) {
      let observed: Observed;
      try {
        observed = await runCase(lab, c);
      } catch (err) {
        observed = harnessFailure(message(err));
      }
      recorder.add(scenario, c, state, contextOf(scenario, c.id), c.expect[state], observed);
    }
  }
}

/**
 * A client on the victim's device of the case's kind, as the case's user, the way that client
 * version signs in (clients/profiles.ts): a broker client asks the broker, where the user is
 * signed in (forceRefresh, so every state reaches the cloud); any other runs the client stub
 * (clients/run.ts), which signs in on its own with the password and keeps its plain cache.
 */
async function runCase(lab: VictimLab, c: RolloutCase): Promise<Observed> {
  const device = await lab.device(c.device);
  const profile = PROFILES[c.client];
  const version = c.version ?? profile.version;
  const resource = RESOURCES[c.resource ?? profile.resource];
  const user = lab.users[USER_OF[c.user]];
  const viaBroker = usesBroker(profile, version);
  const what = `${profile.displayName} ${version} ${viaBroker ? 'through the broker' : 'on its own'} for ${resource.displayName}`;
  let record: RequestRecord;
  let got: TokenFacts | undefined;
  if (viaBroker) {
    await device.ensureSignedIn(user.upn, lab.password);
    try {
      const t = await device.brokerToken({
        upn: user.upn,
        clientId: profile.appId,
        resource: resource.resource,
        clientVersion: version,
      });
      record = { what, status: 200, correlationId: t.correlationId };
      got = tokenFacts(t.accessToken);
    } catch (err) {
      if (!isBrokerError(err, 'ERR_BROKER_RPC')) throw err;
      const data = (err as BrokerRpcError).data;
      record = {
        what,
        status: 400,
        ...(data?.error ? { error: data.error } : {}),
        ...(typeof data?.aadsts === 'number' ? { aadsts: data.aadsts } : {}),
        ...(data?.correlationId ? { correlationId: data.correlationId } : {}),
      };
    }
  } else {
    const report = await runClient(lab.clientEnv(device), {
      profile: c.client,
      version,
      resource: resource.name,
      user: user.upn,
      password: lab.password,
    });
    const s = report.signIn;
    record = s.ok
      ? { what, status: 200, ...(s.correlationId ? { correlationId: s.correlationId } : {}) }
      : {
          what,
          status: 400,
          error: s.error,
          ...(s.aadsts !== null ? { aadsts: s.aadsts } : {}),
          ...(s.correlationId !== null ? { correlationId: s.correlationId } : {}),
        };
    if (s.ok) got = { kind: 'access token', fingerprint: '', deviceBound: s.deviceBound };
  }
  return {
    ...observe({ requests: [record], decisive: 0 }, (cid) =>
      signInEvidence(lab.signInEntry(cid), lab.policyId),
    ),
    ...(got ? { got } : {}),
  };
}

function tokenFacts(token: string): TokenFacts {
  return {
    kind: 'access token',
    fingerprint: fingerprint(token),
    deviceBound: typeof jwtClaims(token)?.deviceid === 'string',
  };
}
