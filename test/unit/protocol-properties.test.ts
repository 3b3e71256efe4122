/**
 * Properties of the protocol parsers: hostile input only ever produces a coded ProtocolError
 * (never a TypeError, RangeError, SyntaxError or an OpenSSL error), and encode/parse round trips
 * reproduce the same bytes.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  buildSessionKeyJwe,
  decryptResponse,
  decryptResponseWith,
  deriveKeyV1,
  encodeRsaBlob,
  encryptResponse,
  ProtocolError,
  parseCompact,
  parseResponseJwe,
  parseRsaBlob,
  parseRsaBlobBase64,
  parseSessionKeyJwe,
  readAsciiExtensionValue,
  readGuidExtensionValue,
  signHs256,
  signWithSessionKey,
  unwrapSessionKeyJwe,
  unwrapSessionKeyJweWith,
  verifyHs256,
  verifyRs256,
  verifyWithSessionKey,
  x5cOf,
} from '../../protocol/index.ts';
import { kat } from '../shared/protocol.ts';

const transportKey = createPrivateKey(kat.transport_private_key_pkcs1_pem);
const transportPub = createPublicKey(transportKey);
const sessionKey = Buffer.from(kat.session_key_hex, 'hex');

/** Runs fn; a ProtocolError is an accepted outcome, anything else thrown fails the property. */
function onlyProtocolErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    expect(err.code).toMatch(/^ERR_PROTOCOL_/);
  }
}

async function onlyProtocolErrorsAsync(fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
  }
}

const b64u = (b: Uint8Array | string): string => Buffer.from(b).toString('base64url');

const bytesB64u = (min: number, max: number) =>
  fc.uint8Array({ minLength: min, maxLength: max }).map(b64u);
const sized = (...lengths: number[]) => fc.constantFrom(...lengths).chain((n) => bytesB64u(n, n));
const json = (arb: fc.Arbitrary<unknown>) => arb.map((v) => b64u(JSON.stringify(v) ?? 'null'));

// A ctx that is mostly valid (16..64 bytes of standard base64) and sometimes not.
const ctxValue = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .uint8Array({ minLength: 16, maxLength: 64 })
      .map((b) => Buffer.from(b).toString('base64')),
  },
  fc.uint8Array({ maxLength: 70 }).map((b) => Buffer.from(b).toString('base64')),
  fc.uint8Array({ maxLength: 40 }).map(b64u),
  fc.string(),
  fc.integer(),
);

// Headers that mostly pass each parser's header checks, so the properties reach the later ones.
const jwsHeader = fc.record(
  {
    alg: fc.constantFrom('HS256', 'HS256', 'RS256', 'none', 5),
    ctx: ctxValue,
    kdf_ver: fc.constantFrom(1, 2, '1', '2', 3, null),
    x5c: fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 10 }), sized(1, 300)),
  },
  { requiredKeys: ['alg', 'ctx'] },
);
const responseHeader = fc.record(
  {
    alg: fc.constantFrom('dir', 'dir', 'dir', 'RSA-OAEP'),
    enc: fc.constantFrom('A256GCM', 'A256GCM', 'A256GCM', 'A128GCM'),
    ctx: ctxValue,
  },
  { requiredKeys: ['alg', 'enc', 'ctx'] },
);
const sessionKeyHeader = fc.record(
  {
    enc: fc.constantFrom('A256GCM', 'A256GCM', 'A256GCM', 'A128GCM'),
    alg: fc.constantFrom('RSA-OAEP', 'RSA-OAEP', 'RSA-OAEP', 'RSA1_5'),
  },
  { requiredKeys: ['enc', 'alg'] },
);

/** Now and then adds a member the parsers must refuse (crit, zip). */
function sometimesRefused(header: fc.Arbitrary<Record<string, unknown>>) {
  return fc
    .tuple(header, fc.integer({ min: 0, max: 15 }))
    .map(([h, r]) => (r === 0 ? { ...h, crit: ['x'] } : r === 1 ? { ...h, zip: 'DEF' } : h));
}

const segment = fc.oneof(
  fc.constant(''),
  bytesB64u(0, 80),
  json(fc.jsonValue()),
  fc.string({ maxLength: 40 }),
);

/** Compact-serialization-shaped strings with 1..7 parts. */
const compactish = fc.array(segment, { minLength: 1, maxLength: 7 }).map((p) => p.join('.'));

/** Three parts shaped like a JWS: header-like JSON, an object payload, a signature. */
const jwsish = fc
  .tuple(
    fc.oneof({ weight: 4, arbitrary: json(sometimesRefused(jwsHeader)) }, segment),
    fc.oneof({ weight: 4, arbitrary: json(fc.dictionary(fc.string(), fc.jsonValue())) }, segment),
    fc.oneof(sized(32, 256, 0, 31), segment),
  )
  .map((p) => p.join('.'));

/** Five parts shaped like a JWE, with near-miss sizes for key, IV, ciphertext and tag. */
function jweish(header: fc.Arbitrary<Record<string, unknown>>) {
  return fc
    .tuple(
      fc.oneof({ weight: 4, arbitrary: json(sometimesRefused(header)) }, segment),
      fc.oneof(fc.constant(''), sized(256, 255, 63, 64, 1025)),
      sized(12, 16, 11, 13),
      fc.oneof(sized(1, 16, 32, 48, 64, 65, 17), segment),
      sized(16, 0, 15),
    )
    .map((p) => p.join('.'));
}

const shapeless = fc.oneof(
  fc.string({ maxLength: 400 }),
  fc.string({ unit: 'binary', maxLength: 400 }),
  compactish,
);
const jwsInput = fc.oneof({ weight: 3, arbitrary: jwsish }, shapeless);
const responseInput = fc.oneof({ weight: 3, arbitrary: jweish(responseHeader) }, shapeless);
const sessionKeyJweInput = fc.oneof({ weight: 3, arbitrary: jweish(sessionKeyHeader) }, shapeless);

/** A valid token with one character replaced, deleted or inserted, or truncated. */
function mutated(token: string) {
  const chars = fc.constantFrom(...'.-_+/=AQw0'.split(''), '\u00e9');
  return fc
    .tuple(
      fc.nat({ max: token.length - 1 }),
      chars,
      fc.constantFrom('replace', 'delete', 'insert', 'cut'),
    )
    .map(([i, c, op]) => {
      if (op === 'replace') return token.slice(0, i) + c + token.slice(i + 1);
      if (op === 'delete') return token.slice(0, i) + token.slice(i + 1);
      if (op === 'insert') return token.slice(0, i) + c + token.slice(i);
      return token.slice(0, i);
    });
}

const RUNS = { numRuns: 500 };

describe('hostile input only ever throws ProtocolError', () => {
  it('parseCompact and the verifiers', () => {
    const jwt = signWithSessionKey(sessionKey, { refresh_token: 'x', request_nonce: 'n' });
    fc.assert(
      fc.property(fc.oneof(jwsInput, mutated(jwt)), (token) => {
        onlyProtocolErrors(() => {
          const parsed = parseCompact(token);
          onlyProtocolErrors(() => verifyHs256(sessionKey, parsed));
          onlyProtocolErrors(() => verifyRs256(transportPub, parsed));
          onlyProtocolErrors(() => verifyWithSessionKey(parsed, sessionKey));
          onlyProtocolErrors(() => x5cOf(parsed.header));
        });
      }),
      { numRuns: 2000 },
    );
  });

  it('parseSessionKeyJwe and unwrapSessionKeyJwe', () => {
    fc.assert(
      fc.property(fc.oneof(sessionKeyJweInput, mutated(kat.session_key_jwe)), (jwe) => {
        onlyProtocolErrors(() => parseSessionKeyJwe(jwe));
        onlyProtocolErrors(() => unwrapSessionKeyJwe(jwe, transportKey, { verifyPayload: true }));
      }),
      RUNS,
    );
  });

  it('unwrapSessionKeyJweWith, whatever the decrypt function returns', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(sessionKeyJweInput, mutated(kat.session_key_jwe)),
        fc.uint8Array({ maxLength: 40 }),
        async (jwe, recovered) => {
          await onlyProtocolErrorsAsync(() =>
            unwrapSessionKeyJweWith(jwe, async () => recovered, { verifyPayload: true }),
          );
        },
      ),
      RUNS,
    );
  });

  it('parseResponseJwe and decryptResponse (both encodings)', async () => {
    const gcm = encryptResponse(sessionKey, { a: 1 });
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(responseInput, mutated(gcm), mutated(kat.response_jwe)),
        async (jwe) => {
          onlyProtocolErrors(() => parseResponseJwe(jwe));
          onlyProtocolErrors(() => decryptResponse(jwe, sessionKey));
          onlyProtocolErrors(() => decryptResponse(jwe, sessionKey, { allowCbc: false }));
          await onlyProtocolErrorsAsync(() =>
            decryptResponseWith(jwe, async (ctx) => deriveKeyV1(sessionKey, ctx)),
          );
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('a mutated GCM response never decrypts to anything but the original', () => {
    const gcm = encryptResponse(sessionKey, 'secret');
    fc.assert(
      fc.property(mutated(gcm), (jwe) => {
        try {
          expect(decryptResponse(jwe, sessionKey).plaintext.toString()).toBe('secret');
        } catch (err) {
          if (!(err instanceof ProtocolError)) throw err;
        }
      }),
      RUNS,
    );
  });

  it('parseRsaBlob, on random bytes and on mutated real blobs', () => {
    const real = encodeRsaBlob(transportPub);
    const mutatedBlob = fc
      .tuple(fc.nat({ max: real.length - 1 }), fc.integer({ min: 0, max: 255 }), fc.boolean())
      .map(([i, v, cut]) => {
        if (cut) return real.subarray(0, i);
        const b = Buffer.from(real);
        b[i] = v;
        return b;
      });
    const rsa1Header = fc
      .tuple(
        fc.integer({ min: 0, max: 9000 }),
        fc.integer({ min: 0, max: 10 }),
        fc.integer({ min: 0, max: 1100 }),
        fc.uint8Array({ maxLength: 1100 }),
      )
      .map(([bits, cbExp, cbMod, rest]) => {
        const head = Buffer.alloc(24);
        head.write('RSA1', 0, 'ascii');
        head.writeUInt32LE(bits, 4);
        head.writeUInt32LE(cbExp, 8);
        head.writeUInt32LE(cbMod, 12);
        return Buffer.concat([head, rest]);
      });
    fc.assert(
      fc.property(
        fc.oneof(fc.uint8Array({ maxLength: 1200 }), mutatedBlob, rsa1Header),
        (bytes) => {
          onlyProtocolErrors(() => parseRsaBlob(bytes));
          onlyProtocolErrors(() => parseRsaBlobBase64(Buffer.from(bytes).toString('base64')));
        },
      ),
      { numRuns: 1000 },
    );
    fc.assert(fc.property(shapeless, (text) => onlyProtocolErrors(() => parseRsaBlobBase64(text))));
  });

  it('certificate extension readers', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        onlyProtocolErrors(() => readGuidExtensionValue(bytes));
        onlyProtocolErrors(() => readAsciiExtensionValue(bytes));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('round trips give the same bytes', () => {
  it('compact JWS: sign -> parse keeps the exact payload bytes and segments', () => {
    const key = Buffer.alloc(32, 3);
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (payload) => {
        const token = signHs256(key, { typ: 'JWT' }, payload);
        const parsed = parseCompact(token);
        expect(parsed.payloadBytes.toString()).toBe(JSON.stringify(payload));
        expect([parsed.headerB64, parsed.payloadB64, parsed.signatureB64].join('.')).toBe(token);
        verifyHs256(key, parsed);
      }),
      RUNS,
    );
  });

  it('session-key JWTs: sign -> verify for random payloads and both KDF versions', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.dictionary(fc.string(), fc.jsonValue()),
        fc.constantFrom(1 as const, 2 as const),
        fc.uint8Array({ minLength: 16, maxLength: 64 }),
        (sk, payload, kdfVersion, ctx) => {
          const token = signWithSessionKey(sk, payload, { kdfVersion, ctx });
          const kdf = verifyWithSessionKey(parseCompact(token), sk);
          expect(kdf.kdfVersion).toBe(kdfVersion);
          expect(kdf.ctx).toEqual(Buffer.from(ctx));
        },
      ),
      RUNS,
    );
  });

  it('response JWE: encrypt -> decrypt returns the same bytes, GCM and CBC', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ maxLength: 300 }),
        fc.constantFrom('gcm' as const, 'cbc' as const),
        fc.uint8Array({ minLength: 16, maxLength: 64 }),
        (sk, plaintext, encoding, ctx) => {
          const jwe = encryptResponse(sk, plaintext, { encoding, ctx });
          const out = decryptResponse(jwe, sk);
          expect(out.encoding).toBe(encoding);
          expect(out.ctx).toEqual(Buffer.from(ctx));
          expect(out.plaintext).toEqual(Buffer.from(plaintext));
        },
      ),
      RUNS,
    );
  });

  it('session_key_jwe: build -> unwrap returns the same session key', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (sk) => {
        const jwe = buildSessionKeyJwe(sk, transportPub);
        expect(unwrapSessionKeyJwe(jwe, transportKey, { verifyPayload: true })).toEqual(
          Buffer.from(sk),
        );
      }),
      { numRuns: 50 },
    );
  });

  it('RSA1 blob: any well-formed blob parses and re-encodes to the same bytes', () => {
    const modulus = fc
      .uint8Array({ minLength: 64, maxLength: 1024 })
      .filter((m) => m[0] !== 0)
      .map((m) => {
        const b = Buffer.from(m);
        b[b.length - 1]! |= 1;
        return b;
      });
    const exponent = fc
      .uint8Array({ minLength: 1, maxLength: 8 })
      .filter((e) => e[0] !== 0 && (e.length > 1 || e[0]! >= 3))
      .map((e) => {
        const b = Buffer.from(e);
        b[b.length - 1]! |= 1;
        return b;
      });
    fc.assert(
      fc.property(modulus, exponent, (n, e) => {
        const bits = (n.length - 1) * 8 + (32 - Math.clz32(n[0]!));
        fc.pre(bits >= 512);
        const head = Buffer.alloc(24);
        head.write('RSA1', 0, 'ascii');
        head.writeUInt32LE(bits, 4);
        head.writeUInt32LE(e.length, 8);
        head.writeUInt32LE(n.length, 12);
        const blob = Buffer.concat([head, e, n]);
        const parsed = parseRsaBlob(blob);
        expect(parsed.bits).toBe(bits);
        expect(encodeRsaBlob(parsed.publicKey)).toEqual(blob);
      }),
      { numRuns: 200 },
    );
  });
});
