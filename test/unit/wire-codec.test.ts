import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { objectName } from '../../tpm-sim/engine/objects.ts';
import { type Codec, marshal, unmarshal, WireError } from '../../tpm-sim/wire/codec.ts';
import { COMMANDS } from '../../tpm-sim/wire/commands.ts';
import { TPM_ALG, TPM_ECC_CURVE, TPM_ST } from '../../tpm-sim/wire/constants.ts';
import { TPM_RC } from '../../tpm-sim/wire/rc.ts';
import {
  type Public,
  TPM2B_PUBLIC,
  TPMS_CONTEXT,
  TPMT_PUBLIC,
  TPMT_SENSITIVE,
  TPMT_SIGNATURE,
  TPMT_TK,
} from '../../tpm-sim/wire/structures.ts';
import { thrownRc } from '../shared/rc.ts';
import transcript from '../vectors/swtpm-transcript.json' with { type: 'json' };

const hex = (s: string) => Buffer.from(s, 'hex');
const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));
const hashAlg = fc.constantFrom(TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512);
const sym = fc.oneof(
  fc.constant({ algorithm: TPM_ALG.NULL, keyBits: 0, mode: 0 }),
  fc.record({
    algorithm: fc.constant(TPM_ALG.AES),
    keyBits: fc.constantFrom(128, 192, 256),
    mode: fc.constant(TPM_ALG.CFB),
  }),
);
const NULL_SCHEME = { scheme: TPM_ALG.NULL, hashAlg: TPM_ALG.NULL };

const publicArb: fc.Arbitrary<Public> = fc.oneof(
  fc.record({
    type: fc.constant(TPM_ALG.RSA),
    nameAlg: hashAlg,
    objectAttributes: fc.integer({ min: 0, max: 0xffffffff }),
    authPolicy: bytes(64),
    parameters: fc.record({
      symmetric: sym,
      scheme: fc.oneof(
        fc.constant(NULL_SCHEME),
        fc.record({
          scheme: fc.constantFrom(TPM_ALG.RSASSA, TPM_ALG.RSAPSS, TPM_ALG.OAEP),
          hashAlg,
        }),
      ),
      keyBits: fc.constantFrom(1024, 2048, 3072, 4096),
      exponent: fc.integer({ min: 0, max: 0xffffffff }),
    }),
    unique: bytes(512),
  }),
  fc.record({
    type: fc.constant(TPM_ALG.ECC),
    nameAlg: hashAlg,
    objectAttributes: fc.integer({ min: 0, max: 0xffffffff }),
    authPolicy: bytes(64),
    parameters: fc.record({
      symmetric: sym,
      scheme: fc.oneof(
        fc.constant(NULL_SCHEME),
        fc.record({ scheme: fc.constantFrom(TPM_ALG.ECDSA, TPM_ALG.ECDH), hashAlg }),
      ),
      curveID: fc.constantFrom(TPM_ECC_CURVE.NIST_P256, TPM_ECC_CURVE.NIST_P384),
      kdf: fc.constant(NULL_SCHEME),
    }),
    unique: fc.record({ x: bytes(48), y: bytes(48) }),
  }),
  fc.record({
    type: fc.constant(TPM_ALG.KEYEDHASH),
    nameAlg: hashAlg,
    objectAttributes: fc.integer({ min: 0, max: 0xffffffff }),
    authPolicy: bytes(64),
    parameters: fc.record({
      scheme: fc.oneof(
        fc.constant(NULL_SCHEME),
        fc.record({ scheme: fc.constant(TPM_ALG.HMAC), hashAlg }),
      ),
    }),
    unique: bytes(64),
  }),
) as fc.Arbitrary<Public>;

function roundTrips<T>(codec: Codec<T>, arb: fc.Arbitrary<T>) {
  fc.assert(
    fc.property(arb, (v) => {
      const b = marshal(codec, v);
      const back = unmarshal(codec, b);
      expect(back).toEqual(v);
      expect(marshal(codec, back).equals(b)).toBe(true);
    }),
    { numRuns: 300 },
  );
}

describe('the table-driven marshaller', () => {
  it('round-trips TPMT_PUBLIC of every type: same value, same bytes', () =>
    roundTrips(TPMT_PUBLIC, publicArb));

  it('round-trips TPMT_SENSITIVE, TPMS_CONTEXT, tickets and signatures', () => {
    roundTrips(
      TPMT_SENSITIVE,
      fc.record({
        sensitiveType: fc.constantFrom(TPM_ALG.ECC),
        authValue: bytes(64),
        seedValue: bytes(64),
        sensitive: bytes(48),
      }),
    );
    roundTrips(
      TPMS_CONTEXT,
      fc.record({
        sequence: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        savedHandle: fc.integer({ min: 0, max: 0xffffffff }),
        hierarchy: fc.integer({ min: 0, max: 0xffffffff }),
        contextBlob: bytes(4096),
      }),
    );
    roundTrips(
      TPMT_TK,
      fc.record({
        tag: fc.constant(TPM_ST.HASHCHECK),
        hierarchy: fc.integer({ min: 0, max: 0xffffffff }),
        digest: bytes(64),
      }),
    );
    roundTrips(
      TPMT_SIGNATURE,
      fc.oneof(
        fc.record({
          sigAlg: fc.constant(TPM_ALG.ECDSA),
          signature: fc.record({ hash: hashAlg, signatureR: bytes(48), signatureS: bytes(48) }),
        }),
        fc.record({
          sigAlg: fc.constantFrom(TPM_ALG.RSASSA, TPM_ALG.RSAPSS),
          signature: fc.record({ hash: hashAlg, sig: bytes(512) }),
        }),
      ),
    );
  });

  it('parses the public area swtpm returned and re-marshals it byte for byte, with the same Name', () => {
    const raw = hex(transcript['2_unbound_session'].outPublic_TPMT_PUBLIC);
    const pub = unmarshal(TPMT_PUBLIC, raw);
    expect(pub.type).toBe(TPM_ALG.ECC);
    expect(marshal(TPMT_PUBLIC, pub).equals(raw)).toBe(true);
    expect(objectName(pub.nameAlg, raw).toString('hex')).toBe(transcript['2_unbound_session'].name);
  });

  it('parses the CreatePrimary parameters tpm2-tools-style clients send (from the swtpm transcript)', () => {
    const cmd = hex(transcript['2_unbound_session'].createprimary_cmd);
    // header 10, handle 4, authSize 4 + 0x49 bytes of auth, then parameters
    const params = cmd.subarray(10 + 4 + 4 + 0x49);
    const p = unmarshal(COMMANDS.CreatePrimary.params, params);
    expect(p.inSensitive.userAuth.toString()).toBe('primpw');
    expect(p.inPublic.objectAttributes).toBe(0x30472);
    expect(marshal(COMMANDS.CreatePrimary.params, p).equals(params)).toBe(true);
  });

  it('fails closed with the spec response code: truncation, oversize, bad selectors, trailing bytes', () => {
    const good = marshal(
      TPM2B_PUBLIC,
      unmarshal(TPMT_PUBLIC, hex(transcript['2_unbound_session'].outPublic_TPMT_PUBLIC)),
    );
    const rcOf = (f: () => unknown) => thrownRc(WireError, f);
    expect(rcOf(() => unmarshal(TPM2B_PUBLIC, good.subarray(0, good.length - 1)))).toBe(
      TPM_RC.INSUFFICIENT,
    );
    expect(rcOf(() => unmarshal(TPM2B_PUBLIC, Buffer.concat([good, Buffer.of(0)])))).toBe(
      TPM_RC.SIZE,
    );
    const badType = Buffer.from(good);
    badType.writeUInt16BE(0x0099, 2);
    expect(rcOf(() => unmarshal(TPM2B_PUBLIC, badType))).toBe(TPM_RC.TYPE);
    const badHash = Buffer.from(good);
    badHash.writeUInt16BE(0x0099, 4);
    expect(rcOf(() => unmarshal(TPM2B_PUBLIC, badHash))).toBe(TPM_RC.HASH);
    expect(rcOf(() => unmarshal(TPM2B_PUBLIC, Buffer.of(0, 0)))).toBe(TPM_RC.SIZE);
    const bigDigest = Buffer.concat([Buffer.of(0, 65), Buffer.alloc(65)]);
    expect(rcOf(() => unmarshal(COMMANDS.GetRandom.response, bigDigest))).toBe(TPM_RC.SIZE);
  });

  it('never throws anything but WireError on random bytes, for every command parameter codec', () => {
    const codecs = Object.values(COMMANDS).flatMap((c) => [
      c.params,
      c.response,
    ]) as Codec<unknown>[];
    fc.assert(
      fc.property(fc.constantFrom(...codecs), fc.uint8Array({ maxLength: 600 }), (codec, b) => {
        try {
          unmarshal(codec, b);
        } catch (err) {
          expect(err).toBeInstanceOf(WireError);
        }
      }),
      { numRuns: 3000 },
    );
  });
});
