// Server side of the cloud benchmark (scripts/bench-cloud.js), one child process per server so
// that the load generator and the server under test do not share an event loop. Started with
// `fork(thisFile, [MODE])`, MODE 'prtlab' or 'oidc-provider'; it waits for one 'start' message,
// answers with what the client needs, and exits on 'stop' (or when the parent goes away).
//
//   prtlab         startCloud + tokenRoutes on 127.0.0.1:0; creates a user and registers a device
//                  directly through the directory and the device CA (not measured).
//   oidc-provider  panva's oidc-provider (dev dependency, benchmark only) over HTTPS on
//                  127.0.0.1:0 with the cloud's server certificate: client_credentials, DPoP-bound
//                  JWT access tokens signed RS256.
//
// The broker benchmark (scripts/bench-broker.js) uses its cloud set-up (startBenchCloud,
// seedUserAndDevice) and its child side (serveChild) for its own child processes.
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = new URL('../dist/', import.meta.url);
const load = (p) => import(new URL(p, dist).href);

const OFFICE = 'd3590ed6-52b3-4102-aeff-aad2292ab01c';
const GRAPH = 'https://graph.microsoft.com';
/** Access-token lifetime on both sides (the cloud's is fixed at 75 minutes). */
const AT_TTL_S = 75 * 60;
/** Servers keep idle connections longer than a round of the other server lasts. */
const KEEP_ALIVE_MS = 120_000;

/**
 * A lab cloud on 127.0.0.1:0 for a benchmark, serving `routes(cloud)`, in `msg.dataDir`: cheap
 * scrypt (setup is not measured), idle connections kept longer than a round lasts.
 */
export async function startBenchCloud(msg, routes) {
  const { startCloud } = await load('cloud/index.js');
  return startCloud({
    dataDir: msg.dataDir,
    host: '127.0.0.1',
    port: 0,
    routes,
    scrypt: { ln: 10, r: 8, p: 1 },
    limits: { keepAliveTimeoutMs: KEEP_ALIVE_MS },
  });
}

/**
 * A user, and a device registered for it as DRS would do it, minus the HTTP round trip: a
 * certificate from the device CA for the device key (`msg.deviceKeySpki`), and a device record
 * named `displayName` holding the transport key (`msg.transportKeyBlob`) and the thumbprint.
 * Returns what the benchmark client needs (scripts/bench-cloud.js prtlabClient).
 */
export async function seedUserAndDevice(cloud, msg, displayName) {
  const upn = `bench@${cloud.tenant.domain}`;
  const password = `Bench-${randomBytes(9).toString('base64url')}`;
  const user = await cloud.directory.users.create({ upn, password, displayName: 'Bench User' });
  const deviceId = randomUUID();
  const cert = await cloud.services.issueDeviceCertificate({
    publicKey: Buffer.from(msg.deviceKeySpki, 'base64'),
    deviceId,
    userObjectId: user.id,
    joinType: 0,
  });
  await cloud.directory.devices.create({
    id: deviceId,
    displayName,
    joinType: 0,
    operatingSystem: 'Windows',
    operatingSystemVersion: '10.0.22631.4460',
    transportKey: Buffer.from(msg.transportKeyBlob, 'base64'),
    certThumbprint: cert.thumbprint,
    registeringUserId: user.id,
  });
  return {
    url: cloud.url,
    tenant: cloud.tenant.id,
    ca: readFileSync(cloud.caPath, 'utf8'),
    upn,
    password,
    deviceId,
    certDer: cert.der.toString('base64'),
    clientId: OFFICE,
    resource: GRAPH,
  };
}

async function startPrtlab(msg) {
  const { tokenRoutes } = await load('cloud/token-service/service.js');
  // Options from the parent (the policy benchmark): `signInLog: false` turns the sign-in log off.
  const cloud = await startBenchCloud(msg, (c) =>
    tokenRoutes(c, msg.signInLog === false ? { signInLog: false } : {}),
  );
  // Conditional Access policies (Graph JSON) to evaluate on every token request; none by default.
  for (const policy of msg.policies ?? []) await cloud.directory.policies.create(policy);
  const info = await seedUserAndDevice(cloud, msg, 'BENCH-DEVICE');
  return {
    stop: () => cloud.close(),
    info: { ...info, serverPem: cloud.paths.serverPem },
  };
}

async function startOidcProvider(msg) {
  const { Provider } = await import('oidc-provider');
  const pem = readFileSync(msg.serverPem, 'utf8');
  const blocks = pem.match(/-----BEGIN ([A-Z ]+)-----[\s\S]*?-----END \1-----/g) ?? [];
  const key = blocks.filter((b) => b.includes('PRIVATE KEY')).join('\n');
  const cert = blocks.filter((b) => b.includes('CERTIFICATE')).join('\n');
  const server = createServer({ key, cert, minVersion: 'TLSv1.2' });
  server.keepAliveTimeout = KEEP_ALIVE_MS;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const issuer = `https://127.0.0.1:${server.address().port}`;

  // The access-token signing key: RSA-2048, RS256, like the cloud's token-signing key.
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const signingJwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-rs256' };
  const clientSecret = randomBytes(32).toString('base64url');
  const provider = new Provider(issuer, {
    jwks: { keys: [{ ...signingJwk, alg: 'RS256', use: 'sig' }] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    clients: [
      {
        client_id: 'bench-client',
        client_secret: clientSecret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_post',
        dpop_bound_access_tokens: true,
      },
    ],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      dPoP: { enabled: true, allowReplay: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => GRAPH,
        useGrantedResource: async () => true,
        getResourceServerInfo: async () => ({
          scope: 'User.Read',
          audience: GRAPH,
          accessTokenTTL: AT_TTL_S,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    enabledJWA: { dPoPSigningAlgValues: ['ES256'] },
  });
  let serverErrors = 0;
  provider.on('server_error', (_ctx, err) => {
    serverErrors++;
    if (serverErrors <= 3) process.stderr.write(`oidc-provider server_error: ${err?.stack}\n`);
  });
  server.on('request', provider.callback());
  return {
    stop: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
    info: {
      url: issuer,
      tokenUrl: `${issuer}/token`,
      clientId: 'bench-client',
      clientSecret,
      resource: GRAPH,
      scope: 'User.Read',
    },
  };
}

/**
 * The child side of a benchmark's server process: waits for one 'start' message and answers it
 * with `start(msg)`'s info ('ready') or the error ('failed'); answers 'cpu' with this process's
 * CPU time; stops on 'stop' or when the parent goes away.
 */
export function serveChild(start) {
  let running;
  let stopping = false;
  const stop = async (code) => {
    if (stopping) return;
    stopping = true;
    try {
      await running?.stop();
    } finally {
      process.exit(code);
    }
  };
  process.on('message', async (msg) => {
    if (msg?.op === 'start' && !running) {
      try {
        running = await start(msg);
        process.send({ op: 'ready', info: running.info });
      } catch (err) {
        process.send({ op: 'failed', error: err?.stack ?? String(err) });
        await stop(1);
      }
    } else if (msg?.op === 'cpu') {
      // All threads of this process (the main thread and libuv's pool), in microseconds.
      const { user, system } = process.cpuUsage();
      process.send({ op: 'cpu', micros: user + system });
    } else if (msg?.op === 'stop') {
      await stop(0);
    }
  });
  process.on('disconnect', () => void stop(0));
}

const MODES = { prtlab: startPrtlab, 'oidc-provider': startOidcProvider };
// Run as the forked server (not when another benchmark imports the helpers above).
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const start = MODES[process.argv[2]];
  if (!start || !process.send) {
    console.error('usage: fork(bench-cloud-server.js, [prtlab|oidc-provider]) with an IPC channel');
    process.exit(2);
  }
  serveChild(start);
}
