import { describeRc } from '../wire/rc.ts';

/**
 * Thrown inside the engine to end a command with a TPM response code. It never leaves the
 * engine: dispatch turns it into an error response.
 */
export class RcError extends Error {
  readonly rc: number;

  constructor(rc: number, detail?: string) {
    super(detail ? `${describeRc(rc)}: ${detail}` : describeRc(rc));
    this.rc = rc;
  }
}

/** Throws RcError(rc) unless `ok`. */
export function check(ok: unknown, rc: number, detail?: string): asserts ok {
  if (!ok) throw new RcError(rc, detail);
}
