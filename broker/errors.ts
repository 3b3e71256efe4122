/**
 * The broker's errors. BrokerError (ERR_BROKER) is the broker's own failure on either side of the
 * socket: bad options, a broker.json or cache directory that is missing or insecure, a client that
 * cannot reach or authenticate to a broker, a connection that closed or timed out. BrokerRpcError
 * (ERR_BROKER_RPC) is a JSON-RPC error object the broker answered, as the client library raises
 * it: the JSON-RPC `code` as `rpcCode` and the error `data` (README "Broker").
 *
 * Caller bugs (wrong argument types, impossible options) throw TypeError/RangeError instead.
 */
import { PrtlabError } from '../lib/errors.ts';

export type BrokerErrorCode = 'ERR_BROKER' | 'ERR_BROKER_RPC';

/** What every broker error answer carries in `error.data` (README "Broker"). */
export interface BrokerErrorData {
  /** An OAuth/MSAL-style error string: the cloud's `error`, or the broker's own. */
  readonly error: string;
  /** The AADSTS number when the cloud refused, else null. */
  readonly aadsts: number | null;
  /** The cloud's correlation id when the cloud answered, else the broker's id for the request. */
  readonly correlationId: string;
  readonly subError: string | null;
  /** For -32602: the parameter that is wrong, e.g. `params.resource`. */
  readonly field?: string;
}

export class BrokerError extends PrtlabError {
  /** The WebSocket close code when the connection ended (RFC 6455 §7.4), else undefined. */
  readonly closeCode: number | undefined;

  constructor(
    message: string,
    options: { cause?: unknown; closeCode?: number; code?: BrokerErrorCode } = {},
  ) {
    super(
      options.code ?? 'ERR_BROKER',
      message,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.closeCode = options.closeCode;
  }
}

/** A JSON-RPC error response, as the client library reports it. */
export class BrokerRpcError extends BrokerError {
  /** The JSON-RPC error code (JSON-RPC 2.0 §5.1, or the broker's -320xx). */
  readonly rpcCode: number;
  readonly data: BrokerErrorData | undefined;

  constructor(rpcCode: number, message: string, data: BrokerErrorData | undefined) {
    super(message, { code: 'ERR_BROKER_RPC' });
    this.rpcCode = rpcCode;
    this.data = data;
  }
}

export function isBrokerError(err: unknown, code?: BrokerErrorCode): err is BrokerError {
  return err instanceof BrokerError && (code === undefined || err.code === code);
}
