import { join, resolve } from 'node:path';
import { PrtlabError } from '../lib/errors.ts';

/** Where a command writes; a test can capture it. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
}

export const processIo: Io = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
};

export function usageError(message: string): PrtlabError {
  return new PrtlabError('ERR_USAGE', message);
}

/** The lab's data directory: $PRTLAB_HOME, else ./.prtlab. */
export function dataHome(): string {
  return resolve(process.env.PRTLAB_HOME ?? join(process.cwd(), '.prtlab'));
}
