/** Shared by the CLI tests: `prtlab` run in process with its output captured, and data directories. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Io } from '../../cli/io.ts';
import { main } from '../../cli/main.ts';

/** An Io that keeps what a command writes. */
export interface CapturedIo extends Io {
  stdout: string;
  stderr: string;
}

/**
 * An Io that collects standard output and standard error; each error message ends with a newline,
 * as processIo writes it. `extra` adds standard input or a stop signal.
 */
export function captureIo(extra: Partial<Io> = {}): CapturedIo {
  const io: CapturedIo = {
    stdout: '',
    stderr: '',
    out(t) {
      io.stdout += t;
    },
    err(t) {
      io.stderr += t.endsWith('\n') ? t : `${t}\n`;
    },
    ...extra,
  };
  return io;
}

/** Runs `prtlab <argv>` in process and returns its exit code and what it wrote. */
export async function runCli(
  argv: string[],
  extra: Partial<Io> = {},
): Promise<{ code: number; out: string; err: string }> {
  const io = captureIo(extra);
  const code = await main(argv, io);
  return { code, out: io.stdout, err: io.stderr };
}

/** A new empty directory under the system's temporary directory, named `prefix...`. */
export function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** Removes a directory tempDir made, with everything in it. */
export function removeDir(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true });
}

/** A long-running command started in process with startUntil. */
export interface StartedCommand {
  readonly io: CapturedIo;
  /** The command's exit code, once it has ended. */
  readonly exited: Promise<number>;
  /** Aborts the command's stop signal; returns `exited`. */
  stop(): Promise<number>;
}

/**
 * Runs a long-running command (`prtlab device start`, `prtlab up`) in process with a captured Io
 * that has a stop signal; resolves once its standard output contains `marker`, and rejects with
 * what it wrote if it exits before that.
 */
export async function startUntil(
  marker: string,
  run: (io: CapturedIo) => Promise<number>,
): Promise<StartedCommand> {
  const stopper = new AbortController();
  let ready!: () => void;
  const up = new Promise<void>((r) => {
    ready = r;
  });
  const io = captureIo({ stop: stopper.signal });
  const out = io.out;
  io.out = (t) => {
    out(t);
    if (io.stdout.includes(marker)) ready();
  };
  const exited = run(io);
  await Promise.race([
    up,
    exited.then((code) => Promise.reject(new Error(`exited ${code}: ${io.stdout}${io.stderr}`))),
  ]);
  return {
    io,
    exited,
    stop() {
      stopper.abort();
      return exited;
    },
  };
}
