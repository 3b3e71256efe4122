/**
 * The broker's transport: a WebSocket server (RFC 6455) on 127.0.0.1 speaking JSON-RPC 2.0
 * (rpc.ts) to local clients, in front of BrokerService.
 *
 * Who may connect (checked on the HTTP upgrade request, before any WebSocket exists, as ws's own
 * documentation advises):
 *   - no `Origin` header: browsers always send one on a WebSocket handshake (RFC 6455 §4.1, item
 *     8; §10.2), and web pages must never reach the broker, whatever host name they resolve;
 *   - `Host` names the loopback address and this port (a second guard against DNS rebinding);
 *   - `Authorization: Bearer <secret>` with the secret from broker.json (files.ts), compared with
 *     crypto.timingSafeEqual over SHA-256 digests, so neither content nor length leaks by timing.
 * Any refusal is `403 Forbidden` with an empty body (503 when the connection limit is reached);
 * the log records which check failed, never the header values.
 *
 * Limits, so that a misbehaving client costs only its own connection: a message size cap
 * (ws `maxPayload`; a larger message closes that connection with 1009, RFC 6455 §7.4.1), a JSON
 * nesting cap, a token-bucket rate limit and a cap on requests in flight per connection (answered
 * -32003; a client that keeps going after many refusals is closed with 1008), a second, lower
 * rate for requests that reach the cloud (cache misses, sign-ins, cookies), a cap on unread
 * output (a client that does not read its answers is dropped), binary frames closed with 1003,
 * and a cap on connections. Errors on one socket are caught on that socket.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { type RawData, type WebSocket, WebSocketServer } from 'ws';
import type { BrokerAgent } from './agent-port.ts';
import { TokenCache } from './cache.ts';
import { BrokerError } from './errors.ts';
import { CACHE_DIR, newSecret, removeBrokerFile, writeBrokerFile } from './files.ts';
import {
  errorResponse,
  parseMessage,
  RPC_ERRORS,
  type RpcErrorObject,
  type RpcId,
  resultResponse,
} from './rpc.ts';
import { BrokerService, RpcFailure } from './service.ts';

export const BROKER_HOST = '127.0.0.1';

export interface BrokerLimits {
  /** Largest WebSocket message accepted, in bytes (ws maxPayload). */
  readonly maxMessageBytes: number;
  /** Deepest JSON nesting accepted in a message. */
  readonly maxJsonDepth: number;
  /** Sustained requests per second per connection (token bucket refill). */
  readonly requestsPerSecond: number;
  /** Requests a connection may send at once before the rate applies (bucket size). */
  readonly burst: number;
  /** Sustained requests per second per connection that go to the cloud (misses, sign-ins). */
  readonly cloudRequestsPerSecond: number;
  /** Cloud requests a connection may send at once before that rate applies. */
  readonly cloudBurst: number;
  /** Requests one connection may have in flight. */
  readonly maxPendingPerConnection: number;
  /** Refused requests in a row after which the connection is closed (1008). */
  readonly maxRefusedInARow: number;
  /** Output a client may leave unread before it is dropped, in bytes. */
  readonly maxBufferedBytes: number;
  readonly maxConnections: number;
}

export const DEFAULT_LIMITS: BrokerLimits = Object.freeze({
  maxMessageBytes: 64 * 1024,
  maxJsonDepth: 8,
  requestsPerSecond: 2000,
  burst: 2000,
  cloudRequestsPerSecond: 200,
  cloudBurst: 200,
  maxPendingPerConnection: 64,
  maxRefusedInARow: 100,
  maxBufferedBytes: 4 * 1024 * 1024,
  maxConnections: 256,
});

export interface StartBrokerOptions {
  readonly agent: BrokerAgent;
  /** `<data>/devices/<NAME>`: broker.json and broker-cache/ go here. */
  readonly deviceDir: string;
  /** TCP port on 127.0.0.1; 0 (default) picks a free one, which broker.json records. */
  readonly port?: number;
  readonly limits?: Partial<BrokerLimits>;
  readonly cacheMaxEntries?: number;
  /** Milliseconds since the epoch, for token lifetimes and rate limits (tests freeze it). */
  readonly clock?: () => number;
  /** One line per event; never tokens, secrets or passwords. */
  readonly log?: (line: string) => void;
}

export interface BrokerStats {
  readonly connections: number;
  readonly cacheEntries: number;
}

export interface BrokerHandle {
  readonly port: number;
  /** `ws://127.0.0.1:<port>/` */
  readonly url: string;
  /** Path of broker.json. */
  readonly brokerFile: string;
  stats(): BrokerStats;
  /** Closes every connection (1001), writes the cache out, removes broker.json. */
  close(): Promise<void>;
}

const FORBIDDEN = 'HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';
const UNAVAILABLE =
  'HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';
/** RFC 6750 §2.1 token68 shape, bounded; the secret itself is 43 characters. */
const BEARER_RE = /^Bearer ([A-Za-z0-9\-._~+/]{1,256}=*)$/;

function checkLimits(l: BrokerLimits): void {
  for (const [name, v] of Object.entries(l)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
      throw new RangeError(`limits.${name} must be a positive number`);
  }
}

/** A token bucket: `tokens` refill at `rate` per second up to `size`. */
interface Bucket {
  tokens: number;
  refilledAt: number;
}

/** Per-connection state: the two buckets, requests in flight, refusals in a row. */
interface Conn {
  readonly id: number;
  readonly ws: WebSocket;
  readonly requests: Bucket;
  readonly cloud: Bucket;
  pending: number;
  refusedInARow: number;
}

export async function startBroker(options: StartBrokerOptions): Promise<BrokerHandle> {
  const limits: BrokerLimits = { ...DEFAULT_LIMITS, ...options.limits };
  checkLimits(limits);
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new BrokerError(`port must be an integer from 0 to 65535 (got ${port})`);
  const clock = options.clock ?? Date.now;
  const log = options.log ?? (() => {});
  const { deviceDir, agent } = options;

  const cache = await TokenCache.open({
    dir: `${deviceDir}/${CACHE_DIR}`,
    sealer: agent,
    ...(options.cacheMaxEntries !== undefined ? { maxEntries: options.cacheMaxEntries } : {}),
    onWarning: log,
  });
  const service = new BrokerService({ agent, cache, clock, log });
  const secret = newSecret();
  const secretDigest = createHash('sha256').update(secret).digest();

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: limits.maxMessageBytes,
    perMessageDeflate: false,
    clientTracking: true,
  });
  const http: Server = createServer((_req, res) => {
    // Plain HTTP gets nothing: the broker only speaks WebSocket.
    res.writeHead(426, { connection: 'close', 'content-length': '0', upgrade: 'websocket' });
    res.end();
  });
  http.headersTimeout = 5_000;
  http.requestTimeout = 10_000;
  let nextId = 1;
  let boundPort = 0;
  /** Service calls in progress, so close() can let them finish before the cache is written. */
  const inFlight = new Set<Promise<unknown>>();

  const refuse = (socket: Duplex, reply: string, why: string) => {
    log(`refused a connection: ${why}`);
    socket.end(reply);
    socket.destroy();
  };

  const authorized = (req: IncomingMessage): string | undefined => {
    if (req.headers.origin !== undefined) return 'Origin header present';
    const host = req.headers.host?.toLowerCase();
    if (host !== `${BROKER_HOST}:${boundPort}` && host !== `localhost:${boundPort}`)
      return 'Host is not the loopback address and port';
    if (req.url !== '/') return 'path is not /';
    const m = BEARER_RE.exec(req.headers.authorization ?? '');
    if (!m) return 'no bearer secret';
    const presented = createHash('sha256').update(m[1]!).digest();
    if (!timingSafeEqual(presented, secretDigest)) return 'wrong secret';
    return undefined;
  };

  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {});
    const why = authorized(req);
    if (why !== undefined) return refuse(socket, FORBIDDEN, why);
    if (wss.clients.size >= limits.maxConnections)
      return refuse(socket, UNAVAILABLE, 'connection limit reached');
    wss.handleUpgrade(req, socket, head, (ws) => serve(ws));
  });

  const send = (conn: Conn, text: string) => {
    if (conn.ws.readyState !== conn.ws.OPEN) return;
    conn.ws.send(text);
    if (conn.ws.bufferedAmount > limits.maxBufferedBytes) {
      log(`connection ${conn.id}: dropped, ${conn.ws.bufferedAmount} bytes of answers unread`);
      conn.ws.terminate();
    }
  };

  const sendError = (conn: Conn, id: RpcId | null, error: RpcErrorObject) =>
    send(conn, errorResponse(id, error));

  const protocolError = (code: number, message: string, field?: string): RpcErrorObject => ({
    code,
    message,
    data: {
      error:
        code === RPC_ERRORS.parseError
          ? 'parse_error'
          : code === RPC_ERRORS.invalidParams
            ? 'invalid_params'
            : 'invalid_request',
      aadsts: null,
      correlationId: randomUUID(),
      subError: null,
      ...(field !== undefined ? { field } : {}),
    },
  });

  /** Takes one token from `b` (refilled at `rate` per second up to `size`); false if empty. */
  const take = (b: Bucket, rate: number, size: number): boolean => {
    const now = clock();
    const elapsed = Math.max(0, now - b.refilledAt);
    b.tokens = Math.min(size, b.tokens + (elapsed * rate) / 1000);
    b.refilledAt = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  };
  const admit = (conn: Conn) => take(conn.requests, limits.requestsPerSecond, limits.burst);

  const refused = (conn: Conn, id: RpcId | null, subError: string, message: string) => {
    conn.refusedInARow++;
    if (conn.refusedInARow > limits.maxRefusedInARow) {
      log(`connection ${conn.id}: closed after ${conn.refusedInARow} refused requests in a row`);
      conn.ws.close(1008, 'rate limit exceeded');
      return;
    }
    sendError(conn, id, {
      code: RPC_ERRORS.rateLimited,
      message,
      data: { error: 'rate_limited', aadsts: null, correlationId: randomUUID(), subError },
    });
  };

  const onMessage = (conn: Conn, data: RawData, isBinary: boolean) => {
    if (isBinary) {
      // RFC 6455 §7.4.1: 1003, a type of data the endpoint cannot accept.
      conn.ws.close(1003, 'JSON-RPC messages are text');
      return;
    }
    const text = Array.isArray(data)
      ? Buffer.concat(data).toString('utf8')
      : Buffer.isBuffer(data)
        ? data.toString('utf8')
        : Buffer.from(data).toString('utf8');
    const allowed = admit(conn);
    const parsed = parseMessage(text, limits.maxJsonDepth);
    if (parsed.kind === 'notification') return;
    if (parsed.kind === 'invalid') {
      if (!allowed) return refused(conn, parsed.id, 'too_many_requests', 'Rate limit exceeded');
      conn.refusedInARow = 0;
      return sendError(conn, parsed.id, protocolError(parsed.code, parsed.message, parsed.field));
    }
    const { id, method, params } = parsed.request;
    if (!allowed) return refused(conn, id, 'too_many_requests', 'Rate limit exceeded');
    if (conn.pending >= limits.maxPendingPerConnection)
      return refused(
        conn,
        id,
        'too_many_pending',
        `Rate limit exceeded: at most ${limits.maxPendingPerConnection} requests in flight`,
      );
    conn.refusedInARow = 0;
    conn.pending++;
    const call = service.call(method, params, {
      mayAskCloud: () => take(conn.cloud, limits.cloudRequestsPerSecond, limits.cloudBurst),
    });
    inFlight.add(call);
    call.finally(() => inFlight.delete(call)).catch(() => {});
    call.then(
      (result) => {
        conn.pending--;
        send(conn, resultResponse(id, result));
      },
      (err: unknown) => {
        conn.pending--;
        const f =
          err instanceof RpcFailure
            ? err
            : new RpcFailure(RPC_ERRORS.internalError, 'Internal error', {
                error: 'internal_error',
                aadsts: null,
                correlationId: randomUUID(),
                subError: null,
              });
        sendError(conn, id, { code: f.rpcCode, message: f.message, data: f.data });
      },
    );
  };

  const serve = (ws: WebSocket) => {
    const conn: Conn = {
      id: nextId++,
      ws,
      requests: { tokens: limits.burst, refilledAt: clock() },
      cloud: { tokens: limits.cloudBurst, refilledAt: clock() },
      pending: 0,
      refusedInARow: 0,
    };
    log(`connection ${conn.id}: open`);
    // ws reports protocol violations (oversize message, bad frame, invalid UTF-8) here and closes
    // the connection itself with the matching code; without a listener they would crash the
    // process.
    ws.on('error', (err: Error & { code?: string }) =>
      log(`connection ${conn.id}: ${err.code ?? 'error'}`),
    );
    ws.on('message', (data, isBinary) => {
      try {
        onMessage(conn, data, isBinary);
      } catch (err) {
        log(`connection ${conn.id}: internal error: ${(err as Error).stack ?? String(err)}`);
        ws.close(1011, 'internal error');
      }
    });
    ws.on('close', (code) => log(`connection ${conn.id}: closed (${code})`));
  };

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen({ host: BROKER_HOST, port, exclusive: true }, () => {
      http.off('error', reject);
      resolve();
    });
  }).catch((err: Error & { code?: string }) => {
    throw new BrokerError(`cannot listen on ${BROKER_HOST}:${port} (${err.code ?? err.message})`, {
      cause: err,
    });
  });
  http.on('error', (err) => log(`server error: ${err.message}`));
  boundPort = (http.address() as AddressInfo).port;
  const mine = { port: boundPort, secret };
  let brokerFile: string;
  try {
    brokerFile = await writeBrokerFile(deviceDir, mine);
  } catch (err) {
    await new Promise<void>((r) => http.close(() => r()));
    throw err;
  }
  log(`listening on ${BROKER_HOST}:${boundPort}`);

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      await removeBrokerFile(deviceDir, mine);
      const httpClosed = new Promise<void>((r) => http.close(() => r()));
      http.closeAllConnections();
      const clientsClosed = [...wss.clients].map(
        (ws) =>
          new Promise<void>((r) => {
            if (ws.readyState === ws.CLOSED) return r();
            ws.once('close', () => r());
            ws.close(1001, 'broker shutting down');
          }),
      );
      // A client that does not complete the closing handshake (RFC 6455 §7.1.1) is cut off.
      const timer = setTimeout(() => {
        for (const ws of wss.clients) ws.terminate();
      }, 2_000);
      await Promise.all([httpClosed, ...clientsClosed]);
      clearTimeout(timer);
      await new Promise<void>((r) => wss.close(() => r()));
      await Promise.allSettled([...inFlight]);
      await cache.flush();
    })();
    return closing;
  };

  return {
    port: boundPort,
    url: `ws://${BROKER_HOST}:${boundPort}/`,
    brokerFile,
    stats: () => ({ connections: wss.clients.size, cacheEntries: cache.size }),
    close,
  };
}
