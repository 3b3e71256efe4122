/**
 * The broker's transport: who may open a connection (secret, no Origin, loopback Host), how it
 * answers malformed JSON-RPC, and its limits (message size, nesting, rate, requests in flight,
 * connections). After every misbehaving client, a well-behaved one on another connection is
 * still served.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerClient } from '../../broker/client.ts';
import { RPC_ERRORS } from '../../broker/rpc.ts';
import type { BrokerHandle } from '../../broker/server.ts';
import {
  type BrokerLab,
  bearerFor,
  EXCHANGE,
  type FixtureAgent,
  ONEDRIVE,
  PASSWORD,
  type RawSocket,
  rawSocket,
  startBrokerLab,
  upgradeStatus,
} from '../shared/broker-fixtures.ts';

let lab: BrokerLab;
let agent: FixtureAgent;
let broker: BrokerHandle;
let auth: Record<string, string>;
/** A well-behaved client, opened first; every test checks it is still served. */
let bystander: BrokerClient;
/** Frozen time for the rate limiter, so the bucket never refills during a test. */
const FROZEN = Date.UTC(2026, 0, 5, 9, 0, 0);

async function stillServed(): Promise<void> {
  const status = await bystander.getDeviceStatus();
  expect(status.DeviceId).toBe(lab.device.deviceId);
}

async function open(): Promise<RawSocket> {
  return rawSocket(broker.port, auth);
}

const request1 = (id: unknown, method: string, params?: unknown) =>
  JSON.stringify({ jsonrpc: '2.0', id, method, ...(params !== undefined ? { params } : {}) });

beforeAll(async () => {
  lab = await startBrokerLab('prtlab-broker-transport-');
  agent = lab.agent();
  broker = await lab.broker(agent, {
    limits: {
      burst: 40,
      maxRefusedInARow: 3,
      maxPendingPerConnection: 2,
      maxConnections: 8,
      cloudBurst: 3,
    },
    clock: () => FROZEN,
  });
  auth = await bearerFor(lab.deviceDir);
  bystander = await BrokerClient.forDevice(lab.deviceDir);
  await bystander.acquireTokenInteractive({
    clientId: ONEDRIVE,
    resource: EXCHANGE,
    username: lab.upn,
    password: PASSWORD,
  });
}, 60_000);

afterAll(async () => {
  await bystander?.close();
  await lab?.close();
});

describe('who may connect', () => {
  it('accepts the secret from broker.json', async () => {
    expect(await upgradeStatus(broker.port, auth)).toBe(101);
  });

  it('refuses a missing, wrong or truncated secret with 403', async () => {
    const secret = auth.authorization!.slice('Bearer '.length);
    expect(await upgradeStatus(broker.port, {})).toBe(403);
    expect(await upgradeStatus(broker.port, { authorization: `Bearer ${'A'.repeat(43)}` })).toBe(
      403,
    );
    expect(await upgradeStatus(broker.port, { authorization: `Bearer ${secret.slice(1)}` })).toBe(
      403,
    );
    expect(await upgradeStatus(broker.port, { authorization: `Basic ${secret}` })).toBe(403);
    await stillServed();
  });

  it('refuses any upgrade with an Origin header, even with the right secret', async () => {
    expect(await upgradeStatus(broker.port, auth, { origin: 'https://evil.example' })).toBe(403);
    expect(await upgradeStatus(broker.port, auth, { origin: 'null' })).toBe(403);
    expect(
      await upgradeStatus(broker.port, auth, { origin: `http://127.0.0.1:${broker.port}` }),
    ).toBe(403);
  });

  it('refuses a Host that is not the loopback address and port, and paths other than /', async () => {
    expect(await upgradeStatus(broker.port, { ...auth, host: 'rebound.example' })).toBe(403);
    expect(await upgradeStatus(broker.port, auth, { path: '/rpc' })).toBe(403);
  });

  it('says nothing in a refusal, and answers plain HTTP with 426', async () => {
    const plain = (headers: Record<string, string>) =>
      new Promise<{ status: number; body: string; headers: Record<string, unknown> }>(
        (resolve, reject) => {
          const req = request(
            { host: '127.0.0.1', port: broker.port, path: '/', headers },
            (res) => {
              let body = '';
              res.on('data', (c) => {
                body += c;
              });
              res.on('end', () =>
                resolve({ status: res.statusCode ?? 0, body, headers: res.headers }),
              );
            },
          );
          req.on('error', reject);
          req.end();
        },
      );
    const refused = await plain({
      connection: 'Upgrade',
      upgrade: 'websocket',
      'sec-websocket-version': '13',
      'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
      authorization: 'Bearer wrong',
    });
    expect(refused).toMatchObject({ status: 403, body: '' });
    expect(refused.headers['content-length']).toBe('0');
    expect(await plain({})).toMatchObject({ status: 426, body: '' });
  });

  it('refuses connections beyond the limit with 503', async () => {
    const free = 8 - broker.stats().connections;
    expect(free).toBeGreaterThan(0);
    const sockets = await Promise.all(Array.from({ length: free }, () => open()));
    expect(await upgradeStatus(broker.port, auth)).toBe(503);
    for (const s of sockets) s.ws.close();
    await Promise.all(sockets.map((s) => s.closed));
    await stillServed();
  });
});

describe('malformed JSON-RPC (JSON-RPC 2.0 §4, §5, §6)', () => {
  it('text that is not JSON: -32700 with a null id', async () => {
    const s = await open();
    s.send('{"jsonrpc": "2.0", "method": ');
    const r = await s.next();
    expect(r).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: RPC_ERRORS.parseError } });
    s.ws.close();
    await stillServed();
  });

  it('a batch: one -32600 for the whole array, nothing executed', async () => {
    const s = await open();
    const signIns = agent.calls.signOut;
    s.send(
      JSON.stringify([
        JSON.parse(request1(1, 'getAccounts')),
        JSON.parse(request1(2, 'signOut', { accountId: '00000000-0000-4000-8000-000000000001' })),
      ]),
    );
    const r = await s.next();
    expect(r).toMatchObject({ id: null, error: { code: RPC_ERRORS.invalidRequest } });
    expect(String((r.error as { message: string }).message)).toMatch(/batch/);
    expect(agent.calls.signOut).toBe(signIns);
    s.ws.close();
    await stillServed();
  });

  it('a wrong or missing jsonrpc version: -32600 with the request id', async () => {
    const s = await open();
    s.send(JSON.stringify({ jsonrpc: '1.0', id: 7, method: 'getAccounts' }));
    expect(await s.next()).toMatchObject({ id: 7, error: { code: RPC_ERRORS.invalidRequest } });
    s.send(JSON.stringify({ id: 'eight', method: 'getAccounts' }));
    expect(await s.next()).toMatchObject({
      id: 'eight',
      error: { code: RPC_ERRORS.invalidRequest },
    });
    s.ws.close();
    await stillServed();
  });

  it('no id is a notification: not executed, not answered (§4.1)', async () => {
    const s = await open();
    const accountsCalls = agent.calls.accounts;
    s.send(JSON.stringify({ jsonrpc: '2.0', method: 'getAccounts' }));
    s.send(request1('after', 'getDeviceStatus'));
    const r = await s.next();
    expect(r.id).toBe('after');
    expect(s.queued).toBe(0);
    expect(agent.calls.accounts).toBe(accountsCalls);
    s.ws.close();
  });

  it('a null, fractional or oversized id, a missing method, an extra member: -32600', async () => {
    const s = await open();
    for (const bad of [
      { jsonrpc: '2.0', id: null, method: 'getAccounts' },
      { jsonrpc: '2.0', id: 1.5, method: 'getAccounts' },
      { jsonrpc: '2.0', id: 'x'.repeat(129), method: 'getAccounts' },
      { jsonrpc: '2.0', id: 3 },
      { jsonrpc: '2.0', id: 4, method: 'getAccounts', extra: true },
      'a string',
    ]) {
      s.send(JSON.stringify(bad));
      const r = await s.next();
      expect(r.error, JSON.stringify(bad)).toMatchObject({ code: RPC_ERRORS.invalidRequest });
    }
    s.ws.close();
    await stillServed();
  });

  it('an unknown method: -32601', async () => {
    const s = await open();
    s.send(request1(1, 'getRefreshToken'));
    expect(await s.next()).toMatchObject({
      id: 1,
      error: { code: RPC_ERRORS.methodNotFound, data: { error: 'method_not_found', aadsts: null } },
    });
    s.ws.close();
  });

  it('invalid params: -32602 naming the field', async () => {
    const s = await open();
    const cases: [unknown, string][] = [
      [{ clientId: 'onedrive', resource: EXCHANGE }, 'params.clientId'],
      [{ clientId: ONEDRIVE }, 'params.resource'],
      [{ clientId: ONEDRIVE, resource: EXCHANGE, scopes: ['openid'] }, 'params.scopes'],
      [{ clientId: ONEDRIVE, scopes: ['openid', 'two words'] }, 'params.scopes[1]'],
      [{ clientId: ONEDRIVE, resource: EXCHANGE, accountId: 42 }, 'params.accountId'],
      [{ clientId: ONEDRIVE, resource: EXCHANGE, forceRefresh: 'yes' }, 'params.forceRefresh'],
      [{ clientId: ONEDRIVE, resource: EXCHANGE, refreshToken: 'x' }, 'params.refreshToken'],
      [[ONEDRIVE, EXCHANGE], 'params'],
    ];
    let id = 0;
    for (const [params, field] of cases) {
      s.send(request1(++id, 'acquireTokenSilent', params));
      const r = await s.next();
      expect(r.error, field).toMatchObject({
        code: RPC_ERRORS.invalidParams,
        data: { error: 'invalid_params', field },
      });
      expect((r.error as { message: string }).message).toContain(field);
    }
    s.send(
      request1(++id, 'acquireTokenInteractive', {
        clientId: ONEDRIVE,
        resource: EXCHANGE,
        username: lab.upn,
      }),
    );
    expect((await s.next()).error).toMatchObject({ data: { field: 'params.password' } });
    s.send(request1(++id, 'getCookieInfoForUri', { uri: 'javascript:alert(1)' }));
    expect((await s.next()).error).toMatchObject({ data: { field: 'params.uri' } });
    s.send(request1(++id, 'getAccounts', { all: true }));
    expect((await s.next()).error).toMatchObject({ data: { field: 'params.all' } });
    s.ws.close();
    await stillServed();
  });

  it('JSON nested deeper than the bound: -32600 without parsing it', async () => {
    const s = await open();
    s.send(
      `{"jsonrpc":"2.0","id":1,"method":"getAccounts","params":{"a":${'['.repeat(5000)}${']'.repeat(5000)}}}`,
    );
    expect(await s.next()).toMatchObject({ id: null, error: { code: RPC_ERRORS.invalidRequest } });
    s.ws.close();
    await stillServed();
  });
});

describe('limits', () => {
  it('a message over the size limit closes that connection with 1009 (RFC 6455 §7.4.1)', async () => {
    const s = await open();
    s.send(request1(1, 'getAccounts', { pad: 'x'.repeat(70 * 1024) }));
    expect(await s.closed).toBe(1009);
    await stillServed();
  });

  it('a binary frame closes that connection with 1003', async () => {
    const s = await open();
    s.send(Buffer.from(request1(1, 'getAccounts')), true);
    expect(await s.closed).toBe(1003);
    await stillServed();
  });

  it('past the rate limit requests get -32003; a client that keeps going is closed with 1008', async () => {
    const s = await open();
    // One at a time: this connection may have only two requests in flight.
    for (let i = 1; i <= 40; i++) {
      s.send(request1(i, 'getDeviceStatus'));
      expect((await s.next()).result).toBeDefined();
    }
    s.send(request1(41, 'getDeviceStatus'));
    expect(await s.next()).toMatchObject({
      id: 41,
      error: {
        code: RPC_ERRORS.rateLimited,
        data: { error: 'rate_limited', subError: 'too_many_requests' },
      },
    });
    for (let i = 42; i <= 50; i++) s.send(request1(i, 'getDeviceStatus'));
    expect(await s.closed).toBe(1008);
    // Limits are per connection: the bystander has its own bucket.
    await stillServed();
  });

  it('more requests in flight than allowed get -32003 too_many_pending; the others complete', async () => {
    const s = await open();
    agent.hold('acquireToken');
    const silent = (id: number) =>
      request1(id, 'acquireTokenSilent', {
        clientId: ONEDRIVE,
        resource: EXCHANGE,
        forceRefresh: true,
      });
    s.send(silent(1));
    s.send(silent(2));
    s.send(silent(3));
    expect(await s.next()).toMatchObject({
      id: 3,
      error: { code: RPC_ERRORS.rateLimited, data: { subError: 'too_many_pending' } },
    });
    // Held requests on one connection do not hold up another.
    await stillServed();
    agent.release();
    const answered = [await s.next(), await s.next()];
    expect(answered.map((r) => r.id).sort()).toEqual([1, 2]);
    for (const r of answered) expect(r.result).toMatchObject({ fromCache: false });
    s.ws.close();
  });

  it('requests that reach the cloud have a lower rate of their own; cache hits go on', async () => {
    const s = await open();
    const silent = (id: number, forceRefresh: boolean) =>
      request1(id, 'acquireTokenSilent', { clientId: ONEDRIVE, resource: EXCHANGE, forceRefresh });
    for (let id = 1; id <= 3; id++) {
      s.send(silent(id, true));
      expect((await s.next()).result).toMatchObject({ fromCache: false });
    }
    s.send(silent(4, true));
    expect(await s.next()).toMatchObject({
      id: 4,
      error: { code: RPC_ERRORS.rateLimited, data: { subError: 'too_many_cloud_requests' } },
    });
    s.send(silent(5, false));
    expect((await s.next()).result).toMatchObject({ fromCache: true });
    s.ws.close();
    await stillServed();
  });

  it('closing the broker closes its connections with 1001', async () => {
    const other = await lab.broker(lab.agent(), { port: 0 });
    const s = await rawSocket(other.port, await bearerFor(lab.deviceDir));
    await other.close();
    expect(await s.closed).toBe(1001);
  });
});
