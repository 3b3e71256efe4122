/**
 * The cloud's HTTPS front: node:https, a routing table, body limits and timeouts on every route,
 * Entra-shaped errors for every failure (including the ones Node's HTTP parser raises), security
 * headers, and one log line per request. A handler returns a response or throws a CloudError;
 * anything else it throws becomes a generic AADSTS50000 whose detail only reaches the log.
 */

import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { CloudConfigError, CloudRequestError, echo } from '../errors.ts';
import { isGuid, newGuid } from '../ids.ts';
import { DEFAULT_BODY_LIMIT, MAX_BODY_LIMIT, parseForm, parseJson, readBody } from './body.ts';
import { errorResponse, type RequestIds } from './entra-error.ts';
import { checkListenHost, checkListenPort, isLoopbackHost } from './loopback.ts';
import { type HttpMethod, Router } from './router.ts';
import type { TenantMatch } from './tenant.ts';

/** What a handler sees of a request. Bodies are read on demand, under the route's limits. */
export interface CloudRequest {
  readonly method: HttpMethod;
  /** The path as received, without the query. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  /** Decoded path parameters, except `tenant` (see `tenant`). */
  readonly params: Readonly<Record<string, string>>;
  /** The resolved `{tenant}` segment, for routes that have one. */
  readonly tenant: TenantMatch | undefined;
  readonly ids: RequestIds;
  /** The cloud's own base URL, e.g. https://127.0.0.1:8443 (no trailing slash). */
  readonly baseUrl: string;
  readonly receivedAt: Date;
  /** The TLS socket, e.g. for a client certificate. */
  readonly socket: TLSSocket;
  /** The raw body (at most the route's body limit). */
  body(): Promise<Buffer>;
  /** The body as application/x-www-form-urlencoded; 400 invalid_request otherwise. */
  form(): Promise<URLSearchParams>;
  /** The body as application/json; 400 invalid_request otherwise. */
  json(): Promise<unknown>;
}

export interface CloudResponse {
  status?: number;
  headers?: Record<string, string>;
  /** Sent as application/json; charset=utf-8. */
  json?: unknown;
  /** Sent as is, with `contentType` (default text/plain; charset=utf-8). */
  body?: string | Uint8Array;
  contentType?: string;
}

export interface RouteOptions {
  /** Largest body accepted (default 64 KiB, at most 1 MiB). */
  bodyLimit?: number;
  /** How long the handler may take before the client gets a 503 (default limits.handlerTimeoutMs). */
  timeoutMs?: number;
}

export type RouteHandler<C> = (
  req: CloudRequest,
  context: C,
) => CloudResponse | Promise<CloudResponse>;

/** A route as a value, for passing a list of them at start-up. */
export interface RouteSpec<C> {
  method: HttpMethod;
  path: string;
  handler: RouteHandler<C>;
  options?: RouteOptions;
}

export interface HttpLimits {
  /** Time to receive the request headers. */
  headersTimeoutMs: number;
  /** Time to receive the whole request (Node's hard cap, above bodyTimeoutMs). */
  requestTimeoutMs: number;
  /** Time to receive the body once a handler asks for it. */
  bodyTimeoutMs: number;
  /** Time a handler may take. */
  handlerTimeoutMs: number;
  /** Idle time before a kept-alive connection is closed. */
  keepAliveTimeoutMs: number;
  /** Largest header block, in bytes. */
  maxHeaderSize: number;
  /** Longest request target (path and query), in characters. */
  maxUrlLength: number;
}

export const DEFAULT_LIMITS: Readonly<HttpLimits> = Object.freeze({
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  bodyTimeoutMs: 15_000,
  handlerTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxHeaderSize: 16 * 1024,
  maxUrlLength: 8 * 1024,
});

export interface CloudHttpServerOptions<C> {
  key: string;
  cert: string;
  host: string;
  port: number;
  allowRemote?: boolean;
  /** The value every handler receives as its second argument. */
  context: C;
  /** Resolves a `{tenant}` segment; throws a CloudError (AADSTS90002 / 900023) if unknown. */
  resolveTenant: (segment: string) => TenantMatch;
  limits?: Partial<HttpLimits>;
  /** One line per request and per server-side error. */
  log?: (line: string) => void;
  clock?: () => Date;
  /** Base URL to advertise instead of the one derived from host and port. */
  publicUrl?: string;
}

export interface CloudHttpServer<C> {
  /** https://host:port, no trailing slash. */
  readonly url: string;
  readonly address: string;
  readonly port: number;
  /** Adds a route; works before or after the server started listening. */
  route(method: HttpMethod, path: string, handler: RouteHandler<C>, options?: RouteOptions): void;
  close(): Promise<void>;
}

/** Headers on every response; handlers may override cache-control for cacheable documents. */
const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  pragma: 'no-cache',
  'x-ms-ests-server': 'prtlab',
});

const MAX_LOGGED_PATH = 200;
/** How long close() lets in-flight requests finish before cutting connections. */
const CLOSE_GRACE_MS = 2000;

interface Registered<C> {
  handler: RouteHandler<C>;
  bodyLimit: number;
  timeoutMs: number;
}

/** Starts the HTTPS server; resolves once it listens. */
export async function startHttpServer<C>(
  options: CloudHttpServerOptions<C>,
): Promise<CloudHttpServer<C>> {
  const allowRemote = options.allowRemote ?? false;
  if (typeof allowRemote !== 'boolean') throw new TypeError('allowRemote must be a boolean');
  checkListenHost(options.host, allowRemote);
  checkListenPort(options.port);
  const limits: HttpLimits = { ...DEFAULT_LIMITS, ...(options.limits ?? {}) };
  for (const [k, v] of Object.entries(limits)) {
    if (!Number.isInteger(v) || v <= 0)
      throw new RangeError(`limits.${k} must be a positive integer`);
  }
  const clock = options.clock ?? (() => new Date());
  const log = options.log ?? (() => {});
  const router = new Router<Registered<C>>();
  let baseUrl = options.publicUrl?.replace(/\/+$/, '') ?? '';

  const server: Server = createServer(
    {
      key: options.key,
      cert: options.cert,
      minVersion: 'TLSv1.2',
      maxHeaderSize: limits.maxHeaderSize,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // Check header and request deadlines often, so the configured times are what clients see.
      connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
    },
    (req, res) => {
      void handle(req, res);
    },
  );
  server.headersTimeout = limits.headersTimeoutMs;
  server.maxHeadersCount = 100;

  // Failures before a request exists (parse errors, oversized headers, header/request timeouts)
  // still get an Entra JSON body instead of Node's bare status line.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable || err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const aadsts =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? 9990431
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'ERR_HTTP_HEADERS_TIMEOUT'
          ? 9990408
          : 9002313;
    const ids = { traceId: newGuid(), correlationId: newGuid() };
    const { status, body } = errorResponse(
      new CloudRequestError(
        aadsts,
        aadsts === 9002313 ? { description: 'Malformed HTTP request.' } : {},
      ),
      ids,
      clock(),
      baseUrl || undefined,
    );
    const payload = Buffer.from(JSON.stringify(body));
    const head = [
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`,
      ...Object.entries(SECURITY_HEADERS).map(([k, v]) => `${k}: ${v}`),
      `x-ms-request-id: ${ids.traceId}`,
      'content-type: application/json; charset=utf-8',
      `content-length: ${payload.length}`,
      'connection: close',
    ].join('\r\n');
    socket.end(Buffer.concat([Buffer.from(`${head}\r\n\r\n`), payload]));
    log(`- - ${status} 0ms trace=${ids.traceId} (${err.code ?? 'client error'})`);
  });
  // Failed TLS handshakes (probes, clients that do not trust the lab CA) are not requests.
  server.on('tlsClientError', () => {});

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const receivedAt = clock();
    const clientId = req.headers['client-request-id'];
    const ids: RequestIds = {
      traceId: newGuid(),
      correlationId:
        typeof clientId === 'string' && isGuid(clientId) ? clientId.toLowerCase() : newGuid(),
    };
    const rawUrl = req.url ?? '';
    const queryAt = rawUrl.indexOf('?');
    const path = queryAt === -1 ? rawUrl : rawUrl.slice(0, queryAt);
    const method = (req.method === 'HEAD' ? 'GET' : req.method) ?? '';
    // 'close' also fires when the client goes away first, so every request gets its line.
    res.on('close', () => {
      const ms = Number((process.hrtime.bigint() - started) / 1_000_000n);
      const cut = res.writableFinished ? '' : ' (connection closed early)';
      log(
        `${req.method} ${loggablePath(path)} ${res.statusCode} ${ms}ms trace=${ids.traceId}${cut}`,
      );
    });
    let response: CloudResponse;
    try {
      response = await dispatch(req, method, rawUrl, path, queryAt, ids, receivedAt);
    } catch (err) {
      const e = errorResponse(err, ids, clock(), baseUrl);
      if (e.status >= 500 || e.error.detail !== undefined) {
        log(
          `error trace=${ids.traceId} AADSTS${e.error.aadsts} ${e.error.code}: ${e.error.description}` +
            (e.error.detail !== undefined ? ` | ${e.error.detail}` : ''),
        );
      }
      response = { status: e.status, headers: { ...e.headers }, json: e.body };
    }
    const echoId = clientId !== undefined && isGuid(clientId);
    try {
      send(req, res, response, ids, echoId);
    } catch (err) {
      // An unserialisable response is a handler bug; the client still gets an Entra error.
      const e = errorResponse(err, ids, clock(), baseUrl);
      log(`error trace=${ids.traceId} response not sent: ${e.error.detail ?? e.error.description}`);
      try {
        send(req, res, { status: e.status, json: e.body }, ids, echoId);
      } catch {
        res.destroy();
      }
    }
  }

  async function dispatch(
    req: IncomingMessage,
    method: string,
    rawUrl: string,
    path: string,
    queryAt: number,
    ids: RequestIds,
    receivedAt: Date,
  ): Promise<CloudResponse> {
    if (rawUrl.length > limits.maxUrlLength || !path.startsWith('/')) {
      throw new CloudRequestError(9002313, { description: 'The request target is not valid.' });
    }
    let segments: string[];
    try {
      segments = path
        .split('/')
        .slice(1)
        .map((s) => decodeURIComponent(s));
    } catch {
      throw new CloudRequestError(9002313, {
        description: 'The request path has a malformed % escape.',
      });
    }
    if (segments.length > 0 && segments[segments.length - 1] === '') segments.pop();
    if (segments.some((s) => s.includes('\0'))) {
      throw new CloudRequestError(9002313, { description: 'The request path is not valid.' });
    }
    const match = router.match(method, segments);
    if (match.kind === 'none') throw new CloudRequestError(9990404);
    if (match.kind === 'method') {
      throw new CloudRequestError(900561, {
        description: `The endpoint only accepts ${match.allowed.join(', ')} requests. Received a ${echo(req.method ?? '')} request.`,
        headers: { allow: match.allowed.join(', ') },
      });
    }
    const { route, params } = match;
    const { tenant: tenantSegment, ...rest } = params;
    const tenant = tenantSegment === undefined ? undefined : options.resolveTenant(tenantSegment);
    let bodyPromise: Promise<Buffer> | undefined;
    const body = () => {
      bodyPromise ??= readBody(req, {
        limit: route.handler.bodyLimit,
        timeoutMs: limits.bodyTimeoutMs,
      });
      return bodyPromise;
    };
    const request: CloudRequest = Object.freeze({
      method: route.method,
      path,
      query: new URLSearchParams(queryAt === -1 ? '' : rawUrl.slice(queryAt + 1)),
      headers: req.headers,
      params: Object.freeze(rest),
      tenant,
      ids,
      baseUrl,
      receivedAt,
      socket: req.socket as TLSSocket,
      body,
      form: async () => parseForm(req.headers['content-type'], await body()),
      json: async () => parseJson(req.headers['content-type'], await body()),
    });
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new CloudRequestError(9990503, {
              detail: `handler exceeded ${route.handler.timeoutMs} ms`,
            }),
          ),
        route.handler.timeoutMs,
      );
      timer.unref();
    });
    try {
      const result = await Promise.race([
        Promise.resolve().then(() => route.handler.handler(request, options.context)),
        deadline,
      ]);
      if (typeof result !== 'object' || result === null) {
        throw new TypeError(`handler for ${route.method} ${route.pattern} returned no response`);
      }
      return result;
    } finally {
      clearTimeout(timer);
    }
  }

  function send(
    req: IncomingMessage,
    res: ServerResponse,
    response: CloudResponse,
    ids: RequestIds,
    echoClientId: boolean,
  ): void {
    if (res.headersSent) {
      res.end();
      return;
    }
    const status = response.status ?? 200;
    let payload: Buffer;
    let contentType: string | undefined;
    if (response.json !== undefined) {
      payload = Buffer.from(JSON.stringify(response.json));
      contentType = 'application/json; charset=utf-8';
    } else if (response.body !== undefined) {
      payload = Buffer.from(response.body);
      contentType = response.contentType ?? 'text/plain; charset=utf-8';
    } else {
      payload = Buffer.alloc(0);
    }
    const headers: Record<string, string> = {
      ...SECURITY_HEADERS,
      ...lowerKeys(response.headers ?? {}),
      'x-ms-request-id': ids.traceId,
      'content-length': String(payload.length),
    };
    if (echoClientId) headers['client-request-id'] = ids.correlationId;
    // A body nobody read (wrong route, early error) is not drained on a kept-alive connection:
    // closing it bounds what a client can make the server swallow.
    if (!req.complete) headers.connection = 'close';
    if (contentType !== undefined) headers['content-type'] = contentType;
    res.writeHead(status, headers);
    res.end(payload);
  }

  function route(
    method: HttpMethod,
    path: string,
    handler: RouteHandler<C>,
    opts: RouteOptions = {},
  ): void {
    if (typeof handler !== 'function') throw new TypeError('handler must be a function');
    const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
    if (!Number.isInteger(bodyLimit) || bodyLimit < 0 || bodyLimit > MAX_BODY_LIMIT) {
      throw new RangeError(`bodyLimit must be an integer in 0..${MAX_BODY_LIMIT}`);
    }
    const timeoutMs = opts.timeoutMs ?? limits.handlerTimeoutMs;
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0)
      throw new RangeError('timeoutMs must be positive');
    router.add(method, path, { handler, bodyLimit, timeoutMs });
  }

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(
        new CloudConfigError(
          `cannot listen on ${options.host}:${options.port}: ${err.code ?? err.message}`,
          { cause: err },
        ),
      );
    };
    server.once('error', onError);
    server.listen(options.port, options.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  // 'localhost' is resolved by listen(); make sure it landed on a loopback address.
  if (!allowRemote && !isLoopbackHost(bound.address)) {
    await new Promise<void>((r) => server.close(() => r()));
    throw new CloudConfigError(`${options.host} resolved to non-loopback address ${bound.address}`);
  }
  if (baseUrl === '') baseUrl = `https://${urlHost(options.host, bound)}:${bound.port}`;

  let closing: Promise<void> | undefined;
  return {
    url: baseUrl,
    address: bound.address,
    port: bound.port,
    route,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
        timer.unref();
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}

/** The host part of the advertised URL: what a local client should dial. */
function urlHost(host: string, bound: AddressInfo): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  if (host.toLowerCase() === 'localhost') return 'localhost';
  return bound.family === 'IPv6' || host.includes(':') ? `[${bound.address}]` : bound.address;
}

function lowerKeys(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) out[k.toLowerCase()] = v;
  return out;
}

/** The path for the log: printable ASCII only and capped, so a request cannot forge log lines. */
function loggablePath(path: string): string {
  const clean = path.replace(/[^\x21-\x7e]/g, '?');
  return clean.length > MAX_LOGGED_PATH ? `${clean.slice(0, MAX_LOGGED_PATH)}...` : clean;
}
