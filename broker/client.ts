/**
 * The client side of the broker: connects to 127.0.0.1 with the secret from broker.json,
 * sends JSON-RPC 2.0 requests (one per message, ids unique per connection) and matches the
 * answers by id (§5: the response carries the request's id; answers may come in any order).
 * Every call has a timeout. Failures are coded: ERR_BROKER for the connection (cannot reach,
 * refused, closed, timed out), ERR_BROKER_RPC for an error the broker answered, with its JSON-RPC
 * code (`rpcCode`) and `data` ({error, aadsts, correlationId, subError}).
 *
 * Used by the client stubs (clients/), the tests and the benchmark.
 */
import { WebSocket } from 'ws';
import type { BrokerErrorData } from './errors.ts';
import { BrokerError, BrokerRpcError } from './errors.ts';
import { readBrokerFile } from './files.ts';
import type { TokenResult } from './service.ts';

export type { TokenResult } from './service.ts';

export interface BrokerAccount {
  readonly id: string;
  readonly upn: string;
  readonly tenantId: string;
}

export interface BrokerCookie {
  readonly name: string;
  readonly data: string;
  readonly p3pHeader: string;
  readonly flags: number;
}

type Target = { resource: string; scopes?: undefined } | { scopes: string[]; resource?: undefined };

export type SilentRequest = Target & {
  clientId: string;
  accountId?: string;
  clientVersion?: string;
  /** A GUID sent to the cloud as client-request-id; the result and the sign-in log carry it. */
  correlationId?: string;
  forceRefresh?: boolean;
};

export type InteractiveRequest = Target & {
  clientId: string;
  username: string;
  password: string;
  clientVersion?: string;
  /** A GUID sent to the cloud as client-request-id. */
  correlationId?: string;
};

export interface BrokerClientOptions {
  readonly port: number;
  readonly secret: string;
  /** Per call (default 30 s: a cache miss is a round trip to the cloud). */
  readonly timeoutMs?: number;
  readonly connectTimeoutMs?: number;
  /** Largest answer accepted (default 1 MiB). */
  readonly maxMessageBytes?: number;
}

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

const DEFAULT_TIMEOUT_MS = 30_000;

export class BrokerClient {
  private readonly ws: WebSocket;
  private readonly pending = new Map<number, Pending>();
  private readonly timeoutMs: number;
  private nextId = 1;
  private closedWith: BrokerError | undefined;

  private constructor(ws: WebSocket, timeoutMs: number) {
    this.ws = ws;
    this.timeoutMs = timeoutMs;
    ws.on('message', (data) => this.onMessage(data.toString()));
    ws.on('close', (code, reason) => {
      this.closedWith = new BrokerError(
        `the broker connection closed (${code}${reason.length ? `: ${reason.toString()}` : ''})`,
        { closeCode: code },
      );
      for (const [id, p] of this.pending) {
        clearTimeout(p.timer);
        this.pending.delete(id);
        p.reject(this.closedWith);
      }
    });
    ws.on('error', () => {});
  }

  /** Connects to the broker of the device whose directory is `deviceDir` (reads broker.json). */
  static async forDevice(
    deviceDir: string,
    options: Omit<BrokerClientOptions, 'port' | 'secret'> = {},
  ): Promise<BrokerClient> {
    const { port, secret } = await readBrokerFile(deviceDir);
    return BrokerClient.connect({ ...options, port, secret });
  }

  static connect(options: BrokerClientOptions): Promise<BrokerClient> {
    const ws = new WebSocket(`ws://127.0.0.1:${options.port}/`, {
      headers: { authorization: `Bearer ${options.secret}` },
      maxPayload: options.maxMessageBytes ?? 1024 * 1024,
      perMessageDeflate: false,
      handshakeTimeout: options.connectTimeoutMs ?? 10_000,
      followRedirects: false,
    });
    return new Promise((resolve, reject) => {
      const fail = (err: BrokerError) => {
        ws.removeAllListeners();
        ws.on('error', () => {});
        ws.terminate();
        reject(err);
      };
      ws.once('unexpected-response', (_req, res) =>
        fail(new BrokerError(`the broker refused the connection (HTTP ${res.statusCode})`)),
      );
      ws.once('error', (err: Error & { code?: string }) =>
        fail(
          new BrokerError(
            `cannot reach the broker on 127.0.0.1:${options.port} (${err.code ?? err.message})`,
            { cause: err },
          ),
        ),
      );
      ws.once('open', () => {
        ws.removeAllListeners();
        resolve(new BrokerClient(ws, options.timeoutMs ?? DEFAULT_TIMEOUT_MS));
      });
    });
  }

  /** Sends one request and waits for its answer. */
  call<T = unknown>(
    method: string,
    params?: Record<string, unknown>,
    options: { timeoutMs?: number } = {},
  ): Promise<T> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const id = this.nextId++;
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new BrokerError(`${method}: no answer from the broker in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.ws.send(
        JSON.stringify({ jsonrpc: '2.0', id, method, ...(params ? { params } : {}) }),
        (err) => {
          if (!err) return;
          clearTimeout(timer);
          this.pending.delete(id);
          reject(new BrokerError(`${method}: cannot send to the broker`, { cause: err }));
        },
      );
    });
  }

  getAccounts(): Promise<{ accounts: BrokerAccount[] }> {
    return this.call('getAccounts');
  }

  acquireTokenSilent(request: SilentRequest): Promise<TokenResult> {
    return this.call('acquireTokenSilent', { ...request });
  }

  acquireTokenInteractive(request: InteractiveRequest): Promise<TokenResult> {
    return this.call('acquireTokenInteractive', { ...request });
  }

  signOut(accountId: string): Promise<{ accountId: string; removedTokens: number }> {
    return this.call('signOut', { accountId });
  }

  getCookieInfoForUri(uri: string): Promise<{ cookies: BrokerCookie[] }> {
    return this.call('getCookieInfoForUri', { uri });
  }

  getDeviceStatus(): Promise<Record<string, unknown>> {
    return this.call('getDeviceStatus');
  }

  /** Closes the connection (1000) and fails the calls still waiting. */
  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.ws.once('close', () => resolve());
      this.ws.close(1000);
      setTimeout(() => this.ws.terminate(), 2_000).unref();
    });
  }

  private onMessage(text: string): void {
    let msg: {
      jsonrpc?: unknown;
      id?: unknown;
      result?: unknown;
      error?: { code?: unknown; message?: unknown; data?: unknown };
    };
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof msg?.id !== 'number') return;
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.error !== undefined) {
      const code = typeof msg.error.code === 'number' ? msg.error.code : 0;
      const message =
        typeof msg.error.message === 'string' ? msg.error.message : 'the broker answered an error';
      p.reject(new BrokerRpcError(code, message, msg.error.data as BrokerErrorData | undefined));
    } else {
      p.resolve(msg.result);
    }
  }
}
