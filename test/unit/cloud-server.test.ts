import { createHash, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudRequestError } from '../../cloud/errors.ts';
import { type CloudHandle, startCloud } from '../../cloud/server.ts';
import type { CloudRoute } from '../../cloud/services.ts';
import { isPrtlabError } from '../../lib/errors.ts';
import { jsonOrUndefined, startTestCloud, stopTestCloud } from '../shared/cloud.ts';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: replies are checked field by field by the tests
  json: any;
}

/** An HTTPS request that trusts only the lab CA (no system roots, no keep-alive pooling). */
function call(
  cloud: CloudHandle,
  ca: string | Buffer,
  path: string,
  opts: {
    method?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    chunked?: boolean;
  } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, cloud.url);
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.body !== undefined && !opts.chunked)
      headers['content-length'] = String(Buffer.byteLength(opts.body));
    const req = request(url, { method: opts.method ?? 'GET', ca, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text,
          json: jsonOrUndefined(text),
        });
      });
    });
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

/** Raw bytes over TLS, for requests a well-behaved client would not send. */
function rawExchange(cloud: CloudHandle, ca: string, payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host: '127.0.0.1', port: cloud.port, ca, servername: 'localhost' },
      () => socket.write(payload),
    );
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.on('error', (err) =>
      chunks.length > 0 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(err),
    );
  });
}

const ENTRA_TIMESTAMP = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z$/;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function expectEntraError(reply: Reply, status: number, error: string, code: number): void {
  expect(reply.status).toBe(status);
  expect(reply.headers['content-type']).toBe('application/json; charset=utf-8');
  const body = reply.json as Record<string, unknown>;
  expect(body.error).toBe(error);
  expect(body.error_codes).toEqual([code]);
  expect(String(body.error_description)).toMatch(new RegExp(`^AADSTS${code}: `));
  expect(body.timestamp).toMatch(ENTRA_TIMESTAMP);
  expect(body.trace_id).toMatch(GUID);
  expect(body.correlation_id).toMatch(GUID);
  expect(String(body.error_description)).toContain(`Trace ID: ${body.trace_id}`);
  expect(String(body.error_description)).toContain(`Correlation ID: ${body.correlation_id}`);
  // Never a stack trace or a source path.
  expect(reply.text).not.toMatch(/\bat .+\(.+:\d+:\d+\)|\.ts:\d+|node:internal|Error:/);
}

/** Test-only routes that read bodies and fail on purpose. */
const testRoutes: CloudRoute[] = [
  {
    method: 'POST',
    path: '/{tenant}/test/form',
    handler: async (req) => {
      const form = await req.form();
      return { json: { keys: [...form.keys()], tenant: req.tenant?.alias } };
    },
  },
  {
    method: 'POST',
    path: '/test/json',
    handler: async (req) => ({ json: { got: await req.json() } }),
  },
  {
    method: 'GET',
    path: '/test/crash',
    handler: () => {
      throw new Error('secret internal detail at /srv/thing.ts:12:3');
    },
  },
  {
    method: 'GET',
    path: '/test/slow',
    handler: () => new Promise((r) => setTimeout(() => r({ json: {} }), 2000)),
    options: { timeoutMs: 200 },
  },
  {
    method: 'GET',
    path: '/test/unserialisable',
    handler: () => ({ json: { n: 1n } }),
  },
  {
    method: 'POST',
    path: '/test/param',
    handler: async (req) => {
      const form = await req.form();
      if (!form.has('grant_type')) {
        throw new CloudRequestError(900144, {
          description: "The request body must contain the following parameter: 'grant_type'.",
        });
      }
      return { json: {} };
    },
  },
];

describe('cloud HTTPS server', () => {
  let dir: string;
  let cloud: CloudHandle;
  let ca: string;
  const logLines: string[] = [];

  beforeAll(async () => {
    ({ dir, cloud, ca } = await startTestCloud('prtlab-cloud-server-', {
      routes: testRoutes,
      log: (l) => logLines.push(l),
      limits: { bodyTimeoutMs: 400, headersTimeoutMs: 600, requestTimeoutMs: 3000 },
    }));
  });

  afterAll(async () => {
    await stopTestCloud(cloud, dir);
  });

  it('serves HTTPS with a certificate for 127.0.0.1, ::1 and localhost from the lab CA', async () => {
    const serverPem = await readFile(cloud.paths.serverPem, 'utf8');
    const cert = new X509Certificate(
      serverPem.slice(serverPem.indexOf('-----BEGIN CERTIFICATE-----')),
    );
    const labCa = new X509Certificate(ca);
    expect(cert.checkIssued(labCa)).toBe(true);
    expect(cert.verify(labCa.publicKey)).toBe(true);
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkIP('::1')).toBe('::1');
    expect(cert.checkHost('localhost')).toBe('localhost');
    expect(cloud.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    // A client with only the system roots refuses the lab certificate.
    await expect(
      new Promise((resolve, reject) => {
        const req = request(`${cloud.url}/common/discovery/keys`, { agent: false }, resolve);
        req.on('error', reject);
        req.end();
      }),
    ).rejects.toThrow();
  });

  const aliases = () => [
    'common',
    'organizations',
    cloud.tenant.id,
    cloud.tenant.domain,
    'CONTOSO.TEST',
  ];

  it('serves v1 and v2 discovery for each tenant alias', async () => {
    for (const alias of aliases()) {
      const v1 = await call(cloud, ca, `/${alias}/.well-known/openid-configuration`);
      expect(v1.status).toBe(200);
      const v2 = await call(cloud, ca, `/${alias}/v2.0/.well-known/openid-configuration`);
      expect(v2.status).toBe(200);
      const generic = alias === 'common' || alias === 'organizations';
      const tid = generic ? '{tenantid}' : cloud.tenant.id;
      const seg = generic ? alias : cloud.tenant.id;
      expect(v1.json.issuer).toBe(`https://sts.windows.net/${tid}/`);
      expect(v1.json.token_endpoint).toBe(`${cloud.url}/${seg}/oauth2/token`);
      expect(v1.json.jwks_uri).toBe(`${cloud.url}/common/discovery/keys`);
      expect(v2.json.issuer).toBe(`https://login.microsoftonline.com/${tid}/v2.0`);
      expect(v2.json.token_endpoint).toBe(`${cloud.url}/${seg}/oauth2/v2.0/token`);
      expect(v2.json.jwks_uri).toBe(`${cloud.url}/${seg}/discovery/v2.0/keys`);
      expect(v2.json.id_token_signing_alg_values_supported).toEqual(['RS256']);
      expect(v2.json.tenant_region_scope).toBe(generic ? null : 'NA');
    }
  });

  it('publishes the signing key as a JWKS (kid = RFC 7638 thumbprint, x5c from the lab CA)', async () => {
    const key = cloud.signingKey();
    for (const alias of aliases()) {
      for (const path of [`/${alias}/discovery/keys`, `/${alias}/discovery/v2.0/keys`]) {
        const reply = await call(cloud, ca, path);
        expect(reply.status).toBe(200);
        expect(reply.json.keys).toHaveLength(1);
        const jwk = reply.json.keys[0];
        expect(jwk).toMatchObject({ kty: 'RSA', use: 'sig', kid: key.kid, e: 'AQAB' });
        const canonical = JSON.stringify({ e: jwk.e, kty: 'RSA', n: jwk.n });
        expect(jwk.kid).toBe(createHash('sha256').update(canonical).digest('base64url'));
        const cert = new X509Certificate(Buffer.from(jwk.x5c[0], 'base64'));
        expect(cert.verify(new X509Certificate(ca).publicKey)).toBe(true);
        expect(jwk.x5t).toBe(createHash('sha1').update(cert.raw).digest('base64url'));
        expect(cert.publicKey.export({ format: 'jwk' }).n).toBe(jwk.n);
        if (path.includes('v2.0')) {
          const generic = alias === 'common' || alias === 'organizations';
          expect(jwk.issuer).toBe(
            `https://login.microsoftonline.com/${generic ? '{tenantid}' : cloud.tenant.id}/v2.0`,
          );
        }
      }
    }
    expect(key.privateKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
  });

  it('answers an unknown tenant with AADSTS90002 and a malformed one with AADSTS900023', async () => {
    const unknownId = await call(cloud, ca, '/11111111-2222-3333-4444-555555555555/discovery/keys');
    expectEntraError(unknownId, 400, 'invalid_tenant', 90002);
    expect(unknownId.json.error_description).toContain(
      "Tenant '11111111-2222-3333-4444-555555555555' not found",
    );
    const unknownDomain = await call(
      cloud,
      ca,
      '/fabrikam.test/v2.0/.well-known/openid-configuration',
    );
    expectEntraError(unknownDomain, 400, 'invalid_tenant', 90002);
    const bad = await call(cloud, ca, '/not_a_tenant!/discovery/keys');
    expectEntraError(bad, 400, 'invalid_request', 900023);
  });

  it('echoes a GUID client-request-id as correlation_id and sets security headers', async () => {
    const correlation = 'AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE';
    const reply = await call(cloud, ca, '/nowhere.test/discovery/keys', {
      headers: { 'client-request-id': correlation },
    });
    expect(reply.json.correlation_id).toBe(correlation.toLowerCase());
    expect(reply.headers['client-request-id']).toBe(correlation.toLowerCase());
    expect(reply.headers['x-ms-request-id']).toBe(reply.json.trace_id);
    expect(reply.headers['strict-transport-security']).toMatch(/max-age=\d+/);
    expect(reply.headers['x-content-type-options']).toBe('nosniff');
    expect(reply.headers['cache-control']).toBe('no-store');
    const notGuid = await call(cloud, ca, '/nowhere.test/discovery/keys', {
      headers: { 'client-request-id': 'hello' },
    });
    expect(notGuid.json.correlation_id).toMatch(GUID);
    expect(notGuid.headers['client-request-id']).toBeUndefined();
  });

  it('answers unknown paths with 404 and wrong methods with 405, both Entra-shaped', async () => {
    expectEntraError(
      await call(cloud, ca, '/common/oauth2/nothing'),
      404,
      'invalid_request',
      9990404,
    );
    const wrong = await call(cloud, ca, '/common/discovery/keys', { method: 'POST', body: '' });
    expectEntraError(wrong, 405, 'invalid_request', 900561);
    expect(wrong.headers.allow).toBe('GET');
  });

  it('parses forms and reports a missing parameter with AADSTS900144', async () => {
    const ok = await call(cloud, ca, `/${cloud.tenant.domain}/test/form`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
      body: 'grant_type=password&username=a%40b',
    });
    expect(ok.status).toBe(200);
    expect(ok.json).toEqual({ keys: ['grant_type', 'username'], tenant: 'domain' });
    const missing = await call(cloud, ca, '/test/param', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'scope=openid',
    });
    expectEntraError(missing, 400, 'invalid_request', 900144);
    expect(missing.json.error_description).toContain("'grant_type'");
  });

  it('refuses malformed forms and JSON with 400 invalid_request', async () => {
    const form = (body: string, type = 'application/x-www-form-urlencoded') =>
      call(cloud, ca, '/common/test/form', {
        method: 'POST',
        headers: { 'content-type': type },
        body,
      });
    expectEntraError(await form('a=%zz'), 400, 'invalid_request', 9002313);
    expectEntraError(await form('a=1&a=2'), 400, 'invalid_request', 9002313);
    expectEntraError(await form('a=1', 'application/json'), 400, 'invalid_request', 9002313);
    expectEntraError(
      await form('a=1', 'application/x-www-form-urlencoded; charset=latin1'),
      400,
      'invalid_request',
      9002313,
    );
    const badUtf8 = await call(cloud, ca, '/common/test/form', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: Buffer.from([0x61, 0x3d, 0xff, 0xfe]),
    });
    expectEntraError(badUtf8, 400, 'invalid_request', 9002313);
    const json = (body: string, type = 'application/json') =>
      call(cloud, ca, '/test/json', { method: 'POST', headers: { 'content-type': type }, body });
    expect((await json('{"a":[1,2]}')).json).toEqual({ got: { a: [1, 2] } });
    const broken = await json('{"password":"hunter22", ');
    expectEntraError(broken, 400, 'invalid_request', 9002313);
    expect(broken.text).not.toContain('hunter22');
    expectEntraError(await json('{}', 'text/plain'), 400, 'invalid_request', 9002313);
    const gz = await call(cloud, ca, '/test/json', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: '{}',
    });
    expectEntraError(gz, 400, 'invalid_request', 9002313);
  });

  it('refuses an oversize body with 413, by Content-Length and when chunked', async () => {
    const big = `a=${'x'.repeat(70 * 1024)}`;
    const declared = await call(cloud, ca, '/common/test/form', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: big,
    });
    expectEntraError(declared, 413, 'invalid_request', 9990413);
    const chunked = await call(cloud, ca, '/test/json', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ pad: 'y'.repeat(80 * 1024) }),
      chunked: true,
    });
    expectEntraError(chunked, 413, 'invalid_request', 9990413);
  });

  it('answers an internal failure with a generic AADSTS50000, the detail only in the log', async () => {
    const reply = await call(cloud, ca, '/test/crash');
    expectEntraError(reply, 500, 'server_error', 50000);
    expect(reply.text).not.toContain('secret internal detail');
    expect(
      logLines.some((l) => l.includes('secret internal detail') && l.includes(reply.json.trace_id)),
    ).toBe(true);
  });

  it('answers an unserialisable response with AADSTS50000 instead of crashing', async () => {
    expectEntraError(await call(cloud, ca, '/test/unserialisable'), 500, 'server_error', 50000);
    expect((await call(cloud, ca, '/common/discovery/keys')).status).toBe(200);
  });

  it('drops __proto__ members from JSON bodies and answers HEAD like GET without a body', async () => {
    const reply = await call(cloud, ca, '/test/json', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"__proto__":{"polluted":true},"a":1}',
    });
    expect(reply.json).toEqual({ got: { a: 1 } });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const head = await call(cloud, ca, '/common/discovery/keys', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
  });

  it('gives a slow handler 503 and a stalled body 408', async () => {
    expectEntraError(await call(cloud, ca, '/test/slow'), 503, 'temporarily_unavailable', 9990503);
    const raw = await rawExchange(
      cloud,
      ca,
      'POST /test/json HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":',
    );
    expect(raw).toMatch(/^HTTP\/1\.1 408 /);
    expect(raw).toContain('"error_codes":[9990408]');
  });

  it('answers HTTP-level garbage and oversized headers with Entra JSON', async () => {
    const garbage = await rawExchange(cloud, ca, 'NOT HTTP AT ALL\r\n\r\n');
    expect(garbage).toMatch(/^HTTP\/1\.1 400 /);
    expect(garbage).toContain('"error_codes":[9002313]');
    const huge = await rawExchange(
      cloud,
      ca,
      `GET /common/discovery/keys HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'z'.repeat(20 * 1024)}\r\n\r\n`,
    );
    expect(huge).toMatch(/^HTTP\/1\.1 431 /);
    expect(huge).toContain('"error_codes":[9990431]');
    const stalled = await rawExchange(
      cloud,
      ca,
      'GET /common/discovery/keys HTTP/1.1\r\nHost: local',
    );
    expect(stalled).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('logs one line per request: method, path without query, status, time', async () => {
    logLines.length = 0;
    await call(cloud, ca, '/common/discovery/keys?code=secret-auth-code');
    const line = logLines.find((l) => l.startsWith('GET /common/discovery/keys '));
    expect(line).toMatch(/^GET \/common\/discovery\/keys 200 \d+ms trace=[0-9a-f-]{36}$/);
    expect(logLines.join('\n')).not.toContain('secret-auth-code');
  });

  it('serves the AADSTS table row behind error_uri', async () => {
    const reply = await call(cloud, ca, '/nowhere.test/discovery/keys');
    const uri = new URL(reply.json.error_uri);
    const info = await call(cloud, ca, `${uri.pathname}${uri.search}`);
    expect(info.json).toMatchObject({ code: 90002, error: 'invalid_tenant', source: 'entra' });
  });

  it('takes routes registered after start', async () => {
    cloud.route('GET', '/{tenant}/later', (req) => ({ json: { tid: req.tenant?.tenant.id } }));
    const reply = await call(cloud, ca, '/common/later');
    expect(reply.json).toEqual({ tid: cloud.tenant.id });
    expect(() => cloud.route('GET', '/{tenant}/later', () => ({}))).toThrow(TypeError);
  });
});

describe('cloud start-up', () => {
  it('reuses the CA, server certificate, signing key and tenant across restarts', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'prtlab-cloud-restart-'));
    try {
      const first = await startCloud({ dataDir: dir, port: 0 });
      const caBefore = await readFile(first.caPath, 'utf8');
      const serverBefore = await readFile(first.paths.serverPem, 'utf8');
      const kid = first.signingKey().kid;
      const tid = first.tenant.id;
      expect(first.caCreated).toBe(true);
      await first.close();
      const second = await startCloud({ dataDir: dir, port: 0 });
      try {
        expect(second.caCreated).toBe(false);
        expect(await readFile(second.caPath, 'utf8')).toBe(caBefore);
        expect(await readFile(second.paths.serverPem, 'utf8')).toBe(serverBefore);
        expect(second.signingKey().kid).toBe(kid);
        expect(second.tenant.id).toBe(tid);
        const reply = await call(second, Buffer.from(caBefore), '/common/discovery/keys');
        expect(reply.json.keys[0].kid).toBe(kid);
      } finally {
        await second.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a non-loopback host unless allowRemote', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'prtlab-cloud-remote-'));
    try {
      for (const host of ['0.0.0.0', '192.0.2.1', 'example.com', '::']) {
        const err = await startCloud({ dataDir: dir, host, port: 0 }).catch((e: unknown) => e);
        expect(isPrtlabError(err, 'ERR_CLOUD_CONFIG')).toBe(true);
        expect(String((err as Error).message)).toContain('non-loopback');
      }
      const err = await startCloud({ dataDir: dir, port: 70000 }).catch((e: unknown) => e);
      expect(isPrtlabError(err, 'ERR_CLOUD_CONFIG')).toBe(true);
      // Refused before anything was created on disk.
      await expect(stat(join(dir, 'cloud'))).rejects.toThrow();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('listens on ::1 and localhost', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'prtlab-cloud-v6-'));
    try {
      for (const host of ['::1', 'localhost']) {
        const cloud = await startCloud({ dataDir: dir, host, port: 0 });
        try {
          const ca = await readFile(cloud.caPath);
          const reply = await call(cloud, ca, '/common/discovery/keys');
          expect(reply.status).toBe(200);
        } finally {
          await cloud.close();
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
