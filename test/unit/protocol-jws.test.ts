import { createHmac, generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  deriveKeyV1,
  deriveKeyV2,
  KDF_LABEL,
  kdfV2Context,
  MAX_JWT_LENGTH,
  newCtx,
  parseCompact,
  sessionJwtKdf,
  signHs256,
  signRs256,
  signRs256With,
  signWithSessionKey,
  signWithSessionKeyDerive,
  sp800108,
  verifyHs256,
  verifyRs256,
  verifyWithSessionKey,
  x5cOf,
} from '../../protocol/index.ts';
import { codeOf } from '../shared/protocol.ts';

const b64u = (text: string): string => Buffer.from(text, 'utf8').toString('base64url');
const key32 = Buffer.alloc(32, 7);
const sessionKey = Buffer.from(
  '3987bc6d45c8d46e9969bf679b9f2a17922ed0d40055c313232f290ae9d87bf0',
  'hex',
);
const { privateKey: deviceKey, publicKey: devicePub } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
});
const { publicKey: otherPub } = generateKeyPairSync('rsa', { modulusLength: 2048 });

/** A token assembled by hand from raw JSON text, so the exact bytes are under the test's control. */
function handmade(headerJson: string, payloadJson: string, key: Uint8Array = key32): string {
  const input = `${b64u(headerJson)}.${b64u(payloadJson)}`;
  return `${input}.${createHmac('sha256', key).update(input).digest('base64url')}`;
}

describe('parseCompact', () => {
  it('keeps the received segments and bytes exactly (no re-serialization)', () => {
    const payloadJson = '{ "b" : 1,\n "a":"\\u00e9" }';
    const token = handmade('{"alg":"HS256"}', payloadJson);
    const parsed = parseCompact(token);
    expect(parsed.payloadBytes.toString('utf8')).toBe(payloadJson);
    expect(parsed.payload).toEqual({ b: 1, a: 'é' });
    expect(parsed.signingInput.toString('ascii')).toBe(token.slice(0, token.lastIndexOf('.')));
    expect([parsed.headerB64, parsed.payloadB64, parsed.signatureB64].join('.')).toBe(token);
    verifyHs256(key32, parsed);
  });

  it('accepts nesting up to MAX_JSON_DEPTH, brackets inside strings not counted', () => {
    const deep = `${'{"a":'.repeat(31)}"]]]{{{[[["${'}'.repeat(31)}`;
    expect(
      parseCompact(
        `${b64u('{"alg":"HS256","s":"{{{{\\"{{"}')}.${b64u(deep)}.`,
      ).payloadBytes.toString(),
    ).toBe(deep);
  });

  it('parses an unsigned (alg none) token without accepting it anywhere', () => {
    const parsed = parseCompact(`${b64u('{"typ":"JWT","alg":"none"}')}.${b64u('{}')}.`);
    expect(parsed.signature).toHaveLength(0);
    expect(codeOf(() => verifyHs256(key32, parsed))).toBe('ERR_PROTOCOL_UNSUPPORTED');
    expect(codeOf(() => verifyRs256(devicePub, parsed))).toBe('ERR_PROTOCOL_UNSUPPORTED');
  });

  it.each([
    ['two parts', `${b64u('{"alg":"HS256"}')}.${b64u('{}')}`],
    ['four parts', `${b64u('{"alg":"HS256"}')}.${b64u('{}')}.AA.AA`],
    ['a JWE', `${b64u('{"alg":"dir"}')}..AA.AA.AA`],
    ['bad base64url', `${b64u('{"alg":"HS256"}')}.e30=.AA`],
    ['header not JSON', `${b64u('{alg:HS256}')}.${b64u('{}')}.`],
    ['header an array', `${b64u('["HS256"]')}.${b64u('{}')}.`],
    ['payload null', `${b64u('{"alg":"HS256"}')}.${b64u('null')}.`],
    ['payload a string', `${b64u('{"alg":"HS256"}')}.${b64u('"x"')}.`],
    ['no alg', `${b64u('{"typ":"JWT"}')}.${b64u('{}')}.`],
    ['alg not a string', `${b64u('{"alg":5}')}.${b64u('{}')}.`],
    ['a BOM', `${Buffer.from('\ufeff{"alg":"HS256"}').toString('base64url')}.${b64u('{}')}.`],
    ['invalid UTF-8', `${Buffer.of(0x7b, 0xff, 0x7d).toString('base64url')}.${b64u('{}')}.`],
    ['empty', ''],
    [
      'JSON nested past MAX_JSON_DEPTH',
      `${b64u('{"alg":"HS256"}')}.${b64u(`${'{"a":'.repeat(33)}1${'}'.repeat(33)}`)}.`,
    ],
  ])('rejects %s as malformed', (_name, token) => {
    expect(codeOf(() => parseCompact(token))).toBe('ERR_PROTOCOL_MALFORMED');
  });

  it('rejects critical header extensions (RFC 7515 §4.1.11)', () => {
    const token = `${b64u('{"alg":"HS256","crit":["x"],"x":1}')}.${b64u('{}')}.`;
    expect(codeOf(() => parseCompact(token))).toBe('ERR_PROTOCOL_UNSUPPORTED');
  });

  it('rejects oversize input before decoding it', () => {
    expect(codeOf(() => parseCompact('a'.repeat(MAX_JWT_LENGTH + 1)))).toBe(
      'ERR_PROTOCOL_TOO_LARGE',
    );
    const token = signHs256(key32, {}, { pad: 'x'.repeat(200) });
    expect(codeOf(() => parseCompact(token, { maxLength: 100 }))).toBe('ERR_PROTOCOL_TOO_LARGE');
  });

  it('treats bad arguments as caller bugs', () => {
    expect(() => parseCompact(undefined as unknown as string)).toThrow(TypeError);
    expect(() => parseCompact('a.b.c', { maxLength: MAX_JWT_LENGTH + 1 })).toThrow(RangeError);
  });
});

describe('HS256', () => {
  it('signs with alg first when the header omits it, and verifies', () => {
    const token = signHs256(key32, { typ: 'JWT' }, { a: 1 });
    const parsed = parseCompact(token);
    expect(parsed.headerBytes.toString()).toBe('{"alg":"HS256","typ":"JWT"}');
    verifyHs256(key32, parsed);
  });

  it('fails with a generic signature error on a wrong key, tampering or truncation', () => {
    const token = signHs256(key32, {}, { a: 1 });
    const [h, p, s] = token.split('.') as [string, string, string];
    expect(codeOf(() => verifyHs256(Buffer.alloc(32, 8), parseCompact(token)))).toBe(
      'ERR_PROTOCOL_SIGNATURE',
    );
    expect(codeOf(() => verifyHs256(key32, parseCompact(`${h}.${b64u('{"a":2}')}.${s}`)))).toBe(
      'ERR_PROTOCOL_SIGNATURE',
    );
    expect(codeOf(() => verifyHs256(key32, parseCompact(`${h}.${p}.${s.slice(0, 40)}`)))).toBe(
      'ERR_PROTOCOL_SIGNATURE',
    );
    expect(() => verifyHs256(Buffer.alloc(32, 8), parseCompact(token))).toThrow(
      /^JWS: signature verification failed$/,
    );
  });

  it('refuses a different alg on verify and caller mistakes on sign', () => {
    const rs = parseCompact(signRs256(deviceKey, {}, {}));
    expect(codeOf(() => verifyHs256(key32, rs))).toBe('ERR_PROTOCOL_UNSUPPORTED');
    expect(() => signHs256(Buffer.alloc(16), {}, {})).toThrow(RangeError);
    expect(() => signHs256(key32, { alg: 'none' }, {})).toThrow(TypeError);
    expect(() => signHs256(key32, {}, Buffer.from('[1]'))).toThrow(TypeError);
  });
});

describe('RS256 and x5c', () => {
  it('signs with the device key and verifies with its public key (§4.2)', () => {
    const token = signRs256(deviceKey, { typ: 'JWT', x5c: 'AQID' }, { request_nonce: 'n' });
    const parsed = parseCompact(token);
    expect(parsed.header.alg).toBe('RS256');
    verifyRs256(devicePub, parsed);
    expect(codeOf(() => verifyRs256(otherPub, parsed))).toBe('ERR_PROTOCOL_SIGNATURE');
    const [h, , s] = token.split('.');
    expect(codeOf(() => verifyRs256(devicePub, parseCompact(`${h}.${b64u('{}')}.${s}`)))).toBe(
      'ERR_PROTOCOL_SIGNATURE',
    );
    expect(codeOf(() => verifyRs256(devicePub, parseCompact(`${h}.${b64u('{}')}.AAAA`)))).toBe(
      'ERR_PROTOCOL_SIGNATURE',
    );
  });

  it('signs through an external signer (TPM-held device key) to the same token', async () => {
    const header = { typ: 'JWT' };
    const payload = { client_id: '38aa3b87-a06d-4817-b275-7a316988d93b' };
    const viaSigner = await signRs256With(
      async (input) => sign('sha256', input, deviceKey),
      header,
      payload,
    );
    expect(viaSigner).toBe(signRs256(deviceKey, header, payload));
  });

  it('refuses HS256 tokens and non-RSA or wrong-type keys', () => {
    expect(codeOf(() => verifyRs256(devicePub, parseCompact(signHs256(key32, {}, {}))))).toBe(
      'ERR_PROTOCOL_UNSUPPORTED',
    );
    expect(() => verifyRs256(deviceKey, parseCompact(signRs256(deviceKey, {}, {})))).toThrow(
      TypeError,
    );
    expect(() => signRs256(devicePub, {}, {})).toThrow(TypeError);
  });

  it('reads x5c as a single string (ROADtools, AADInternals) or an array (RFC 7515) (§4.2)', () => {
    expect(x5cOf({ x5c: 'AQID' })).toEqual([Buffer.of(1, 2, 3)]);
    expect(x5cOf({ x5c: ['AQID', 'BAU='] })).toEqual([Buffer.of(1, 2, 3), Buffer.of(4, 5)]);
  });

  it.each([
    ['missing', {}, 'ERR_PROTOCOL_MALFORMED'],
    ['a number', { x5c: 1 }, 'ERR_PROTOCOL_MALFORMED'],
    ['empty array', { x5c: [] }, 'ERR_PROTOCOL_MALFORMED'],
    ['empty string', { x5c: '' }, 'ERR_PROTOCOL_MALFORMED'],
    ['non-string item', { x5c: ['AQID', 5] }, 'ERR_PROTOCOL_MALFORMED'],
    ['base64url', { x5c: '-_8' }, 'ERR_PROTOCOL_MALFORMED'],
    ['too many', { x5c: Array(9).fill('AQID') }, 'ERR_PROTOCOL_TOO_LARGE'],
    ['too long', { x5c: 'A'.repeat(30_000) }, 'ERR_PROTOCOL_TOO_LARGE'],
  ])('rejects an x5c that is %s', (_name, header, code) => {
    expect(codeOf(() => x5cOf(header))).toBe(code);
  });
});

describe('session-key-signed JWTs (§6.1, §6.3)', () => {
  const payload = { refresh_token: 'prt', is_primary: 'true', request_nonce: 'n' };

  it('KDFv2: header {alg, ctx (std b64, 24 B), kdf_ver: 2}, key bound to the payload bytes', () => {
    const token = signWithSessionKey(sessionKey, payload);
    const parsed = parseCompact(token);
    expect(Object.keys(parsed.header)).toEqual(['alg', 'ctx', 'kdf_ver']);
    expect(parsed.header.kdf_ver).toBe(2);
    const kdf = sessionJwtKdf(parsed);
    expect(kdf.ctx).toHaveLength(24);
    expect(parsed.header.ctx).toBe(kdf.ctx.toString('base64'));
    verifyHs256(deriveKeyV2(sessionKey, kdf.ctx, parsed.payloadBytes), parsed);
    expect(verifyWithSessionKey(parsed, sessionKey)).toEqual(kdf);
  });

  it('KDFv1: no kdf_ver, key from ctx alone', () => {
    const ctx = newCtx();
    const parsed = parseCompact(signWithSessionKey(sessionKey, payload, { ctx, kdfVersion: 1 }));
    expect(parsed.header).toEqual({ alg: 'HS256', ctx: ctx.toString('base64') });
    verifyHs256(deriveKeyV1(sessionKey, ctx), parsed);
    expect(verifyWithSessionKey(parsed, sessionKey).kdfVersion).toBe(1);
  });

  it('accepts Shwmae\'s kdf_ver "1" string as KDFv1 and refuses other versions', () => {
    const ctx = newCtx();
    const ctxB64 = ctx.toString('base64');
    const v1s = parseCompact(
      signHs256(deriveKeyV1(sessionKey, ctx), { ctx: ctxB64, kdf_ver: '1' }, payload),
    );
    expect(verifyWithSessionKey(v1s, sessionKey).kdfVersion).toBe(1);
    for (const kdfVer of ['2', 3, null, true]) {
      const t = parseCompact(signHs256(key32, { ctx: ctxB64, kdf_ver: kdfVer }, payload));
      expect(
        codeOf(() => verifyWithSessionKey(t, sessionKey)),
        String(kdfVer),
      ).toBe('ERR_PROTOCOL_UNSUPPORTED');
    }
  });

  it('verifies over the received payload bytes, whatever their JSON spelling', () => {
    const ctx = newCtx();
    const payloadJson = '{"request_nonce" : "n",  "refresh_token":"prt"}';
    const key = deriveKeyV2(sessionKey, ctx, Buffer.from(payloadJson));
    const token = handmade(
      `{"alg":"HS256","ctx":"${ctx.toString('base64')}","kdf_ver":2}`,
      payloadJson,
      key,
    );
    expect(verifyWithSessionKey(parseCompact(token), sessionKey).kdfVersion).toBe(2);
  });

  it('a wrong session key fails with a signature error', () => {
    const token = signWithSessionKey(sessionKey, payload);
    expect(codeOf(() => verifyWithSessionKey(parseCompact(token), Buffer.alloc(32)))).toBe(
      'ERR_PROTOCOL_SIGNATURE',
    );
  });

  it('KDFv1 lets a leaked (ctx, derived key) sign new payloads; KDFv2 does not (§8)', () => {
    const ctx = newCtx();
    const ctxB64 = ctx.toString('base64');
    const leakedV1 = deriveKeyV1(sessionKey, ctx);
    const forgedV1 = signHs256(leakedV1, { ctx: ctxB64 }, { request_nonce: 'fresh' });
    expect(verifyWithSessionKey(parseCompact(forgedV1), sessionKey).kdfVersion).toBe(1);

    const original = Buffer.from(JSON.stringify(payload));
    const leakedV2 = deriveKeyV2(sessionKey, ctx, original);
    const forgedV2 = signHs256(leakedV2, { ctx: ctxB64, kdf_ver: 2 }, { request_nonce: 'fresh' });
    expect(codeOf(() => verifyWithSessionKey(parseCompact(forgedV2), sessionKey))).toBe(
      'ERR_PROTOCOL_SIGNATURE',
    );
  });

  it('the derive variant (TPM-held session key) gives the same token for the same ctx', async () => {
    const ctx = newCtx();
    const contexts: Buffer[] = [];
    const derive = async (context: Buffer) => {
      contexts.push(context);
      return sp800108(sessionKey, KDF_LABEL, context, 256);
    };
    for (const kdfVersion of [1, 2] as const) {
      const direct = signWithSessionKey(sessionKey, payload, { ctx, kdfVersion });
      expect(await signWithSessionKeyDerive(derive, payload, { ctx, kdfVersion })).toBe(direct);
    }
    expect(contexts[0]).toEqual(ctx);
    expect(contexts[1]).toEqual(kdfV2Context(ctx, Buffer.from(JSON.stringify(payload))));
  });

  it.each([
    ['missing', {}],
    ['not a string', { ctx: 5 }],
    ['base64url', { ctx: '-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_' }],
    ['8 bytes', { ctx: Buffer.alloc(8).toString('base64') }],
    ['65 bytes', { ctx: Buffer.alloc(65).toString('base64') }],
  ])('rejects a header ctx that is %s', (_name, header) => {
    const parsed = parseCompact(signHs256(key32, header, payload));
    expect(codeOf(() => verifyWithSessionKey(parsed, sessionKey))).toBe('ERR_PROTOCOL_MALFORMED');
  });

  it('refuses caller mistakes in the options', () => {
    expect(() => signWithSessionKey(sessionKey, payload, { ctx: Buffer.alloc(4) })).toThrow(
      RangeError,
    );
    expect(() => signWithSessionKey(sessionKey, payload, { header: { alg: 'none' } })).toThrow(
      TypeError,
    );
    expect(() => signWithSessionKey(Buffer.alloc(16), payload)).toThrow(RangeError);
  });
});
