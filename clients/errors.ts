/**
 * The client stubs' errors: ERR_CLIENT for a profile name, version or resource that does not
 * exist, and for a client run that failed (no sign-in to reuse, a refused sign-in, a resource that
 * refused the token). A refused sign-in carries the cloud's fields in `refusal`.
 */
import { PrtlabError } from '../lib/errors.ts';

/** The Entra error fields of a refused sign-in, from the cloud or through the broker. */
export interface ClientRefusal {
  readonly error: string;
  readonly aadsts: number | null;
  readonly correlationId: string | null;
  readonly subError: string | null;
}

export class ClientError extends PrtlabError {
  readonly refusal: ClientRefusal | undefined;

  constructor(message: string, options: { cause?: unknown; refusal?: ClientRefusal } = {}) {
    super(
      'ERR_CLIENT',
      message,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.refusal = options.refusal;
  }
}

export function isClientError(err: unknown): err is ClientError {
  return err instanceof ClientError;
}
