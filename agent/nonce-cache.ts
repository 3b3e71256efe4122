/**
 * The srv_challenge nonce the agent's signed requests carry (prt-protocol §3), shared by requests
 * for part of its lifetime instead of fetched for each one.
 *
 * Why a nonce may be shared. §3 asks the server to recognise its own nonces and to check that
 * they are recent; it does not make a nonce single-use, and clients do share them (ROADtools'
 * async client keeps one for 180 s, [RT-async]). The lab cloud accepts a nonce for 5 minutes
 * after issuing it (cloud/tokens/nonce.ts NONCE_LIFETIME_MS) and stops replays with its replay
 * cache, which keys on the exact signed request bytes: two distinct requests may carry the same
 * nonce, one request is accepted once. Each request the agent signs is distinct anyway: a fresh
 * random ctx and its own iat/exp, and under KDFv2 (§5.2) its signing key is derived from
 * SHA-256(ctx || payload), where the payload holds the nonce, iat and exp. So a derived key still
 * signs exactly one payload, a captured request still cannot be replayed or altered, and it stays
 * usable no longer than before (until the nonce expires, at most the nonce lifetime after the
 * cloud issued it, and exp = iat + 300 s). What sharing saves is one HTTPS round trip per request.
 *
 * Policy: a nonce is reused until NONCE_REUSE_MS (half the cloud's lifetime) after the fetch that
 * got it began, so a request signed with it reaches the cloud with half the lifetime to spare;
 * a refusal that names the nonce (stale or not the cloud's) discards it and the caller retries
 * once with a fresh one. Concurrent callers that need a new nonce share one fetch.
 */

/** Half the lab cloud's 5-minute nonce lifetime (cloud/tokens/nonce.ts NONCE_LIFETIME_MS). */
export const NONCE_REUSE_MS = 150_000;

/**
 * Refusals that name the request's nonce or age: AADSTS76026 (the nonce, or the request's exp,
 * has expired) and the lab's 9990101 (a nonce the cloud did not issue, e.g. after its nonce key
 * changed). A fresh nonce and a newly signed request are the cure for both.
 */
export const NONCE_REFUSALS: ReadonlySet<number> = new Set([76026, 9990101]);

export class NonceCache {
  readonly #fetch: () => Promise<string>;
  readonly #now: () => number;
  readonly #maxAgeMs: number;
  #current: { readonly nonce: string; readonly fetchedAt: number } | undefined;
  #inFlight: Promise<string> | undefined;

  /** `now` is the clock the cloud's nonce check runs on (lab time in the lab). */
  constructor(fetch: () => Promise<string>, now: () => number, maxAgeMs = NONCE_REUSE_MS) {
    this.#fetch = fetch;
    this.#now = now;
    this.#maxAgeMs = maxAgeMs;
  }

  /** The cached nonce while it is young enough, else a new one (one fetch for all waiting). */
  get(): Promise<string> {
    const c = this.#current;
    if (c) {
      const age = this.#now() - c.fetchedAt;
      // A clock that went back makes the age unknown: fetch rather than trust it.
      if (age >= 0 && age < this.#maxAgeMs) return Promise.resolve(c.nonce);
      this.#current = undefined;
    }
    return this.#refresh();
  }

  /** Forgets `nonce` if it is still the cached one: the cloud refused a request that carried it. */
  discard(nonce: string): void {
    if (this.#current?.nonce === nonce) this.#current = undefined;
  }

  #refresh(): Promise<string> {
    if (!this.#inFlight) {
      // The cloud stamps the nonce while it handles the request: counting its age from before the
      // request errs on the safe side.
      const startedAt = this.#now();
      const running = this.#fetch().then((nonce) => {
        this.#current = { nonce, fetchedAt: startedAt };
        return nonce;
      });
      this.#inFlight = running;
      const clear = () => {
        if (this.#inFlight === running) this.#inFlight = undefined;
      };
      running.then(clear, clear);
    }
    return this.#inFlight;
  }
}
