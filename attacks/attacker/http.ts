/**
 * The attacker's HTTPS: it trusts the lab CA it was given (a real attacker trusts public TLS) and
 * nothing else, sends a fresh client-request-id with every request (the cloud logs it as the
 * correlation id, which is how the runner finds the sign-in log entry), and reads Entra-shaped
 * errors. Answers are capped.
 */
import { randomUUID } from 'node:crypto';
import { request } from 'node:https';
import type { RequestRecord } from './protocol.ts';

const MAX_ANSWER_BYTES = 1024 * 1024;
const TIMEOUT_MS = 30_000;

export interface Answer {
  readonly status: number;
  readonly body: string;
  readonly correlationId: string;
  /** The Entra error fields, when the body (or a redirect's query) is one. */
  readonly error?: string;
  readonly aadsts?: number;
  /** A redirect's target (never followed here: the caller decides). */
  readonly location?: string;
}

export interface Target {
  readonly base: string;
  readonly ca: string;
}

export function httpsCall(
  target: Target,
  path: string,
  options: { method?: 'GET' | 'POST'; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  const correlationId = randomUUID();
  return new Promise((resolve, reject) => {
    const req = request(
      `${target.base}${path}`,
      {
        method: options.method ?? 'GET',
        ca: target.ca,
        timeout: TIMEOUT_MS,
        headers: {
          'client-request-id': correlationId,
          ...options.headers,
          ...(options.body !== undefined
            ? { 'content-length': String(Buffer.byteLength(options.body)) }
            : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_ANSWER_BYTES) {
            req.destroy(new Error('answer larger than 1 MiB'));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          const location = typeof res.headers.location === 'string' ? res.headers.location : '';
          resolve({
            status,
            body,
            correlationId,
            ...(location ? { location } : {}),
            ...(status >= 300 && status < 400 && location
              ? redirectError(location)
              : entraError(body)),
          });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer in ${TIMEOUT_MS} ms`)));
    req.on('error', reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

function entraError(body: string): { error?: string; aadsts?: number } {
  try {
    const j = JSON.parse(body);
    if (typeof j !== 'object' || j === null || typeof j.error !== 'string') return {};
    const code = Array.isArray(j.error_codes) ? j.error_codes[0] : undefined;
    return { error: j.error, ...(typeof code === 'number' ? { aadsts: code } : {}) };
  } catch {
    return {};
  }
}

/**
 * The error an authorization endpoint redirects with (RFC 6749 §4.1.2.1): `error`, and the AADSTS
 * number Entra puts at the start of `error_description`.
 */
function redirectError(location: string): { error?: string; aadsts?: number } {
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    return {};
  }
  const error = url.searchParams.get('error');
  if (error === null) return {};
  const m = /^AADSTS(\d+):/.exec(url.searchParams.get('error_description') ?? '');
  return { error, ...(m ? { aadsts: Number(m[1]) } : {}) };
}

/** A form POST, as the token endpoint takes. */
export function postForm(
  target: Target,
  path: string,
  fields: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<Answer> {
  return httpsCall(target, path, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields).toString(),
  });
}

/** The record of one answer for the observation. */
export function recordOf(what: string, a: Answer): RequestRecord {
  return {
    what,
    status: a.status,
    correlationId: a.correlationId,
    ...(a.error !== undefined ? { error: a.error } : {}),
    ...(a.aadsts !== undefined ? { aadsts: a.aadsts } : {}),
  };
}
