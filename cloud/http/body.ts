/**
 * Request bodies: read with a size cap and a deadline, then parsed as a form or JSON with clear
 * Entra errors. Nothing here ever echoes body content into an error or the log (bodies carry
 * passwords, assertions and tokens).
 */
import type { IncomingMessage } from 'node:http';
import { CloudRequestError } from '../errors.ts';

/** The usual cap: an OAuth form or DRS JSON body is a few KiB. */
export const DEFAULT_BODY_LIMIT = 64 * 1024;
/** No route may raise its cap above this. */
export const MAX_BODY_LIMIT = 1024 * 1024;
/**
 * After a body is refused as too large, this much more is read and discarded before answering,
 * so the client (still sending) reads the 413 instead of a connection reset. Beyond it, or past
 * the drain deadline, the connection is cut.
 */
const DRAIN_LIMIT = 1024 * 1024;
const DRAIN_MS = 2000;

const FORM = 'application/x-www-form-urlencoded';
const JSON_TYPE = 'application/json';

function malformed(description: string, detail?: string): CloudRequestError {
  return new CloudRequestError(9002313, { description, detail });
}

export interface ReadBodyOptions {
  limit: number;
  timeoutMs: number;
}

/**
 * Reads the whole body. Over `limit` (by Content-Length or by counting) is AADSTS9990413 (413);
 * not finished within `timeoutMs` is AADSTS9990408 (408); a compressed body is refused (400),
 * since inflating it would defeat the cap.
 */
export function readBody(req: IncomingMessage, options: ReadBodyOptions): Promise<Buffer> {
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
    return Promise.reject(
      malformed('Content-Encoding is not supported; send the body uncompressed.'),
    );
  }
  const declared = req.headers['content-length'];
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    let draining = false;
    let drained = 0;
    // The 408 goes out with `Connection: close`; the server then drops the connection.
    const timer = setTimeout(
      () => fail(new CloudRequestError(9990408, { headers: { connection: 'close' } })),
      options.timeoutMs,
    );
    timer.unref();
    const cleanup = () => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      cleanup();
      reject(err);
    };
    const tooLarge = () =>
      new CloudRequestError(9990413, {
        description: `The request body is larger than this endpoint accepts (${options.limit} bytes).`,
        headers: { connection: 'close' },
      });
    const startDrain = () => {
      draining = true;
      chunks.length = 0;
      const drainTimer = setTimeout(() => {
        fail(tooLarge());
      }, DRAIN_MS);
      drainTimer.unref();
      req.once('end', () => clearTimeout(drainTimer));
    };
    const onData = (chunk: Buffer) => {
      if (draining) {
        drained += chunk.length;
        if (drained > DRAIN_LIMIT) fail(tooLarge());
        return;
      }
      size += chunk.length;
      if (size > options.limit) {
        startDrain();
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      if (draining) {
        fail(tooLarge());
        return;
      }
      if (settled) return;
      settled = true;
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (err: Error) =>
      fail(malformed('The request body could not be read.', err.message));
    const onAborted = () => fail(malformed('The request was aborted.'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
    if (declared !== undefined) {
      const n = Number(declared);
      if (!Number.isSafeInteger(n) || n < 0) {
        fail(malformed('Content-Length is not valid.'));
        return;
      }
      if (n > options.limit) startDrain();
      if (n > options.limit + DRAIN_LIMIT) fail(tooLarge());
    }
  });
}

/** The media type of a Content-Type header, lowercased, with its charset (if any). */
function mediaType(header: string | undefined): { type: string; charset: string | undefined } {
  if (header === undefined) return { type: '', charset: undefined };
  const [type = '', ...params] = header.split(';').map((p) => p.trim());
  let charset: string | undefined;
  for (const p of params) {
    const [k, v] = p.split('=').map((x) => x.trim());
    if (k?.toLowerCase() === 'charset' && v !== undefined) {
      charset = v.replace(/^"(.*)"$/, '$1').toLowerCase();
    }
  }
  return { type: type.toLowerCase(), charset };
}

function decodeUtf8(body: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(body);
  } catch {
    throw malformed('The request body is not valid UTF-8.');
  }
}

function checkType(header: string | undefined, expected: string): void {
  const { type, charset } = mediaType(header);
  if (type !== expected) {
    throw malformed(
      `The request body must be ${expected}.`,
      `Content-Type was ${header ?? 'missing'}`,
    );
  }
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    throw malformed('The request body must be UTF-8.');
  }
}

/**
 * Parses an `application/x-www-form-urlencoded` body. A parameter sent twice is refused (RFC 6749
 * §3.2: request parameters MUST NOT be included more than once), so no route ever has to guess
 * which copy counts.
 */
export function parseForm(contentType: string | undefined, body: Buffer): URLSearchParams {
  checkType(contentType, FORM);
  const text = decodeUtf8(body);
  if (/%(?![0-9A-Fa-f]{2})/.test(text)) throw malformed('The form body has a malformed % escape.');
  const params = new URLSearchParams(text);
  const seen = new Set<string>();
  for (const key of params.keys()) {
    if (seen.has(key)) {
      throw malformed(`The request parameter '${key.slice(0, 64)}' is duplicated.`);
    }
    seen.add(key);
  }
  return params;
}

/** Parses an `application/json` body (any JSON value; routes check the shape they need). */
export function parseJson(contentType: string | undefined, body: Buffer): unknown {
  checkType(contentType, JSON_TYPE);
  const text = decodeUtf8(body);
  try {
    // Dropping `__proto__` members keeps a later Object.assign of the result from swapping a
    // prototype; no Entra body uses that name.
    return JSON.parse(text, (key, value) => (key === '__proto__' ? undefined : value));
  } catch (err) {
    // The parser's message quotes the input around the error; keep it out of the response.
    throw malformed(
      'The request body is not valid JSON.',
      err instanceof Error ? err.name : undefined,
    );
  }
}
