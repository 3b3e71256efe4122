/**
 * The agent's shared srv_challenge nonce (agent/nonce-cache.ts): reused for half the cloud's nonce
 * lifetime, one fetch for concurrent callers, discarded when the cloud refuses it. The clock is a
 * variable here; the agent passes its lab clock.
 */
import { describe, expect, it } from 'vitest';
import { NONCE_REFUSALS, NONCE_REUSE_MS, NonceCache } from '../../agent/nonce-cache.ts';
import { NONCE_LIFETIME_MS } from '../../cloud/tokens/nonce.ts';

/** A fetcher handing out nonce-1, nonce-2, ...; each fetch waits until `settle()` when held. */
function fetcher() {
  let n = 0;
  let hold: Promise<void> | undefined;
  let release: (() => void) | undefined;
  let failNext: Error | undefined;
  return {
    get count() {
      return n;
    },
    hold() {
      hold = new Promise((r) => {
        release = r;
      });
    },
    settle() {
      release?.();
      hold = undefined;
    },
    failOnce(err: Error) {
      failNext = err;
    },
    fetch: async () => {
      n++;
      const mine = n;
      if (hold) await hold;
      if (failNext) {
        const err = failNext;
        failNext = undefined;
        throw err;
      }
      return `nonce-${mine}`;
    },
  };
}

describe('NonceCache', () => {
  it('reuses a nonce for half the cloud nonce lifetime, then fetches a new one', async () => {
    expect(NONCE_REUSE_MS).toBe(NONCE_LIFETIME_MS / 2);
    let now = 1_000_000;
    const f = fetcher();
    const cache = new NonceCache(f.fetch, () => now);
    expect(await cache.get()).toBe('nonce-1');
    now += NONCE_REUSE_MS - 1;
    expect(await cache.get()).toBe('nonce-1');
    expect(f.count).toBe(1);
    now += 1;
    expect(await cache.get()).toBe('nonce-2');
    expect(f.count).toBe(2);
  });

  it('counts the age from before the fetch, not from its answer', async () => {
    let now = 0;
    const f = fetcher();
    const cache = new NonceCache(f.fetch, () => now);
    f.hold();
    const pending = cache.get();
    now += 10_000; // the answer takes 10 s
    f.settle();
    expect(await pending).toBe('nonce-1');
    now += NONCE_REUSE_MS - 10_000;
    expect(await cache.get()).toBe('nonce-2');
  });

  it('concurrent callers that need a nonce share one fetch', async () => {
    const f = fetcher();
    const cache = new NonceCache(f.fetch, () => 0);
    f.hold();
    const all = Promise.all([cache.get(), cache.get(), cache.get()]);
    f.settle();
    expect(await all).toEqual(['nonce-1', 'nonce-1', 'nonce-1']);
    expect(f.count).toBe(1);
  });

  it('discard drops the nonce a refused request carried, and only that one', async () => {
    const f = fetcher();
    const cache = new NonceCache(f.fetch, () => 0);
    const first = await cache.get();
    cache.discard('some-older-nonce');
    expect(await cache.get()).toBe(first);
    cache.discard(first);
    expect(await cache.get()).toBe('nonce-2');
    expect(f.count).toBe(2);
  });

  it('a failed fetch fails its waiters; the next call fetches again', async () => {
    const f = fetcher();
    const cache = new NonceCache(f.fetch, () => 0);
    f.failOnce(new Error('cloud unreachable'));
    await expect(cache.get()).rejects.toThrow('cloud unreachable');
    expect(await cache.get()).toBe('nonce-2');
  });

  it('a clock that went back does not make an old nonce look young', async () => {
    let now = 500_000;
    const f = fetcher();
    const cache = new NonceCache(f.fetch, () => now);
    await cache.get();
    now -= 1;
    expect(await cache.get()).toBe('nonce-2');
  });

  it('the refusals that name the nonce: expired (76026) and not issued by the cloud (9990101)', () => {
    expect([...NONCE_REFUSALS].sort()).toEqual([76026, 9990101]);
  });
});
