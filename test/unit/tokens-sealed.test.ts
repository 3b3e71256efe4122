import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  openPrt,
  openRefreshToken,
  type PrtClaims,
  sealPrt,
  sealRefreshToken,
} from '../../cloud/tokens/claims.ts';
import { deriveTokenKeys } from '../../cloud/tokens/keys.ts';
import { checkNonce, issueNonce, NONCE_LIFETIME_MS } from '../../cloud/tokens/nonce.ts';
import { ReplayCache } from '../../cloud/tokens/replay-cache.ts';

const keys = deriveTokenKeys(randomBytes(32));
const prt: PrtClaims = {
  sid: 'b7e2c1d0-1111-4222-8333-944455556666',
  tid: 'a1b2c3d4-0000-4000-8000-000000000001',
  uid: 'u-1',
  did: 'd-1',
  sk: randomBytes(32).toString('base64'),
  kdf: 2,
  authTime: 1_700_000_000,
  amr: ['pwd', 'rsa'],
  iat: 1_700_000_000,
  exp: 1_701_209_599,
};

describe('srv_challenge nonces', () => {
  it('are accepted within their lifetime, more than once, and carry their issue time', () => {
    const now = Date.now();
    const n = issueNonce(keys.nonce, now);
    expect(checkNonce(keys.nonce, n, now + 1000)).toEqual({ ok: true, issuedAt: now });
    expect(checkNonce(keys.nonce, n, now + 2000).ok).toBe(true);
  });

  it('expire after the lifetime, and refuse nonces from far in the future', () => {
    const now = Date.now();
    expect(
      checkNonce(keys.nonce, issueNonce(keys.nonce, now), now + NONCE_LIFETIME_MS + 1),
    ).toEqual({ ok: false, reason: 'expired' });
    expect(checkNonce(keys.nonce, issueNonce(keys.nonce, now + 60_000), now)).toEqual({
      ok: false,
      reason: 'expired',
    });
  });

  it('refuse forged and malformed values without throwing', () => {
    const n = issueNonce(keys.nonce);
    const other = deriveTokenKeys(randomBytes(32));
    expect(checkNonce(other.nonce, n)).toEqual({ ok: false, reason: 'forged' });
    const flipped = `${n.slice(0, 20)}${n[20] === 'A' ? 'B' : 'A'}${n.slice(21)}`;
    expect(checkNonce(keys.nonce, flipped).ok).toBe(false);
    fc.assert(
      fc.property(fc.anything(), (v) => {
        expect(checkNonce(keys.nonce, v).ok).toBe(false);
      }),
    );
  });
});

describe('the replay cache', () => {
  it('accepts a signed request once while it could still be accepted, then forgets it', () => {
    const cache = new ReplayCache(keys.replay, 100);
    expect(cache.firstUse('signed request', 1_000)).toBe(true);
    expect(cache.firstUse('signed request', 1_050)).toBe(false);
    expect(cache.firstUse('another request', 1_050)).toBe(true);
    // Still refused one lifetime later (kept for at least one lifetime)...
    expect(cache.firstUse('signed request', 1_099)).toBe(false);
    expect(cache.firstUse('signed request', 1_150)).toBe(false);
    // ...and forgotten after two, when its nonce has long expired.
    expect(cache.firstUse('signed request', 1_300)).toBe(true);
  });

  it('fails closed when a generation is full', () => {
    const cache = new ReplayCache(keys.replay, 100, 2);
    expect(cache.firstUse('a', 0)).toBe(true);
    expect(cache.firstUse('b', 0)).toBe(true);
    expect(cache.firstUse('c', 0)).toBe(false);
    expect(cache.firstUse('c', 150)).toBe(true);
    expect(cache.size).toBeLessThanOrEqual(4);
  });
});

describe('sealed PRTs and refresh tokens', () => {
  it('round-trip their claims', () => {
    expect(openPrt(keys.prt, sealPrt(keys.prt, prt))).toEqual(prt);
    const rt = {
      jti: 'j',
      tid: prt.tid,
      uid: 'u-1',
      client: 'c',
      scope: 'openid',
      bound: { did: 'd-1', sid: prt.sid, sk: prt.sk, kdf: 2 as const },
      authTime: 1,
      amr: ['pwd'],
      iat: 1,
      exp: 2,
    };
    expect(openRefreshToken(keys.refreshToken, sealRefreshToken(keys.refreshToken, rt))).toEqual(
      rt,
    );
  });

  it('cannot be opened as another kind, with another key, or after tampering', () => {
    const token = sealPrt(keys.prt, prt);
    expect(openRefreshToken(keys.prt, `1.R${token.slice(3)}`)).toBeUndefined();
    expect(openPrt(deriveTokenKeys(randomBytes(32)).prt, token)).toBeUndefined();
    const i = token.length - 10;
    const tampered = token.slice(0, i) + (token[i] === 'A' ? 'B' : 'A') + token.slice(i + 1);
    expect(openPrt(keys.prt, tampered)).toBeUndefined();
  });

  it('never throw on arbitrary input', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string().map((s) => `1.P${s}`),
          fc.anything(),
        ),
        (v) => {
          expect(openPrt(keys.prt, v)).toBeUndefined();
        },
      ),
    );
  });
});
