import { PrtlabError } from '../../lib/errors.ts';
import { describeRc, rcBase } from '../wire/rc.ts';

/** Errors of the TPM client: the base class of the TPM area. */
export class TpmError extends PrtlabError {}

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
