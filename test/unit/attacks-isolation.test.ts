/**
 * What keeps the attacker apart and what lets it see the victim's traffic: the environment of a
 * simulated host holds nothing of the harness's (attacks/programs.ts), and the agent's capture
 * hook (agent/capture.ts) hands a listener the exchanges with its own cloud only.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CapturedExchange, captureAgentExchanges } from '../../agent/capture.ts';
import { send } from '../../agent/http.ts';
import { hostEnv, runProgram } from '../../attacks/programs.ts';
import { startTestCloud, stopTestCloud, type TestCloud } from '../shared/cloud.ts';

describe('a simulated host', () => {
  let host: string;

  beforeAll(async () => {
    host = await mkdtemp(join(tmpdir(), 'prtlab-attack-host-'));
  });

  afterAll(async () => {
    await rm(host, { recursive: true, force: true });
  });

  it('runs a program in its own directory with an environment of its own only', async () => {
    process.env.PRTLAB_HARNESS_ONLY = 'not for the attacker';
    try {
      const result = await runProgram(
        [
          process.execPath,
          '-e',
          'console.log(JSON.stringify({ cwd: process.cwd(), env: process.env }))',
        ],
        { cwd: host, env: hostEnv(host), input: '', timeoutMs: 30_000 },
      );
      expect(result.code).toBe(0);
      const seen = JSON.parse(result.stdout);
      expect(seen.cwd).toBe(host);
      expect(Object.keys(seen.env).sort()).toEqual(['HOME', 'LANG', 'PATH', 'PRTLAB_HOME']);
      expect(seen.env.HOME).toBe(host);
      expect(seen.env.PRTLAB_HOME).toBe(host);
    } finally {
      delete process.env.PRTLAB_HARNESS_ONLY;
    }
  });

  it('hands the program its spec on standard input', async () => {
    const result = await runProgram(
      [process.execPath, '-e', 'process.stdin.pipe(process.stdout)'],
      { cwd: host, env: hostEnv(host), input: '{"action":"x"}', timeoutMs: 30_000 },
    );
    expect(result.stdout).toBe('{"action":"x"}');
  });
});

describe("the agent's capture hook", () => {
  let tc: TestCloud;

  beforeAll(async () => {
    tc = await startTestCloud('prtlab-attack-capture-');
  });

  afterAll(async () => {
    await stopTestCloud(tc?.cloud, tc?.dir);
  });

  it('hands a listener every exchange with its cloud: method, URL, headers, body and status', async () => {
    const seen: CapturedExchange[] = [];
    const stop = captureAgentExchanges(tc.cloud.url, (x) => seen.push(x));
    try {
      const endpoint = { url: tc.cloud.url, caPem: tc.ca };
      await send(endpoint, 'GET', '/contoso.test/v2.0/.well-known/openid-configuration');
      await send(endpoint, 'POST', '/contoso.test/oauth2/token', {
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=srv_challenge',
      });
    } finally {
      stop();
    }
    expect(seen.map((x) => [x.method, new URL(x.url).pathname, x.status])).toEqual([
      ['GET', '/contoso.test/v2.0/.well-known/openid-configuration', 200],
      // This cloud serves discovery only: the refusal's status is captured as well.
      ['POST', '/contoso.test/oauth2/token', 404],
    ]);
    expect(seen[1]?.body).toBe('grant_type=srv_challenge');
    expect(seen[1]?.headers['client-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(Object.isFrozen(seen[1])).toBe(true);
  });

  it("stays silent for another cloud's traffic and after it is stopped", async () => {
    const other: CapturedExchange[] = [];
    const stopOther = captureAgentExchanges('https://127.0.0.1:1', (x) => other.push(x));
    const mine: CapturedExchange[] = [];
    const stopMine = captureAgentExchanges(tc.cloud.url, (x) => mine.push(x));
    stopMine();
    try {
      await send({ url: tc.cloud.url, caPem: tc.ca }, 'GET', '/contoso.test/discovery/v2.0/keys');
    } finally {
      stopOther();
    }
    expect(other).toEqual([]);
    expect(mine).toEqual([]);
  });

  it("never lets a failing listener change the agent's answer", async () => {
    const stop = captureAgentExchanges(tc.cloud.url, () => {
      throw new Error('listener bug');
    });
    try {
      const reply = await send(
        { url: tc.cloud.url, caPem: tc.ca },
        'GET',
        '/contoso.test/discovery/v2.0/keys',
      );
      expect(reply.status).toBe(200);
      expect(JSON.parse(reply.body).keys.length).toBeGreaterThan(0);
    } finally {
      stop();
    }
  });

  it('is a few lines in agent/http.ts and nothing else of the agent', async () => {
    const http = await readFile(new URL('../../agent/http.ts', import.meta.url), 'utf8');
    expect(http.match(/capturing\(\)|recordExchange/g)).toHaveLength(3);
  });
});
