#!/usr/bin/env node
// Benchmarks: `npm run bench -- NAME`. Figures are ratios against a baseline measured in the same
// run (machines here are shared and noisy): never assert on them in tests.
//
//   tpm   ECDSA P-256 signs/s through the full TPM command path in-process and over TCP, raw
//         node:crypto, and swtpm over one persistent connection (when swtpm is installed);
//         RSA-2048 Create median.
//   cloud PRT-signed app-token requests against panva's oidc-provider issuing DPoP-bound tokens,
//         over HTTPS on loopback at concurrency 16 (scripts/bench-cloud.js).
//   policy Conditional Access evaluate() against 50 policies (median/p95 us), and the same
//         app-token load with the sign-in log on vs off, 50 policies stored (scripts/bench-policy.js).
import { spawn, spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchBroker } from './bench-broker.js';
import { benchCloud } from './bench-cloud.js';
import { benchPolicy } from './bench-policy.js';

const dist = new URL('../dist/', import.meta.url);
const load = (p) => import(new URL(p, dist).href);

const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 1500);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

/** Runs `op` (async) back to back for ROUND_MS; returns ops/s. */
async function rate(op) {
  for (let i = 0; i < 200; i++) await op(); // warm-up
  let n = 0;
  const t0 = process.hrtime.bigint();
  const end = t0 + BigInt(ROUND_MS) * 1_000_000n;
  let now = t0;
  while (now < end) {
    for (let i = 0; i < 50; i++) await op();
    n += 50;
    now = process.hrtime.bigint();
  }
  return n / (Number(now - t0) / 1e9);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function freePortPair() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => {
        const s2 = createServer();
        s2.once('error', () => resolve(freePortPair()));
        s2.listen(p + 1, '127.0.0.1', () => s2.close(() => resolve(p)));
      });
    });
    s.on('error', reject);
  });
}

async function waitForPort(port, ms = 5000) {
  const { connect } = await import('node:net');
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const ok = await new Promise((r) => {
      const c = connect(port, '127.0.0.1', () => {
        c.destroy();
        r(true);
      });
      c.on('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`port ${port} did not open`);
}

async function signingSetup(client, templates) {
  const primary = await client.createPrimary({ template: templates.eccStoragePrimary() });
  const blob = await client.create(primary, { template: templates.eccSigningKey() });
  const key = await client.load(primary, blob);
  await client.flushContext(primary);
  return key;
}

async function benchTpm() {
  const {
    createSimulator,
    startTpmServer,
    TpmClient,
    InProcessTransport,
    TcpTransport,
    templates,
  } = await load('tpm-sim/index.js');
  const digest = createHash('sha256').update('prtlab bench').digest();

  // Baseline: node:crypto signing the same-size input with a KeyObject (no TPM at all).
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const raw = async () => sign('sha256', digest, { key: privateKey, dsaEncoding: 'ieee-p1363' });

  const tpm = createSimulator();
  await tpm.powerOn();
  const inproc = new TpmClient(new InProcessTransport(tpm));
  const inKey = await signingSetup(inproc, templates);
  const inProcess = () => inproc.sign(inKey, digest);

  const server = await startTpmServer({ device: tpm, port: 0 });
  const tcpClient = new TpmClient(new TcpTransport({ port: server.dataPort, framing: 'raw' }));
  const tcp = () => tcpClient.sign(inKey, digest);

  let swtpm;
  let swtpmSign;
  const haveSwtpm = spawnSync('sh', ['-c', 'command -v swtpm']).status === 0;
  if (haveSwtpm) {
    const dir = mkdtempSync(join(tmpdir(), 'prtlab-bench-swtpm-'));
    const port = await freePortPair();
    const proc = spawn(
      'swtpm',
      [
        'socket',
        '--tpm2',
        '--server',
        `type=tcp,port=${port},bindaddr=127.0.0.1`,
        '--ctrl',
        `type=tcp,port=${port + 1},bindaddr=127.0.0.1`,
        '--tpmstate',
        `dir=${dir}`,
        '--flags',
        'not-need-init,startup-clear',
      ],
      { stdio: 'ignore' },
    );
    swtpm = { proc, dir };
    await waitForPort(port);
    const swClient = new TpmClient(new TcpTransport({ port, framing: 'raw' }));
    const swKey = await signingSetup(swClient, templates);
    swtpmSign = () => swClient.sign(swKey, digest);
    swtpm.client = swClient;
  }

  const rows = {
    'node:crypto sign (baseline)': [],
    'prtlab TPM in-process': [],
    'prtlab TPM over TCP (1 connection)': [],
  };
  if (swtpmSign) rows['swtpm over TCP (1 connection)'] = [];
  const ops = [raw, inProcess, tcp, ...(swtpmSign ? [swtpmSign] : [])];
  const names = Object.keys(rows);
  for (let r = 0; r < ROUNDS; r++) {
    // Interleaved rounds, so a noisy neighbour hurts every row alike.
    for (let i = 0; i < ops.length; i++) rows[names[i]].push(await rate(ops[i]));
    process.stderr.write(`round ${r + 1}/${ROUNDS} done\n`);
  }

  // RSA-2048 Create (key generation + wrap), in-process.
  const primary = await inproc.createPrimary({ template: templates.rsaStoragePrimary() });
  const createMs = [];
  for (let i = 0; i < Number(process.env.BENCH_RSA_CREATES ?? 31); i++) {
    const t0 = process.hrtime.bigint();
    await inproc.create(primary, { template: templates.rsaSigningKey() });
    createMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }

  const med = Object.fromEntries(names.map((n) => [n, median(rows[n])]));
  console.log(
    `\nECDSA P-256 sign of a SHA-256 digest, ops/s (median of ${ROUNDS} interleaved ${ROUND_MS} ms rounds)`,
  );
  for (const n of names)
    console.log(
      `  ${n.padEnd(38)} ${med[n].toFixed(0).padStart(8)}   [${rows[n].map((x) => x.toFixed(0)).join(', ')}]`,
    );
  const base = med[names[0]];
  console.log('\nratios');
  console.log(
    `  in-process / node:crypto   ${(med[names[1]] / base).toFixed(3)}   (target >= 0.45)`,
  );
  if (swtpmSign)
    console.log(
      `  TCP / swtpm                ${(med[names[2]] / med[names[3]]).toFixed(2)}    (target >= 2)`,
    );
  else
    console.log('  TCP / swtpm                n/a: swtpm is not installed (apt-get install swtpm)');
  console.log(
    `\nRSA-2048 Create, in-process: median ${median(createMs).toFixed(1)} ms, min ${Math.min(...createMs).toFixed(1)}, max ${Math.max(...createMs).toFixed(1)} (n=${createMs.length}; target median < 150 ms)`,
  );

  await tcpClient.close();
  await server.close();
  if (swtpm) {
    await swtpm.client.close();
    swtpm.proc.kill('SIGTERM');
    await new Promise((r) => swtpm.proc.once('exit', r));
    rmSync(swtpm.dir, { recursive: true, force: true });
  }
}

const BENCHES = { tpm: benchTpm, cloud: benchCloud, policy: benchPolicy, broker: benchBroker };
const name = process.argv[2];
if (!name || !BENCHES[name]) {
  console.error(`usage: npm run bench -- NAME   (NAME: ${Object.keys(BENCHES).join(', ')})`);
  process.exit(2);
}
await BENCHES[name]();
