/**
 * JSON-RPC 2.0 framing for the broker (https://www.jsonrpc.org/specification): one request object
 * per WebSocket text message, one response per request. What the broker accepts is a strict
 * subset of the specification:
 *
 *   - a Request object (§4) with `"jsonrpc": "2.0"`, a string `method`, `params` absent or a
 *     by-name object (§4.2; by-position arrays are refused as -32602), and an `id` that is a
 *     string (at most 128 characters) or a safe integer. A null id, which §4 discourages, is
 *     refused as -32600, because the answer could not be matched to its request;
 *   - a Notification (§4.1: no `id`) is neither executed nor answered: every broker method
 *     returns something, and §4.1 forbids replying to a notification;
 *   - a Batch (§6) is refused with one -32600 error (the broker serves one call per message;
 *     concurrency comes from many messages in flight, not from batches);
 *   - text that is not JSON is -32700 with id null (§5.1); JSON nested deeper than a bound is
 *     -32600 before it is parsed, so hostile nesting costs one linear scan.
 *
 * Error codes: §5.1's predefined ones, and the broker's own in the range §5.1 reserves for
 * implementation-defined server errors (-32000 to -32099).
 */
import type { BrokerErrorData } from './errors.ts';

export const RPC_ERRORS = Object.freeze({
  /** §5.1: invalid JSON was received. */
  parseError: -32700,
  /** §5.1: the JSON sent is not a valid Request object. */
  invalidRequest: -32600,
  /** §5.1: the method does not exist. */
  methodNotFound: -32601,
  /** §5.1: invalid method parameters; the message and `data.field` name the parameter. */
  invalidParams: -32602,
  /** §5.1: internal JSON-RPC error (a broker bug; the detail goes to the broker's log only). */
  internalError: -32603,
  /** The cloud refused the token request (bad password, Conditional Access block, revoked grant). */
  cloudRefused: -32000,
  /** The user must sign in (acquireTokenInteractive): no account, or no PRT for it. */
  interactionRequired: -32001,
  /** The device agent failed (TPM, device state); the message carries its error code only. */
  agentFailure: -32002,
  /** This connection sent requests faster than its rate limit, or has too many in flight. */
  rateLimited: -32003,
  /** signOut named an account that has no PRT on this device. */
  accountNotFound: -32004,
});

export type RpcId = string | number;

export interface RpcRequest {
  readonly id: RpcId;
  readonly method: string;
  /** The by-name params, or undefined when the request had none. */
  readonly params: Readonly<Record<string, unknown>> | undefined;
}

export interface RpcErrorObject {
  readonly code: number;
  readonly message: string;
  readonly data?: BrokerErrorData;
}

export type ParsedMessage =
  | { readonly kind: 'request'; readonly request: RpcRequest }
  | { readonly kind: 'notification'; readonly method: string }
  | {
      readonly kind: 'invalid';
      readonly id: RpcId | null;
      readonly code: number;
      readonly message: string;
      /** For -32602: the member at fault. */
      readonly field?: string;
    };

export const MAX_ID_CHARS = 128;
const MAX_METHOD_CHARS = 64;

/**
 * True when `text` nests objects and arrays deeper than `maxDepth`. Brackets inside strings do
 * not count; the scan stops at the first level too deep, so its cost is linear in the text.
 */
export function nestsDeeperThan(text: string, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > maxDepth) return true;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    }
  }
  return false;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A usable id (§4), or undefined. */
function validId(v: unknown): RpcId | undefined {
  if (typeof v === 'string' && v.length <= MAX_ID_CHARS) return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  return undefined;
}

/** Parses one WebSocket text message into a request, a notification, or the error to answer. */
export function parseMessage(text: string, maxDepth: number): ParsedMessage {
  const invalid = (
    id: RpcId | null,
    message: string,
    code: number = RPC_ERRORS.invalidRequest,
    field?: string,
  ): ParsedMessage => ({ kind: 'invalid', id, code, message, ...(field ? { field } : {}) });
  if (nestsDeeperThan(text, maxDepth))
    return invalid(null, `Invalid Request: JSON nested deeper than ${maxDepth} levels`);
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    return invalid(null, 'Parse error: the message is not JSON', RPC_ERRORS.parseError);
  }
  if (Array.isArray(msg))
    return invalid(null, 'Invalid Request: batch requests are not supported; send one per message');
  if (!isPlainObject(msg)) return invalid(null, 'Invalid Request: expected a JSON object');
  const hasId = Object.hasOwn(msg, 'id');
  const id = hasId ? validId(msg.id) : undefined;
  const replyId = id ?? null;
  if (msg.jsonrpc !== '2.0') return invalid(replyId, 'Invalid Request: jsonrpc must be "2.0"');
  for (const key of Object.keys(msg)) {
    if (key !== 'jsonrpc' && key !== 'method' && key !== 'params' && key !== 'id')
      return invalid(replyId, `Invalid Request: unexpected member '${key.slice(0, 64)}'`);
  }
  if (typeof msg.method !== 'string' || msg.method.length === 0)
    return invalid(replyId, 'Invalid Request: method must be a non-empty string');
  if (msg.method.length > MAX_METHOD_CHARS)
    return invalid(replyId, 'Invalid Request: method name too long');
  if (hasId && id === undefined)
    return invalid(
      null,
      `Invalid Request: id must be a string of at most ${MAX_ID_CHARS} characters or a safe integer`,
    );
  if (!hasId) return { kind: 'notification', method: msg.method };
  const params = msg.params;
  if (params !== undefined && !isPlainObject(params)) {
    return invalid(
      replyId,
      'Invalid params: params must be an object (by-name parameters)',
      RPC_ERRORS.invalidParams,
      'params',
    );
  }
  return {
    kind: 'request',
    request: { id: id as RpcId, method: msg.method, params: params as Record<string, unknown> },
  };
}

export function resultResponse(id: RpcId, result: unknown): string {
  return JSON.stringify({ jsonrpc: '2.0', id, result });
}

export function errorResponse(id: RpcId | null, error: RpcErrorObject): string {
  return JSON.stringify({ jsonrpc: '2.0', id, error });
}
