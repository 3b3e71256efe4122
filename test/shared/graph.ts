/** Shared by the Graph API tests: admin requests to the lab cloud and Graph error checks. */
import { expect } from 'vitest';
import type { Application, User } from '../../cloud/directory/types.ts';
import type { CloudHandle } from '../../cloud/server.ts';
import { httpsRequest } from '../prt-client/http.ts';
import { graphToken, type JsonReply, withJson } from './cloud.ts';

/** Microsoft Graph Command Line Tools: the client the Graph admin tests get their tokens for. */
export const GRAPH_CLIENT = '14d82eec-204b-4c2f-b7e8-296a70dab67e';

/** An access token for `user` from GRAPH_CLIENT, for `resource` (Microsoft Graph by default). */
export function adminToken(cloud: CloudHandle, user: User, resource?: Application) {
  return graphToken(cloud, user, GRAPH_CLIENT, resource);
}

/**
 * A request to the cloud, trusting `ca`: `path` is relative to the cloud's URL or a whole link
 * (an `@odata.nextLink`), `bearer` the access token, `body` sent as JSON.
 */
export async function graphRequest(
  cloud: CloudHandle,
  ca: string,
  method: string,
  path: string,
  bearer?: string,
  body?: unknown,
): Promise<JsonReply> {
  const headers: Record<string, string> = {};
  if (bearer !== undefined) headers.authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const url = path.startsWith('https://') ? path : `${cloud.url}${path}`;
  return withJson(
    await httpsRequest(url, {
      method,
      ca,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    }),
  );
}

/**
 * Checks that `r` is a Graph error with `status` and `code`: a message, request and client
 * request ids and a date in innerError, no stack trace.
 */
export function expectGraphError(r: JsonReply, status: number, code: string): void {
  expect(r.status, r.body).toBe(status);
  expect(r.json.error.code).toBe(code);
  expect(typeof r.json.error.message).toBe('string');
  expect(r.json.error.innerError['request-id']).toMatch(/^[0-9a-f-]{36}$/);
  expect(r.json.error.innerError['client-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  expect(r.json.error.innerError.date).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  expect(r.body).not.toMatch(/\n\s+at /);
}
