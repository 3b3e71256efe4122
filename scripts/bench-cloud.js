// `npm run bench -- cloud`: the token endpoint under load, prtlab against panva's oidc-provider.
//
//   prtlab         PRT-signed app-token requests (prt-protocol §6.1): each request is one
//                  POST /{tenant}/oauth2/token with a freshly signed request JWT (HS256, KDFv2,
//                  fresh ctx); the cloud verifies it, issues an RS256 access token and an app
//                  refresh token, and answers with a dir/A256GCM JWE, which the client decrypts
//                  and checks for an access_token.
//   oidc-provider  client_credentials with a fresh ES256 DPoP proof per request (verified, replay
//                  checked) and a DPoP-bound (cnf.jkt) JWT access token signed RS256.
//
// Both servers run in their own child process (scripts/bench-cloud-server.js), on 127.0.0.1 over
// HTTPS with the same server certificate, driven by the same 16 workers over one keep-alive agent
// each (maxSockets 16). Rounds are interleaved so a noisy neighbour hurts both alike. Setup (lab
// CA, user, device, PRT, nonces) is not measured. Targets: prtlab >= 1.0x oidc-provider's rate,
// prtlab p99 < 25 ms.
//
// The ratio is the median of per-round ratios (each round runs both sides back to back), which
// holds up better on a shared machine than a ratio of medians.
//
// Environment: BENCH_CLOUD_ROUND_MS (2500), BENCH_CLOUD_ROUNDS (5), BENCH_CLOUD_WARMUP_MS (2000),
// BENCH_CLOUD_CPU_PROF=DIR (write V8 CPU profiles of the prtlab server process to DIR).
import { fork } from 'node:child_process';
import { generateKeyPairSync, randomBytes, createHash as sha, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

const dist = new URL('../dist/', import.meta.url);
const load = (p) => import(new URL(p, dist).href);

export const WORKERS = 16;
const ROUND_MS = Number(process.env.BENCH_CLOUD_ROUND_MS ?? 2500);
const ROUNDS = Number(process.env.BENCH_CLOUD_ROUNDS ?? 5);
const WARMUP_MS = Number(process.env.BENCH_CLOUD_WARMUP_MS ?? 2000);
/**
 * Hard cap per round and per warm-up, whatever the duration (bounded traffic). It also keeps the
 * whole run under the cloud's replay cache capacity (100,000 signed requests per nonce lifetime,
 * cloud/tokens/replay-cache.ts): at most 90,000 over the warm-up and all rounds.
 */
const MAX_REQUESTS = Math.min(15_000, Math.floor(90_000 / (ROUNDS + 1)));
/**
 * A nonce may sign many requests while it lives (each signed request is still accepted once):
 * every worker moves to the next nonce of the pool after this many requests.
 */
const REQUESTS_PER_NONCE = 250;
const NONCE_POOL = 64;
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const P99_TARGET_MS = 25;
const RATIO_TARGET = 1.0;

/** One HTTPS request on `agent`; resolves with status, headers and body text. */
function post(agent, url, body, headers) {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: { ...headers, 'content-length': Buffer.byteLength(body) },
        timeout: 10_000,
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout: ${url}`)));
    req.on('error', reject);
    req.end(body);
  });
}

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const form = (fields) => new URLSearchParams(fields).toString();
const jsonPart = (jwt, i) => JSON.parse(Buffer.from(jwt.split('.')[i], 'base64url').toString());

/**
 * Forks `script` with `mode` and sends it `msg` in a 'start' message (the child side is
 * bench-cloud-server.js serveChild); resolves with { info, stop(), cpu(), output() } once it is
 * ready. `name` names the child in errors; it has `timeoutMs` to answer.
 */
export async function startChild(script, mode, msg, { name, timeoutMs, execArgv = [] }) {
  const child = fork(script, [mode], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    execArgv,
  });
  let output = '';
  child.stdout.on('data', (c) => {
    output += c;
  });
  child.stderr.on('data', (c) => {
    output += c;
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      if (child.connected) child.send({ op: 'stop' });
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
  };
  const info = await new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name}: no answer in ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
    child.once('message', (m) => {
      clearTimeout(timer);
      if (m?.op === 'ready') resolve(m.info);
      else reject(new Error(`${name} failed to start:\n${m?.error ?? output}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}) before it was ready:\n${output}`));
    });
    child.send({ op: 'start', ...msg });
  }).catch(async (err) => {
    await stop();
    throw err;
  });
  const cpu = () =>
    new Promise((resolve) => {
      const onMessage = (m) => {
        if (m?.op !== 'cpu') return;
        child.off('message', onMessage);
        resolve(m.micros);
      };
      child.on('message', onMessage);
      child.send({ op: 'cpu' });
    });
  return { info, stop, cpu, output: () => output };
}

/** Starts one server child process; resolves with { info, stop(), cpu(), output() }. */
export function startServer(mode, msg, execArgv = []) {
  return startChild(new URL('./bench-cloud-server.js', import.meta.url), mode, msg, {
    name: `${mode} server`,
    timeoutMs: 60_000,
    execArgv,
  });
}

/** Runs `op(worker, i)` from `workers` concurrent loops for `ms` (at most `max` requests). */
export async function drive(op, ms, max = MAX_REQUESTS, workers = WORKERS) {
  const latencies = [];
  let errors = 0;
  let firstError;
  let issued = 0;
  const t0 = performance.now();
  const end = t0 + ms;
  const worker = async (w) => {
    for (let i = 0; performance.now() < end && issued < max; i++) {
      issued++;
      const s = performance.now();
      try {
        await op(w, i);
        latencies.push(performance.now() - s);
      } catch (err) {
        errors++;
        firstError ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: workers }, (_, w) => worker(w)));
  const seconds = (performance.now() - t0) / 1000;
  return { rps: latencies.length / seconds, latencies, errors, firstError };
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** The prtlab side: device keys, the PRT through the real PRT request, nonces, the request op. */
export async function prtlabClient(info, protocol) {
  const { signRs256, signWithSessionKey, decryptResponse, unwrapSessionKeyJwe } = protocol;
  const agent = new Agent({ keepAlive: true, maxSockets: WORKERS, ca: info.ca });
  const tokenUrl = `${info.url}/${info.tenant}/oauth2/token`;
  const nonce = async () => {
    const r = await post(agent, tokenUrl, form({ grant_type: 'srv_challenge' }), FORM);
    if (r.status !== 200) throw new Error(`srv_challenge: ${r.status} ${r.body}`);
    return JSON.parse(r.body).Nonce;
  };

  // The PRT request (§4): RS256 over the device key, the device certificate in x5c, KDFv2.
  const request = signRs256(
    info.deviceKey,
    { typ: 'JWT', x5c: info.certDer, kdf_ver: 2 },
    {
      client_id: '38aa3b87-a06d-4817-b275-7a316988d93b',
      request_nonce: await nonce(),
      scope: 'openid aza ugs',
      group_sids: [],
      win_ver: '10.0.22631.4460',
      grant_type: 'password',
      username: info.upn,
      password: info.password,
    },
  );
  const r = await post(
    agent,
    tokenUrl,
    form({ grant_type: JWT_BEARER, request, windows_api_version: '2.0', client_info: '1' }),
    FORM,
  );
  if (r.status !== 200) throw new Error(`PRT request: ${r.status} ${r.body}`);
  const prtResponse = JSON.parse(r.body);
  const prt = prtResponse.refresh_token;
  const sessionKey = unwrapSessionKeyJwe(prtResponse.session_key_jwe, info.transportKey);

  const nonces = [];
  for (let i = 0; i < NONCE_POOL; i++) nonces.push(await nonce());

  const op = async (w, i) => {
    const now = Math.floor(Date.now() / 1000);
    const jwt = signWithSessionKey(sessionKey, {
      client_id: info.clientId,
      grant_type: 'refresh_token',
      refresh_token: prt,
      request_nonce: nonces[(w + WORKERS * Math.floor(i / REQUESTS_PER_NONCE)) % NONCE_POOL],
      scope: 'openid',
      resource: info.resource,
      redirect_uri: `ms-appx-web://Microsoft.AAD.BrokerPlugin/${info.clientId}`,
      iss: 'aad:brokerplugin',
      aud: 'login.microsoftonline.com',
      win_ver: '10.0.22631.4460',
      iat: String(now),
      exp: String(now + 300),
    });
    const res = await post(
      agent,
      tokenUrl,
      `grant_type=${encodeURIComponent(JWT_BEARER)}&request=${jwt}&windows_api_version=2.0&client_info=1`,
      FORM,
    );
    if (res.status !== 200) throw new Error(`app token: ${res.status} ${res.body.slice(0, 300)}`);
    const json = JSON.parse(decryptResponse(res.body, sessionKey).plaintext.toString('utf8'));
    if (typeof json.access_token !== 'string') throw new Error('app token: no access_token');
    return json;
  };
  return { op, agent };
}

/** The oidc-provider side: one ES256 DPoP key per worker, a fresh proof per request. */
function oidcClient(info, ca) {
  const agent = new Agent({ keepAlive: true, maxSockets: WORKERS, ca });
  const keys = Array.from({ length: WORKERS }, () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const { kty, crv, x, y } = publicKey.export({ format: 'jwk' });
    const header = Buffer.from(
      JSON.stringify({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty, crv, x, y } }),
    ).toString('base64url');
    // RFC 7638 thumbprint, for checking cnf.jkt.
    const jkt = sha('sha256').update(JSON.stringify({ crv, kty, x, y })).digest('base64url');
    return { privateKey, header, jkt };
  });
  const body = form({
    grant_type: 'client_credentials',
    client_id: info.clientId,
    client_secret: info.clientSecret,
    scope: info.scope,
    resource: info.resource,
  });
  const proof = (w) => {
    const payload = Buffer.from(
      JSON.stringify({
        jti: randomBytes(16).toString('base64url'),
        htm: 'POST',
        htu: info.tokenUrl,
        iat: Math.floor(Date.now() / 1000),
      }),
    ).toString('base64url');
    const input = `${keys[w].header}.${payload}`;
    const sig = sign('sha256', Buffer.from(input), {
      key: keys[w].privateKey,
      dsaEncoding: 'ieee-p1363',
    });
    return `${input}.${sig.toString('base64url')}`;
  };
  const op = async (w) => {
    const res = await post(agent, info.tokenUrl, body, { ...FORM, dpop: proof(w) });
    if (res.status !== 200)
      throw new Error(`oidc-provider: ${res.status} ${res.body.slice(0, 300)}`);
    const json = JSON.parse(res.body);
    if (json.token_type !== 'DPoP' || typeof json.access_token !== 'string')
      throw new Error(`oidc-provider: unexpected response ${res.body.slice(0, 300)}`);
    return json;
  };
  return { op, agent, jkt: (w) => keys[w].jkt };
}

export async function benchCloud() {
  const protocol = await load('protocol/index.js');
  const oidcVersion = JSON.parse(
    readFileSync(new URL('../node_modules/oidc-provider/package.json', import.meta.url), 'utf8'),
  ).version;
  const dataDir = mkdtempSync(join(tmpdir(), 'prtlab-bench-cloud-'));
  // Ctrl-C reaches the server processes too (same process group); the data directory is ours.
  const interrupted = () => {
    rmSync(dataDir, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  const servers = [];
  const agents = [];
  try {
    // --- setup (not measured) ---
    const device = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const transport = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const profDir = process.env.BENCH_CLOUD_CPU_PROF;
    const prtlabServer = await startServer(
      'prtlab',
      {
        dataDir,
        deviceKeySpki: device.publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
        transportKeyBlob: protocol.encodeRsaBlob(transport.publicKey).toString('base64'),
      },
      profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [],
    );
    servers.push(prtlabServer);
    const cloudInfo = prtlabServer.info;
    const oidcServer = await startServer('oidc-provider', { serverPem: cloudInfo.serverPem });
    servers.push(oidcServer);

    const prtlab = await prtlabClient(
      { ...cloudInfo, deviceKey: device.privateKey, transportKey: transport.privateKey },
      protocol,
    );
    agents.push(prtlab.agent);
    const oidc = oidcClient(oidcServer.info, cloudInfo.ca);
    agents.push(oidc.agent);

    // What each side returns, checked once: RS256 access tokens on both; DPoP-bound on theirs.
    const ours = await prtlab.op(0, 0);
    const ourHeader = jsonPart(ours.access_token, 0);
    if (ourHeader.alg !== 'RS256') throw new Error(`prtlab access token alg ${ourHeader.alg}`);
    const theirs = await oidc.op(0);
    const theirHeader = jsonPart(theirs.access_token, 0);
    const theirClaims = jsonPart(theirs.access_token, 1);
    if (theirHeader.alg !== 'RS256' || theirClaims.cnf?.jkt !== oidc.jkt(0))
      throw new Error(`oidc-provider token is not RS256 + DPoP-bound: ${theirs.access_token}`);

    // --- measured ---
    const side = (name, op, server) => ({ name, op, server, rounds: [], latencies: [], cpu: 0 });
    const sides = [
      side('prtlab PRT-signed app token', prtlab.op, prtlabServer),
      side(`oidc-provider ${oidcVersion} DPoP token`, oidc.op, oidcServer),
    ];
    let clientCpu = 0;
    let measuredMs = 0;
    const check = (side, result, what) => {
      if (result.errors > 0)
        throw new Error(
          `${side.name}: ${result.errors} failed requests in ${what}; first: ${result.firstError?.message}`,
        );
    };
    for (const side of sides) check(side, await drive(side.op, WARMUP_MS), 'warm-up');
    for (let r = 0; r < ROUNDS; r++) {
      // Alternate which side goes first, so drift over the run does not favour one.
      for (const side of r % 2 ? [...sides].reverse() : sides) {
        const cpu0 = await side.server.cpu();
        const own0 = process.cpuUsage();
        const t0 = performance.now();
        const result = await drive(side.op, ROUND_MS);
        measuredMs += performance.now() - t0;
        const own = process.cpuUsage(own0);
        clientCpu += own.user + own.system;
        side.cpu += (await side.server.cpu()) - cpu0;
        check(side, result, `round ${r + 1}`);
        side.rounds.push(result.rps);
        for (const l of result.latencies) side.latencies.push(l);
      }
      process.stderr.write(`round ${r + 1}/${ROUNDS} done\n`);
    }

    // --- report ---
    const rows = sides.map((s) => {
      const sorted = s.latencies.sort((a, b) => a - b);
      return {
        name: s.name,
        rps: median(s.rounds),
        p50: percentile(sorted, 50),
        p99: percentile(sorted, 99),
        n: sorted.length,
        rounds: s.rounds,
        cpuPerRequest: s.cpu / 1000 / sorted.length,
      };
    });
    console.log(
      `\nToken endpoint over HTTPS on 127.0.0.1, ${WORKERS} concurrent workers on keep-alive connections` +
        `\n(req/s: median of ${ROUNDS} interleaved ${ROUND_MS} ms rounds after a ${WARMUP_MS} ms warm-up;` +
        ' latency percentiles over all measured requests)',
    );
    console.log(
      `  ${'server'.padEnd(36)} ${'req/s'.padStart(6)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'CPU ms/req'.padStart(10)} ${'n'.padStart(6)}   req/s per round`,
    );
    for (const row of rows)
      console.log(
        `  ${row.name.padEnd(36)} ${row.rps.toFixed(0).padStart(6)} ${row.p50.toFixed(2).padStart(7)} ${row.p99.toFixed(2).padStart(7)} ${row.cpuPerRequest.toFixed(3).padStart(10)} ${String(row.n).padStart(6)}   [${row.rounds.map((x) => x.toFixed(0)).join(', ')}]`,
      );
    console.log(
      `  (CPU ms/req: the server process's CPU time, all threads, per request; the load generator used ${((100 * clientCpu) / 1000 / measuredMs).toFixed(0)}% of one core on average)`,
    );
    const [ourRow, theirRow] = rows;
    const ratios = ourRow.rounds.map((x, i) => x / theirRow.rounds[i]);
    const ratio = median(ratios);
    console.log('\ntargets');
    console.log(
      `  prtlab / oidc-provider rate   ${ratio.toFixed(2)}x   (target >= ${RATIO_TARGET.toFixed(1)}x: ${ratio >= RATIO_TARGET ? 'met' : 'NOT met'}; per round [${ratios.map((x) => x.toFixed(2)).join(', ')}])`,
    );
    console.log(
      `  prtlab p99                    ${ourRow.p99.toFixed(1)} ms (target < ${P99_TARGET_MS} ms: ${ourRow.p99 < P99_TARGET_MS ? 'met' : 'NOT met'})`,
    );
    console.log(
      `  server CPU per request        ${(ourRow.cpuPerRequest / theirRow.cpuPerRequest).toFixed(2)}x oidc-provider's (information; lower is cheaper)`,
    );
    console.log(
      '\nprtlab: KDFv2 HS256 request verified, nonce + replay checks, RS256 access token, app refresh' +
        '\n  token (sealed, recorded), dir/A256GCM response decrypted by the client.' +
        `\noidc-provider ${oidcVersion}: client_credentials (client_secret_post), ES256 DPoP proof verified +` +
        '\n  jti replay check (in-memory adapter), resource indicator -> JWT access token RS256 with cnf.jkt.',
    );
    const warning = oidcServer.output().match(/oidc-provider WARNING: [^\n]*/);
    if (warning) console.log(`  (on Node ${process.version} it warns: ${warning[0]})`);
  } finally {
    for (const a of agents) a.destroy();
    for (const s of servers.reverse()) await s.stop();
    rmSync(dataDir, { recursive: true, force: true });
    process.off('SIGINT', interrupted);
  }
  if (process.env.BENCH_CLOUD_CPU_PROF)
    console.log(
      `\nCPU profile of the prtlab server written to ${process.env.BENCH_CLOUD_CPU_PROF}`,
    );
}
