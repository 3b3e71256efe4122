/**
 * The TPM simulator's TCP front end: a data port and a platform port (data port + 1) that serve
 * both tpm2-tss's `mssim` TCTI (Microsoft/IBM simulator protocol) and its `swtpm` TCTI (swtpm's
 * protocol), as recommended in docs/tpm.md B.4.
 *
 * Data port. The framing is detected once per connection from its first bytes, the way swtpm's
 * tpmlib_handle_tcg_tpm2_cmd_header() does (docs/tpm.md B.3): a TPM 2.0 tag (0x8001/0x8002), or
 * any first u32 that is not an MS data-port code, means raw TPM framing (command in, response
 * out, sizes from the 10-byte headers); a first u32 that is an MS data-port code means MS framing
 * (docs/tpm.md B.1). No client mixes the two on one connection: the swtpm TCTI opens a new
 * connection per command and the mssim TCTI only ever sends MS frames, so deciding per message
 * would only add ways to misread garbage.
 *
 * Platform port. MS platform signals (docs/tpm.md B.2) plus the one swtpm control command the
 * tss swtpm TCTI sends, SET_LOCALITY (docs/tpm.md A.5, B.3). Codes 1 and 2 mean different things
 * in the two protocols; see PlatformConnection.
 *
 * One TPM: every command and power signal from every connection runs through one FIFO queue,
 * and the device keeps its state across connections because the swtpm TCTI reconnects for every
 * command (docs/tpm.md A.6).
 */
import net from 'node:net';
import { type TpmError, TpmServerConfigError } from '../errors.ts';
import type { TpmDevice } from './device.ts';
import {
  isTpm2Tag,
  MS_ENDPOINT_IN_RAW_MODE,
  MS_ENDPOINT_PLATFORM_AVAILABLE,
  MS_ENDPOINT_SUPPORTS_PP,
  MS_SERVER_VERSION,
  MsDataCode,
  MsPlatformCode,
  SWTPM_BAD_LOCALITY,
  SwtpmCtrlCode,
  TPM_HEADER_SIZE,
  TPM_RC_COMMAND_SIZE,
  TPM_RC_FAILURE,
  tpmErrorResponse,
  u32,
} from './protocol.ts';
import { SerialQueue } from './serial-queue.ts';

export interface TpmServerOptions {
  /** The TPM that serves every connection. The caller powers it on (the swtpm TCTI never does). */
  device: TpmDevice;
  /** Address to bind. Only loopback (127.0.0.0/8, ::1, 'localhost') unless allowRemote. */
  host?: string;
  /** Data port; the platform port is port + 1. 0 picks a free pair. */
  port?: number;
  /** Allows a non-loopback host. The ports carry TPM commands without any authentication. */
  allowRemote?: boolean;
  /** Largest TPM command accepted, in bytes (10 .. 1 MiB). Larger ones get TPM_RC_COMMAND_SIZE. */
  maxCommandSize?: number;
  /** Receives one line per notable event (refused frame, device failure, socket error). Never command bytes. */
  log?: (line: string) => void;
}

export interface TpmServer {
  readonly dataPort: number;
  readonly platformPort: number;
  /** The address both ports are bound to, e.g. '127.0.0.1'. */
  readonly address: string;
  /** Stops listening, drops every client and waits for the command in progress, if any. */
  close(): Promise<void>;
}

const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_PORT = 2321;
const DEFAULT_MAX_COMMAND_SIZE = 4096;
/** The MS reference server's buffer (TcpServer.c MAX_BUFFER); nothing needs a larger command. */
const MAX_COMMAND_SIZE_LIMIT = 1024 * 1024;
/**
 * A connection's buffer may hold one partial frame plus whatever arrived before its socket was
 * paused for a running command; one socket read is at most 64 KiB.
 */
const BUFFER_SLACK = 64 * 1024;
/** After a refusal, how long a peer may take to close before it is cut off. */
const CLOSE_GRACE_MS = 2000;
/** How long a lone platform code 2 waits for the u32 that would make it swtpm's CMD_INIT. */
const INIT_FLAGS_WINDOW_MS = 25;
/** Attempts to find a free (port, port + 1) pair when port 0 is asked for. */
const PORT_PAIR_ATTEMPTS = 32;

const MS_DATA_CODES: ReadonlySet<number> = new Set(Object.values(MsDataCode));

/**
 * True for an address that never leaves the machine: 127.0.0.0/8, ::1 (in any spelling,
 * including IPv4-mapped 127/8) and the name 'localhost'. Other names are not resolved here, so
 * they count as remote.
 */
export function isLoopbackHost(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  const family = net.isIP(host);
  if (family === 0) return false;
  const loopback = new net.BlockList();
  loopback.addSubnet('127.0.0.0', 8, 'ipv4');
  loopback.addAddress('::1', 'ipv6');
  return loopback.check(host, family === 4 ? 'ipv4' : 'ipv6');
}

/** Throws ERR_SERVER_CONFIG for a non-loopback host unless allowRemote. */
export function checkServerHost(host: string, allowRemote: boolean): void {
  if (typeof host !== 'string') throw new TypeError('host must be a string');
  if (host === '') throw new TpmServerConfigError('host must not be empty');
  if (!allowRemote && !isLoopbackHost(host)) {
    throw new TpmServerConfigError(
      `refusing to listen on non-loopback address ${host}: the TPM ports have no authentication (use allowRemote to override)`,
    );
  }
}

/** Starts the data and platform listeners; resolves once both are bound. */
export async function startTpmServer(options: TpmServerOptions): Promise<TpmServer> {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('options must be an object');
  }
  const {
    device,
    host = DEFAULT_HOST,
    port = DEFAULT_PORT,
    allowRemote = false,
    maxCommandSize = DEFAULT_MAX_COMMAND_SIZE,
    log,
  } = options;
  if (
    typeof device !== 'object' ||
    device === null ||
    typeof device.execute !== 'function' ||
    typeof device.powerOn !== 'function' ||
    typeof device.powerOff !== 'function' ||
    typeof device.cancel !== 'function'
  ) {
    throw new TypeError('device must implement TpmDevice');
  }
  if (log !== undefined && typeof log !== 'function') throw new TypeError('log must be a function');
  if (typeof allowRemote !== 'boolean') throw new TypeError('allowRemote must be a boolean');
  if (typeof port !== 'number') throw new TypeError('port must be a number');
  if (typeof maxCommandSize !== 'number') throw new TypeError('maxCommandSize must be a number');
  checkServerHost(host, allowRemote);
  // The platform port is port + 1, so the data port can be at most 65534.
  if (!Number.isInteger(port) || port < 0 || port > 65534) {
    throw new TpmServerConfigError(`port must be an integer in 0..65534, got ${port}`);
  }
  if (
    !Number.isInteger(maxCommandSize) ||
    maxCommandSize < TPM_HEADER_SIZE ||
    maxCommandSize > MAX_COMMAND_SIZE_LIMIT
  ) {
    throw new TpmServerConfigError(
      `maxCommandSize must be an integer in ${TPM_HEADER_SIZE}..${MAX_COMMAND_SIZE_LIMIT}, got ${maxCommandSize}`,
    );
  }

  const core = new ServerCore(device, maxCommandSize, log);
  const { data, platform } = await listenPair(core, host, port);
  const bound = data.address() as net.AddressInfo;
  // 'localhost' is resolved by listen(); make sure it really landed on a loopback address.
  if (!allowRemote && !isLoopbackHost(bound.address)) {
    await Promise.all([closeListener(data), closeListener(platform)]);
    throw new TpmServerConfigError(`${host} resolved to non-loopback address ${bound.address}`);
  }
  const platformPort = (platform.address() as net.AddressInfo).port;

  let closing: Promise<void> | undefined;
  return {
    dataPort: bound.port,
    platformPort,
    address: bound.address,
    close(): Promise<void> {
      closing ??= (async () => {
        core.closed = true;
        const stopped = Promise.all([closeListener(data), closeListener(platform)]);
        core.destroyAll();
        await stopped;
        // A command already running on the device finishes; queued ones are skipped.
        await core.queue.idle();
      })();
      return closing;
    },
  };
}

async function listenPair(
  core: ServerCore,
  host: string,
  port: number,
): Promise<{ data: net.Server; platform: net.Server }> {
  const attempts = port === 0 ? PORT_PAIR_ATTEMPTS : 1;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const data = core.createListener('data');
    try {
      await listen(data, host, port);
    } catch (err) {
      throw listenError(host, port, err);
    }
    const { address, port: dataPort } = data.address() as net.AddressInfo;
    if (dataPort >= 65535) {
      await closeListener(data);
      continue;
    }
    const platform = core.createListener('platform');
    try {
      // The address the data port got, so that a name like 'localhost' cannot put the two
      // ports on different addresses.
      await listen(platform, address, dataPort + 1);
      return { data, platform };
    } catch (err) {
      await closeListener(data);
      // With an ephemeral data port, a taken port + 1 just means: try another pair.
      if (port === 0 && (err as NodeJS.ErrnoException).code === 'EADDRINUSE') continue;
      throw listenError(host, dataPort + 1, err);
    }
  }
  throw new TpmServerConfigError(
    `no free pair of consecutive ports on ${host} after ${PORT_PAIR_ATTEMPTS} attempts`,
  );
}

function listen(server: net.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ host, port });
  });
}

function listenError(host: string, port: number, err: unknown): TpmError {
  const code = (err as NodeJS.ErrnoException).code ?? String(err);
  return new TpmServerConfigError(`cannot listen on ${host}:${port}: ${code}`, {
    cause: err,
  });
}

function closeListener(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
  });
}

/** State shared by every connection: the device, its queue, and the swtpm locality. */
class ServerCore {
  readonly queue = new SerialQueue();
  closed = false;
  /**
   * Locality for raw-framed commands. swtpm keeps it as TPM-wide state set by the control
   * channel's SET_LOCALITY (tpm_ioctl.h); MS frames carry their own locality byte instead.
   */
  rawLocality = 0;
  /** For MS GET_COMMAND_RESPONSE_SIZES: largest command/response since the last query. */
  private sizes = { commandSize: 0, commandCode: 0, responseSize: 0, responseCode: 0 };
  private readonly sockets = new Set<net.Socket>();
  readonly device: TpmDevice;
  readonly maxCommandSize: number;
  private readonly logSink: ((line: string) => void) | undefined;

  constructor(
    device: TpmDevice,
    maxCommandSize: number,
    logSink: ((line: string) => void) | undefined,
  ) {
    this.device = device;
    this.maxCommandSize = maxCommandSize;
    this.logSink = logSink;
  }

  log(line: string): void {
    if (!this.logSink) return;
    try {
      this.logSink(line);
    } catch {
      // A broken log callback must not take the server down with it.
    }
  }

  createListener(kind: 'data' | 'platform'): net.Server {
    const server = net.createServer((socket) => this.accept(kind, socket));
    // Errors before 'listening' belong to listen() (a taken port is retried or reported); later
    // ones (e.g. EMFILE on accept) are logged.
    server.once('listening', () =>
      server.on('error', (err) => this.log(`${kind} listener error: ${describeError(err)}`)),
    );
    return server;
  }

  destroyAll(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  private accept(kind: 'data' | 'platform', socket: net.Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    // The mssim TCTI writes each frame as two small writes (docs/tpm.md B.2); replies go out as
    // one write each, and without Nagle they leave at once.
    socket.setNoDelay(true);
    if (kind === 'data') new DataConnection(this, socket);
    else new PlatformConnection(this, socket);
  }

  /** Runs one command on the device, in FIFO order with everything else. Never rejects. */
  runCommand(command: Buffer, locality: number, peer: string): Promise<Buffer> {
    return this.queue.run(async () => {
      if (this.closed) return tpmErrorResponse(TPM_RC_FAILURE);
      let response: Buffer;
      try {
        const out = await this.device.execute(command, locality);
        const problem = responseProblem(out);
        if (problem) {
          this.log(`${peer}: device returned a malformed response (${problem})`);
          response = tpmErrorResponse(TPM_RC_FAILURE);
        } else {
          response = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
        }
      } catch (err) {
        this.log(`${peer}: device failed a command: ${describeError(err)}`);
        response = tpmErrorResponse(TPM_RC_FAILURE);
      }
      this.recordSizes(command, response);
      return response;
    });
  }

  /** Runs a platform power operation in FIFO order with commands. Resolves false if it failed. */
  runPower(what: string, peer: string, operation: () => Promise<void>): Promise<boolean> {
    return this.queue.run(async () => {
      if (this.closed) return false;
      try {
        await operation();
        return true;
      } catch (err) {
        this.log(`${peer}: ${what} failed: ${describeError(err)}`);
        return false;
      }
    });
  }

  cancel(on: boolean, peer: string): void {
    // Not queued: it has to reach the device while the command it cancels is running.
    try {
      this.device.cancel(on);
    } catch (err) {
      this.log(`${peer}: cancel failed: ${describeError(err)}`);
    }
  }

  /**
   * GET_COMMAND_RESPONSE_SIZES reply body, laid out like the reference's CommandResponseSizes
   * struct that TcpServer.c copies from memory: sizes as host-order u32 (little-endian on every
   * platform the reference runs on), command and response codes as the bytes seen on the wire.
   * Reading resets the record, as in the reference.
   */
  takeSizes(): Buffer {
    const out = Buffer.alloc(16);
    out.writeUInt32LE(this.sizes.commandSize, 0);
    out.writeUInt32BE(this.sizes.commandCode, 4);
    out.writeUInt32LE(this.sizes.responseSize, 8);
    out.writeUInt32BE(this.sizes.responseCode, 12);
    this.sizes = { commandSize: 0, commandCode: 0, responseSize: 0, responseCode: 0 };
    return out;
  }

  private recordSizes(command: Buffer, response: Buffer): void {
    if (command.length > this.sizes.commandSize) {
      this.sizes.commandSize = command.length;
      this.sizes.commandCode = command.length >= 10 ? command.readUInt32BE(6) : 0;
    }
    if (response.length > this.sizes.responseSize) {
      this.sizes.responseSize = response.length;
      this.sizes.responseCode = response.readUInt32BE(6);
    }
  }
}

/** Why a device response cannot go on the wire, or undefined if it can. */
function responseProblem(out: unknown): string | undefined {
  if (!(out instanceof Uint8Array)) return 'not a Uint8Array';
  if (out.length < TPM_HEADER_SIZE) return `${out.length} bytes`;
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const size = view.getUint32(2);
  // Raw-framed clients read exactly the header's size, so a mismatch would desynchronise them.
  if (size !== out.length) return `header says ${size} bytes, got ${out.length}`;
  return undefined;
}

/** Error text for logs: the code and message only, never data the error might carry. */
function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code ? `${code}: ${err.message}` : `${err.name}: ${err.message}`;
  }
  return String(err);
}

/**
 * Reads one message at a time from a socket and hands it to step(). While a message is being
 * handled the socket is paused, so a client that pipelines gets TCP backpressure instead of an
 * ever-growing buffer; the buffer itself is capped.
 */
abstract class Connection {
  protected buf: Buffer = Buffer.alloc(0);
  /** Set once the connection is being closed: input is discarded from then on. */
  protected done = false;
  protected readonly peer: string;
  protected readonly core: ServerCore;
  protected readonly socket: net.Socket;
  private readonly bufferCap: number;
  private busy = false;
  private graceTimer: NodeJS.Timeout | undefined;

  constructor(core: ServerCore, socket: net.Socket, kind: string, bufferCap: number) {
    this.core = core;
    this.socket = socket;
    this.bufferCap = bufferCap;
    this.peer = `${kind} ${socket.remoteAddress}:${socket.remotePort}`;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.core.log(`${this.peer}: socket error: ${describeError(err)}`));
    socket.on('close', () => {
      this.done = true;
      this.buf = Buffer.alloc(0);
      clearTimeout(this.graceTimer);
      this.onClose();
    });
  }

  /** Handles the message at the head of `buf`. Returns false when more bytes are needed or the connection ended. */
  protected abstract step(): Promise<boolean>;

  protected onClose(): void {}

  protected pump(): void {
    if (this.busy || this.done) return;
    this.busy = true;
    void this.drain();
  }

  private async drain(): Promise<void> {
    try {
      while (!this.done && (await this.step())) {
        // step() consumed one message; look for the next.
      }
    } catch (err) {
      this.core.log(`${this.peer}: internal error, dropping connection: ${describeError(err)}`);
      this.socket.destroy();
    } finally {
      this.busy = false;
    }
  }

  private onData(chunk: Buffer): void {
    if (this.done) return;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    if (this.buf.length > this.bufferCap) {
      this.core.log(
        `${this.peer}: more than ${this.bufferCap} bytes buffered, dropping connection`,
      );
      this.done = true;
      this.socket.destroy();
      return;
    }
    this.pump();
  }

  /** Removes and returns the first n buffered bytes (a copy, so the device may keep it). */
  protected take(n: number): Buffer {
    const head = Buffer.from(this.buf.subarray(0, n));
    this.buf = this.buf.subarray(n);
    return head;
  }

  protected skip(n: number): void {
    this.buf = this.buf.subarray(n);
  }

  /** Runs an async handler with the socket paused, so input waits in the kernel meanwhile. */
  protected async paused<T>(work: Promise<T>): Promise<T> {
    this.socket.pause();
    try {
      return await work;
    } finally {
      if (!this.done) this.socket.resume();
    }
  }

  protected write(...parts: Buffer[]): void {
    if (this.done || this.socket.destroyed || !this.socket.writable) return;
    // One write per reply: a reply split over writes would meet the delayed-ACK stall.
    this.socket.write(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
  }

  /**
   * Sends what was written, then closes. Input is drained and discarded until the peer closes,
   * because closing a socket with unread input makes the kernel send RST, which can destroy the
   * reply (e.g. the TPM_RC_COMMAND_SIZE answer to an oversized command) before the peer reads it.
   */
  protected finish(): void {
    if (this.done) return;
    this.done = true;
    this.buf = Buffer.alloc(0);
    this.socket.end();
    this.socket.resume();
    this.graceTimer = setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS);
    this.graceTimer.unref();
  }
}

class DataConnection extends Connection {
  private framing: 'unknown' | 'raw' | 'ms' = 'unknown';

  constructor(core: ServerCore, socket: net.Socket) {
    // MS frame header (9) + command, plus the slack for bytes read before a pause.
    super(core, socket, 'data', core.maxCommandSize + 9 + BUFFER_SLACK);
  }

  protected override async step(): Promise<boolean> {
    if (this.framing === 'unknown') {
      if (this.buf.length < 2) return false;
      if (isTpm2Tag(this.buf.readUInt16BE(0))) {
        this.framing = 'raw';
      } else {
        if (this.buf.length < 4) return false;
        this.framing = MS_DATA_CODES.has(this.buf.readUInt32BE(0)) ? 'ms' : 'raw';
      }
    }
    return this.framing === 'raw' ? this.stepRaw() : this.stepMs();
  }

  /** swtpm's raw framing: a bare TPM command; its size is the u32 at offset 2. */
  private async stepRaw(): Promise<boolean> {
    if (this.buf.length < 6) return false;
    const size = this.buf.readUInt32BE(2);
    if (size < TPM_HEADER_SIZE || size > this.core.maxCommandSize) {
      // Without a trustworthy size the stream cannot be resynchronised: answer and hang up.
      this.core.log(
        `${this.peer}: command size ${size} outside ${TPM_HEADER_SIZE}..${this.core.maxCommandSize}, closing`,
      );
      this.write(tpmErrorResponse(TPM_RC_COMMAND_SIZE));
      this.finish();
      return false;
    }
    if (this.buf.length < size) return false;
    const command = this.take(size);
    const response = await this.paused(
      this.core.runCommand(command, this.core.rawLocality, this.peer),
    );
    this.write(response);
    return true;
  }

  /** MS data-port framing: u32 code, then a code-specific payload (TpmTcpProtocol.h, TcpServer.c). */
  private async stepMs(): Promise<boolean> {
    if (this.buf.length < 4) return false;
    const code = this.buf.readUInt32BE(0);
    switch (code) {
      case MsDataCode.SEND_COMMAND: {
        // u8 locality, u32 size, command -> u32 size, response, u32 0.
        if (this.buf.length < 9) return false;
        const locality = this.buf[4]!;
        const size = this.buf.readUInt32BE(5);
        if (size > this.core.maxCommandSize) {
          this.core.log(
            `${this.peer}: command size ${size} above ${this.core.maxCommandSize}, closing`,
          );
          this.writeMsResponse(tpmErrorResponse(TPM_RC_COMMAND_SIZE));
          this.finish();
          return false;
        }
        if (this.buf.length < 9 + size) return false;
        this.skip(9);
        const command = this.take(size);
        // The MS frame keeps the stream in sync, so a too-short command can be answered in place.
        const response =
          size < TPM_HEADER_SIZE
            ? tpmErrorResponse(TPM_RC_COMMAND_SIZE)
            : await this.paused(this.core.runCommand(command, locality, this.peer));
        this.writeMsResponse(response);
        return true;
      }
      case MsDataCode.REMOTE_HANDSHAKE: {
        if (this.buf.length < 8) return false;
        const clientVersion = this.buf.readUInt32BE(4);
        this.skip(8);
        if (clientVersion === 0) {
          // TcpServer.c rejects client version 0 and drops the connection.
          this.core.log(`${this.peer}: handshake with client version 0, closing`);
          this.finish();
          return false;
        }
        // 0x0D is what the reference sends. Physical presence is claimed like there: the PP
        // signals are accepted on the platform port (as no-ops), and clients know this value.
        const flags =
          MS_ENDPOINT_PLATFORM_AVAILABLE | MS_ENDPOINT_IN_RAW_MODE | MS_ENDPOINT_SUPPORTS_PP;
        this.write(u32(MS_SERVER_VERSION), u32(flags), u32(0));
        return true;
      }
      case MsDataCode.SET_ALTERNATIVE_RESULT:
        // u32 result, ignored by the reference too.
        if (this.buf.length < 8) return false;
        this.skip(8);
        this.write(u32(0));
        return true;
      case MsDataCode.HASH_START:
      case MsDataCode.HASH_END:
        // The H-CRTM hash sequence is a boot-time signal with no TpmDevice hook: acknowledged only.
        this.skip(4);
        this.write(u32(0));
        return true;
      case MsDataCode.HASH_DATA: {
        if (this.buf.length < 8) return false;
        const length = this.buf.readUInt32BE(4);
        if (length > this.core.maxCommandSize) {
          this.core.log(`${this.peer}: hash data of ${length} bytes, closing`);
          this.finish();
          return false;
        }
        if (this.buf.length < 8 + length) return false;
        this.skip(8 + length);
        this.write(u32(0));
        return true;
      }
      case MsDataCode.SESSION_END:
        // No reply; the client is done (the reference then waits for the next client).
        this.finish();
        return false;
      case MsDataCode.STOP:
        // The reference exits the whole simulator here. This server may share its process with
        // other services and holds TPM state that must be saved in order, so a peer on the data
        // port may end its own connection but not the process; stopping is the owner's call.
        this.core.log(`${this.peer}: TPM_STOP received, closing this client only`);
        this.finish();
        return false;
      default:
        // The reference prints "Unrecognized" and drops the connection.
        this.core.log(`${this.peer}: unknown MS data-port code ${code}, closing`);
        this.finish();
        return false;
    }
  }

  private writeMsResponse(response: Buffer): void {
    this.write(u32(response.length), response, u32(0));
  }
}

/**
 * The platform port. MS codes are single u32s with a u32 reply (TcpServer.c PlatformServer()).
 * swtpm's control channel is u32 code + payload with a u32 result first in the reply
 * (tpm_ioctl.h); the tss swtpm TCTI only sends SET_LOCALITY(0) (docs/tpm.md B.3).
 *
 * Where the protocols collide (docs/tpm.md B.3/B.4):
 * - 1 is MS POWER_ON and swtpm GET_CAPABILITY. The swtpm TCTI never sends GET_CAPABILITY, the
 *   mssim TCTI sends POWER_ON on every start, so 1 means POWER_ON.
 * - 2 is MS POWER_OFF (no payload) and swtpm CMD_INIT (+ u32 flags, sent in one write by
 *   Tss2_Tcti_Swtpm_Reset). MS clients wait for the reply to each signal before sending the next
 *   (tcti-mssim.c, go-tpm mssim.go), so 4 more bytes arriving with the 2, or within
 *   INIT_FLAGS_WINDOW_MS of it, can only be CMD_INIT: that is a TPM reset, done as power off then
 *   on, with one u32 result. Otherwise 2 is POWER_OFF. A lone POWER_OFF is answered after the
 *   window.
 * - 11 is MS NV_ON and swtpm RESET_TPMESTABLISHED (+ u8); the swtpm TCTI never sends the latter.
 */
class PlatformConnection extends Connection {
  private initTimer: NodeJS.Timeout | undefined;
  private initWindowOver = false;

  constructor(core: ServerCore, socket: net.Socket) {
    // Platform messages are 4 to 8 bytes; MS clients wait for each reply.
    super(core, socket, 'platform', 4096);
  }

  protected override onClose(): void {
    clearTimeout(this.initTimer);
  }

  protected override async step(): Promise<boolean> {
    if (this.buf.length < 4) return false;
    const code = this.buf.readUInt32BE(0);
    switch (code) {
      case MsPlatformCode.POWER_ON:
        this.skip(4);
        return this.ack(this.power('power-on', () => this.core.device.powerOn()));
      case MsPlatformCode.POWER_OFF:
        return this.stepCode2();
      case SwtpmCtrlCode.SET_LOCALITY: {
        if (this.buf.length < 5) return false;
        const locality = this.buf[4]!;
        this.skip(5);
        // swtpm's ctrlchannel.c refuses localities above 4 with TPM_BAD_LOCALITY.
        if (locality > 4) {
          this.write(u32(SWTPM_BAD_LOCALITY));
          return true;
        }
        this.core.rawLocality = locality;
        this.write(u32(0));
        return true;
      }
      case MsPlatformCode.CANCEL_ON:
      case MsPlatformCode.CANCEL_OFF:
        this.skip(4);
        this.core.cancel(code === MsPlatformCode.CANCEL_ON, this.peer);
        this.write(u32(0));
        return true;
      case MsPlatformCode.RESET:
        // _TPM_Init after a reset: the TPM needs Startup again, which is a power cycle here.
        this.skip(4);
        return this.ack(this.powerCycle());
      case MsPlatformCode.PHYS_PRES_ON:
      case MsPlatformCode.PHYS_PRES_OFF:
      case MsPlatformCode.NV_ON:
      case MsPlatformCode.NV_OFF:
      case MsPlatformCode.KEY_CACHE_ON:
      case MsPlatformCode.KEY_CACHE_OFF:
      case MsPlatformCode.RESTART:
        // No TpmDevice hook: NV is always available, there is no key cache and no physical
        // presence, and RESTART (resume from hibernation) would need a Shutdown(STATE)/
        // Startup(STATE) pair that only a client can drive. Acknowledged so clients proceed.
        this.skip(4);
        this.write(u32(0));
        return true;
      case MsPlatformCode.GET_COMMAND_RESPONSE_SIZES: {
        // WriteVarBytes: u32 length + struct, then the usual u32 0 (TcpServer.c).
        this.skip(4);
        const sizes = this.core.takeSizes();
        this.write(u32(sizes.length), sizes, u32(0));
        return true;
      }
      case MsPlatformCode.SESSION_END:
        this.finish();
        return false;
      case MsPlatformCode.STOP:
        // The reference exits; see the TPM_STOP comment on the data port for why this does not.
        this.core.log(`${this.peer}: TPM_STOP received, closing this client only`);
        this.finish();
        return false;
      default:
        // Unknown, including MS TEST_FAILURE_MODE (30), which this device cannot enter:
        // answer 1 and drop the connection, like the reference.
        this.core.log(`${this.peer}: unknown platform code ${code}, closing`);
        this.write(u32(1));
        this.finish();
        return false;
    }
  }

  private async stepCode2(): Promise<boolean> {
    if (this.buf.length >= 8) {
      // swtpm CMD_INIT: the flags (1 = delete volatile state) need no handling, because this
      // device's volatile state does not survive a power cycle anyway.
      this.skip(8);
      this.resetInitWindow();
      return this.ack(this.powerCycle());
    }
    if (!this.initWindowOver) {
      if (this.initTimer === undefined) {
        this.initTimer = setTimeout(() => {
          this.initTimer = undefined;
          this.initWindowOver = true;
          this.pump();
        }, INIT_FLAGS_WINDOW_MS);
      }
      return false;
    }
    this.skip(4);
    this.resetInitWindow();
    return this.ack(this.power('power-off', () => this.core.device.powerOff()));
  }

  private resetInitWindow(): void {
    clearTimeout(this.initTimer);
    this.initTimer = undefined;
    this.initWindowOver = false;
  }

  private power(what: string, operation: () => Promise<void>): Promise<boolean> {
    return this.core.runPower(what, this.peer, operation);
  }

  private powerCycle(): Promise<boolean> {
    return this.power('power cycle', async () => {
      await this.core.device.powerOff();
      await this.core.device.powerOn();
    });
  }

  /** Replies u32 0 if the operation worked, else 1 (the reference's "failed" value). */
  private async ack(operation: Promise<boolean>): Promise<boolean> {
    const ok = await this.paused(operation);
    this.write(u32(ok ? 0 : 1));
    return true;
  }
}
