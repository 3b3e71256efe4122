/**
 * HTTPS for the client stubs: trusts only the lab CA the device holds (never the system store),
 * bounded answers and a timeout. Tokens travel in headers and bodies, never in URLs or logs.
 */
import { request } from 'node:https';
import { ClientError } from './errors.ts';

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

const MAX_ANSWER_BYTES = 1024 * 1024;
const TIMEOUT_MS = 30_000;

export function https(
  url: string,
  options: {
    method?: 'GET' | 'POST';
    ca: string;
    headers?: Record<string, string>;
    body?: string;
  },
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: options.method ?? 'GET',
        ca: options.ca,
        headers: {
          ...options.headers,
          ...(options.body !== undefined
            ? { 'content-length': String(Buffer.byteLength(options.body)) }
            : {}),
        },
        timeout: TIMEOUT_MS,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_ANSWER_BYTES) {
            req.destroy(new ClientError(`${new URL(url).pathname}: answer larger than 1 MiB`));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () =>
      req.destroy(new ClientError(`${new URL(url).pathname}: no answer in ${TIMEOUT_MS} ms`)),
    );
    req.on('error', (err: Error & { code?: string }) =>
      reject(
        err instanceof ClientError
          ? err
          : new ClientError(`cannot reach ${new URL(url).origin} (${err.code ?? err.message})`, {
              cause: err,
            }),
      ),
    );
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}
