import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isPrtlabError } from '../../lib/errors.ts';
import type { TpmDevice } from '../../tpm-sim/server/device.ts';
import {
  checkServerHost,
  isLoopbackHost,
  startTpmServer,
  type TpmServer,
  type TpmServerOptions,
} from '../../tpm-sim/server/tcp-server.ts';
import { u32 } from '../shared/formulas.ts';
import {
  expectGetRandomResponse,
  getRandomCommand,
  sleep,
  startTestServer,
  TestDevice,
  TPM_CC_GET_RANDOM,
  TPM_RC_COMMAND_CODE,
} from '../shared/tpm-server.ts';

function msFrame(command: Buffer, locality = 0): Buffer {
  const head = Buffer.alloc(9);
  head.writeUInt32BE(8, 0);
  head[4] = locality;
  head.writeUInt32BE(command.length, 5);
  return Buffer.concat([head, command]);
}

/** A test client that buffers everything it receives. */
class Peer {
  readonly socket: net.Socket;
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  ended = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.buf = Buffer.concat([this.buf, chunk]);
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  static connect(port: number, host = '127.0.0.1'): Promise<Peer> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port });
      socket.once('connect', () => {
        socket.setNoDelay(true);
        const peer = new Peer(socket);
        peers.push(peer);
        resolve(peer);
      });
      socket.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  write(bytes: Buffer | string): void {
    this.socket.write(
      typeof bytes === 'string' ? Buffer.from(bytes.replace(/\s/g, ''), 'hex') : bytes,
    );
  }

  /** Resolves with exactly n bytes; rejects if the connection closes first or on timeout. */
  async read(n: number, timeoutMs = 2000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.buf.length < n) {
      if (this.ended) throw new Error(`closed after ${this.buf.length} of ${n} bytes`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout after ${this.buf.length} of ${n} bytes`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return Buffer.from(out);
  }

  /** Raw-framed response: header then the rest. */
  async readRaw(): Promise<Buffer> {
    const head = await this.read(10);
    const rest = await this.read(head.readUInt32BE(2) - 10);
    return Buffer.concat([head, rest]);
  }

  /** MS-framed response: u32 size, response, u32 0 (checked). */
  async readMs(): Promise<Buffer> {
    const size = (await this.read(4)).readUInt32BE(0);
    const resp = await this.read(size);
    expect((await this.read(4)).readUInt32BE(0)).toBe(0);
    return resp;
  }

  /** Resolves when the server has closed the connection and nothing more arrived. */
  async closed(timeoutMs = 3000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('connection still open');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.buf;
  }

  /** Reads nothing for `ms`, then returns what arrived (for "no reply" checks). */
  async quietFor(ms: number): Promise<Buffer> {
    await sleep(ms);
    return this.buf;
  }
}

const peers: Peer[] = [];
const servers: TpmServer[] = [];

const start = (extra: Partial<TpmServerOptions> = {}) => startTestServer(servers, extra);

afterEach(async () => {
  for (const p of peers.splice(0)) p.socket.destroy();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe('startTpmServer: options', () => {
  it('binds loopback with an ephemeral port pair', async () => {
    const { server } = await start();
    expect(server.address).toBe('127.0.0.1');
    expect(server.dataPort).toBeGreaterThan(0);
    expect(server.platformPort).toBe(server.dataPort + 1);
    await Peer.connect(server.dataPort);
    await Peer.connect(server.platformPort);
  });

  it.each(['0.0.0.0', '::', '192.168.1.10', '10.0.0.1', 'example.com', '::ffff:10.0.0.1'])(
    'refuses non-loopback host %s with ERR_SERVER_CONFIG',
    async (host) => {
      const err = await startTpmServer({ device: new TestDevice(), host, port: 0 }).catch(
        (e: unknown) => e,
      );
      expect(isPrtlabError(err, 'ERR_SERVER_CONFIG')).toBe(true);
    },
  );

  it('lets allowRemote pass the host check (checked without binding a remote address)', () => {
    expect(() => checkServerHost('0.0.0.0', false)).toThrow(/non-loopback/);
    expect(() => checkServerHost('0.0.0.0', true)).not.toThrow();
    expect(() => checkServerHost('192.168.1.10', true)).not.toThrow();
  });

  it('starts with allowRemote on another loopback address', async () => {
    const { server } = await start({ host: '127.0.0.2', allowRemote: true });
    expect(server.address).toBe('127.0.0.2');
    const peer = await Peer.connect(server.dataPort, '127.0.0.2');
    peer.write(getRandomCommand(4));
    expectGetRandomResponse(await peer.readRaw(), 4);
  });

  it('classifies loopback addresses', () => {
    for (const h of [
      '127.0.0.1',
      '127.255.0.9',
      '::1',
      '0:0:0:0:0:0:0:1',
      'localhost',
      'LOCALHOST',
      '::ffff:127.0.0.1',
    ]) {
      expect(isLoopbackHost(h), h).toBe(true);
    }
    for (const h of ['128.0.0.1', '0.0.0.0', '::', '::2', 'localhost.example', '', '1.2.3.4']) {
      expect(isLoopbackHost(h), h).toBe(false);
    }
  });

  it('rejects bad port and size values with ERR_SERVER_CONFIG, bad types with TypeError', async () => {
    const device = new TestDevice();
    for (const opts of [
      { port: 65535 },
      { port: -1 },
      { port: 1.5 },
      { maxCommandSize: 9 },
      { maxCommandSize: 2 ** 21 },
    ]) {
      const err = await startTpmServer({ device, ...opts }).catch((e: unknown) => e);
      expect(isPrtlabError(err, 'ERR_SERVER_CONFIG'), JSON.stringify(opts)).toBe(true);
    }
    await expect(startTpmServer({ device: {} as TpmDevice, port: 0 })).rejects.toThrow(TypeError);
    await expect(startTpmServer({ device, port: '2321' as unknown as number })).rejects.toThrow(
      TypeError,
    );
  });

  it('reports a taken port as ERR_SERVER_CONFIG', async () => {
    const { server } = await start();
    const err = await startTpmServer({ device: new TestDevice(), port: server.dataPort }).catch(
      (e: unknown) => e,
    );
    expect(isPrtlabError(err, 'ERR_SERVER_CONFIG')).toBe(true);
    expect(String((err as Error).message)).toMatch(/EADDRINUSE/);
  });

  it('close() drops connected clients and is idempotent', async () => {
    const { server } = await start();
    const a = await Peer.connect(server.dataPort);
    const b = await Peer.connect(server.platformPort);
    await server.close();
    await a.closed();
    await b.closed();
    await server.close();
  });
});

describe('data port: raw framing (swtpm protocol)', () => {
  it('answers a raw GetRandom', async () => {
    const { server, device } = await start();
    const peer = await Peer.connect(server.dataPort);
    peer.write(getRandomCommand(8));
    expectGetRandomResponse(await peer.readRaw(), 8);
    expect(device.localities).toEqual([0]);
  });

  it('answers other command codes with the device error, on the same connection', async () => {
    const { server } = await start();
    const peer = await Peer.connect(server.dataPort);
    const startup = Buffer.from('80010000000c000001440000', 'hex');
    peer.write(startup);
    expect((await peer.readRaw()).readUInt32BE(6)).toBe(TPM_RC_COMMAND_CODE);
    peer.write(getRandomCommand(2));
    expectGetRandomResponse(await peer.readRaw(), 2);
  });

  it('reassembles a command written one byte at a time', async () => {
    const { server } = await start();
    const peer = await Peer.connect(server.dataPort);
    for (const byte of getRandomCommand(5)) {
      peer.write(Buffer.of(byte));
      await sleep(2);
    }
    expectGetRandomResponse(await peer.readRaw(), 5);
  });

  it('handles two commands arriving in one write', async () => {
    const { server, device } = await start();
    const peer = await Peer.connect(server.dataPort);
    peer.write(Buffer.concat([getRandomCommand(3), getRandomCommand(4)]));
    expectGetRandomResponse(await peer.readRaw(), 3);
    expectGetRandomResponse(await peer.readRaw(), 4);
    expect(device.commands).toBe(2);
  });

  it('keeps TPM state across many sequential connections (one command each, like the swtpm TCTI)', async () => {
    const { server, device } = await start();
    for (let i = 0; i < 25; i++) {
      const peer = await Peer.connect(server.dataPort);
      peer.write(getRandomCommand(8));
      expectGetRandomResponse(await peer.readRaw(), 8);
      peer.socket.end();
    }
    expect(device.commands).toBe(25);
  });

  it('serializes commands from concurrent clients', async () => {
    const { server, device } = await start();
    device.delayMs = 15;
    const clients = await Promise.all(
      Array.from({ length: 6 }, () => Peer.connect(server.dataPort)),
    );
    for (const [i, p] of clients.entries()) p.write(getRandomCommand(i + 1));
    const responses = await Promise.all(clients.map((p) => p.readRaw()));
    for (const [i, r] of responses.entries()) expectGetRandomResponse(r, i + 1);
    expect(device.maxActive).toBe(1);
    expect(device.commands).toBe(6);
  });

  it('answers an oversized command with TPM_RC_COMMAND_SIZE and closes', async () => {
    const { server, device, logs } = await start({ maxCommandSize: 1024 });
    const peer = await Peer.connect(server.dataPort);
    const big = Buffer.alloc(2000);
    big.writeUInt16BE(0x8001, 0);
    big.writeUInt32BE(2000, 2);
    big.writeUInt32BE(TPM_CC_GET_RANDOM, 6);
    peer.write(big);
    const resp = await peer.readRaw();
    expect(resp.toString('hex')).toBe('80010000000a00000142');
    await peer.closed();
    expect(device.commands).toBe(0);
    expect(logs.some((l) => l.includes('2000'))).toBe(true);
  });

  it('answers a command shorter than its header with TPM_RC_COMMAND_SIZE and closes', async () => {
    const { server } = await start();
    const peer = await Peer.connect(server.dataPort);
    peer.write('8001 00000004 0000');
    expect((await peer.readRaw()).toString('hex')).toBe('80010000000a00000142');
    await peer.closed();
  });

  it('closes a peer that sends garbage and keeps serving others', async () => {
    const { server, device } = await start();
    const bad = await Peer.connect(server.dataPort);
    bad.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await bad.closed();
    const bad2 = await Peer.connect(server.dataPort);
    bad2.write(randomBytes(5000));
    await bad2.closed();
    const good = await Peer.connect(server.dataPort);
    good.write(getRandomCommand(8));
    expectGetRandomResponse(await good.readRaw(), 8);
    expect(device.commands).toBe(1);
  });

  it('survives a peer that disconnects mid-command', async () => {
    const { server } = await start();
    const peer = await Peer.connect(server.dataPort);
    peer.write(getRandomCommand(8).subarray(0, 7));
    peer.socket.destroy();
    const good = await Peer.connect(server.dataPort);
    good.write(getRandomCommand(8));
    expectGetRandomResponse(await good.readRaw(), 8);
  });

  it('answers TPM_RC_FAILURE when the device rejects, logging no command bytes', async () => {
    const { server, device, logs } = await start();
    device.throwOnExecute = true;
    const peer = await Peer.connect(server.dataPort);
    const cmd = getRandomCommand(0x4242);
    peer.write(cmd);
    expect((await peer.readRaw()).toString('hex')).toBe('80010000000a00000101');
    expect(logs.join('\n')).toMatch(/device exploded/);
    expect(logs.join('\n')).not.toContain(cmd.toString('hex'));
    device.throwOnExecute = false;
    peer.write(getRandomCommand(1));
    expectGetRandomResponse(await peer.readRaw(), 1);
  });

  it('uses the locality set through the swtpm control channel', async () => {
    const { server, device } = await start();
    const ctrl = await Peer.connect(server.platformPort);
    ctrl.write('00000005 03');
    expect((await ctrl.read(4)).readUInt32BE(0)).toBe(0);
    const peer = await Peer.connect(server.dataPort);
    peer.write(getRandomCommand(1));
    await peer.readRaw();
    expect(device.localities).toEqual([3]);
  });
});

describe('data port: MS simulator framing', () => {
  it('matches the byte layout of docs/tpm.md B.1', async () => {
    const { server } = await start();
    const peer = await Peer.connect(server.dataPort);
    peer.write('00000008 00 0000000c 80010000000c0000017b0008');
    const reply = await peer.read(4 + 20 + 4);
    expect(reply.subarray(0, 16).toString('hex')).toBe('00000014800100000014000000000008');
    expect(reply.subarray(24).toString('hex')).toBe('00000000');
  });

  it('handles the mssim TCTI pattern: 9-byte header and body in separate writes', async () => {
    const { server, device } = await start();
    const peer = await Peer.connect(server.dataPort);
    for (let i = 0; i < 3; i++) {
      const frame = msFrame(getRandomCommand(16), 2);
      peer.write(frame.subarray(0, 9));
      await sleep(5);
      peer.write(frame.subarray(9));
      expectGetRandomResponse(await peer.readMs(), 16);
    }
    expect(device.localities).toEqual([2, 2, 2]);
  });

  it('answers an oversized MS command with TPM_RC_COMMAND_SIZE and closes', async () => {
    const { server } = await start();
    const peer = await Peer.connect(server.dataPort);
    peer.write(Buffer.concat([u32(8), Buffer.of(0), u32(100_000)]));
    expect((await peer.readMs()).toString('hex')).toBe('80010000000a00000142');
    await peer.closed();
  });

  it('answers a too-short MS command in place and keeps the connection', async () => {
    const { server, device } = await start();
    const peer = await Peer.connect(server.dataPort);
    peer.write(msFrame(Buffer.from('8001000000', 'hex')));
    expect((await peer.readMs()).toString('hex')).toBe('80010000000a00000142');
    peer.write(msFrame(getRandomCommand(3)));
    expectGetRandomResponse(await peer.readMs(), 3);
    expect(device.commands).toBe(1);
  });

  it('does the remote handshake and rejects client version 0', async () => {
    const { server } = await start();
    const peer = await Peer.connect(server.dataPort);
    peer.write('0000000f 00000001');
    expect((await peer.read(12)).toString('hex')).toBe('00000001' + '0000000d' + '00000000');
    const bad = await Peer.connect(server.dataPort);
    bad.write('0000000f 00000000');
    expect((await bad.closed()).length).toBe(0);
  });

  it('acks hash signals and SET_ALTERNATIVE_RESULT', async () => {
    const { server } = await start();
    const peer = await Peer.connect(server.dataPort);
    peer.write('00000005');
    expect((await peer.read(4)).readUInt32BE(0)).toBe(0);
    peer.write('00000006 00000003 aabbcc');
    expect((await peer.read(4)).readUInt32BE(0)).toBe(0);
    peer.write('00000007');
    expect((await peer.read(4)).readUInt32BE(0)).toBe(0);
    peer.write('00000010 00000123');
    expect((await peer.read(4)).readUInt32BE(0)).toBe(0);
    peer.write(msFrame(getRandomCommand(2)));
    expectGetRandomResponse(await peer.readMs(), 2);
  });

  it('closes on SESSION_END and TPM_STOP without stopping the server', async () => {
    const { server } = await start();
    const a = await Peer.connect(server.dataPort);
    a.write(msFrame(getRandomCommand(1)));
    await a.readMs();
    a.write('00000014');
    expect((await a.closed()).length).toBe(0);
    const b = await Peer.connect(server.dataPort);
    b.write('00000015');
    expect((await b.closed()).length).toBe(0);
    const c = await Peer.connect(server.dataPort);
    c.write(msFrame(getRandomCommand(4)));
    expectGetRandomResponse(await c.readMs(), 4);
  });

  it('closes on an unknown code once in MS framing', async () => {
    const { server } = await start();
    const peer = await Peer.connect(server.dataPort);
    peer.write(msFrame(getRandomCommand(1)));
    await peer.readMs();
    peer.write('00000063');
    await peer.closed();
  });
});

describe('platform port', () => {
  it('acks POWER_ON and NV_ON with u32 0 and powers the device on', async () => {
    const { server, device } = await start();
    const peer = await Peer.connect(server.platformPort);
    peer.write('00000001');
    expect((await peer.read(4)).toString('hex')).toBe('00000000');
    peer.write('0000000b');
    expect((await peer.read(4)).toString('hex')).toBe('00000000');
    expect(device.powerOns).toBe(1);
    expect(device.powerOffs).toBe(0);
  });

  it('acks the swtpm TCTI SET_LOCALITY(0)', async () => {
    const { server } = await start();
    const peer = await Peer.connect(server.platformPort);
    peer.write('00000005 00');
    expect((await peer.read(4)).toString('hex')).toBe('00000000');
  });

  it('refuses SET_LOCALITY above 4 like swtpm (TPM_BAD_LOCALITY)', async () => {
    const { server } = await start();
    const peer = await Peer.connect(server.platformPort);
    peer.write('00000005 05');
    expect((await peer.read(4)).toString('hex')).toBe('0000003d');
  });

  it('answers an unknown code with u32 1 and closes', async () => {
    const { server } = await start();
    const peer = await Peer.connect(server.platformPort);
    peer.write('00000063');
    expect((await peer.closed()).toString('hex')).toBe('00000001');
  });

  it('treats a lone 2 as MS POWER_OFF', async () => {
    const { server, device } = await start();
    const peer = await Peer.connect(server.platformPort);
    peer.write('00000002');
    expect((await peer.read(4)).toString('hex')).toBe('00000000');
    expect(device.powerOffs).toBe(1);
    expect(device.powerOns).toBe(0);
  });

  it('runs the go-tpm power-up sequence (POWER_OFF, POWER_ON, NV_ON, SESSION_END)', async () => {
    const { server, device } = await start();
    const peer = await Peer.connect(server.platformPort);
    for (const code of ['00000002', '00000001', '0000000b']) {
      peer.write(code);
      expect((await peer.read(4)).toString('hex')).toBe('00000000');
    }
    peer.write('00000014');
    expect((await peer.closed()).length).toBe(0);
    expect(device.events).toEqual(['powerOff', 'powerOn']);
  });

  it('treats 2 followed by a u32 in one write as swtpm CMD_INIT (reset, one reply)', async () => {
    const { server, device } = await start();
    const peer = await Peer.connect(server.platformPort);
    peer.write('00000002 00000001');
    expect((await peer.read(4)).toString('hex')).toBe('00000000');
    expect((await peer.quietFor(80)).length).toBe(0);
    expect(device.events).toEqual(['powerOff', 'powerOn']);
  });

  it('treats SIGNAL_RESET as a power cycle and RESTART as an ack', async () => {
    const { server, device } = await start();
    const peer = await Peer.connect(server.platformPort);
    peer.write('00000011');
    expect((await peer.read(4)).toString('hex')).toBe('00000000');
    peer.write('00000012');
    expect((await peer.read(4)).toString('hex')).toBe('00000000');
    expect(device.events).toEqual(['powerOff', 'powerOn']);
  });

  it('maps CANCEL_ON/OFF to device.cancel', async () => {
    const { server, device } = await start();
    const peer = await Peer.connect(server.platformPort);
    peer.write('00000009');
    expect((await peer.read(4)).readUInt32BE(0)).toBe(0);
    peer.write('0000000a');
    expect((await peer.read(4)).readUInt32BE(0)).toBe(0);
    expect(device.cancels).toEqual([true, false]);
  });

  it('acks the remaining MS signals', async () => {
    const { server } = await start();
    const peer = await Peer.connect(server.platformPort);
    for (const code of [3, 4, 12, 13, 14]) {
      peer.write(u32(code));
      expect((await peer.read(4)).readUInt32BE(0), String(code)).toBe(0);
    }
  });

  it('reports GET_COMMAND_RESPONSE_SIZES in the reference layout and resets them', async () => {
    const { server } = await start();
    const data = await Peer.connect(server.dataPort);
    data.write(getRandomCommand(32));
    await data.readRaw();
    const peer = await Peer.connect(server.platformPort);
    peer.write('00000019');
    const reply = await peer.read(4 + 16 + 4);
    expect(reply.readUInt32BE(0)).toBe(16);
    expect(reply.readUInt32LE(4)).toBe(12);
    expect(reply.readUInt32BE(8)).toBe(TPM_CC_GET_RANDOM);
    expect(reply.readUInt32LE(12)).toBe(44);
    expect(reply.readUInt32BE(16)).toBe(0);
    expect(reply.readUInt32BE(20)).toBe(0);
    peer.write('00000019');
    expect((await peer.read(24)).subarray(4, 20).equals(Buffer.alloc(16))).toBe(true);
  });

  it('orders power signals with commands in the one queue', async () => {
    const { server, device } = await start();
    device.delayMs = 40;
    const data = await Peer.connect(server.dataPort);
    data.write(getRandomCommand(1));
    await sleep(5);
    const plat = await Peer.connect(server.platformPort);
    plat.write('00000001');
    await plat.read(4);
    await data.readRaw();
    expect(device.events).toEqual(['execute', 'powerOn']);
  });

  it('closes on SESSION_END and TPM_STOP, and the server keeps serving', async () => {
    const { server } = await start();
    const a = await Peer.connect(server.platformPort);
    a.write('00000014');
    expect((await a.closed()).length).toBe(0);
    const b = await Peer.connect(server.platformPort);
    b.write('00000015');
    expect((await b.closed()).length).toBe(0);
    const c = await Peer.connect(server.platformPort);
    c.write('00000001');
    expect((await c.read(4)).readUInt32BE(0)).toBe(0);
  });

  it('reassembles a signal split across writes', async () => {
    const { server, device } = await start();
    const peer = await Peer.connect(server.platformPort);
    peer.write('0000');
    await sleep(10);
    peer.write('0001');
    expect((await peer.read(4)).readUInt32BE(0)).toBe(0);
    expect(device.powerOns).toBe(1);
  });
});

describe('startTpmServer: names', () => {
  it("binds both ports on the address 'localhost' resolves to", async () => {
    const { server } = await start({ host: 'localhost' });
    expect(isLoopbackHost(server.address)).toBe(true);
    const peer = await Peer.connect(server.platformPort, server.address);
    peer.write('00000001');
    expect((await peer.read(4)).readUInt32BE(0)).toBe(0);
  });
});
