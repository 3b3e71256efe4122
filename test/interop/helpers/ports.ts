import { connect, createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export const LOOPBACK = '127.0.0.1';

// Ports are picked below Linux's default ephemeral range (32768-60999): the swtpm TCTI opens a new
// TCP connection for every command, so a run burns through many ephemeral client ports, and a
// server port taken from that range could collide with one of them (or its TIME_WAIT).
const RANGE_LOW = 20_000;
const RANGE_HIGH = 32_000;
const ATTEMPTS = 200;

/** Resolves true when `port` can be bound on 127.0.0.1 right now (the socket is closed again). */
export function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ host: LOOPBACK, port, exclusive: true }, () => {
      server.close(() => resolve(true));
    });
  });
}

/**
 * Finds an even port P on 127.0.0.1 such that P and P+1 are both free: a TPM server takes P for
 * TPM commands and P+1 for its control/platform channel (MS simulator and swtpm both use that
 * layout). Another process may still grab a port between this check and the server's bind; the
 * server start then fails with a clear error rather than silently talking to a stranger.
 */
export async function findFreePortPair(): Promise<number> {
  for (let i = 0; i < ATTEMPTS; i++) {
    const span = (RANGE_HIGH - RANGE_LOW) / 2;
    const port = RANGE_LOW + 2 * Math.floor(Math.random() * span);
    if ((await canBind(port)) && (await canBind(port + 1))) return port;
  }
  throw new Error(
    `no free even port pair P, P+1 on ${LOOPBACK} in ${RANGE_LOW}-${RANGE_HIGH} after ${ATTEMPTS} tries`,
  );
}

/** Resolves true if a TCP connection to 127.0.0.1:port is accepted (it is closed at once). */
export function accepts(port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: LOOPBACK, port });
    const done = (ok: boolean) => {
      socket.removeAllListeners();
      socket.on('error', () => {});
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export interface WaitForPortsOptions {
  timeoutMs?: number;
  /** Checked between attempts; a string aborts the wait with that reason (e.g. "server exited"). */
  abort?: () => string | undefined;
}

/** Waits until every port in `ports` accepts a connection on 127.0.0.1. */
export async function waitForPorts(
  ports: readonly number[],
  { timeoutMs = 15_000, abort }: WaitForPortsOptions = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const pending = new Set(ports);
  for (;;) {
    const reason = abort?.();
    if (reason !== undefined) throw new Error(reason);
    for (const port of [...pending]) {
      if (await accepts(port)) pending.delete(port);
    }
    if (pending.size === 0) return;
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${LOOPBACK} port(s) ${[...pending].join(', ')} to accept`,
      );
    }
    await sleep(50);
  }
}
