/**
 * Scenario files (attacks/scenarios/*.json): read, checked against the tables of model.ts, and
 * turned into typed scenarios. Every problem is an AttackError (ERR_ATTACK) whose message starts
 * with the file and the JSON path, e.g. `05-prt-without-session-key.json: replays[1].expect.on:
 * missing 'why'`. Unknown members are refused, so a misspelt field never passes silently.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDottedVersion } from '../clients/profiles.ts';
import { AttackError } from './errors.ts';
import {
  ACTIONS,
  type ActionName,
  type AttackScenario,
  DEVICE_KINDS,
  type Expectation,
  type Expectations,
  OUTCOMES,
  type Params,
  POLICY_STATES,
  PROFILE_NAMES,
  RESOURCE_NAMES,
  type Replay,
  type RolloutCase,
  type RolloutScenario,
  type Scenario,
  SIGN_IN_RESULTS,
  SOURCES,
  type SourceName,
  type StolenArtifact,
  TENANT_SETTINGS,
  type TenantSettingName,
  type TenantSettings,
  TOKEN_PROTECTION_RE,
  USER_AGENTS,
  USER_KINDS,
} from './model.ts';

const ID_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;
const MAX_TEXT = 2000;
const MAX_FILE_BYTES = 256 * 1024;

type Json = Record<string, unknown>;

/** A cursor over one file's JSON: each check names the file and the path it is at. */
class Checker {
  readonly file: string;
  readonly path: string;

  constructor(file: string, path: string) {
    this.file = file;
    this.path = path;
  }

  at(member: string | number): Checker {
    const path =
      typeof member === 'number'
        ? `${this.path}[${member}]`
        : this.path
          ? `${this.path}.${member}`
          : member;
    return new Checker(this.file, path);
  }

  error(message: string): AttackError {
    const where = this.path ? `${this.file}: ${this.path}` : this.file;
    return new AttackError(`${where}: ${message}`, { path: where });
  }

  fail(message: string): never {
    throw this.error(message);
  }

  /** An object with exactly the `required` members and any of the `optional` ones. */
  object(value: unknown, required: readonly string[], optional: readonly string[] = []): Json {
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      this.fail('must be an object');
    const o = value as Json;
    for (const k of required) if (!Object.hasOwn(o, k)) this.fail(`missing '${k}'`);
    for (const k of Object.keys(o)) {
      if (!required.includes(k) && !optional.includes(k)) this.at(k).fail('unknown member');
    }
    return o;
  }

  text(value: unknown, max = MAX_TEXT): string {
    if (typeof value !== 'string' || value.trim() === '') this.fail('must be a non-empty string');
    if (value.length > max) this.fail(`must be at most ${max} characters`);
    return value;
  }

  id(value: unknown): string {
    const s = this.text(value, 63);
    if (!ID_RE.test(s)) this.fail(`'${s}' is not an id (lower-case letters, digits and '-')`);
    return s;
  }

  oneOf<const T extends string>(value: unknown, allowed: readonly T[]): T {
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value))
      this.fail(`must be one of ${allowed.join(', ')} (got ${JSON.stringify(value)})`);
    return value as T;
  }

  integer(value: unknown, min: number, max: number): number {
    if (!Number.isInteger(value) || (value as number) < min || (value as number) > max)
      this.fail(`must be an integer from ${min} to ${max}`);
    return value as number;
  }

  list(value: unknown, min = 1): unknown[] {
    if (!Array.isArray(value) || value.length < min)
      this.fail(`must be a list of at least ${min} item${min === 1 ? '' : 's'}`);
    return value;
  }
}

/** Checks action or source parameters against their table row. */
function checkParams(
  c: Checker,
  value: unknown,
  spec: Readonly<Record<string, { type: unknown; required?: boolean }>>,
): Params {
  const names = Object.keys(spec);
  const required = names.filter((n) => spec[n]?.required === true);
  const o = c.object(
    value ?? {},
    required,
    names.filter((n) => !required.includes(n)),
  );
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(o)) {
    const pc = c.at(k);
    const type = spec[k]?.type;
    if (type === 'profile') out[k] = pc.oneOf(v, PROFILE_NAMES);
    else if (type === 'resource') out[k] = pc.oneOf(v, RESOURCE_NAMES);
    else if (type === 'userAgent')
      out[k] = pc.oneOf(v, Object.keys(USER_AGENTS) as (keyof typeof USER_AGENTS)[]);
    else if (type === 'version') {
      const s = pc.text(v, 64);
      if (!isDottedVersion(s)) pc.fail(`'${s}' is not a dotted version`);
      out[k] = s;
    } else if (Array.isArray(type)) out[k] = pc.oneOf(v, type as string[]);
    else pc.fail('has no type in the table');
  }
  return out;
}

function checkExpectation(c: Checker, value: unknown): Expectation {
  const o = c.object(value, ['outcome', 'why'], ['aadsts', 'signInResult', 'tokenProtection']);
  const outcome = c.at('outcome').oneOf(o.outcome, OUTCOMES);
  const e: {
    outcome: Expectation['outcome'];
    why: string;
    aadsts?: number;
    signInResult?: Expectation['signInResult'];
    tokenProtection?: string;
  } = { outcome, why: c.at('why').text(o.why) };
  if (o.aadsts !== undefined) e.aadsts = c.at('aadsts').integer(o.aadsts, 1, 99_999_999);
  if (o.signInResult !== undefined)
    e.signInResult = c.at('signInResult').oneOf(o.signInResult, SIGN_IN_RESULTS);
  if (o.tokenProtection !== undefined) {
    const tp = c.at('tokenProtection').text(o.tokenProtection, 32);
    if (!TOKEN_PROTECTION_RE.test(tp))
      c.at('tokenProtection').fail(`'${tp}' is not 'bound', 'none' or 'unbound <1002-1008>'`);
    e.tokenProtection = tp;
  }
  if (outcome === 'allowed' && e.aadsts !== undefined)
    c.at('aadsts').fail('an allowed outcome has no AADSTS code');
  return e;
}

function checkExpectations(c: Checker, value: unknown): Expectations {
  const o = c.object(value, POLICY_STATES);
  return {
    off: checkExpectation(c.at('off'), o.off),
    reportOnly: checkExpectation(c.at('reportOnly'), o.reportOnly),
    on: checkExpectation(c.at('on'), o.on),
  };
}

function checkStolen(c: Checker, value: unknown): StolenArtifact {
  const o = c.object(value, ['name', 'from', 'where'], ['kind', 'with']);
  const from = c.at('from').oneOf(o.from, Object.keys(SOURCES) as SourceName[]);
  const spec = SOURCES[from];
  const params = checkParams(c.at('with'), o.with, spec.params);
  // agent-traffic yields a captured request or the PRT inside it, as `keep` says.
  const kind =
    from === 'agent-traffic'
      ? params.keep === 'prt'
        ? 'prt'
        : 'captured-request'
      : (spec.yields[0] as StolenArtifact['kind']);
  if (o.kind !== undefined && o.kind !== kind)
    c.at('kind').fail(`'${String(o.kind)}' is not what '${from}' yields (${kind})`);
  return {
    name: c.at('name').id(o.name),
    kind,
    from,
    with: params,
    where: c.at('where').text(o.where),
  };
}

/** A replay's `tenant`: known settings only, each a boolean, at least one. */
function checkTenant(c: Checker, value: unknown): TenantSettings {
  const names = Object.keys(TENANT_SETTINGS) as TenantSettingName[];
  const o = c.object(value, [], names);
  const out: Partial<Record<TenantSettingName, boolean>> = {};
  for (const name of names) {
    const on = o[name];
    if (on === undefined) continue;
    if (typeof on !== 'boolean') throw c.at(name).error('must be a boolean');
    out[name] = on;
  }
  if (Object.keys(out).length === 0) c.fail(`sets no setting (known: ${names.join(', ')})`);
  return out;
}

function checkReplay(c: Checker, value: unknown, stolen: readonly StolenArtifact[]): Replay {
  const o = c.object(
    value,
    ['id', 'title', 'artifact', 'action', 'expect'],
    ['with', 'runsOn', 'attackerKeystore', 'advanceMinutes', 'tenant'],
  );
  const action = c.at('action').oneOf(o.action, Object.keys(ACTIONS) as ActionName[]);
  const artifactName = c.at('artifact').id(o.artifact);
  const artifact = stolen.find((s) => s.name === artifactName);
  if (!artifact) throw c.at('artifact').error(`no stolen artifact is named '${artifactName}'`);
  const accepts: readonly string[] = ACTIONS[action].accepts;
  if (!accepts.includes(artifact.kind))
    c.at('artifact').fail(
      `action '${action}' takes ${accepts.join(' or ')}, not ${artifact.kind} ('${artifactName}')`,
    );
  let attackerKeystore = false;
  if (o.attackerKeystore !== undefined) {
    if (typeof o.attackerKeystore !== 'boolean')
      throw c.at('attackerKeystore').error('must be a boolean');
    attackerKeystore = o.attackerKeystore;
  }
  return {
    id: c.at('id').id(o.id),
    title: c.at('title').text(o.title, 200),
    artifact: artifactName,
    action,
    with: checkParams(c.at('with'), o.with, ACTIONS[action].params),
    runsOn:
      o.runsOn === undefined
        ? 'attacker-host'
        : c.at('runsOn').oneOf(o.runsOn, ['attacker-host', 'victim-device']),
    attackerKeystore,
    advanceMinutes:
      o.advanceMinutes === undefined ? 0 : c.at('advanceMinutes').integer(o.advanceMinutes, 0, 600),
    tenant: o.tenant === undefined ? {} : checkTenant(c.at('tenant'), o.tenant),
    expect: checkExpectations(c.at('expect'), o.expect),
  };
}

function checkCase(c: Checker, value: unknown): RolloutCase {
  const o = c.object(
    value,
    ['id', 'title', 'client', 'device', 'user', 'expect'],
    ['version', 'resource'],
  );
  let version: string | undefined;
  if (o.version !== undefined) {
    version = c.at('version').text(o.version, 64);
    if (!isDottedVersion(version)) c.at('version').fail(`'${version}' is not a dotted version`);
  }
  return {
    id: c.at('id').id(o.id),
    title: c.at('title').text(o.title, 200),
    client: c.at('client').oneOf(o.client, PROFILE_NAMES),
    version,
    resource:
      o.resource === undefined ? undefined : c.at('resource').oneOf(o.resource, RESOURCE_NAMES),
    device: c.at('device').oneOf(o.device, DEVICE_KINDS),
    user: c.at('user').oneOf(o.user, USER_KINDS),
    expect: checkExpectations(c.at('expect'), o.expect),
  };
}

function uniqueIds(c: Checker, items: readonly { id: string }[], what: string): void {
  const seen = new Set<string>();
  for (const [i, item] of items.entries()) {
    if (seen.has(item.id)) c.at(what).at(i).at('id').fail(`'${item.id}' is used twice`);
    seen.add(item.id);
  }
}

/** Checks one scenario document (parsed JSON) read from `file`. */
export function parseScenario(json: unknown, file: string): Scenario {
  const c = new Checker(file, '');
  if (typeof json !== 'object' || json === null || Array.isArray(json)) c.fail('must be an object');
  const kind = c.at('kind').oneOf((json as Json).kind, ['attack', 'rollout']);
  const common = ['kind', 'id', 'number', 'title', 'summary'];
  if (kind === 'attack') {
    const o = c.object(json, [...common, 'stolen', 'replays']);
    const stolen = c
      .at('stolen')
      .list(o.stolen)
      .map((s, i) => checkStolen(c.at('stolen').at(i), s));
    const names = new Set<string>();
    for (const [i, s] of stolen.entries()) {
      if (names.has(s.name)) c.at('stolen').at(i).at('name').fail(`'${s.name}' is used twice`);
      names.add(s.name);
    }
    const replays = c
      .at('replays')
      .list(o.replays)
      .map((r, i) => checkReplay(c.at('replays').at(i), r, stolen));
    uniqueIds(c, replays, 'replays');
    const scenario: AttackScenario = {
      kind,
      id: c.at('id').id(o.id),
      number: c.at('number').integer(o.number, 1, 999),
      title: c.at('title').text(o.title, 200),
      summary: c.at('summary').text(o.summary),
      stolen,
      replays,
      file,
    };
    return scenario;
  }
  const o = c.object(json, [...common, 'cases']);
  const cases = c
    .at('cases')
    .list(o.cases)
    .map((x, i) => checkCase(c.at('cases').at(i), x));
  uniqueIds(c, cases, 'cases');
  const scenario: RolloutScenario = {
    kind,
    id: c.at('id').id(o.id),
    number: c.at('number').integer(o.number, 1, 999),
    title: c.at('title').text(o.title, 200),
    summary: c.at('summary').text(o.summary),
    cases,
    file,
  };
  return scenario;
}

/** Parses the text of one scenario file (JSON) named `file`. */
export function parseScenarioText(text: string, file: string): Scenario {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new AttackError(`${file}: not JSON: ${(err as Error).message}`, { path: file });
  }
  return parseScenario(json, file);
}

/**
 * The scenarios shipped with prtlab: attacks/scenarios/ beside this module when it runs from the
 * sources, else the package's attacks/scenarios/ (from dist/attacks/, where tsc copies no JSON).
 */
export function defaultScenarioDir(): string {
  const beside = fileURLToPath(new URL('./scenarios/', import.meta.url));
  if (existsSync(beside)) return beside;
  return fileURLToPath(new URL('../../attacks/scenarios/', import.meta.url));
}

/** Every `*.json` in `dir`, checked, in scenario-number order; numbers and ids must be unique. */
export async function loadScenarios(dir: string = defaultScenarioDir()): Promise<Scenario[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.json')).sort();
  } catch (err) {
    throw new AttackError(`cannot read the scenario directory ${dir}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (names.length === 0) throw new AttackError(`no scenario files (*.json) in ${dir}`);
  const out: Scenario[] = [];
  for (const name of names) {
    const text = await readFile(join(dir, name), 'utf8');
    if (Buffer.byteLength(text) > MAX_FILE_BYTES)
      throw new AttackError(`${name}: larger than ${MAX_FILE_BYTES} bytes`, { path: name });
    const s = parseScenarioText(text, basename(name));
    const clash = out.find((o) => o.id === s.id || o.number === s.number);
    if (clash)
      throw new AttackError(
        `${name}: id '${s.id}' or number ${s.number} is already used by ${clash.file}`,
        { path: name },
      );
    out.push(s);
  }
  return out.sort((a, b) => a.number - b.number);
}

/** The scenarios named by id or number, in the order given; an unknown one is ERR_ATTACK. */
export function selectScenarios(all: readonly Scenario[], wanted: readonly string[]): Scenario[] {
  if (wanted.length === 0) return [...all];
  return wanted.map((w) => {
    const s = all.find((x) => x.id === w || String(x.number) === w);
    if (!s)
      throw new AttackError(
        `no scenario '${w.slice(0, 64)}' (known: ${all.map((x) => `${x.number} ${x.id}`).join(', ')})`,
      );
    return s;
  });
}
