/**
 * A TPM reached over TCP: this project's TPM server, swtpm, or the MS/IBM reference simulator.
 *
 * 'raw' sends bare TPM commands and reads bare responses, sized by their 10-byte header: swtpm's
 * data-port protocol, which this project's server also speaks (docs/tpm.md B.3).
 * 'mssim' speaks the MS simulator protocol (docs/tpm.md B.1/B.2): at connect it sends POWER_ON and
 * NV_ON on the platform port (port + 1), as tpm2-tss's mssim TCTI does, then wraps each command
 * in a TPM_SEND_COMMAND frame. Unlike that TCTI, the 9-byte frame header and the command go out in
 * one write, with TCP_NODELAY, so no command waits on the peer's delayed ACK (docs/tpm.md B.2,
 * "Nagle stall").
 *
 * One connection is kept open and reused; after any failure it is dropped and the next send
 * opens a new one. A failed command is never retried: TPM commands are not idempotent.
 */
import net from 'node:net';
import { TpmError, TpmTransportError } from '../errors.ts';
import { isTpm2Tag, MsDataCode, MsPlatformCode, TPM_HEADER_SIZE, u32 } from '../server/protocol.ts';
import { SerialQueue } from '../server/serial-queue.ts';
import type { TpmTransport } from './transport.ts';

export type TcpFraming = 'raw' | 'mssim';

export interface TcpTransportOptions {
  /** Default '127.0.0.1'. */
  host?: string;
  /** The data port; with 'mssim' the platform port is port + 1. Default 2321. */
  port?: number;
  /** Default 'raw'. */
  framing?: TcpFraming;
  /** Bounds everything before the first command can go out: TCP connect(s) and, for 'mssim', the platform signals. Default 5000. */
  connectTimeoutMs?: number;
  /** Bounds one command: from writing it to having read the whole response. Default 30000. */
  ioTimeoutMs?: number;
}

/**
 * Largest response accepted. TPMs report MAX_RESPONSE_SIZE 4096 (swtpm, docs/tpm.md A.7); the
 * reference simulator's buffer is larger, and 64 KiB leaves room without trusting a peer's size.
 */
export const MAX_TCP_RESPONSE_SIZE = 64 * 1024;

const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
const DEFAULT_IO_TIMEOUT_MS = 30_000;
/** How long close() waits for the peer to acknowledge the end of the connection. */
const CLOSE_WAIT_MS = 1000;

export class TcpTransport implements TpmTransport {
  readonly host: string;
  readonly port: number;
  readonly framing: TcpFraming;
  readonly connectTimeoutMs: number;
  readonly ioTimeoutMs: number;
  readonly #queue = new SerialQueue();
  #channel: Channel | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: TcpTransportOptions = {}) {
    const {
      host = '127.0.0.1',
      port = 2321,
      framing = 'raw',
      connectTimeoutMs = DEFAULT_CONNECT_TIMEOUT_MS,
      ioTimeoutMs = DEFAULT_IO_TIMEOUT_MS,
    } = options;
    if (typeof host !== 'string' || host === '') {
      throw new TypeError('host must be a non-empty string');
    }
    if (framing !== 'raw' && framing !== 'mssim') {
      throw new RangeError(`framing must be 'raw' or 'mssim', got ${String(framing)}`);
    }
    const maxPort = framing === 'mssim' ? 65534 : 65535;
    if (!Number.isInteger(port) || port < 1 || port > maxPort) {
      throw new RangeError(`port must be an integer in 1..${maxPort}, got ${port}`);
    }
    for (const [name, value] of [
      ['connectTimeoutMs', connectTimeoutMs],
      ['ioTimeoutMs', ioTimeoutMs],
    ] as const) {
      // setTimeout clamps anything above 2^31-1 ms to 1 ms, which would turn a long timeout into none.
      if (!Number.isInteger(value) || value < 1 || value > 0x7fffffff) {
        throw new RangeError(`${name} must be an integer in 1..${0x7fffffff}, got ${value}`);
      }
    }
    this.host = host;
    this.port = port;
    this.framing = framing;
    this.connectTimeoutMs = connectTimeoutMs;
    this.ioTimeoutMs = ioTimeoutMs;
  }

  send(command: Uint8Array): Promise<Uint8Array> {
    if (!(command instanceof Uint8Array)) {
      return Promise.reject(new TypeError('command must be a Uint8Array'));
    }
    if (this.#closed) return Promise.reject(transportError('transport is closed'));
    const frame =
      this.framing === 'raw'
        ? Buffer.from(command)
        : // TPM_SEND_COMMAND, locality 0 (what the mssim TCTI sends), u32 size, command.
          Buffer.concat([u32(MsDataCode.SEND_COMMAND), Buffer.of(0), u32(command.length), command]);
    const parse = this.framing === 'raw' ? parseRawResponse : parseMsResponse;
    return this.#queue.run(async () => {
      const channel = await this.#connected();
      const response = await channel.exchange(
        frame,
        parse,
        this.ioTimeoutMs,
        `no complete response from ${channel.label} within ${this.ioTimeoutMs} ms`,
      );
      return new Uint8Array(response);
    });
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= this.#queue.run(async () => {
      const channel = this.#channel;
      this.#channel = undefined;
      // go-tpm ends an MS session with TPM_SESSION_END; the mssim TCTI just closes. Both work.
      await channel?.shutdown(this.framing === 'mssim' ? u32(MsDataCode.SESSION_END) : undefined);
    });
    return this.#closing;
  }

  async #connected(): Promise<Channel> {
    // A connection the peer closed while idle is noticed when its FIN is read, and replaced here.
    // If the FIN is still in flight when a command is written, that send fails instead: it is not
    // retried, because the peer may have run the command before closing.
    if (this.#channel?.usable) return this.#channel;
    this.#channel = undefined;
    this.#channel = await this.#open();
    return this.#channel;
  }

  async #open(): Promise<Channel> {
    const deadline = Date.now() + this.connectTimeoutMs;
    const remaining = () => Math.max(1, deadline - Date.now());
    const timeoutText = (what: string) =>
      `${what} did not complete within the connect timeout of ${this.connectTimeoutMs} ms`;
    const data = new Channel(
      await connectSocket(this.host, this.port, remaining(), timeoutText),
      `${this.host}:${this.port}`,
    );
    if (this.framing === 'mssim') {
      try {
        await this.#powerUp(remaining, timeoutText);
      } catch (err) {
        data.destroy();
        throw err;
      }
    }
    return data;
  }

  /** POWER_ON then NV_ON on the platform port, each answered by u32 0 (tcti-mssim.c simulator_setup). */
  async #powerUp(remaining: () => number, timeoutText: (what: string) => string): Promise<void> {
    const platformPort = this.port + 1;
    const platform = new Channel(
      await connectSocket(this.host, platformPort, remaining(), timeoutText),
      `${this.host}:${platformPort}`,
    );
    try {
      for (const [code, name] of [
        [MsPlatformCode.POWER_ON, 'POWER_ON'],
        [MsPlatformCode.NV_ON, 'NV_ON'],
      ] as const) {
        await platform.exchange(
          u32(code),
          (buf) => parsePlatformAck(buf, name),
          remaining(),
          timeoutText(`platform ${name} on ${platform.label}`),
        );
      }
    } catch (err) {
      platform.destroy();
      throw err;
    }
    // The platform port is not needed after power-up. SESSION_END lets a single-client server
    // (the reference serves one client per port) take the next client; go-tpm does the same.
    void platform.shutdown(u32(MsPlatformCode.SESSION_END));
  }
}

/** A parser returns the message once it is complete, undefined while bytes are missing, or throws. */
type Parser = (buf: Buffer) => Buffer | undefined;

/** One TCP connection carrying strict request/response exchanges. */
class Channel {
  readonly socket: net.Socket;
  readonly label: string;
  #buf: Buffer = Buffer.alloc(0);
  #pending:
    | {
        parse: Parser;
        resolve: (response: Buffer) => void;
        reject: (err: Error) => void;
        timer: NodeJS.Timeout;
      }
    | undefined;
  /** Set once the connection may no longer be used; it is never revived. */
  #broken: TpmError | undefined;

  constructor(socket: net.Socket, label: string) {
    this.socket = socket;
    this.label = label;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) =>
      this.#fail(transportError(`${label}: ${err.code ?? err.message}`, err)),
    );
    // 'end' is the peer's FIN: no response can follow it, so the channel is finished already.
    const onPeerClosed = () =>
      this.#fail(
        transportError(
          this.#pending
            ? `${label} closed the connection before the full response`
            : `${label} closed the connection`,
        ),
      );
    socket.on('end', onPeerClosed);
    socket.on('close', onPeerClosed);
  }

  get usable(): boolean {
    return this.#broken === undefined && !this.socket.destroyed;
  }

  /** Writes `request` and resolves with the parsed reply; any failure breaks the channel. */
  exchange(
    request: Buffer,
    parse: Parser,
    timeoutMs: number,
    timeoutText: string,
  ): Promise<Buffer> {
    if (this.#broken) return Promise.reject(this.#broken);
    if (this.#pending) {
      return Promise.reject(new Error('Channel.exchange called while an exchange is pending'));
    }
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => this.#fail(transportError(timeoutText)), timeoutMs);
      this.#pending = { parse, resolve, reject, timer };
      // One write per frame: the whole request leaves in one segment (docs/tpm.md B.2).
      this.socket.write(request);
    });
  }

  /** Sends `last` (if any), half-closes, and waits briefly for the peer to close too. */
  async shutdown(last?: Buffer): Promise<void> {
    if (!this.usable) {
      this.destroy();
      return;
    }
    this.#broken = transportError(`${this.label}: connection closed`);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.socket.destroy(), CLOSE_WAIT_MS);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      if (last) this.socket.write(last);
      this.socket.end();
    });
  }

  destroy(): void {
    this.#fail(transportError(`${this.label}: connection closed`));
  }

  #onData(chunk: Buffer): void {
    const pending = this.#pending;
    if (!pending) {
      // Bytes nobody asked for: the stream is out of step, so the connection cannot be trusted.
      if (!this.#broken) this.#fail(transportError(`${this.label} sent data without a request`));
      return;
    }
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    let message: Buffer | undefined;
    try {
      message = pending.parse(this.#buf);
    } catch (err) {
      this.#fail(err instanceof TpmError ? err : transportError(String(err)));
      return;
    }
    if (message === undefined) return;
    clearTimeout(pending.timer);
    this.#pending = undefined;
    this.#buf = Buffer.alloc(0);
    pending.resolve(message);
  }

  #fail(err: TpmError): void {
    this.#broken ??= err;
    this.#buf = Buffer.alloc(0);
    this.socket.destroy();
    const pending = this.#pending;
    if (pending) {
      this.#pending = undefined;
      clearTimeout(pending.timer);
      pending.reject(err);
    }
  }
}

function connectSocket(
  host: string,
  port: number,
  timeoutMs: number,
  timeoutText: (what: string) => string,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(transportError(timeoutText(`connecting to ${host}:${port}`)));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      // Also set explicitly: the connect option is only honoured on newer Node releases.
      socket.setNoDelay(true);
      resolve(socket);
    });
    const onError = (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      reject(transportError(`cannot connect to ${host}:${port}: ${err.code ?? err.message}`, err));
    };
    socket.once('error', onError);
  });
}

/** A bare TPM response: tag, u32 size (10 .. MAX_TCP_RESPONSE_SIZE), the rest. */
function parseRawResponse(buf: Buffer): Buffer | undefined {
  if (buf.length >= 2) checkTag(buf.readUInt16BE(0));
  if (buf.length < 6) return undefined;
  const size = checkSize(buf.readUInt32BE(2));
  if (buf.length < size) return undefined;
  if (buf.length > size) throw malformed(`${buf.length - size} bytes after the response`);
  return Buffer.from(buf);
}

/** TPM_SEND_COMMAND reply (docs/tpm.md B.1): u32 size, response, u32 0. */
function parseMsResponse(buf: Buffer): Buffer | undefined {
  if (buf.length < 4) return undefined;
  const size = checkSize(buf.readUInt32BE(0));
  if (buf.length >= 6) checkTag(buf.readUInt16BE(4));
  if (buf.length >= 10 && buf.readUInt32BE(6) !== size) {
    throw malformed(`frame size ${size} but TPM header size ${buf.readUInt32BE(6)}`);
  }
  if (buf.length < 4 + size + 4) return undefined;
  if (buf.length > 4 + size + 4) throw malformed(`${buf.length - size - 8} bytes after the frame`);
  const trailer = buf.readUInt32BE(4 + size);
  if (trailer !== 0) throw malformed(`frame ends with ${trailer}, not 0`);
  return Buffer.from(buf.subarray(4, 4 + size));
}

/** A platform signal's reply: u32 0. */
function parsePlatformAck(buf: Buffer, name: string): Buffer | undefined {
  if (buf.length < 4) return undefined;
  if (buf.length > 4) throw malformed(`${buf.length - 4} bytes after the ${name} reply`);
  const result = buf.readUInt32BE(0);
  if (result !== 0) {
    throw transportError(`platform command ${name} failed with ${result}`);
  }
  return buf;
}

function checkTag(tag: number): void {
  if (!isTpm2Tag(tag)) {
    throw malformed(`response tag 0x${tag.toString(16).padStart(4, '0')} is not a TPM 2.0 tag`);
  }
}

function checkSize(size: number): number {
  if (size < TPM_HEADER_SIZE || size > MAX_TCP_RESPONSE_SIZE) {
    throw malformed(`response size ${size} outside ${TPM_HEADER_SIZE}..${MAX_TCP_RESPONSE_SIZE}`);
  }
  return size;
}

function malformed(detail: string): TpmError {
  return transportError(`malformed response framing: ${detail}`);
}

function transportError(message: string, cause?: unknown): TpmError {
  return new TpmTransportError(message, cause === undefined ? undefined : { cause });
}
