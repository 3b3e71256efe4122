import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isPrtlabError } from '../../lib/errors.ts';
import type { TpmServer } from '../../tpm-sim/server/tcp-server.ts';
import { TcpTransport } from '../../tpm-sim/transport/tcp.ts';
import {
  expectGetRandomResponse,
  getRandomCommand as getRandomBuffer,
  sleep,
  startTestServer,
  TPM_RC_COMMAND_CODE,
} from '../shared/tpm-server.ts';

/** GetRandom(n) as a plain Uint8Array (not a Buffer), as a transport's caller may pass it. */
function getRandomCommand(n: number): Uint8Array {
  return new Uint8Array(getRandomBuffer(n));
}

const servers: TpmServer[] = [];
const fakes: net.Server[] = [];
const transports: TcpTransport[] = [];
const sockets = new Set<net.Socket>();

afterEach(async () => {
  await Promise.all(transports.splice(0).map((t) => t.close()));
  for (const s of sockets) s.destroy();
  sockets.clear();
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await Promise.all(fakes.splice(0).map((f) => new Promise((r) => f.close(r))));
});

const startServer = () => startTestServer(servers);

function transport(options: ConstructorParameters<typeof TcpTransport>[0]): TcpTransport {
  const t = new TcpTransport(options);
  transports.push(t);
  return t;
}

/** A hand-written peer for misbehaviour the real server never shows. */
async function fakeServer(
  onData: (socket: net.Socket, chunk: Buffer, connection: number) => void,
  port = 0,
): Promise<{ port: number; connections: () => number }> {
  let count = 0;
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const n = ++count;
    socket.on('data', (chunk: Buffer) => onData(socket, chunk, n));
  });
  fakes.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return { port: (server.address() as net.AddressInfo).port, connections: () => count };
}

async function expectTransportError(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isPrtlabError(err, 'ERR_TPM_TRANSPORT'), String(err)).toBe(true);
  expect((err as Error).message).toMatch(pattern);
}

describe('TcpTransport against the TPM server', () => {
  it.each(['raw', 'mssim'] as const)('%s framing round-trips GetRandom', async (framing) => {
    const { server, device } = await startServer();
    const t = transport({ port: server.dataPort, framing });
    for (let i = 1; i <= 3; i++)
      expectGetRandomResponse(await t.send(getRandomCommand(8 * i)), 8 * i);
    const other = await t.send(Buffer.from('80010000000c000001440000', 'hex'));
    expect(Buffer.from(other).readUInt32BE(6)).toBe(TPM_RC_COMMAND_CODE);
    expect(device.commands).toBe(4);
    // mssim powers the platform on once per connection, like the mssim TCTI.
    expect(device.powerOns).toBe(framing === 'mssim' ? 1 : 0);
  });

  it.each(['raw', 'mssim'] as const)(
    '%s framing queues concurrent sends in order',
    async (framing) => {
      const { server, device } = await startServer();
      device.delayMs = 5;
      const t = transport({ port: server.dataPort, framing });
      const sizes = [1, 2, 3, 4, 5, 6, 7, 8];
      const responses = await Promise.all(sizes.map((n) => t.send(getRandomCommand(n))));
      for (const [i, r] of responses.entries()) expectGetRandomResponse(r, sizes[i]!);
      expect(device.maxActive).toBe(1);
    },
  );

  it('reconnects after the server dropped the connection', async () => {
    const { server } = await startServer();
    const t = transport({ port: server.dataPort, framing: 'raw' });
    expectGetRandomResponse(await t.send(getRandomCommand(4)), 4);
    const port = server.dataPort;
    await server.close();
    servers.splice(servers.indexOf(server), 1);
    // Give the client time to read the server's FIN (see TcpTransport#connected).
    await sleep(50);
    const { device } = await startTestServer(servers, { port });
    expectGetRandomResponse(await t.send(getRandomCommand(4)), 4);
    expect(device.commands).toBe(1);
  });

  it('rejects sends after close()', async () => {
    const { server } = await startServer();
    const t = transport({ port: server.dataPort });
    await t.send(getRandomCommand(1));
    await t.close();
    await expectTransportError(t.send(getRandomCommand(1)), /closed/);
    await t.close();
  });

  it('lets sends queued before close() finish', async () => {
    const { server } = await startServer();
    const t = transport({ port: server.dataPort, framing: 'mssim' });
    const pending = [t.send(getRandomCommand(1)), t.send(getRandomCommand(2))];
    const closing = t.close();
    const [a, b] = await Promise.all(pending);
    expectGetRandomResponse(a!, 1);
    expectGetRandomResponse(b!, 2);
    await closing;
  });
});

describe('TcpTransport framing on the wire', () => {
  it('mssim sends POWER_ON and NV_ON, then each frame in one write', async () => {
    const platformCodes: number[] = [];
    // Data port first: the platform port must be data + 1, so pick a pair that is free.
    let data: Awaited<ReturnType<typeof fakeServer>> | undefined;
    const chunks: Buffer[] = [];
    for (let attempt = 0; attempt < 20 && !data; attempt++) {
      const candidate = await fakeServer((socket, chunk) => {
        chunks.push(chunk);
        if (chunk.length < 9) return; // TPM_SESSION_END at close
        const len = chunk.readUInt32BE(5);
        const resp = Buffer.alloc(4 + 10 + 4);
        resp.writeUInt32BE(10, 0);
        Buffer.from('80010000000a00000000', 'hex').copy(resp, 4);
        expect(len).toBe(chunk.length - 9);
        socket.write(resp);
      });
      try {
        await fakeServer((socket, chunk) => {
          for (let i = 0; i + 4 <= chunk.length; i += 4) {
            const code = chunk.readUInt32BE(i);
            platformCodes.push(code);
            if (code !== 20) socket.write(Buffer.alloc(4));
          }
        }, candidate.port + 1);
        data = candidate;
      } catch {
        // port + 1 taken; try another pair
      }
    }
    const t = transport({ port: data!.port, framing: 'mssim' });
    const cmd = getRandomCommand(8);
    await t.send(cmd);
    await t.send(cmd);
    expect(platformCodes.slice(0, 2)).toEqual([1, 11]);
    expect(chunks.map((c) => c.length)).toEqual([9 + 12, 9 + 12]);
    expect(chunks[0]!.subarray(0, 9).toString('hex')).toBe('00000008000000000c');
    await t.close();
    expect(chunks.map((c) => c.toString('hex')).at(-1)).toBe('00000014');
    // The platform connection was ended with SESSION_END right after power-up.
    expect(platformCodes).toEqual([1, 11, 20]);
  });

  it('raw rejects a response with a bad tag and drops the connection', async () => {
    const fake = await fakeServer((socket, _chunk, n) => {
      socket.write(Buffer.from(n === 1 ? '12340000000a00000000' : '80010000000a00000000', 'hex'));
    });
    const t = transport({ port: fake.port });
    await expectTransportError(t.send(getRandomCommand(1)), /tag 0x1234/);
    const ok = await t.send(getRandomCommand(1));
    expect(Buffer.from(ok).toString('hex')).toBe('80010000000a00000000');
    expect(fake.connections()).toBe(2);
  });

  it('raw rejects a response size above 64 KiB and below 10', async () => {
    const fake = await fakeServer((socket, _chunk, n) => {
      socket.write(Buffer.from(n === 1 ? '800100020000' : '800100000009', 'hex'));
    });
    const t = transport({ port: fake.port });
    await expectTransportError(t.send(getRandomCommand(1)), /response size 131072/);
    await expectTransportError(t.send(getRandomCommand(1)), /response size 9/);
  });

  it('raw rejects bytes beyond the response', async () => {
    const fake = await fakeServer((socket) => {
      socket.write(Buffer.from('80010000000a00000000ff', 'hex'));
    });
    const t = transport({ port: fake.port });
    await expectTransportError(t.send(getRandomCommand(1)), /after the response/);
  });

  it('mssim rejects a bad trailer and a frame/header size mismatch', async () => {
    let platform: Awaited<ReturnType<typeof fakeServer>> | undefined;
    let data: Awaited<ReturnType<typeof fakeServer>> | undefined;
    for (let attempt = 0; attempt < 20 && !platform; attempt++) {
      data = await fakeServer((socket, _chunk, n) => {
        const frame =
          n === 1
            ? '0000000a 80010000000a00000000 00000001'
            : '0000000c 80010000000a00000000 0000 00000000';
        socket.write(Buffer.from(frame.replace(/ /g, ''), 'hex'));
      });
      platform = await fakeServer((socket) => socket.write(Buffer.alloc(4)), data.port + 1).catch(
        () => undefined,
      );
    }
    const t = transport({ port: data!.port, framing: 'mssim' });
    await expectTransportError(t.send(getRandomCommand(1)), /ends with 1/);
    await expectTransportError(t.send(getRandomCommand(1)), /frame size 12 but TPM header size 10/);
  });

  it('rejects a connection closed before the full response', async () => {
    const fake = await fakeServer((socket) => {
      socket.end(Buffer.from('8001000000', 'hex'));
    });
    const t = transport({ port: fake.port });
    await expectTransportError(t.send(getRandomCommand(1)), /before the full response/);
  });
});

describe('TcpTransport failures and timeouts', () => {
  it('reports a refused connection', async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen({ host: '127.0.0.1', port: 0 }, r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const t = transport({ port });
    await expectTransportError(t.send(getRandomCommand(1)), /ECONNREFUSED/);
  });

  it('times out a silent peer, drops the connection and never reuses the late response', async () => {
    const fake = await fakeServer((socket, _chunk, n) => {
      // First connection answers too late; later ones answer at once with a distinct code.
      const reply = Buffer.from('80010000000a00000000', 'hex');
      reply.writeUInt32BE(n, 6);
      if (n === 1) setTimeout(() => socket.writable && socket.write(reply), 250);
      else socket.write(reply);
    });
    const t = transport({ port: fake.port, ioTimeoutMs: 100 });
    const started = Date.now();
    await expectTransportError(t.send(getRandomCommand(1)), /within 100 ms/);
    expect(Date.now() - started).toBeLessThan(1000);
    await sleep(300);
    const second = Buffer.from(await t.send(getRandomCommand(1)));
    expect(second.readUInt32BE(6)).toBe(2);
    expect(fake.connections()).toBe(2);
  });

  it('times out an mssim platform port that never answers, within connectTimeoutMs', async () => {
    let data: Awaited<ReturnType<typeof fakeServer>> | undefined;
    for (let attempt = 0; attempt < 20 && !data; attempt++) {
      const candidate = await fakeServer(() => {});
      const ok = await fakeServer(() => {}, candidate.port + 1).then(
        () => true,
        () => false,
      );
      if (ok) data = candidate;
    }
    const t = transport({ port: data!.port, framing: 'mssim', connectTimeoutMs: 150 });
    const started = Date.now();
    await expectTransportError(t.send(getRandomCommand(1)), /POWER_ON.*connect timeout of 150 ms/);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('reports a failing platform signal', async () => {
    let data: Awaited<ReturnType<typeof fakeServer>> | undefined;
    for (let attempt = 0; attempt < 20 && !data; attempt++) {
      const candidate = await fakeServer(() => {});
      const ok = await fakeServer(
        (socket) => socket.write(Buffer.from('00000001', 'hex')),
        candidate.port + 1,
      ).then(
        () => true,
        () => false,
      );
      if (ok) data = candidate;
    }
    const t = transport({ port: data!.port, framing: 'mssim' });
    await expectTransportError(t.send(getRandomCommand(1)), /POWER_ON failed with 1/);
  });

  it('rejects bad options as caller bugs', () => {
    expect(() => new TcpTransport({ port: 0 })).toThrow(RangeError);
    expect(() => new TcpTransport({ port: 65535, framing: 'mssim' })).toThrow(RangeError);
    expect(() => new TcpTransport({ framing: 'tls' as 'raw' })).toThrow(RangeError);
    expect(() => new TcpTransport({ ioTimeoutMs: 0 })).toThrow(RangeError);
    expect(() => new TcpTransport({ connectTimeoutMs: 2 ** 31 })).toThrow(RangeError);
    expect(() => new TcpTransport({ host: '' })).toThrow(TypeError);
  });

  it('rejects a non-Uint8Array command with TypeError', async () => {
    const t = transport({ port: 2321 });
    await expect(t.send('80' as unknown as Uint8Array)).rejects.toThrow(TypeError);
  });
});
