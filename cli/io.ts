import { PrtlabError } from '../lib/errors.ts';

/** Where a command writes; a test can capture it. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** All of standard input as text (for `--password-stdin`); absent means process.stdin. */
  readStdin?(): Promise<string>;
  /** Stops a long-running command (e.g. `cloud serve`) besides SIGINT/SIGTERM; for tests. */
  stop?: AbortSignal;
}

export const processIo: Io = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
};

/** Reads standard input to its end, from `io.readStdin` if the caller supplied one. */
export async function readStdin(io: Io, maxBytes = 64 * 1024): Promise<string> {
  if (io.readStdin) return io.readStdin();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buf.length;
    if (size > maxBytes) throw usageError(`standard input is larger than ${maxBytes} bytes`);
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Resolves when the command should stop: SIGINT, SIGTERM, or `io.stop` aborting. The signal
 * handlers are removed once it resolves.
 */
export function waitForStop(io: Io): Promise<void> {
  return new Promise<void>((done) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      io.stop?.removeEventListener('abort', stop);
      done();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    if (io.stop?.aborted) stop();
    else io.stop?.addEventListener('abort', stop);
  });
}

export function usageError(message: string): PrtlabError {
  return new PrtlabError('ERR_USAGE', message);
}
