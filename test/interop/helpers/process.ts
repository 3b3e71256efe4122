import type { ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

const STOP_GRACE_MS = 5_000;
const OUTPUT_TAIL = 8_192;

/**
 * The processes one helper module starts. It can stop them all, and none outlives the test
 * worker even if a test forgets to stop it or fails half-way: whatever still runs when the
 * worker exits is killed by pid.
 */
export class ProcessGroup {
  readonly #live = new Set<ChildProcess>();

  constructor() {
    process.once('exit', () => {
      for (const child of this.#live) {
        if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
          try {
            process.kill(child.pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }
    });
  }

  /** Tracks `child` until it exits. */
  add(child: ChildProcess): void {
    this.#live.add(child);
    child.once('exit', () => this.#live.delete(child));
  }

  /** SIGTERM by pid, then SIGKILL after a grace period; resolves once the process has exited. */
  async stop(child: ChildProcess): Promise<void> {
    const pid = child.pid;
    if (pid === undefined || child.exitCode !== null || child.signalCode !== null) {
      this.#live.delete(child);
      return;
    }
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    signal(pid, 'SIGTERM');
    const graceful = await Promise.race([
      exited.then(() => true),
      sleep(STOP_GRACE_MS).then(() => false),
    ]);
    if (!graceful) {
      signal(pid, 'SIGKILL');
      await exited;
    }
    this.#live.delete(child);
  }

  /** Stops (by pid) every process of the group that is still running. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.#live].map((child) => this.stop(child)));
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** Keeps the tail of what `streams` write, for error messages. */
export function outputTail(...streams: (Readable | null | undefined)[]): () => string {
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL);
  };
  for (const stream of streams) stream?.on('data', keep);
  return () => tail;
}
