/**
 * The victim's side of a scenario: the activity that leaves an artifact on the device, and the
 * theft of that artifact (model.ts SOURCES). Each source writes what the attacker is given into
 * the loot directory and returns its path; nothing else of the victim's ever reaches the attacker.
 *
 * The activity runs while the policy is off, before the state under test is set: the tokens were
 * issued last week, before enforcement, and stolen since. The theft itself is done by the harness
 * on the victim's behalf, as code running as the victim would do it (read a file, ask the broker,
 * decrypt the broker's cache with the user's own keys, watch the agent's traffic).
 */
import { cp, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type CapturedExchange, captureAgentExchanges } from '../agent/capture.ts';
import { cacheTarget, entryLabel } from '../broker/cache.ts';
import { BrokerClient } from '../broker/client.ts';
import { BROKER_FILE, CACHE_DIR, readBrokerFile } from '../broker/files.ts';
import { PROFILES, type ProfileName, type ResourceName, usesBroker } from '../clients/profiles.ts';
import { RESOURCES } from '../clients/resources.ts';
import { runClient } from '../clients/run.ts';
import { clientCachePath } from '../clients/token-cache.ts';
import { AttackError } from './errors.ts';
import type { VictimDevice, VictimLab } from './lab.ts';
import type { StolenArtifact } from './model.ts';
import type { Programs } from './programs.ts';

/** Files a thief leaves behind: locks of live processes and the broker's live socket secret. */
const NOT_COPIED = new Set(['agent.lock', 'state.lock', 'broker.json']);

function clientOf(stolen: StolenArtifact) {
  const profile = PROFILES[stolen.with.client as ProfileName];
  if (!profile) throw new AttackError(`${stolen.name}: no client profile '${stolen.with.client}'`);
  const version = stolen.with.version ?? profile.version;
  const resource = RESOURCES[(stolen.with.resource ?? profile.resource) as ResourceName];
  return { profile, version, resource };
}

async function writeJson(path: string, value: unknown): Promise<string> {
  await writeFile(path, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  return path;
}

/** The victim's app asks its broker for a token through the PRT (WAM's silent request). */
async function brokerToken(lab: VictimLab, device: VictimDevice, stolen: StolenArtifact) {
  const { profile, version, resource } = clientOf(stolen);
  if (!usesBroker(profile, version))
    throw new AttackError(`${stolen.name}: ${profile.name} ${version} does not use the broker`);
  return device.brokerToken({
    upn: lab.users.pilot.upn,
    clientId: profile.appId,
    resource: resource.resource,
    clientVersion: version,
  });
}

async function brokerSecret(device: VictimDevice): Promise<string> {
  return (await readBrokerFile(device.dir)).secret;
}

/** The PRT-signed app-token request among captured exchanges, and its payload. */
function signedAppRequest(
  exchanges: readonly CapturedExchange[],
  resource: string,
): { exchange: CapturedExchange; payload: Record<string, unknown> } {
  for (const exchange of exchanges) {
    if (exchange.method !== 'POST' || !exchange.url.includes('/oauth2/token') || !exchange.body)
      continue;
    const request = new URLSearchParams(exchange.body).get('request');
    if (!request) continue;
    const [header, payloadPart] = request.split('.');
    const alg = JSON.parse(Buffer.from(header ?? '', 'base64url').toString('utf8')).alg;
    const payload = JSON.parse(Buffer.from(payloadPart ?? '', 'base64url').toString('utf8'));
    if (alg === 'HS256' && payload.resource === resource) return { exchange, payload };
  }
  throw new AttackError('the capture saw no PRT-signed app-token request');
}

type Source = (
  lab: VictimLab,
  stolen: StolenArtifact,
  loot: string,
  programs: Programs,
) => Promise<string>;

const SOURCES: Readonly<Record<StolenArtifact['from'], Source>> = {
  async 'client-token-cache'(lab, stolen, loot) {
    const { profile, version, resource } = clientOf(stolen);
    if (usesBroker(profile, version))
      throw new AttackError(
        `${stolen.name}: ${profile.name} ${version} keeps no token cache of its own`,
      );
    const device = await lab.device();
    const report = await runClient(lab.clientEnv(device), {
      profile: profile.name,
      version,
      resource: resource.name,
      user: lab.users.pilot.upn,
      password: lab.password,
    });
    if (!report.signIn.ok)
      throw new AttackError(
        `the victim's ${profile.name} sign-in failed: ${report.signIn.message}`,
      );
    const path = join(loot, `${profile.name}-token-cache.json`);
    await cp(clientCachePath(device.dir, profile.name), path);
    return path;
  },

  async phishing(lab, _stolen, loot) {
    return writeJson(join(loot, 'phished-credentials.json'), {
      username: lab.users.pilot.upn,
      password: lab.password,
    });
  },

  async 'broker-cache'(lab, stolen, loot) {
    const device = await lab.device();
    const { profile, resource } = clientOf(stolen);
    await brokerToken(lab, device, stolen);
    // Stopping the broker writes its cache out; the next activity starts it again.
    await device.stopBroker();
    const target = cacheTarget({ resource: resource.resource });
    const dir = join(device.dir, CACHE_DIR);
    for (const file of await readdir(dir)) {
      if (!file.endsWith('.json')) continue;
      const entry = JSON.parse(await readFile(join(dir, file), 'utf8'));
      if (entry.clientId !== profile.appId || entry.target !== target) continue;
      // Code running as the user decrypts the cache with the user's own key, as malware does
      // with WAM's DPAPI-protected cache: here the agent unseals it for the victim's session.
      const key = { accountId: entry.accountId, clientId: entry.clientId, target: entry.target };
      const plain = await device.agent.unseal(Buffer.from(entry.sealed, 'base64'), entryLabel(key));
      const tokens = JSON.parse(plain.toString('utf8'));
      return writeJson(join(loot, 'broker-cache-entry.json'), {
        clientId: entry.clientId,
        target: entry.target,
        refreshToken: tokens.refreshToken,
      });
    }
    throw new AttackError(`the broker cache has no entry for ${profile.name} and ${resource.name}`);
  },

  async 'agent-traffic'(lab, stolen, loot) {
    const device = await lab.device();
    const { resource } = clientOf(stolen);
    const seen: CapturedExchange[] = [];
    const stop = captureAgentExchanges(lab.cloud.url, (x) => seen.push(x));
    try {
      await brokerToken(lab, device, stolen);
    } finally {
      stop();
    }
    const { exchange, payload } = signedAppRequest(seen, resource.resource);
    if (stolen.with.keep === 'prt')
      return writeJson(join(loot, 'prt.json'), { prt: payload.refresh_token });
    return writeJson(join(loot, 'captured-request.json'), {
      method: exchange.method,
      path: new URL(exchange.url).pathname,
      contentType: exchange.headers['content-type'],
      body: exchange.body,
    });
  },

  async 'client-memory'(lab, stolen, loot) {
    const token = await brokerToken(lab, await lab.device(), stolen);
    return writeJson(join(loot, 'access-token.json'), { accessToken: token.accessToken });
  },

  async 'broker-file'(lab, _stolen, loot) {
    const device = await lab.device();
    await device.ensureBroker();
    const path = join(loot, BROKER_FILE);
    await cp(join(device.dir, BROKER_FILE), path);
    return path;
  },

  async 'device-directory'(lab, stolen, loot, programs) {
    const from =
      stolen.with.keystore === 'secret-service'
        ? await lab.keystoreDevice(programs)
        : (await lab.device()).dir;
    const name = from.split('/').at(-1)!;
    const to = join(loot, 'devices', name);
    await mkdir(join(loot, 'devices'), { recursive: true, mode: 0o700 });
    await cp(from, to, {
      recursive: true,
      filter: (src) => !NOT_COPIED.has(src.split('/').at(-1) ?? ''),
    });
    return to;
  },

  async 'cookie-api'(lab, _stolen, loot) {
    const device = await lab.device();
    const broker = await device.ensureBroker();
    const client = await BrokerClient.connect({
      port: broker.port,
      secret: await brokerSecret(device),
    });
    try {
      const { cookies } = await client.getCookieInfoForUri(
        `${lab.cloud.url}/${lab.cloud.tenant.id}/oauth2/authorize`,
      );
      const cookie = cookies[0];
      if (!cookie) throw new AttackError('the broker minted no cookie');
      return writeJson(join(loot, 'prt-cookie.json'), { name: cookie.name, data: cookie.data });
    } finally {
      await client.close();
    }
  },
};

/** Runs the victim's activity for `stolen` and steals the artifact into `loot`; its path. */
export async function steal(
  lab: VictimLab,
  stolen: StolenArtifact,
  loot: string,
  programs: Programs,
): Promise<string> {
  await mkdir(loot, { recursive: true, mode: 0o700 });
  return SOURCES[stolen.from](lab, stolen, loot, programs);
}
