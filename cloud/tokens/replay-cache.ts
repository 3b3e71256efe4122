/**
 * A short replay cache for signed requests: an identical signed request is accepted once
 * (issue: "an identical signed request is accepted once"). Keys are HMACs of the exact request
 * bytes, kept until the nonce inside could no longer pass (its lifetime), so memory stays bounded
 * by the request rate times the nonce lifetime; a hard cap guards against floods.
 */
import { createHmac } from 'node:crypto';

export class ReplayCache {
  private readonly seen = new Map<string, number>();
  private readonly key: Buffer;
  private readonly maxEntries: number;

  constructor(key: Buffer, maxEntries = 100_000) {
    this.key = key;
    this.maxEntries = maxEntries;
  }

  /**
   * Records `request` until `expiresAt` (ms). Returns false if it was already recorded and has not
   * expired: the caller must refuse the request. When full of live entries it refuses new ones
   * (fail closed) rather than forget one that could then be replayed.
   */
  firstUse(request: Uint8Array | string, expiresAt: number, now: number = Date.now()): boolean {
    const id = createHmac('sha256', this.key).update(request).digest('base64url');
    const until = this.seen.get(id);
    if (until !== undefined && until > now) return false;
    if (this.seen.size >= this.maxEntries) this.sweep(now);
    if (this.seen.size >= this.maxEntries) return false;
    this.seen.set(id, expiresAt);
    return true;
  }

  /** Drops expired entries (Map keeps insertion order, which is roughly expiry order). */
  sweep(now: number = Date.now()): void {
    for (const [id, until] of this.seen) if (until <= now) this.seen.delete(id);
  }

  get size(): number {
    return this.seen.size;
  }
}
