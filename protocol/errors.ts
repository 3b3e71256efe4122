/**
 * The PRT protocol area's errors: one base class, ProtocolError, for everything protocol/ raises on
 * purpose when untrusted bytes fail validation. Caller bugs (wrong argument types, impossible
 * options, a session key of the wrong size) are plain TypeError/RangeError instead.
 *
 * Messages for crypto failures (signature, tag, padding, RSA-OAEP) are deliberately generic and
 * identical across causes, so that an error never tells a sender which check failed.
 */
import { type ErrorCode, PrtlabError } from '../lib/errors.ts';

/** The subset of ErrorCode that protocol/ raises. */
export type ProtocolErrorCode = Extract<ErrorCode, `ERR_PROTOCOL_${string}`>;

export class ProtocolError extends PrtlabError {
  declare readonly code: ProtocolErrorCode;

  constructor(code: ProtocolErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** Shorthand for the most common case: a structural check on untrusted input failed. */
export function malformed(what: string, detail: string): ProtocolError {
  return new ProtocolError('ERR_PROTOCOL_MALFORMED', `${what}: ${detail}`);
}

/** An input exceeds its named cap; the length is reported, the content never is. */
export function tooLarge(what: string, length: number, max: number): ProtocolError {
  return new ProtocolError(
    'ERR_PROTOCOL_TOO_LARGE',
    `${what}: ${length} exceeds the limit of ${max}`,
  );
}

/** A well-formed input asks for something we do not implement or refuse to accept. */
export function unsupported(what: string, detail: string): ProtocolError {
  return new ProtocolError('ERR_PROTOCOL_UNSUPPORTED', `${what}: ${detail}`);
}

/**
 * The single message for every decryption failure, whatever the cause. The underlying OpenSSL error
 * is not attached as `cause` either: its text ("bad decrypt", "oaep decoding error") is exactly the
 * padding/unwrap oracle the generic message avoids.
 */
export function decryptFailed(what: string): ProtocolError {
  return new ProtocolError('ERR_PROTOCOL_DECRYPT', `${what}: decryption failed`);
}

/** The single message for every signature failure, whatever the cause. */
export function signatureFailed(what: string): ProtocolError {
  return new ProtocolError('ERR_PROTOCOL_SIGNATURE', `${what}: signature verification failed`);
}

export function isProtocolError(err: unknown, code?: ProtocolErrorCode): err is ProtocolError {
  return err instanceof ProtocolError && (code === undefined || err.code === code);
}
