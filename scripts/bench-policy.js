// `npm run bench -- policy`: Conditional Access evaluation and the cost of the sign-in log.
//
//   evaluation  50 compiled policies (mixed states; user, group, role and guest conditions;
//               Office365 and explicit resource targets; device filters; token protection)
//               against a set of varied requests (bound and unbound, members and guests,
//               devices of each join type, no device). Batches of evaluate() calls after a
//               warm-up; median and p95 microseconds per call. Target: median < 50 us.
//   logging     the cloud benchmark's PRT-signed app-token load (scripts/bench-cloud.js, 16
//               workers) against two cloud server processes started in the same run, both with
//               the same 50 policies stored in the directory: one with the sign-in log on (the
//               default), one with it off (tokenRoutes `signInLog: false`). Interleaved rounds;
//               the ratio is the median of per-round ratios. Target: on / off >= 0.85.
//
// Environment: BENCH_POLICY_SAMPLES (400), BENCH_POLICY_BATCH (200), and the cloud benchmark's
// BENCH_CLOUD_ROUND_MS (2500), BENCH_CLOUD_ROUNDS (5), BENCH_CLOUD_WARMUP_MS (2000);
// BENCH_POLICY_CPU_PROF=DIR writes V8 CPU profiles of both servers to DIR/log-on and DIR/log-off.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { drive, median, percentile, prtlabClient, startServer, WORKERS } from './bench-cloud.js';

const dist = new URL('../dist/', import.meta.url);
const load = (p) => import(new URL(p, dist).href);

const POLICIES = 50;
const SAMPLES = Number(process.env.BENCH_POLICY_SAMPLES ?? 400);
const BATCH = Number(process.env.BENCH_POLICY_BATCH ?? 200);
const ROUND_MS = Number(process.env.BENCH_CLOUD_ROUND_MS ?? 2500);
const ROUNDS = Number(process.env.BENCH_CLOUD_ROUNDS ?? 5);
const WARMUP_MS = Number(process.env.BENCH_CLOUD_WARMUP_MS ?? 2000);
const EVAL_TARGET_US = 50;
const LOG_RATIO_TARGET = 0.85;

const ALL_GUESTS =
  'internalGuest,b2bCollaborationGuest,b2bCollaborationMember,b2bDirectConnectUser,otherExternalUser,serviceProvider';
const STATES = ['enabled', 'enabledForReportingButNotEnforced', 'disabled'];
const FILTERS = [
  'device.trustType -eq "ServerAd"',
  'device.systemLabels -contains "CloudPC" -and device.trustType -eq "AzureAD"',
  'device.operatingSystem -eq "Windows" -and device.isCompliant -eq True',
  'device.enrollmentProfileName -in ["Kiosk", "Shared"] -or device.profileType -eq "SecureVM"',
];

/**
 * `n` Graph conditionalAccessPolicy JSON documents, as a tenant might have them. Deterministic
 * per `ids`. None blocks the cloud benchmark's request (a member, Microsoft Office to Microsoft
 * Graph, PRT-signed from an Entra-joined Windows device): enabled policies that would apply to it
 * either target other users, groups or roles, or are satisfied (token protection on a bound
 * request, Exchange/SharePoint only).
 */
export function benchPolicies(ids, n = POLICIES) {
  const { RESOURCE_IDS: R } = ids;
  const explicitApps = [
    [R.exchangeOnline, R.sharePointOnline],
    [R.azureResourceManager],
    [R.teamsServices, R.exchangeOnline],
    ['Office365'],
    [R.azureVirtualDesktop, R.windows365],
    ['All'],
  ];
  const out = [];
  for (let i = 0; i < n; i++) {
    const kind = i % 10;
    const state = STATES[i % 3];
    const users = {
      includeUsers: [],
      excludeUsers: [ids.breakGlass],
      includeGroups: [],
      excludeGroups: [],
      includeRoles: [],
      excludeRoles: [],
    };
    const conditions = {
      users,
      applications: { includeApplications: explicitApps[i % explicitApps.length] },
      clientAppTypes: ['all'],
    };
    let grantControls = null;
    let sessionControls = null;
    if (kind === 0 || kind === 5) {
      // Token protection (the seed preset's shape): all users or a pilot group, EXO/SPO, Windows.
      users.includeUsers = kind === 0 ? ['All'] : [];
      users.includeGroups = kind === 5 ? [ids.groups[i % ids.groups.length]] : [];
      users.excludeGuestsOrExternalUsers = {
        guestOrExternalUserTypes: ALL_GUESTS,
        externalTenants: { membershipKind: 'all' },
      };
      conditions.applications = {
        includeApplications: [R.exchangeOnline, R.sharePointOnline],
      };
      conditions.platforms = { includePlatforms: ['windows'], excludePlatforms: [] };
      conditions.clientAppTypes = ['mobileAppsAndDesktopClients'];
      sessionControls = { secureSignInSession: { isEnabled: true } };
    } else if (kind === 1) {
      // Block legacy clients for a group.
      users.includeGroups = [ids.groups[i % ids.groups.length]];
      conditions.clientAppTypes = ['exchangeActiveSync', 'other'];
      grantControls = { operator: 'OR', builtInControls: ['block'] };
    } else if (kind === 2) {
      // Admin roles need a compliant or hybrid-joined device.
      users.includeRoles = ids.roles.slice(0, 1 + (i % ids.roles.length));
      grantControls = {
        operator: 'OR',
        builtInControls: ['compliantDevice', 'domainJoinedDevice'],
      };
    } else if (kind === 3) {
      // Guests: blocked from Azure management, all tenants.
      users.includeGuestsOrExternalUsers = {
        guestOrExternalUserTypes: ALL_GUESTS,
        externalTenants: { membershipKind: 'all' },
      };
      conditions.applications = { includeApplications: [R.azureResourceManager] };
      grantControls = { operator: 'OR', builtInControls: ['block'] };
    } else if (kind === 4 || kind === 8) {
      // Device filters: include or exclude some device shapes, for named users.
      users.includeUsers = ids.users.slice(i % 3, (i % 3) + 3);
      conditions.devices = {
        deviceFilter: { mode: kind === 4 ? 'include' : 'exclude', rule: FILTERS[i % 4] },
      };
      grantControls = { operator: 'AND', builtInControls: ['compliantDevice'] };
    } else if (kind === 6) {
      // Platforms: block mobile for all users except a group, report-only.
      users.includeUsers = ['All'];
      users.excludeGroups = ids.groups.slice(0, 2);
      conditions.platforms = { includePlatforms: ['android', 'iOS'], excludePlatforms: [] };
      grantControls = { operator: 'OR', builtInControls: ['block'] };
    } else if (kind === 7) {
      // A group on Office365, requiring a hybrid-joined device.
      users.includeGroups = ids.groups.slice(i % 3, (i % 3) + 2);
      conditions.applications = {
        includeApplications: ['Office365'],
        excludeApplications: [R.teamsServices],
      };
      grantControls = { operator: 'OR', builtInControls: ['domainJoinedDevice'] };
    } else {
      // All users, everything, report-only "require compliant device" (a what-if policy).
      users.includeUsers = ['All'];
      grantControls = { operator: 'OR', builtInControls: ['compliantDevice'] };
    }
    // Policies that would apply to everyone are never enforced with a device grant.
    const everyone = users.includeUsers.includes('All') && !sessionControls;
    out.push({
      displayName: `CA-BENCH-${String(i + 1).padStart(2, '0')} (${kind})`,
      state: everyone && state === 'enabled' ? 'enabledForReportingButNotEnforced' : state,
      conditions,
      grantControls,
      sessionControls,
    });
  }
  return out;
}

function idsFor(RESOURCE_IDS) {
  return {
    RESOURCE_IDS,
    breakGlass: randomUUID(),
    users: Array.from({ length: 8 }, () => randomUUID()),
    groups: Array.from({ length: 6 }, () => randomUUID()),
    roles: Array.from({ length: 4 }, () => randomUUID()),
  };
}

/** Varied CA requests: members and guests, bound and unbound, each join type, no device. */
function benchRequests(ids, CLIENT_IDS) {
  const R = ids.RESOURCE_IDS;
  const resources = [
    R.exchangeOnline,
    R.sharePointOnline,
    R.microsoftGraph,
    R.azureResourceManager,
  ];
  const clients = [
    CLIENT_IDS.office,
    CLIENT_IDS.teams,
    CLIENT_IDS.azureCli,
    CLIENT_IDS.oneDriveSync,
  ];
  const devices = [
    undefined,
    { joinType: 0, trustType: 'AzureAd', operatingSystem: 'Windows', systemLabels: [] },
    { joinType: 1, trustType: 'ServerAd', operatingSystem: 'Windows', systemLabels: [] },
    { joinType: 2, trustType: 'Workplace', operatingSystem: 'Windows', systemLabels: [] },
    { joinType: 0, trustType: 'AzureAd', operatingSystem: 'Windows', systemLabels: ['CloudPC'] },
    { joinType: 2, trustType: 'Workplace', operatingSystem: 'iOS', systemLabels: [] },
  ];
  const out = [];
  for (let i = 0; i < 48; i++) {
    const d = devices[i % devices.length];
    const bound = d !== undefined && i % 4 !== 3;
    const guest = i % 7 === 6;
    out.push({
      user: {
        id: i % 5 === 0 ? ids.users[i % ids.users.length] : randomUUID(),
        kind: guest ? 'guest' : 'member',
        groupIds: ids.groups.slice(0, i % 4),
        roleIds: i % 6 === 0 ? ids.roles.slice(0, 1) : [],
      },
      resourceAppId: resources[i % resources.length],
      clientAppId: clients[(i >> 1) % clients.length],
      clientAppType: i % 9 === 8 ? 'browser' : 'mobileAppsAndDesktopClients',
      clientVersion: '16.0.17928.20114',
      userAgent:
        d?.operatingSystem === 'iOS'
          ? 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)'
          : 'Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928)',
      ...(d
        ? {
            device: {
              id: randomUUID(),
              operatingSystemVersion: d.operatingSystem === 'iOS' ? '17.4' : '10.0.22631.4460',
              isCompliant: i % 3 === 0,
              ...d,
            },
          }
        : {}),
      bound: { prtSigned: bound, viaBroker: bound },
    });
  }
  return out;
}

async function benchEvaluation() {
  const { compilePolicies, evaluate } = await load('cloud/ca/evaluate.js');
  const { parsePolicy } = await load('cloud/ca/policy.js');
  const { RESOURCE_IDS, CLIENT_IDS } = await load('cloud/ca/catalog.js');
  const ids = idsFor(RESOURCE_IDS);
  const json = benchPolicies(ids);
  const parsed = json.map((p) => parsePolicy(p));
  const compiled = compilePolicies(parsed);
  const requests = benchRequests(ids, CLIENT_IDS);

  // What the set exercises, checked once (and shown).
  const states = {};
  for (const p of parsed) states[p.state] = (states[p.state] ?? 0) + 1;
  const results = {};
  let blocked = 0;
  for (const r of requests) {
    const e = evaluate(compiled, r);
    if (e.blocked) blocked++;
    for (const a of e.applied) results[a.result] = (results[a.result] ?? 0) + 1;
  }

  // Cost of what the cloud does per request before evaluating (parse + compile all 50).
  const compileUs = [];
  for (let s = 0; s < 50; s++) {
    const t0 = performance.now();
    for (let i = 0; i < 10; i++) compilePolicies(json.map((p) => parsePolicy(p)));
    compileUs.push(((performance.now() - t0) * 1000) / 10);
  }

  let sink = 0;
  for (let i = 0; i < 20_000; i++)
    sink += evaluate(compiled, requests[i % requests.length]).applied.length;
  const perCall = [];
  let k = 0;
  for (let s = 0; s < SAMPLES; s++) {
    const t0 = performance.now();
    for (let i = 0; i < BATCH; i++) {
      sink += evaluate(compiled, requests[k]).applied.length;
      k = k + 1 === requests.length ? 0 : k + 1;
    }
    perCall.push(((performance.now() - t0) * 1000) / BATCH);
  }
  if (sink === 0) throw new Error('evaluate() returned no applied policies');
  const sorted = [...perCall].sort((a, b) => a - b);
  const med = median(perCall);
  console.log(
    `\nConditional Access evaluate(), ${POLICIES} compiled policies x ${requests.length} requests` +
      `\n(${SAMPLES} samples of ${BATCH} calls after 20,000 warm-up calls; us per call)`,
  );
  console.log(
    `  policies: ${Object.entries(states)
      .map(([s, n]) => `${n} ${s}`)
      .join(', ')}; per-policy results over the request set: ${Object.entries(results)
      .map(([s, n]) => `${s} ${n}`)
      .join(', ')}; ${blocked}/${requests.length} requests blocked`,
  );
  console.log(
    `  median ${med.toFixed(2)} us, p95 ${percentile(sorted, 95).toFixed(2)} us, min ${sorted[0].toFixed(2)}, max ${sorted.at(-1).toFixed(2)}` +
      `   (target median < ${EVAL_TARGET_US} us: ${med < EVAL_TARGET_US ? 'met' : 'NOT met'})`,
  );
  console.log(
    `  parse + compile of all ${POLICIES} (what the token service does when the policies change): median ${median(compileUs).toFixed(0)} us`,
  );
}

async function benchLogging() {
  const protocol = await load('protocol/index.js');
  const { RESOURCE_IDS } = await load('cloud/ca/catalog.js');
  const policies = benchPolicies(idsFor(RESOURCE_IDS));
  const dirs = [];
  const servers = [];
  const agents = [];
  const interrupted = () => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  try {
    const sides = [];
    const profDir = process.env.BENCH_POLICY_CPU_PROF;
    for (const [name, signInLog] of [
      ['sign-in log on', true],
      ['sign-in log off', false],
    ]) {
      const dataDir = mkdtempSync(join(tmpdir(), 'prtlab-bench-policy-'));
      dirs.push(dataDir);
      const device = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const transport = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const server = await startServer(
        'prtlab',
        {
          dataDir,
          deviceKeySpki: device.publicKey
            .export({ type: 'spki', format: 'der' })
            .toString('base64'),
          transportKeyBlob: protocol.encodeRsaBlob(transport.publicKey).toString('base64'),
          policies,
          ...(signInLog ? {} : { signInLog: false }),
        },
        profDir
          ? ['--cpu-prof', '--cpu-prof-dir', join(profDir, signInLog ? 'log-on' : 'log-off')]
          : [],
      );
      servers.push(server);
      const client = await prtlabClient(
        { ...server.info, deviceKey: device.privateKey, transportKey: transport.privateKey },
        protocol,
      );
      agents.push(client.agent);
      await client.op(0, 0);
      sides.push({ name, op: client.op, server, rounds: [], latencies: [], cpu: 0 });
    }
    const check = (side, result, what) => {
      if (result.errors > 0)
        throw new Error(
          `${side.name}: ${result.errors} failed requests in ${what}; first: ${result.firstError?.message}`,
        );
    };
    for (const side of sides) check(side, await drive(side.op, WARMUP_MS), 'warm-up');
    for (let r = 0; r < ROUNDS; r++) {
      for (const side of r % 2 ? [...sides].reverse() : sides) {
        const cpu0 = await side.server.cpu();
        const result = await drive(side.op, ROUND_MS);
        side.cpu += (await side.server.cpu()) - cpu0;
        check(side, result, `round ${r + 1}`);
        side.rounds.push(result.rps);
        for (const l of result.latencies) side.latencies.push(l);
      }
      process.stderr.write(`round ${r + 1}/${ROUNDS} done\n`);
    }
    console.log(
      `\nPRT-signed app tokens with ${POLICIES} Conditional Access policies stored, HTTPS on 127.0.0.1,` +
        `\n${WORKERS} workers (req/s: median of ${ROUNDS} interleaved ${ROUND_MS} ms rounds after a ${WARMUP_MS} ms warm-up)`,
    );
    console.log(
      `  ${'server'.padEnd(18)} ${'req/s'.padStart(6)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'CPU ms/req'.padStart(10)} ${'n'.padStart(6)}   req/s per round`,
    );
    for (const s of sides) {
      const sorted = s.latencies.sort((a, b) => a - b);
      console.log(
        `  ${s.name.padEnd(18)} ${median(s.rounds).toFixed(0).padStart(6)} ${percentile(sorted, 50).toFixed(2).padStart(7)} ${percentile(sorted, 99).toFixed(2).padStart(7)} ${(s.cpu / 1000 / sorted.length).toFixed(3).padStart(10)} ${String(sorted.length).padStart(6)}   [${s.rounds.map((x) => x.toFixed(0)).join(', ')}]`,
      );
    }
    const [on, off] = sides;
    const ratios = on.rounds.map((x, i) => x / off.rounds[i]);
    const ratio = median(ratios);
    console.log(
      `\n  log on / log off rate   ${ratio.toFixed(3)}   (target >= ${LOG_RATIO_TARGET}: ${ratio >= LOG_RATIO_TARGET ? 'met' : 'NOT met'}; per round [${ratios.map((x) => x.toFixed(3)).join(', ')}])`,
    );
  } finally {
    for (const a of agents) a.destroy();
    for (const s of servers.reverse()) await s.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    process.off('SIGINT', interrupted);
  }
}

export async function benchPolicy() {
  await benchEvaluation();
  await benchLogging();
}
