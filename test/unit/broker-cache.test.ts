/**
 * The broker's token cache: sealed per account, client and resource, written atomically, warm
 * after a restart; stale access tokens renewed with the bound refresh token, and through the PRT
 * when the cloud refuses that; tampered or foreign entries dropped; bounded in size.
 */
import { chmod, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type CacheKey, TokenCache } from '../../broker/cache.ts';
import { BrokerClient } from '../../broker/client.ts';
import { isBrokerError } from '../../broker/errors.ts';
import { CACHE_DIR } from '../../broker/files.ts';
import type { BrokerHandle } from '../../broker/server.ts';
import {
  type BrokerLab,
  cloudRefusalError,
  EXCHANGE,
  type FixtureAgent,
  GRAPH,
  ONEDRIVE,
  PASSWORD,
  startBrokerLab,
  TEAMS,
} from '../shared/broker-fixtures.ts';

let lab: BrokerLab;
let cacheDir: string;
/** The broker's clock runs `ahead` ms in front of the real one. */
let ahead = 0;
const clock = () => Date.now() + ahead;

async function cacheFiles(): Promise<string[]> {
  return (await readdir(cacheDir)).filter((n) => n.endsWith('.json')).sort();
}

/** A broker on the lab's device with `agent`; returns it, a connected client and its log. */
async function brokerWith(agent: FixtureAgent, options: { cacheMaxEntries?: number } = {}) {
  const log: string[] = [];
  const broker = await lab.broker(agent, { clock, log: (l) => log.push(l), ...options });
  const client = await BrokerClient.forDevice(lab.deviceDir);
  return { broker, client, log };
}

async function stop(b: { broker: BrokerHandle; client: BrokerClient }) {
  await b.client.close();
  await b.broker.close();
}

beforeAll(async () => {
  lab = await startBrokerLab('prtlab-broker-cache-');
  cacheDir = join(lab.deviceDir, CACHE_DIR);
}, 60_000);

afterAll(() => lab?.close());

beforeEach(() => {
  ahead = 0;
});

describe('persistence', () => {
  it('a restarted broker answers from the sealed cache, without a round trip', async () => {
    const agent = lab.agent();
    const first = await brokerWith(agent);
    const issued = await first.client.acquireTokenInteractive({
      clientId: ONEDRIVE,
      resource: EXCHANGE,
      username: lab.upn,
      password: PASSWORD,
    });
    await stop(first);

    const files = await cacheFiles();
    expect(files).toHaveLength(1);
    expect((await stat(cacheDir)).mode & 0o777).toBe(0o700);
    const path = join(cacheDir, files[0]!);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const text = await readFile(path, 'utf8');
    // Neither the access token nor any part of it is stored in the clear.
    expect(text).not.toContain(issued.accessToken.split('.')[1]!);
    expect(JSON.parse(text)).toMatchObject({
      v: 1,
      accountId: issued.account.id,
      clientId: ONEDRIVE,
      target: `resource:${EXCHANGE}`,
    });

    const again = agent.restarted();
    const second = await brokerWith(again);
    const hit = await second.client.acquireTokenSilent({
      clientId: ONEDRIVE,
      resource: EXCHANGE,
      accountId: issued.account.id,
    });
    expect(hit).toMatchObject({ fromCache: true, accessToken: issued.accessToken });
    expect(again.calls.acquireToken + again.calls.redeemRefreshToken).toBe(0);
    expect(again.calls.unseal).toBe(1);
    await stop(second);
  });

  it('a stale access token is renewed with the bound refresh token, and the new one cached', async () => {
    const agent = lab.agent();
    const b = await brokerWith(agent);
    const issued = await b.client.acquireTokenInteractive({
      clientId: TEAMS,
      resource: EXCHANGE,
      username: lab.upn,
      password: PASSWORD,
    });
    // Within five minutes of expiry the cached token is no longer served (MSAL's offset).
    ahead = (issued.expiresOn - 299) * 1000 - Date.now();
    const renewed = await b.client.acquireTokenSilent({ clientId: TEAMS, resource: EXCHANGE });
    expect(renewed.fromCache).toBe(false);
    expect(renewed.accessToken).not.toBe(issued.accessToken);
    expect(agent.calls.redeemRefreshToken).toBe(1);
    expect(agent.calls.acquireToken).toBe(1);
    ahead = 0;
    const hit = await b.client.acquireTokenSilent({ clientId: TEAMS, resource: EXCHANGE });
    expect(hit).toMatchObject({ fromCache: true, accessToken: renewed.accessToken });
    await stop(b);
  });

  it('a refresh token past its expiry is dropped, not sent, also after a restart (the expiry is sealed with it)', async () => {
    const agent = lab.agent();
    // The cloud gives app refresh tokens 90 days; this agent reports 10 minutes.
    agent.refreshTokenLifetimeS = 600;
    const first = await brokerWith(agent);
    const target = { clientId: TEAMS, scopes: ['https://graph.microsoft.com/User.Read'] };
    const issued = await first.client.acquireTokenInteractive({
      ...target,
      username: lab.upn,
      password: PASSWORD,
    });
    await stop(first);
    const again = agent.restarted();
    const second = await brokerWith(again);
    // An hour on: the access token is stale and the refresh token has expired.
    ahead = (issued.expiresOn + 60) * 1000 - Date.now();
    const renewed = await second.client.acquireTokenSilent(target);
    expect(renewed.fromCache).toBe(false);
    expect(again.calls.redeemRefreshToken).toBe(0);
    expect(again.calls.acquireToken).toBe(1);
    // The new entry's refresh token (90 days) is redeemed once its access token goes stale.
    ahead = (renewed.expiresOn - 299) * 1000 - Date.now();
    const redeemed = await second.client.acquireTokenSilent(target);
    expect(redeemed.fromCache).toBe(false);
    expect(again.calls.redeemRefreshToken).toBe(1);
    expect(again.refreshTokensSent).toHaveLength(1);
    await stop(second);
  });

  it('a refresh token the cloud refuses is dropped for a token through the PRT', async () => {
    const agent = lab.agent();
    const b = await brokerWith(agent);
    const issued = await b.client.acquireTokenInteractive({
      clientId: TEAMS,
      resource: GRAPH,
      username: lab.upn,
      password: PASSWORD,
    });
    ahead = (issued.expiresOn + 60) * 1000 - Date.now();
    agent.failOn(
      'redeemRefreshToken',
      cloudRefusalError({
        error: 'invalid_grant',
        aadsts: 50173,
        description: 'AADSTS50173: The provided grant has expired due to it being revoked.',
        correlationId: '00000000-0000-4000-8000-0000000000aa',
      }),
    );
    const renewed = await b.client.acquireTokenSilent({ clientId: TEAMS, resource: GRAPH });
    expect(renewed.fromCache).toBe(false);
    expect(agent.calls.redeemRefreshToken).toBe(1);
    expect(agent.calls.acquireToken).toBe(2);
    await stop(b);
  });

  it('a Conditional Access block on the refresh token is answered as is (no second request)', async () => {
    const agent = lab.agent();
    const b = await brokerWith(agent);
    const issued = await b.client.acquireTokenInteractive({
      clientId: TEAMS,
      resource: 'https://outlook.office.com',
      username: lab.upn,
      password: PASSWORD,
    });
    ahead = (issued.expiresOn + 60) * 1000 - Date.now();
    agent.failOn(
      'redeemRefreshToken',
      cloudRefusalError({
        error: 'invalid_grant',
        aadsts: 530084,
        description:
          'AADSTS530084: Access has been blocked by conditional access token protection policy.',
        correlationId: '00000000-0000-4000-8000-0000000000bb',
      }),
    );
    const err = await b.client
      .acquireTokenSilent({ clientId: TEAMS, resource: 'https://outlook.office.com' })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_BROKER_RPC', data: { aadsts: 530084 } });
    expect(agent.calls.acquireToken).toBe(1);
    await stop(b);
  });
});

describe('entries that must not be trusted', () => {
  async function seededEntry(): Promise<{ agent: FixtureAgent; file: string; accountId: string }> {
    const agent = lab.agent();
    const b = await brokerWith(agent);
    const before = new Set(await cacheFiles());
    const r = await b.client.acquireTokenInteractive({
      clientId: ONEDRIVE,
      scopes: [`${GRAPH}/User.Read`],
      username: lab.upn,
      password: PASSWORD,
    });
    await stop(b);
    const file = (await cacheFiles()).find((f) => !before.has(f));
    if (!file) throw new Error('no new cache file');
    return { agent, file, accountId: r.account.id };
  }

  it('a tampered entry is dropped with a warning and obtained again', async () => {
    const { agent, file, accountId } = await seededEntry();
    const path = join(cacheDir, file);
    const json = JSON.parse(await readFile(path, 'utf8'));
    const sealed = Buffer.from(json.sealed, 'base64');
    sealed[sealed.length - 1]! ^= 1;
    await writeFile(path, JSON.stringify({ ...json, sealed: sealed.toString('base64') }), {
      mode: 0o600,
    });
    const again = agent.restarted();
    const b = await brokerWith(again);
    expect(b.log.some((l) => l.includes(file) && /does not unseal/.test(l))).toBe(true);
    expect(await cacheFiles()).not.toContain(file);
    const r = await b.client.acquireTokenSilent({
      clientId: ONEDRIVE,
      scopes: [`${GRAPH}/User.Read`],
      accountId,
    });
    expect(r.fromCache).toBe(false);
    await stop(b);
  });

  it('entries sealed on another device do not open', async () => {
    const { agent, file } = await seededEntry();
    const b = await brokerWith(agent.withOtherSealingKey());
    expect(b.log.some((l) => l.includes(file) && /does not unseal/.test(l))).toBe(true);
    expect(b.broker.stats().cacheEntries).toBe(0);
    await stop(b);
  });

  it('an entry renamed to stand for another is dropped', async () => {
    const { agent, file } = await seededEntry();
    const forged = `${'0'.repeat(32)}.json`;
    await rename(join(cacheDir, file), join(cacheDir, forged));
    const b = await brokerWith(agent.restarted());
    expect(b.log.some((l) => l.includes(forged) && /does not match/.test(l))).toBe(true);
    await stop(b);
  });

  it('a cache directory group or others can enter is refused (ERR_BROKER)', async () => {
    await chmod(cacheDir, 0o755);
    try {
      const err = await lab.broker(lab.agent()).catch((e: unknown) => e);
      expect(isBrokerError(err, 'ERR_BROKER')).toBe(true);
      expect((err as Error).message).toMatch(/chmod 700/);
    } finally {
      await chmod(cacheDir, 0o700);
    }
  });
});

describe('size and sign-out', () => {
  it('holds at most cacheMaxEntries, evicting the least recently used', async () => {
    for (const f of await cacheFiles()) await unlink(join(cacheDir, f));
    const agent = lab.agent();
    const b = await brokerWith(agent, { cacheMaxEntries: 2 });
    const first = await b.client.acquireTokenInteractive({
      clientId: ONEDRIVE,
      resource: EXCHANGE,
      username: lab.upn,
      password: PASSWORD,
    });
    const accountId = first.account.id;
    await b.client.acquireTokenSilent({ clientId: ONEDRIVE, resource: GRAPH, accountId });
    // Use the first entry, so the GRAPH one is the least recently used.
    await b.client.acquireTokenSilent({ clientId: ONEDRIVE, resource: EXCHANGE, accountId });
    await b.client.acquireTokenSilent({ clientId: TEAMS, resource: GRAPH, accountId });
    expect(b.broker.stats().cacheEntries).toBe(2);
    const exchange = await b.client.acquireTokenSilent({
      clientId: ONEDRIVE,
      resource: EXCHANGE,
      accountId,
    });
    expect(exchange.fromCache).toBe(true);
    const graph = await b.client.acquireTokenSilent({
      clientId: ONEDRIVE,
      resource: GRAPH,
      accountId,
    });
    expect(graph.fromCache).toBe(false);
    await b.broker.close();
    expect(await cacheFiles()).toHaveLength(2);
    await b.client.close();
  });

  it('signOut removes the account entries from disk', async () => {
    const agent = lab.agent();
    const first = await brokerWith(agent);
    const r = await first.client.acquireTokenInteractive({
      clientId: ONEDRIVE,
      resource: EXCHANGE,
      username: lab.upn,
      password: PASSWORD,
    });
    await stop(first);
    expect((await cacheFiles()).length).toBeGreaterThan(0);
    const second = await brokerWith(agent.restarted());
    expect(second.broker.stats().cacheEntries).toBeGreaterThan(0);
    await second.client.signOut(r.account.id);
    await stop(second);
    expect(await cacheFiles()).toEqual([]);
  });
});

describe('writing behind', () => {
  const key: CacheKey = {
    accountId: '00000000-0000-4000-8000-000000000123',
    clientId: ONEDRIVE,
    target: `resource:${EXCHANGE}`,
  };
  const tokens = (n: number) => ({
    accessToken: `at-${n}`,
    tokenType: 'Bearer',
    expiresOn: 2_000_000_000 + n,
    refreshToken: `rt-${n}`,
    upn: 'adele@contoso.test',
    tenantId: '00000000-0000-4000-8000-000000000001',
  });

  it('changes to one entry within the write delay are sealed and written once, at flush', async () => {
    const agent = lab.agent();
    const dir = join(lab.deviceDir, 'cache-writes');
    const cache = await TokenCache.open({ dir, sealer: agent, writeDelayMs: 3_600_000 });
    for (let n = 1; n <= 5; n++) cache.put(key, tokens(n));
    expect(agent.calls.seal).toBe(0);
    await cache.flush();
    expect(agent.calls.seal).toBe(1);
    const reopened = await TokenCache.open({ dir, sealer: agent });
    expect(reopened.get(key)).toEqual(tokens(5));
  });

  it('open() removes temporary files an interrupted write left behind', async () => {
    const dir = join(lab.deviceDir, 'cache-stale');
    const agent = lab.agent();
    const cache = await TokenCache.open({ dir, sealer: agent });
    cache.put(key, tokens(1));
    await cache.flush();
    const [file] = (await readdir(dir)).filter((n) => n.endsWith('.json'));
    const stale = `.${file}.0123456789abcdef.tmp`;
    await writeFile(join(dir, stale), 'half a write', { mode: 0o600 });
    await TokenCache.open({ dir, sealer: agent });
    expect(await readdir(dir)).toEqual([file]);
  });
});
