// `npm run bench -- broker`: token requests through the local broker, against the cloud
// benchmark's direct client in the same run.
//
//   cloud     the cloud benchmark's client (scripts/bench-cloud.js prtlabClient): PRT-signed
//             app-token requests straight to the token endpoint, 16 workers, node:crypto keys,
//             a pool of nonces. The baseline.
//   miss      acquireTokenSilent with forceRefresh through the broker, 16 workers, each on its own
//             WebSocket connection: JSON-RPC, the real device agent (built-in TPM simulator: the
//             PRT unsealed and the session-key derivations run as TPM2_HMAC commands, with the
//             sealing and session keys kept loaded; the srv_challenge nonce shared by requests for
//             half its lifetime, agent/nonce-cache.ts), HTTPS to the same cloud, the answer
//             decrypted, the token cache entry sealed and written behind. Target: >= 60% of the
//             cloud rate.
//   hit       acquireTokenSilent answered from the broker's cache, 32 workers on 32 connections.
//             Target: >= 10,000 tokens/s.
//   cloud+n   (information) the cloud client again, with a srv_challenge request before each
//             token request: what two cloud requests per token would cost (a fresh nonce per
//             request, which the agent no longer fetches) without the broker and the TPM.
//
// Three processes: the cloud (startCloud with the token, DRS and resource routes), the device
// (agent + broker, as `prtlab device start` runs them), and this one, the load generator. Rounds
// are interleaved (the order rotates) so a noisy neighbour hurts every side alike; the miss/cloud
// ratio is the median of per-round ratios. Setup (lab CA, user, device registration with the TPM,
// the PRT) is not measured.
//
// Environment: BENCH_CLOUD_ROUND_MS (2500), BENCH_CLOUD_ROUNDS (5), BENCH_CLOUD_WARMUP_MS (2000),
// BENCH_BROKER_TPM (builtin; 'none' for software keys), BENCH_BROKER_CPU_PROF=DIR (V8 CPU profile of
// the device process, agent and broker, to DIR).
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { drive, median, percentile, prtlabClient, startChild, WORKERS } from './bench-cloud.js';
import { seedUserAndDevice, serveChild, startBenchCloud } from './bench-cloud-server.js';

const dist = new URL('../dist/', import.meta.url);
const load = (p) => import(new URL(p, dist).href);

const ROUND_MS = Number(process.env.BENCH_CLOUD_ROUND_MS ?? 2500);
const ROUNDS = Number(process.env.BENCH_CLOUD_ROUNDS ?? 5);
const WARMUP_MS = Number(process.env.BENCH_CLOUD_WARMUP_MS ?? 2000);
const TPM = process.env.BENCH_BROKER_TPM ?? 'builtin';
const HIT_WORKERS = 32;
/** Cache hits per round at most (bounded traffic, like the cloud benchmark's cap). */
const MAX_HITS = 400_000;
const HIT_TARGET = 10_000;
const MISS_RATIO_TARGET = 0.6;
const OFFICE = 'd3590ed6-52b3-4102-aeff-aad2292ab01c';
const GRAPH = 'https://graph.microsoft.com';
const SELF = fileURLToPath(import.meta.url);

// ---------------------------------------------------------------- child processes

/** The cloud: token, DRS and resource routes; a user; a device for the baseline client's keys. */
async function serveCloud(msg) {
  const { tokenRoutes } = await load('cloud/token-service/service.js');
  const { coreRoutes } = await load('cloud/routes.js');
  const cloud = await startBenchCloud(msg, (c) => [...tokenRoutes(c), ...coreRoutes(c)]);
  // The baseline client's device, registered as the cloud benchmark's server does it.
  const info = await seedUserAndDevice(cloud, msg, 'BENCH-BASELINE');
  return { stop: () => cloud.close(), info };
}

/** The device: registered with the cloud through its TPM, then agent + broker. */
async function serveDevice(msg) {
  const { addDevice, openDeviceAgent, deviceDir } = await load('agent/index.js');
  const { startBroker } = await load('broker/server.js');
  const name = 'BENCH-PC';
  await addDevice({
    dataDir: msg.dataDir,
    name,
    tpm: msg.tpm,
    cloudUrl: msg.cloudUrl,
    cloudCaPem: msg.ca,
    user: { upn: msg.upn, password: msg.password },
  });
  const agent = await openDeviceAgent({ dataDir: msg.dataDir, name });
  const dir = deviceDir(msg.dataDir, name);
  // Default limits, except the per-connection rates (2,000 requests/s, 200 cloud requests/s): on
  // a fast machine a connection of this benchmark could exceed them, and it measures, it does not
  // ration. Message size, nesting, in-flight and connection limits stay as they are.
  const lifted = 1_000_000;
  const broker = await startBroker({
    agent,
    deviceDir: dir,
    limits: {
      requestsPerSecond: lifted,
      burst: lifted,
      cloudRequestsPerSecond: lifted,
      cloudBurst: lifted,
    },
  });
  return {
    stop: async () => {
      await broker.close();
      await agent.close();
    },
    info: { deviceDir: dir, port: broker.port },
  };
}

const MODES = { '--serve-cloud': serveCloud, '--serve-device': serveDevice };

/** Forks this file in `mode`; resolves with { info, stop(), cpu() } once the child is ready. */
function startSide(mode, msg, execArgv = []) {
  return startChild(SELF, mode, msg, { name: mode, timeoutMs: 120_000, execArgv });
}

// ---------------------------------------------------------------- load generator

export async function benchBroker() {
  const protocol = await load('protocol/index.js');
  const { BrokerClient } = await load('broker/client.js');
  const dataDir = mkdtempSync(join(tmpdir(), 'prtlab-bench-broker-'));
  const interrupted = () => {
    rmSync(dataDir, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  const children = [];
  const closers = [];
  try {
    // --- setup (not measured) ---
    const device = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const transport = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const cloud = await startSide('--serve-cloud', {
      dataDir: join(dataDir, 'cloud-side'),
      deviceKeySpki: device.publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
      transportKeyBlob: protocol.encodeRsaBlob(transport.publicKey).toString('base64'),
    });
    children.push(cloud);
    const c = cloud.info;
    const profDir = process.env.BENCH_BROKER_CPU_PROF;
    const deviceSide = await startSide(
      '--serve-device',
      {
        dataDir: join(dataDir, 'device-side'),
        tpm: TPM,
        cloudUrl: c.url,
        ca: c.ca,
        upn: c.upn,
        password: c.password,
      },
      profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [],
    );
    children.push(deviceSide);

    const baseline = await prtlabClient(
      { ...c, deviceKey: device.privateKey, transportKey: transport.privateKey },
      protocol,
    );
    closers.push(() => baseline.agent.destroy());
    // A srv_challenge on the baseline's own keep-alive connections (its answer is not used).
    const nonceUrl = `${c.url}/${c.tenant}/oauth2/token`;
    const challenge = () =>
      new Promise((resolveNonce, reject) => {
        const req = httpsRequest(
          nonceUrl,
          {
            method: 'POST',
            agent: baseline.agent,
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
          },
          (res) => {
            res.resume();
            res.on('end', () =>
              res.statusCode === 200
                ? resolveNonce()
                : reject(new Error(`srv_challenge: ${res.statusCode}`)),
            );
          },
        );
        req.on('error', reject);
        req.end('grant_type=srv_challenge');
      });
    const baselineWithNonce = async (w, i) => {
      await challenge();
      return baseline.op(w, i);
    };
    const connections = [];
    for (let i = 0; i < HIT_WORKERS; i++) {
      const client = await BrokerClient.forDevice(deviceSide.info.deviceDir);
      connections.push(client);
      closers.push(() => client.close());
    }
    const signedIn = await connections[0].acquireTokenInteractive({
      clientId: OFFICE,
      resource: GRAPH,
      username: c.upn,
      password: c.password,
    });
    const request = { clientId: OFFICE, resource: GRAPH, accountId: signedIn.account.id };
    const hit = async (w) => {
      const r = await connections[w].acquireTokenSilent(request);
      if (!r.fromCache || typeof r.accessToken !== 'string') throw new Error('not a cache hit');
    };
    const miss = async (w) => {
      const r = await connections[w].acquireTokenSilent({ ...request, forceRefresh: true });
      if (r.fromCache || typeof r.accessToken !== 'string') throw new Error('answered from cache');
    };

    // --- measured ---
    const sides = [
      {
        name: `cloud benchmark client (${WORKERS} workers)`,
        run: (ms) => drive(baseline.op, ms),
        servers: [cloud],
      },
      {
        name: `broker cache miss (${WORKERS} connections)`,
        run: (ms) => drive((w) => miss(w), ms),
        servers: [cloud, deviceSide],
      },
      {
        name: `broker cache hit (${HIT_WORKERS} connections)`,
        run: (ms) => drive(hit, ms, MAX_HITS, HIT_WORKERS),
        servers: [deviceSide],
      },
      {
        name: `cloud client + srv_challenge (${WORKERS} workers)`,
        run: (ms) => drive(baselineWithNonce, ms),
        servers: [cloud],
      },
    ].map((s) => ({ ...s, rounds: [], latencies: [], cpu: 0 }));
    const check = (side, result, what) => {
      if (result.errors > 0)
        throw new Error(
          `${side.name}: ${result.errors} failed requests in ${what}; first: ${result.firstError?.message}`,
        );
    };
    for (const side of sides) check(side, await side.run(WARMUP_MS), 'warm-up');
    for (let r = 0; r < ROUNDS; r++) {
      const order = sides.map((_, i) => sides[(i + r) % sides.length]);
      for (const side of order) {
        const cpu0 = await Promise.all(side.servers.map((s) => s.cpu()));
        const result = await side.run(ROUND_MS);
        const cpu1 = await Promise.all(side.servers.map((s) => s.cpu()));
        side.cpu += cpu1.reduce((a, x, i) => a + x - cpu0[i], 0);
        check(side, result, `round ${r + 1}`);
        side.rounds.push(result.rps);
        for (const l of result.latencies) side.latencies.push(l);
      }
      process.stderr.write(`round ${r + 1}/${ROUNDS} done\n`);
    }

    // --- report ---
    console.log(
      `\nTokens through the broker (WebSocket JSON-RPC on 127.0.0.1, device agent with --tpm ${TPM}) and` +
        '\nthe cloud benchmark client, against one lab cloud over HTTPS; the broker has its default limits' +
        '\nbut for the per-connection request rates, lifted' +
        `\n(tokens/s: median of ${ROUNDS} interleaved ${ROUND_MS} ms rounds after a ${WARMUP_MS} ms warm-up;` +
        ' latency percentiles over all measured requests)',
    );
    console.log(
      `  ${'side'.padEnd(40)} ${'tok/s'.padStart(7)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'CPU ms/tok'.padStart(10)} ${'n'.padStart(8)}   tok/s per round`,
    );
    const rows = sides.map((s) => {
      const sorted = s.latencies.sort((a, b) => a - b);
      const row = {
        name: s.name,
        rps: median(s.rounds),
        p50: percentile(sorted, 50),
        p99: percentile(sorted, 99),
        cpu: s.cpu / 1000 / sorted.length,
        n: sorted.length,
        rounds: s.rounds,
      };
      console.log(
        `  ${row.name.padEnd(40)} ${row.rps.toFixed(0).padStart(7)} ${row.p50.toFixed(2).padStart(7)} ${row.p99.toFixed(2).padStart(7)} ${row.cpu.toFixed(3).padStart(10)} ${String(row.n).padStart(8)}   [${row.rounds.map((x) => x.toFixed(0)).join(', ')}]`,
      );
      return row;
    });
    console.log(
      '  (CPU ms/tok: the cloud process for the cloud client rows, cloud + device processes for misses,' +
        '\n  the device process for hits, all threads, per token)',
    );
    const [base, misses, hits, withNonce] = rows;
    const ratios = misses.rounds.map((x, i) => x / base.rounds[i]);
    const ratio = median(ratios);
    console.log('\ntargets');
    console.log(
      `  cache hits                   ${hits.rps.toFixed(0)} tok/s (target >= ${HIT_TARGET}: ${hits.rps >= HIT_TARGET ? 'met' : 'NOT met'})`,
    );
    console.log(
      `  cache misses / cloud client  ${ratio.toFixed(2)}x   (target >= ${MISS_RATIO_TARGET.toFixed(2)}x: ${ratio >= MISS_RATIO_TARGET ? 'met' : 'NOT met'}; per round [${ratios.map((x) => x.toFixed(2)).join(', ')}])`,
    );
    const nonceRatios = misses.rounds.map((x, i) => x / withNonce.rounds[i]);
    console.log(
      `  cache misses / cloud client + srv_challenge  ${median(nonceRatios).toFixed(2)}x   (information: the broker and` +
        `\n    agent against a client that fetches a nonce per token; per round [${nonceRatios.map((x) => x.toFixed(2)).join(', ')}])`,
    );
    console.log(
      '\nA miss is one cloud request, as for the cloud client: the agent shares a srv_challenge' +
        '\nnonce between signed requests for half its lifetime (agent/nonce-cache.ts) and the cloud' +
        '\nclient uses a pool of nonces.',
    );
  } finally {
    for (const close of closers) await close();
    for (const child of children.reverse()) await child.stop();
    rmSync(dataDir, { recursive: true, force: true });
    process.off('SIGINT', interrupted);
  }
}

const mode = process.argv[2];
if (process.argv[1] && resolve(process.argv[1]) === SELF && MODES[mode] && process.send) {
  serveChild(MODES[mode]);
}
