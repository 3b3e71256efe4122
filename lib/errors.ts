/**
 * Every error prtlab throws on purpose carries a stable `code`. Callers and tests switch on the
 * code, never on message text. Each area has one base class (TpmError, StateError, ...) that
 * extends PrtlabError; the union below is the single list of codes, documented in README.md.
 *
 * Caller bugs (wrong argument types, impossible options) throw plain TypeError/RangeError.
 * Untrusted input that fails validation throws a coded error.
 */
export type ErrorCode =
  // A TPM answered with a response code other than TPM_RC_SUCCESS (see TpmResponseError.rc).
  | 'ERR_TPM_RESPONSE'
  // A response from a TPM could not be parsed or failed a check (size, tag, response HMAC).
  | 'ERR_TPM_BAD_RESPONSE'
  // The transport to a TPM failed: connect, write, read, framing.
  | 'ERR_TPM_TRANSPORT'
  // Sealed TPM state: unreadable, tampered, truncated, wrong key, unknown version.
  | 'ERR_STATE_CORRUPT'
  | 'ERR_STATE_IO'
  // Another live process holds the lock on a TPM state directory.
  | 'ERR_STATE_IN_USE'
  // TPM state was sealed under a different key-source kind than the one requested.
  | 'ERR_STATE_KEY_SOURCE_MISMATCH'
  // A TPM state directory is not ours alone: wrong owner, group/other access, or not a directory.
  | 'ERR_STATE_DIR_INSECURE'
  // The key that seals TPM state: keystore locked, missing, unreachable; key file with bad mode.
  | 'ERR_KEYSTORE_UNAVAILABLE'
  | 'ERR_KEYSTORE_LOCKED'
  | 'ERR_KEY_MISSING'
  | 'ERR_KEY_FILE'
  // A keystore holds an item for the sealing key, but it is not a valid key (encoding or size).
  | 'ERR_KEY_INVALID'
  // The TPM server refused its options (non-loopback address without --allow-remote, bad port).
  | 'ERR_SERVER_CONFIG'
  // The command line was wrong.
  | 'ERR_USAGE';

export class PrtlabError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

export function isPrtlabError(err: unknown, code?: ErrorCode): err is PrtlabError {
  return err instanceof PrtlabError && (code === undefined || err.code === code);
}
