/** The TPM area's errors: one base class, TpmError, for everything tpm-sim raises on purpose. */
import { type ErrorCode, PrtlabError } from '../lib/errors.ts';
import { describeRc, rcBase } from './wire/rc.ts';

export class TpmError extends PrtlabError {
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** The TPM answered with a response code other than TPM_RC_SUCCESS. */
export class TpmResponseError extends TpmError {
  /** The full response code, with its handle, session or parameter number. */
  readonly rc: number;
  readonly command: string;

  constructor(command: string, rc: number) {
    super('ERR_TPM_RESPONSE', `${command} failed: ${describeRc(rc)} (0x${rc.toString(16)})`);
    this.rc = rc;
    this.command = command;
  }

  /** The code without its handle, session or parameter number, for comparisons with TPM_RC. */
  get baseRc(): number {
    return rcBase(this.rc);
  }
}

/** A response that does not parse or fails a check (size, tag, response HMAC). */
export class TpmBadResponseError extends TpmError {
  constructor(command: string, detail: string) {
    super('ERR_TPM_BAD_RESPONSE', `${command}: bad response from the TPM: ${detail}`);
  }
}

/** Talking to a TPM failed: connect, write, read, framing, timeouts. */
export class TpmTransportError extends TpmError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_TPM_TRANSPORT', message, options);
  }
}

/** The TPM server refused its options. */
export class TpmServerConfigError extends TpmError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SERVER_CONFIG', message, options);
  }
}
