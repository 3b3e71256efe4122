/**
 * Conditional Access errors. Policy JSON that fails validation throws ERR_CA_POLICY with the JSON
 * path of the offending value (`path`); a device-filter rule that does not parse throws
 * ERR_CA_FILTER with the 0-based character offset (`position`).
 */
import { PrtlabError } from '../../lib/errors.ts';

export type CaErrorCode = 'ERR_CA_POLICY' | 'ERR_CA_FILTER';

export class CaError extends PrtlabError {
  /** JSON path of the bad value (ERR_CA_POLICY), e.g. `conditions.users.includeUsers[2]`. */
  readonly path: string | undefined;
  /** 0-based offset in the rule (ERR_CA_FILTER). */
  readonly position: number | undefined;

  constructor(
    code: CaErrorCode,
    message: string,
    details: { path?: string; position?: number; cause?: unknown } = {},
  ) {
    super(code, message, details.cause === undefined ? undefined : { cause: details.cause });
    this.path = details.path;
    this.position = details.position;
  }
}

export function isCaError(err: unknown, code?: CaErrorCode): err is CaError {
  return err instanceof CaError && (code === undefined || err.code === code);
}
