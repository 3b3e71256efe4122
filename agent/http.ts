/**
 * HTTPS to the lab cloud. The only trust anchor is the lab CA the device was set up with (never
 * the system store, and certificate checks are never turned off). Every request carries a
 * `client-request-id` (the caller's, e.g. the one an app gave the broker, or a fresh one), which
 * Entra takes as the request's correlation id and echoes. Bodies are capped; nothing here logs a
 * body, a header value or a URL query.
 */
import { randomUUID } from 'node:crypto';
import { request } from 'node:https';
import type { CloudRefusal } from '../broker/agent-port.ts';
import { capturing, recordExchange } from './capture.ts';
import { AgentCloudError, AgentDeviceError } from './errors.ts';

const MAX_RESPONSE_BYTES = 1024 * 1024;
const TIMEOUT_MS = 30_000;

export interface CloudEndpoint {
  /** https://host:port, no trailing slash. */
  readonly url: string;
  readonly caPem: string;
}

export interface HttpReply {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
  /**
   * The request's correlation id as the cloud answered it (its `client-request-id` response
   * header, cloud/http/server.ts), else the client-request-id the request carried.
   */
  readonly correlationId: string;
}

const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Checks a cloud URL: https with a host and nothing after the origin but an optional `/`. */
export function normalizeCloudUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new AgentDeviceError(`the cloud URL '${text}' is not a URL`);
  }
  if (url.protocol !== 'https:') throw new AgentDeviceError('the cloud URL must be https://');
  if (
    url.username ||
    url.password ||
    url.search ||
    url.hash ||
    (url.pathname !== '/' && url.pathname !== '')
  ) {
    throw new AgentDeviceError('the cloud URL must be an origin like https://127.0.0.1:8443');
  }
  return url.origin;
}

export async function send(
  cloud: CloudEndpoint,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  path: string,
  options: { headers?: Record<string, string>; body?: string; correlationId?: string } = {},
): Promise<HttpReply> {
  const correlationId = options.correlationId ?? randomUUID();
  if (!GUID_RE.test(correlationId)) throw new TypeError('correlationId must be a GUID');
  const url = `${cloud.url}${path}`;
  return new Promise<HttpReply>((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        ca: cloud.caPem,
        timeout: TIMEOUT_MS,
        headers: {
          'client-request-id': correlationId,
          'return-client-request-id': 'true',
          accept: 'application/json',
          ...(options.body !== undefined
            ? { 'content-length': String(Buffer.byteLength(options.body)) }
            : {}),
          ...(options.headers ?? {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) {
            req.destroy(
              new AgentDeviceError(
                `the cloud's answer to ${method} ${path.split('?')[0]} is too large`,
              ),
            );
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => {
          // The attack harness's stand-in for a TLS-intercepting proxy (capture.ts).
          if (capturing())
            recordExchange(
              cloud.url,
              { method, url, correlationId, ...options },
              res.statusCode ?? 0,
            );
          const echoed = res.headers['client-request-id'];
          resolve({
            status: res.statusCode ?? 0,
            contentType: String(res.headers['content-type'] ?? ''),
            body: Buffer.concat(chunks).toString('utf8'),
            correlationId:
              typeof echoed === 'string' && GUID_RE.test(echoed) ? echoed : correlationId,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) => {
      if (err instanceof AgentDeviceError) return reject(err);
      const code = (err as NodeJS.ErrnoException).code;
      reject(
        new AgentDeviceError(
          `cannot reach the cloud at ${cloud.url} (${code ?? err.message}); is it running, and is the device's cloud CA its lab CA?`,
          { cause: err },
        ),
      );
    });
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

/** A form POST (application/x-www-form-urlencoded, UTF-8), as the token endpoint takes. */
export function postForm(
  cloud: CloudEndpoint,
  path: string,
  fields: Record<string, string>,
  options: { headers?: Record<string, string>; correlationId?: string } = {},
): Promise<HttpReply> {
  return send(cloud, 'POST', path, {
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...options.headers },
    body: new URLSearchParams(fields).toString(),
    ...(options.correlationId !== undefined ? { correlationId: options.correlationId } : {}),
  });
}

/** The Entra error fields of a refusal, or undefined when the body is not an Entra error. */
export function refusalOf(reply: HttpReply): CloudRefusal | undefined {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(reply.body);
  } catch {
    return undefined;
  }
  if (typeof j !== 'object' || j === null || typeof j.error !== 'string') return undefined;
  const description = typeof j.error_description === 'string' ? j.error_description : '';
  const codes = Array.isArray(j.error_codes) ? j.error_codes : [];
  const aadsts =
    typeof codes[0] === 'number' ? codes[0] : Number(/^AADSTS(\d+)/.exec(description)?.[1] ?? 0);
  return {
    error: j.error,
    aadsts,
    description,
    correlationId: typeof j.correlation_id === 'string' ? j.correlation_id : reply.correlationId,
    ...(typeof j.suberror === 'string' ? { subError: j.suberror } : {}),
  };
}

/** Throws AgentCloudError for an Entra-shaped refusal, ERR_AGENT_DEVICE for anything else. */
export function refuse(reply: HttpReply, what: string): never {
  const refusal = refusalOf(reply);
  if (refusal) throw new AgentCloudError(refusal, reply.status, what);
  throw new AgentDeviceError(
    `the cloud answered ${what} with HTTP ${reply.status} and no Entra error`,
  );
}

/** The JSON object of a 200 answer; a refusal or anything else throws. */
export function jsonOf(reply: HttpReply, what: string): Record<string, unknown> {
  if (reply.status !== 200 && reply.status !== 201) refuse(reply, what);
  try {
    const j = JSON.parse(reply.body);
    if (typeof j === 'object' && j !== null && !Array.isArray(j)) return j;
  } catch {
    // reported below
  }
  throw new AgentDeviceError(`the cloud's answer to ${what} is not a JSON object`);
}
