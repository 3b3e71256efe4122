/**
 * A capture point on the agent's HTTPS exchanges with its cloud, used only by the attack harness
 * (attacks/). It stands in for what the lab has no place for: a TLS-intercepting proxy on the
 * victim's machine, which sees the PRT and the PRT-signed requests in the clear (prt-protocol §6.1:
 * the PRT travels in the payload of every signed request; §7 "Attack facts": the TPM protects the
 * session key, not the PRT or a request already signed).
 *
 * Nothing in the agent registers a listener. With none registered, http.ts does no extra work;
 * a listener that throws never disturbs the agent's request.
 */

/** One request the agent sent and the status it got back. */
export interface CapturedExchange {
  readonly method: string;
  /** The full URL, e.g. https://127.0.0.1:8443/<tenant>/oauth2/token. */
  readonly url: string;
  /** The request headers the agent set (client-request-id, content-type, authorization, ...). */
  readonly headers: Readonly<Record<string, string>>;
  /** The request body as sent; undefined for a request without one. */
  readonly body: string | undefined;
  /** The HTTP status of the answer. */
  readonly status: number;
}

export type CaptureListener = (exchange: CapturedExchange) => void;

const listeners = new Map<CaptureListener, string>();

/**
 * Calls `listener` after each exchange of any agent in this process with the cloud at `cloudUrl`
 * (an origin such as https://127.0.0.1:8443). Returns the function that stops the capture.
 */
export function captureAgentExchanges(cloudUrl: string, listener: CaptureListener): () => void {
  if (typeof listener !== 'function') throw new TypeError('listener must be a function');
  const origin = new URL(cloudUrl).origin;
  listeners.set(listener, origin);
  return () => {
    listeners.delete(listener);
  };
}

/** Whether any capture is registered (http.ts skips the record otherwise). */
export function capturing(): boolean {
  return listeners.size > 0;
}

/** What http.ts knows of a request when its answer has arrived. */
export interface SentRequest {
  readonly method: string;
  readonly url: string;
  readonly correlationId: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
}

/** Hands one exchange to the listeners registered for its cloud (called by http.ts). */
export function recordExchange(cloudUrl: string, sent: SentRequest, status: number): void {
  const exchange: CapturedExchange = Object.freeze({
    method: sent.method,
    url: sent.url,
    headers: Object.freeze({ 'client-request-id': sent.correlationId, ...sent.headers }),
    body: sent.body,
    status,
  });
  for (const [listener, origin] of listeners) {
    if (origin !== cloudUrl) continue;
    try {
      listener(exchange);
    } catch {
      // A capture must never change what the agent does.
    }
  }
}
