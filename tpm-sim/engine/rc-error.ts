import { WireError } from '../wire/codec.ts';
import { describeRc, rcParam } from '../wire/rc.ts';

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

/** `rc` as a format-one code for parameter `param` (Part 2 §6.6), or as is without one. */
export function rcFor(rc: number, param: number | undefined): number {
  return param === undefined ? rc : rcParam(rc, param);
}

/**
 * Runs `fn`, turning an unmarshalling failure into its TPM_RC for parameter `param` (unnumbered
 * when `param` is undefined): a structure nested in a parameter fails as the parameter would
 * (Part 3 §5.8).
 */
export function parsing<T>(param: number | undefined, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof WireError) throw new RcError(rcFor(err.rc, param));
    throw err;
  }
}
