import { type ErrorCode, PrtlabError } from '../../lib/errors.ts';

/** The codes a StateError can carry: the sealed-state, state-directory and sealing-key codes. */
export type StateErrorCode = Extract<
  ErrorCode,
  | 'ERR_STATE_CORRUPT'
  | 'ERR_STATE_IO'
  | 'ERR_STATE_IN_USE'
  | 'ERR_STATE_KEY_SOURCE_MISMATCH'
  | 'ERR_STATE_DIR_INSECURE'
  | 'ERR_KEYSTORE_UNAVAILABLE'
  | 'ERR_KEYSTORE_LOCKED'
  | 'ERR_KEY_MISSING'
  | 'ERR_KEY_FILE'
  | 'ERR_KEY_INVALID'
>;

/**
 * Base error for the TPM state store. Every failure to read, write, lock or unseal TPM state, or to
 * obtain its sealing key, is one of these; messages never contain key bytes or state plaintext.
 */
export class StateError extends PrtlabError {
  declare readonly code: StateErrorCode;

  constructor(code: StateErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export function isStateError(err: unknown, code?: StateErrorCode): err is StateError {
  return err instanceof StateError && (code === undefined || err.code === code);
}
