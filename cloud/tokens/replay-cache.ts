/**
 * A short replay cache for signed requests: an identical signed request is accepted once
 * (issue: "an identical signed request is accepted once"). Keys are HMACs of the exact request
 * bytes. A request only needs remembering while its nonce could still pass, so entries live in
 * two generations that rotate every nonce lifetime: a key is kept at least one lifetime and at
 * most two (longer only refuses more replays), and dropping a generation costs nothing per
 * request. A hard cap per generation guards against floods; when it is reached, new requests
 * are refused (fail closed) rather than forgotten entries made replayable.
 */
import { createHmac } from 'node:crypto';

export class ReplayCache {
  private current = new Set<string>();
  private previous = new Set<string>();
  private rotatedAt: number | undefined;
  private readonly key: Buffer;
  private readonly lifetimeMs: number;
  private readonly maxPerGeneration: number;

  /**
   * @param lifetimeMs how long a request could still be accepted (the nonce lifetime)
   * @param maxPerGeneration cap per generation: sustained rate x lifetime (default: 1,000 requests
   *   per second for 5 minutes)
   */
  constructor(key: Buffer, lifetimeMs = 5 * 60 * 1000, maxPerGeneration = 300_000) {
    this.key = key;
    this.lifetimeMs = lifetimeMs;
    this.maxPerGeneration = maxPerGeneration;
  }

  private rotate(now: number): void {
    if (this.rotatedAt === undefined) {
      this.rotatedAt = now;
      return;
    }
    const elapsed = now - this.rotatedAt;
    if (elapsed < this.lifetimeMs) return;
    // After two lifetimes with no traffic both generations are stale.
    this.previous = elapsed >= 2 * this.lifetimeMs ? new Set() : this.current;
    this.current = new Set();
    this.rotatedAt = now;
  }

  /** Records `request`; false if it was seen within the last lifetime (or the cache is full). */
  firstUse(request: Uint8Array | string, now: number = Date.now()): boolean {
    this.rotate(now);
    const id = createHmac('sha256', this.key).update(request).digest('base64url');
    if (this.current.has(id) || this.previous.has(id)) return false;
    if (this.current.size >= this.maxPerGeneration) return false;
    this.current.add(id);
    return true;
  }

  get size(): number {
    return this.current.size + this.previous.size;
  }
}
