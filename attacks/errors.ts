/**
 * The attack harness's errors: ERR_ATTACK for a scenario file that does not validate (the message
 * and `path` name the file and the JSON path), an unknown scenario id, a bad option of the runner
 * or the command line, and a lab the harness could not build (a missing program, such as
 * gnome-keyring for the OS-keystore variant of the copied-TPM scenario).
 *
 * What the cloud answers an attacker is never an error here: it is an observation, compared with
 * the scenario's expectation.
 */
import { PrtlabError } from '../lib/errors.ts';

export class AttackError extends PrtlabError {
  /** The scenario file and JSON path a validation error is about, e.g. `01-cli.json: replays[0]`. */
  readonly path: string | undefined;

  constructor(message: string, options: { cause?: unknown; path?: string } = {}) {
    super(
      'ERR_ATTACK',
      message,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.path = options.path;
  }
}

export function isAttackError(err: unknown): err is AttackError {
  return err instanceof AttackError;
}
