import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  buildSessionKeyJwe,
  decryptResponse,
  decryptResponseWith,
  deriveKeyV1,
  encryptResponse,
  MAX_RESPONSE_JWE_LENGTH,
  MAX_SESSION_KEY_JWE_LENGTH,
  parseJsonObject,
  parseResponseJwe,
  parseSessionKeyJwe,
  SESSION_KEY_JWE_HEADER,
  unwrapSessionKeyJwe,
  unwrapSessionKeyJweWith,
} from '../../protocol/index.ts';
import { asyncCodeOf, codeOf, kat } from '../shared/protocol.ts';

const transportKey = createPrivateKey(kat.transport_private_key_pkcs1_pem);
const transportPub = createPublicKey(transportKey);
const { privateKey: otherKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const sessionKey = Buffer.from(kat.session_key_hex, 'hex');
const b64u = (b: Uint8Array | string): string => Buffer.from(b).toString('base64url');

/** Replaces part `i` of a compact JWE. */
function withPart(jwe: string, i: number, value: string): string {
  const parts = jwe.split('.');
  parts[i] = value;
  return parts.join('.');
}

/** Flips one bit of the decoded part `i`. */
function flip(jwe: string, i: number, byte = 0): string {
  const bytes = Buffer.from(jwe.split('.')[i]!, 'base64url');
  bytes[byte]! ^= 1;
  return withPart(jwe, i, b64u(bytes));
}

describe('session_key_jwe round trip (§4.4)', () => {
  it('builds exactly the Entra shape and unwraps to the same key', () => {
    const jwe = buildSessionKeyJwe(sessionKey, transportPub);
    const parsed = parseSessionKeyJwe(jwe);
    expect(Buffer.from(parsed.headerB64, 'base64url').toString()).toBe(SESSION_KEY_JWE_HEADER);
    expect([parsed.encryptedKey.length, parsed.iv.length, parsed.ciphertext.length]).toEqual([
      256, 12, 1,
    ]);
    expect(unwrapSessionKeyJwe(jwe, transportKey, { verifyPayload: true })).toEqual(sessionKey);
  });

  it('is randomized (OAEP and IV) but reproducible in its GCM part with a fixed IV', () => {
    const iv = Buffer.alloc(12, 1);
    const a = buildSessionKeyJwe(sessionKey, transportPub, { iv }).split('.');
    const b = buildSessionKeyJwe(sessionKey, transportPub, { iv }).split('.');
    expect(a[1]).not.toBe(b[1]);
    expect(a.slice(2)).toEqual(b.slice(2));
  });

  it('unwraps through a TPM-style function and passes its errors through untouched', async () => {
    const jwe = buildSessionKeyJwe(sessionKey, transportPub);
    const tpmFailure = new Error('TPM says no');
    await expect(unwrapSessionKeyJweWith(jwe, () => Promise.reject(tpmFailure))).rejects.toBe(
      tpmFailure,
    );
    expect(
      await asyncCodeOf(() => unwrapSessionKeyJweWith(jwe, async () => Buffer.alloc(16))),
    ).toBe('ERR_PROTOCOL_DECRYPT');
  });
});

describe('session_key_jwe negative cases', () => {
  const jwe = buildSessionKeyJwe(sessionKey, transportPub);

  it('a wrong transport key or a tampered encrypted key is a generic decrypt error', () => {
    for (const [key, token] of [
      [otherKey, jwe],
      [transportKey, flip(jwe, 1, 100)],
    ] as const) {
      expect(() => unwrapSessionKeyJwe(token, key)).toThrow(/^session_key_jwe: decryption failed$/);
      expect(codeOf(() => unwrapSessionKeyJwe(token, key))).toBe('ERR_PROTOCOL_DECRYPT');
    }
  });

  it('a tampered tag or payload fails only when the payload is checked (clients ignore it)', () => {
    for (const token of [flip(jwe, 4), flip(jwe, 3), flip(jwe, 2)]) {
      expect(unwrapSessionKeyJwe(token, transportKey)).toEqual(sessionKey);
      expect(codeOf(() => unwrapSessionKeyJwe(token, transportKey, { verifyPayload: true }))).toBe(
        'ERR_PROTOCOL_DECRYPT',
      );
    }
  });

  it('a 1024-bit key cannot read a 2048-bit block: decrypt error, not a crash', () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    expect(codeOf(() => unwrapSessionKeyJwe(jwe, privateKey))).toBe('ERR_PROTOCOL_DECRYPT');
  });

  it.each([
    ['four parts', (t: string) => t.split('.').slice(0, 4).join('.'), 'ERR_PROTOCOL_MALFORMED'],
    ['six parts', (t: string) => `${t}.AA`, 'ERR_PROTOCOL_MALFORMED'],
    [
      'truncated encrypted key',
      (t: string) => withPart(t, 1, b64u(Buffer.alloc(32))),
      'ERR_PROTOCOL_MALFORMED',
    ],
    [
      'an 11-byte IV',
      (t: string) => withPart(t, 2, b64u(Buffer.alloc(11))),
      'ERR_PROTOCOL_MALFORMED',
    ],
    [
      'a 15-byte tag',
      (t: string) => withPart(t, 4, b64u(Buffer.alloc(15))),
      'ERR_PROTOCOL_MALFORMED',
    ],
    [
      'a 65-byte payload',
      (t: string) => withPart(t, 3, b64u(Buffer.alloc(65))),
      'ERR_PROTOCOL_MALFORMED',
    ],
    ['bad base64url', (t: string) => withPart(t, 2, 'AAAA+AAAAAAAAAAA'), 'ERR_PROTOCOL_MALFORMED'],
    [
      'a non-JSON header',
      (t: string) => withPart(t, 0, b64u('RSA-OAEP')),
      'ERR_PROTOCOL_MALFORMED',
    ],
    [
      'alg RSA1_5',
      (t: string) => withPart(t, 0, b64u('{"enc":"A256GCM","alg":"RSA1_5"}')),
      'ERR_PROTOCOL_UNSUPPORTED',
    ],
    [
      'enc A128GCM',
      (t: string) => withPart(t, 0, b64u('{"enc":"A128GCM","alg":"RSA-OAEP"}')),
      'ERR_PROTOCOL_UNSUPPORTED',
    ],
    [
      'zip',
      (t: string) => withPart(t, 0, b64u('{"enc":"A256GCM","alg":"RSA-OAEP","zip":"DEF"}')),
      'ERR_PROTOCOL_UNSUPPORTED',
    ],
    [
      'oversize',
      (t: string) => t + 'A'.repeat(MAX_SESSION_KEY_JWE_LENGTH),
      'ERR_PROTOCOL_TOO_LARGE',
    ],
  ])('rejects %s', (_name, mutate, code) => {
    expect(codeOf(() => parseSessionKeyJwe(mutate(jwe)))).toBe(code);
    expect(codeOf(() => unwrapSessionKeyJwe(mutate(jwe), transportKey))).toBe(code);
  });

  it('treats bad arguments as caller bugs', () => {
    expect(() => buildSessionKeyJwe(Buffer.alloc(16), transportPub)).toThrow(RangeError);
    expect(() => buildSessionKeyJwe(sessionKey, transportKey)).toThrow(TypeError);
    expect(() => buildSessionKeyJwe(sessionKey, transportPub, { iv: Buffer.alloc(16) })).toThrow(
      RangeError,
    );
    expect(() => unwrapSessionKeyJwe(jwe, transportPub)).toThrow(TypeError);
  });
});

describe('encrypted token response round trip (§6.2)', () => {
  const body = {
    token_type: 'Bearer',
    expires_in: '1209599',
    refresh_token: '0.AbcA',
    scope: 'openid',
  };

  it('GCM by default: Entra header order, 24-byte ctx, 12-byte IV, 16-byte tag', () => {
    const jwe = encryptResponse(sessionKey, body);
    const parsed = parseResponseJwe(jwe);
    expect(Buffer.from(parsed.headerB64, 'base64url').toString()).toBe(
      `{"alg":"dir","enc":"A256GCM","ctx":"${parsed.ctx.toString('base64')}"}`,
    );
    expect([parsed.encoding, parsed.ctx.length, parsed.iv.length, parsed.tag.length]).toEqual([
      'gcm',
      24,
      12,
      16,
    ]);
    expect(jwe.split('.')[1]).toBe('');
    const out = decryptResponse(jwe, sessionKey);
    expect(parseJsonObject(out.plaintext, 'response')).toEqual(body);
  });

  it('CBC on request, like the real sample: 16-byte IV, empty tag', () => {
    const ctx = Buffer.alloc(24, 9);
    const jwe = encryptResponse(sessionKey, JSON.stringify(body), { ctx, encoding: 'cbc' });
    const parsed = parseResponseJwe(jwe);
    expect([parsed.encoding, parsed.iv.length, parsed.tag.length]).toEqual(['cbc', 16, 0]);
    expect(parsed.ctx).toEqual(ctx);
    expect(parseJsonObject(decryptResponse(jwe, sessionKey).plaintext, 'r')).toEqual(body);
  });

  it('decrypts with a TPM-style derive function, which is given the header ctx', async () => {
    const jwe = encryptResponse(sessionKey, Buffer.of(1, 2, 3));
    const seen: Buffer[] = [];
    const out = await decryptResponseWith(jwe, async (ctx) => {
      seen.push(ctx);
      return deriveKeyV1(sessionKey, ctx);
    });
    expect(out.plaintext).toEqual(Buffer.of(1, 2, 3));
    expect(seen).toEqual([parseResponseJwe(jwe).ctx]);
  });

  it('a client may refuse the unauthenticated CBC encoding before deriving any key', async () => {
    let derived = 0;
    const derive = async (ctx: Buffer) => {
      derived++;
      return deriveKeyV1(sessionKey, ctx);
    };
    const opts = { allowCbc: false };
    expect(codeOf(() => decryptResponse(kat.response_jwe, sessionKey, opts))).toBe(
      'ERR_PROTOCOL_UNSUPPORTED',
    );
    expect(await asyncCodeOf(() => decryptResponseWith(kat.response_jwe, derive, opts))).toBe(
      'ERR_PROTOCOL_UNSUPPORTED',
    );
    expect(derived).toBe(0);
    expect(decryptResponse(encryptResponse(sessionKey, '{}'), sessionKey, opts).encoding).toBe(
      'gcm',
    );
  });
});

describe('encrypted token response negative cases', () => {
  const gcm = encryptResponse(sessionKey, { a: 1 });
  const cbc = kat.response_jwe;
  const wrongKey = Buffer.alloc(32, 0x42);

  it.each([
    ['GCM, wrong session key', gcm, wrongKey],
    ['GCM, tampered tag', flip(gcm, 4), sessionKey],
    ['GCM, tampered ciphertext', flip(gcm, 3), sessionKey],
    ['GCM, tampered IV', flip(gcm, 2), sessionKey],
    [
      'GCM, header changed (AAD)',
      withPart(
        gcm,
        0,
        b64u(`{"alg":"dir","enc":"A256GCM","ctx":"${Buffer.alloc(24, 1).toString('base64')}"}`),
      ),
      sessionKey,
    ],
    ['CBC, wrong session key', cbc, wrongKey],
    [
      'CBC, last block tampered (padding)',
      flip(cbc, 3, Buffer.from(cbc.split('.')[3]!, 'base64url').length - 17),
      sessionKey,
    ],
  ])('%s: generic decrypt error', (_name, jwe, key) => {
    expect(() => decryptResponse(jwe, key)).toThrow(/^response JWE: decryption failed$/);
    expect(codeOf(() => decryptResponse(jwe, key))).toBe('ERR_PROTOCOL_DECRYPT');
  });

  const ctxB64 = Buffer.alloc(24).toString('base64');
  it.each([
    ['four parts', gcm.split('.').slice(0, 4).join('.'), 'ERR_PROTOCOL_MALFORMED'],
    ['an encrypted key', withPart(gcm, 1, 'AAAA'), 'ERR_PROTOCOL_MALFORMED'],
    ['a 13-byte IV', withPart(gcm, 2, b64u(Buffer.alloc(13))), 'ERR_PROTOCOL_MALFORMED'],
    ['GCM without a tag', withPart(gcm, 4, ''), 'ERR_PROTOCOL_MALFORMED'],
    ['CBC with a tag', withPart(cbc, 4, b64u(Buffer.alloc(16))), 'ERR_PROTOCOL_MALFORMED'],
    [
      'CBC with a partial block',
      withPart(cbc, 3, b64u(Buffer.alloc(20))),
      'ERR_PROTOCOL_MALFORMED',
    ],
    ['CBC with no ciphertext', withPart(cbc, 3, ''), 'ERR_PROTOCOL_MALFORMED'],
    ['no ctx', withPart(gcm, 0, b64u('{"alg":"dir","enc":"A256GCM"}')), 'ERR_PROTOCOL_MALFORMED'],
    [
      'a base64url ctx',
      withPart(
        gcm,
        0,
        b64u('{"alg":"dir","enc":"A256GCM","ctx":"-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_"}'),
      ),
      'ERR_PROTOCOL_MALFORMED',
    ],
    ['bad base64url', withPart(gcm, 3, '*'), 'ERR_PROTOCOL_MALFORMED'],
    [
      'alg RSA-OAEP',
      withPart(gcm, 0, b64u(`{"alg":"RSA-OAEP","enc":"A256GCM","ctx":"${ctxB64}"}`)),
      'ERR_PROTOCOL_UNSUPPORTED',
    ],
    [
      'enc A256CBC-HS512',
      withPart(gcm, 0, b64u(`{"alg":"dir","enc":"A256CBC-HS512","ctx":"${ctxB64}"}`)),
      'ERR_PROTOCOL_UNSUPPORTED',
    ],
    ['oversize', 'A'.repeat(MAX_RESPONSE_JWE_LENGTH + 1), 'ERR_PROTOCOL_TOO_LARGE'],
  ])('rejects %s', (_name, jwe, code) => {
    expect(codeOf(() => parseResponseJwe(jwe))).toBe(code);
    expect(codeOf(() => decryptResponse(jwe, sessionKey))).toBe(code);
  });

  it('treats bad arguments as caller bugs', () => {
    expect(() => encryptResponse(Buffer.alloc(16), '{}')).toThrow(RangeError);
    expect(() => encryptResponse(sessionKey, '{}', { iv: Buffer.alloc(16) })).toThrow(RangeError);
    expect(() => encryptResponse(sessionKey, '{}', { ctx: Buffer.alloc(8) })).toThrow(RangeError);
    expect(() => decryptResponse(gcm, Buffer.alloc(16))).toThrow(RangeError);
    expect(() => decryptResponse(gcm, () => Buffer.alloc(16))).toThrow(RangeError);
    expect(() => encryptResponse(sessionKey, 'x'.repeat(MAX_RESPONSE_JWE_LENGTH))).toThrow(
      RangeError,
    );
  });
});
