/**
 * Entra-shaped error responses. Every failure the cloud answers over HTTP has this body:
 *
 *   { "error": "invalid_request",
 *     "error_description": "AADSTS9002313: <description> Trace ID: <t> Correlation ID: <c> Timestamp: <ts>",
 *     "error_codes": [9002313], "timestamp": "2025-01-31 12:34:56Z",
 *     "trace_id": "<guid>", "correlation_id": "<guid>", "error_uri": "<base>/error?code=9002313" }
 *
 * Server-side failures (status >= 500, or anything that is not a CloudError) are sent with the
 * table's generic wording only; their real description, detail and stack go to the server log.
 */
import { aadstsEntry, CloudError, CloudInternalError } from '../errors.ts';

/** Entra's timestamp format: `yyyy-MM-dd HH:mm:ssZ`, UTC. */
export function entraTimestamp(date: Date): string {
  return `${date.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

/** Identifiers of one request, sent back in errors and headers and written to the log. */
export interface RequestIds {
  /** New for every request (Entra's `x-ms-request-id`). */
  readonly traceId: string;
  /** The client's `client-request-id` if it is a GUID, else a new one. */
  readonly correlationId: string;
}

export interface ErrorResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Record<string, unknown>;
  /** The error as a CloudError (unexpected errors wrapped), for the log. */
  readonly error: CloudError;
}

/** Any thrown value as a CloudError; unexpected ones become AADSTS50000 (ERR_CLOUD_INTERNAL). */
export function asCloudError(err: unknown): CloudError {
  if (err instanceof CloudError) return err;
  const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
  return new CloudInternalError(detail, { cause: err });
}

/** The Entra error response for `err`. `baseUrl` is used for `error_uri`. */
export function errorResponse(
  err: unknown,
  ids: RequestIds,
  now: Date,
  baseUrl: string | undefined,
): ErrorResponse {
  const error = asCloudError(err);
  const entry = aadstsEntry(error.aadsts);
  const serverSide = error.status >= 500 || error.code === 'ERR_CLOUD_INTERNAL';
  const description = serverSide ? (entry?.meaning ?? 'Internal error.') : error.description;
  const timestamp = entraTimestamp(now);
  const body: Record<string, unknown> = {
    error: error.error,
    error_description:
      `AADSTS${error.aadsts}: ${description} Trace ID: ${ids.traceId} ` +
      `Correlation ID: ${ids.correlationId} Timestamp: ${timestamp}`,
    error_codes: [error.aadsts],
    timestamp,
    trace_id: ids.traceId,
    correlation_id: ids.correlationId,
  };
  if (baseUrl !== undefined) body.error_uri = `${baseUrl}/error?code=${error.aadsts}`;
  return { status: error.status, headers: error.headers, body, error };
}
