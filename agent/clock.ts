/**
 * The lab clock: what the agent calls "now" for PRT renewal and expiry (prt-protocol §4.5: renewed
 * every 4 hours, valid 14 days). Lab time runs with the real clock plus an offset that only moves
 * forward, so a test (or a demo) can let hours or days pass at once without waiting. Listeners
 * hear every advance; the agent uses that to run its renewal check the moment lab time jumps,
 * and a long-lived agent adds a real timer (startTicker) for time that passes by itself.
 */

export interface Clock {
  /** Milliseconds since the epoch, in lab time. */
  now(): number;
  /**
   * Calls `listener` after lab time moves forward by an advance. Returns a function that removes
   * the listener. Real time passing does not call it; see startTicker.
   */
  onAdvance(listener: () => void): () => void;
}

export class LabClock implements Clock {
  #offsetMs = 0;
  readonly #listeners = new Set<() => void>();
  readonly #real: () => number;

  /** `real` is the underlying clock (Date.now by default). */
  constructor(real: () => number = Date.now) {
    if (typeof real !== 'function') throw new TypeError('real must be a function');
    this.#real = real;
  }

  now(): number {
    return this.#real() + this.#offsetMs;
  }

  /** How far lab time is ahead of the underlying clock. */
  get offsetMs(): number {
    return this.#offsetMs;
  }

  /** Moves lab time forward by `ms` (never back) and tells every listener. */
  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError('advance takes a finite ms >= 0');
    this.#offsetMs += ms;
    for (const listener of [...this.#listeners]) listener();
  }

  onAdvance(listener: () => void): () => void {
    if (typeof listener !== 'function') throw new TypeError('listener must be a function');
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }
}

/** Real time, never advanced by hand. */
export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  onAdvance: () => () => {},
});

/**
 * Runs `tick` every `intervalMs` of real time until the returned function is called. The timer is
 * unref'd: it never keeps a process alive on its own.
 */
export function startTicker(tick: () => void, intervalMs: number): () => void {
  if (!Number.isInteger(intervalMs) || intervalMs < 1) {
    throw new RangeError('intervalMs must be a positive integer');
  }
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
