import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  fromBase64,
  fromBase64Url,
  ProtocolError,
  toBase64,
  toBase64Url,
} from '../../protocol/index.ts';
import { codeOf } from '../shared/protocol.ts';

describe('standard base64 (ctx, x5c, TransportKey)', () => {
  it('encodes with padding and the + / alphabet', () => {
    expect(toBase64(Buffer.of(0xfb, 0xff))).toBe('+/8=');
    expect(toBase64(Buffer.from('a'))).toBe('YQ==');
    expect(toBase64(new Uint8Array())).toBe('');
  });

  it('decodes canonical text', () => {
    expect(fromBase64('+/8=')).toEqual(Buffer.of(0xfb, 0xff));
    expect(fromBase64('')).toEqual(Buffer.alloc(0));
    // The real response ctx [KAT].
    expect(fromBase64('UQoqkoRWX5Qh6zSnEvWOZYX2MwuAPxvD').toString('hex')).toBe(
      '510a2a9284565f9421eb34a712f58e6585f6330b803f1bc3',
    );
  });

  it.each([
    ['missing padding', 'YQ'],
    ['url alphabet', '-_8='],
    ['whitespace', 'YQ= ='],
    ['newline', 'YWJj\nZGVm'],
    ['too much padding', 'YQ==='],
    ['padding in the middle', 'YQ==YQ=='],
    ['non-zero unused bits', 'YR=='],
    ['lone char', 'Y'],
  ])('rejects %s', (_name, text) => {
    expect(codeOf(() => fromBase64(text))).toBe('ERR_PROTOCOL_MALFORMED');
  });

  it('treats a non-string as a caller bug', () => {
    expect(() => fromBase64(42 as unknown as string)).toThrow(TypeError);
    expect(() => toBase64('x' as unknown as Uint8Array)).toThrow(TypeError);
  });
});

describe('base64url (JOSE segments, nonces)', () => {
  it('encodes without padding and with the - _ alphabet', () => {
    expect(toBase64Url(Buffer.of(0xfb, 0xff))).toBe('-_8');
  });

  it.each([
    ['padding when forbidden', 'YQ=='],
    ['std alphabet', '+/8'],
    ['impossible length', 'YWJjZ'],
    ['non-zero unused bits', 'YR'],
    ['dot', 'YQ.'],
  ])('rejects %s', (_name, text) => {
    expect(codeOf(() => fromBase64Url(text))).toBe('ERR_PROTOCOL_MALFORMED');
  });

  it('accepts correct optional padding for nonces [OAPXBC 3.2.5.1.1.2]', () => {
    const opt = { padding: 'optional' } as const;
    expect(fromBase64Url('YQ', opt)).toEqual(Buffer.from('a'));
    expect(fromBase64Url('YQ==', opt)).toEqual(Buffer.from('a'));
    expect(fromBase64Url('YWI=', opt)).toEqual(Buffer.from('ab'));
    expect(fromBase64Url('YWJj', opt)).toEqual(Buffer.from('abc'));
    for (const bad of ['YQ=', 'YWI==', 'YWJj=', '=', 'YQ===', 'Y===']) {
      expect(
        codeOf(() => fromBase64Url(bad, opt)),
        bad,
      ).toBe('ERR_PROTOCOL_MALFORMED');
    }
  });

  it('rejects an unknown padding mode as a caller bug', () => {
    expect(() => fromBase64Url('YQ', { padding: 'maybe' as 'optional' })).toThrow(RangeError);
  });
});

describe('properties', () => {
  it('bytes -> text -> bytes is the identity for both flavours', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        expect(fromBase64(toBase64(bytes))).toEqual(Buffer.from(bytes));
        expect(fromBase64Url(toBase64Url(bytes))).toEqual(Buffer.from(bytes));
        expect(fromBase64Url(toBase64Url(bytes), { padding: 'optional' })).toEqual(
          Buffer.from(bytes),
        );
      }),
    );
  });

  it('any accepted text re-encodes to itself; anything else is a coded error', () => {
    const chars = fc.constantFrom(...'AQYZaqz09+/-_= \n.'.split(''));
    fc.assert(
      fc.property(
        fc.array(chars, { maxLength: 24 }).map((a) => a.join('')),
        (text) => {
          for (const [decode, encode] of [
            [(t: string) => fromBase64(t), toBase64],
            [(t: string) => fromBase64Url(t), toBase64Url],
          ] as const) {
            try {
              expect(encode(decode(text))).toBe(text);
            } catch (err) {
              if (!(err instanceof ProtocolError)) throw err;
              expect(err.code).toBe('ERR_PROTOCOL_MALFORMED');
            }
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
