import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  BCRYPT_RSAPUBLIC_MAGIC,
  encodeRsaBlob,
  MAX_RSA_BLOB_BYTES,
  parseRsaBlob,
  parseRsaBlobBase64,
} from '../../protocol/index.ts';
import { codeOf, kat } from '../shared/protocol.ts';

const transportKey = createPrivateKey(kat.transport_private_key_pkcs1_pem);
const transportPub = createPublicKey(transportKey);
const jwk = transportPub.export({ format: 'jwk' });

/** An RSA1 blob assembled field by field, as §1.3 lays it out. */
function blob(fields: {
  magic?: number;
  bits: number;
  exp: Buffer;
  mod: Buffer;
  cbExp?: number;
  cbMod?: number;
  p1?: number;
  p2?: number;
  tail?: Buffer;
}): Buffer {
  const head = Buffer.alloc(24);
  head.writeUInt32LE(fields.magic ?? BCRYPT_RSAPUBLIC_MAGIC, 0);
  head.writeUInt32LE(fields.bits, 4);
  head.writeUInt32LE(fields.cbExp ?? fields.exp.length, 8);
  head.writeUInt32LE(fields.cbMod ?? fields.mod.length, 12);
  head.writeUInt32LE(fields.p1 ?? 0, 16);
  head.writeUInt32LE(fields.p2 ?? 0, 20);
  return Buffer.concat([head, fields.exp, fields.mod, fields.tail ?? Buffer.alloc(0)]);
}

const n = Buffer.from(jwk.n!, 'base64url');
const e = Buffer.from(jwk.e!, 'base64url');

describe('BCRYPT_RSAKEY_BLOB (§1.3)', () => {
  it('encodes the documented layout: RSA1, LE lengths, zero primes, BE minimal numbers', () => {
    const out = encodeRsaBlob(transportPub);
    expect(out.subarray(0, 4).toString('ascii')).toBe('RSA1');
    expect(out.readUInt32LE(4)).toBe(2048);
    expect(out.readUInt32LE(8)).toBe(3);
    expect(out.readUInt32LE(12)).toBe(256);
    expect(out.readUInt32LE(16)).toBe(0);
    expect(out.readUInt32LE(20)).toBe(0);
    expect(out.subarray(24, 27)).toEqual(Buffer.of(1, 0, 1));
    expect(out.subarray(27)).toEqual(n);
    expect(out).toEqual(blob({ bits: 2048, exp: e, mod: n }));
  });

  it('encodes the same bytes from a public key, a private key and a JWK', () => {
    const fromPub = encodeRsaBlob(transportPub);
    expect(encodeRsaBlob(transportKey)).toEqual(fromPub);
    expect(encodeRsaBlob(jwk)).toEqual(fromPub);
  });

  it('parses back to an equal node public key', () => {
    const parsed = parseRsaBlob(encodeRsaBlob(transportPub));
    expect(parsed.bits).toBe(2048);
    expect(parsed.modulus).toEqual(n);
    expect(parsed.exponent).toEqual(e);
    expect(parsed.publicKey.type).toBe('public');
    expect(parsed.publicKey.equals(transportPub)).toBe(true);
    expect(parseRsaBlobBase64(encodeRsaBlob(transportPub).toString('base64')).bits).toBe(2048);
  });

  it('round-trips other sizes and exponents', () => {
    for (const [modulusLength, publicExponent] of [
      [1024, 3],
      [3072, 65537],
    ] as const) {
      const { publicKey } = generateKeyPairSync('rsa', { modulusLength, publicExponent });
      const out = encodeRsaBlob(publicKey);
      const parsed = parseRsaBlob(out);
      expect(parsed.bits).toBe(modulusLength);
      expect(parsed.publicKey.equals(publicKey)).toBe(true);
      expect(encodeRsaBlob(parsed.publicKey)).toEqual(out);
    }
  });

  const evenMod = Buffer.from(n);
  evenMod[255]! &= 0xfe;
  const tooLarge = Buffer.concat([Buffer.alloc(1, 0xff), Buffer.alloc(1031)]);
  it.each([
    ['too short for its header', Buffer.from('RSA1'), 'ERR_PROTOCOL_MALFORMED'],
    [
      'the private magic RSA2',
      blob({ magic: 0x32415352, bits: 2048, exp: e, mod: n }),
      'ERR_PROTOCOL_MALFORMED',
    ],
    [
      'a non-zero cbPrime1',
      blob({ bits: 2048, exp: e, mod: n, p1: 128 }),
      'ERR_PROTOCOL_MALFORMED',
    ],
    ['a non-zero cbPrime2', blob({ bits: 2048, exp: e, mod: n, p2: 1 }), 'ERR_PROTOCOL_MALFORMED'],
    [
      'a trailing byte',
      blob({ bits: 2048, exp: e, mod: n, tail: Buffer.of(0) }),
      'ERR_PROTOCOL_MALFORMED',
    ],
    [
      'a missing byte',
      blob({ bits: 2048, exp: e, mod: n }).subarray(0, 282),
      'ERR_PROTOCOL_MALFORMED',
    ],
    [
      'BitLength 256',
      blob({ bits: 256, exp: e, mod: n.subarray(0, 32) }),
      'ERR_PROTOCOL_MALFORMED',
    ],
    [
      'BitLength not matching the modulus',
      blob({ bits: 2047, exp: e, mod: n }),
      'ERR_PROTOCOL_MALFORMED',
    ],
    [
      'cbModulus not matching BitLength',
      blob({ bits: 2048, exp: e, mod: n, cbMod: 255 }),
      'ERR_PROTOCOL_MALFORMED',
    ],
    [
      'cbModulus overflowing',
      blob({ bits: 2048, exp: e, mod: n, cbMod: 0xffffffff }),
      'ERR_PROTOCOL_MALFORMED',
    ],
    ['cbPublicExp 0', blob({ bits: 2048, exp: Buffer.alloc(0), mod: n }), 'ERR_PROTOCOL_MALFORMED'],
    [
      'cbPublicExp 9',
      blob({ bits: 2048, exp: Buffer.of(0, 0, 0, 0, 0, 0, 1, 0, 1), mod: n }),
      'ERR_PROTOCOL_MALFORMED',
    ],
    [
      'a non-minimal exponent',
      blob({ bits: 2048, exp: Buffer.of(0, 1, 0, 1), mod: n }),
      'ERR_PROTOCOL_MALFORMED',
    ],
    [
      'a non-minimal modulus',
      blob({ bits: 2048, exp: e, mod: Buffer.concat([Buffer.of(0), n.subarray(1)]) }),
      'ERR_PROTOCOL_MALFORMED',
    ],
    ['exponent 1', blob({ bits: 2048, exp: Buffer.of(1), mod: n }), 'ERR_PROTOCOL_MALFORMED'],
    [
      'an even exponent',
      blob({ bits: 2048, exp: Buffer.of(1, 0, 0), mod: n }),
      'ERR_PROTOCOL_MALFORMED',
    ],
    ['an even modulus', blob({ bits: 2048, exp: e, mod: evenMod }), 'ERR_PROTOCOL_MALFORMED'],
    ['more than 8192 bits', blob({ bits: 8200, exp: e, mod: tooLarge }), 'ERR_PROTOCOL_TOO_LARGE'],
    ['oversize', Buffer.alloc(MAX_RSA_BLOB_BYTES + 1), 'ERR_PROTOCOL_TOO_LARGE'],
  ])('rejects %s', (_name, bytes, code) => {
    expect(codeOf(() => parseRsaBlob(bytes))).toBe(code);
  });

  it('rejects bad base64 in the TransportKey form, and caller mistakes', () => {
    expect(codeOf(() => parseRsaBlobBase64('UlNBMQ'))).toBe('ERR_PROTOCOL_MALFORMED');
    expect(codeOf(() => parseRsaBlobBase64('A'.repeat(2000)))).toBe('ERR_PROTOCOL_TOO_LARGE');
    expect(() => parseRsaBlob('RSA1' as unknown as Uint8Array)).toThrow(TypeError);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    expect(() => encodeRsaBlob(ec)).toThrow(TypeError);
    const small = { kty: 'RSA', n: Buffer.alloc(48, 0xff).toString('base64url'), e: 'AQAB' };
    expect(() => encodeRsaBlob(small)).toThrow(RangeError);
  });
});
