/**
 * Protected storage (TPM 2.0 Part 1 §22; tpm-formulas.md §4): the private blob format, checked
 * against a blob swtpm made and against the formulas recomputed here with node:crypto alone.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  checkKeyMaterial,
  primaryStream,
  symmetricUnique,
} from '../../tpm-sim/engine/key-material.ts';
import { makeObject, type TpmObject } from '../../tpm-sim/engine/objects.ts';
import { RcError } from '../../tpm-sim/engine/rc-error.ts';
import {
  marshalSensitive2B,
  protectionKeys,
  readSensitive2B,
  unwrapPrivate,
  wrapPrivate,
} from '../../tpm-sim/engine/storage.ts';
import { unmarshal } from '../../tpm-sim/wire/codec.ts';
import { TPM_ALG, TPM_RH } from '../../tpm-sim/wire/constants.ts';
import { TPM_RC } from '../../tpm-sim/wire/rc.ts';
import { type Public, type Sensitive, TPMT_PUBLIC } from '../../tpm-sim/wire/structures.ts';
import { hmac256, protectionKeysRef, tpm2b, u16, u32, wrapRef } from '../shared/formulas.ts';
import { thrownRc } from '../shared/rc.ts';

const vectors = JSON.parse(
  readFileSync(new URL('../vectors/swtpm-transcript.json', import.meta.url), 'utf8'),
);
const hex = (s: string) => Buffer.from(s, 'hex');

// ---- the formulas, written out with node:crypto only ---------------------------------------

/** The inverse of wrapRef: checks the HMAC and returns the decrypted TPM2B_SENSITIVE. */
function unwrapRef(seed: Buffer, name: Buffer, blob: Buffer): Buffer {
  const { symKey, hmacKey } = protectionKeysRef(seed, name);
  const macLen = blob.readUInt16BE(0);
  const mac = blob.subarray(2, 2 + macLen);
  const rest = blob.subarray(2 + macLen);
  expect(hmac256(hmacKey, rest, name)).toEqual(mac);
  const iv = rest.subarray(2, 2 + rest.readUInt16BE(0));
  const d = createDecipheriv('aes-128-cfb', symKey, iv);
  return Buffer.concat([d.update(rest.subarray(2 + iv.length)), d.final()]);
}

const rcOf = (fn: () => unknown) => thrownRc(RcError, fn);

// ---- the parent and child of the swtpm transcript ------------------------------------------

/** The ECC storage parent the transcript imported, with its known seedValue (§5a). */
function transcriptParent(): TpmObject {
  const v = vectors['5a_import'];
  const publicArea = unmarshal(TPMT_PUBLIC, hex(v.objectPublic));
  const sensitive = readSensitive2B(hex(v.sensitive2B), TPM_RC.SENSITIVE);
  return makeObject({ publicArea, sensitive, hierarchy: TPM_RH.OWNER, parentQn: Buffer.alloc(0) });
}

describe('protected storage against swtpm', () => {
  it('derives the same keys and unwraps, re-wraps and binds the swtpm-made blob byte for byte', () => {
    const v = vectors['5b_protected_storage'];
    const parent = transcriptParent();
    expect(parent.name).toEqual(hex(vectors['5a_import'].name));
    expect(parent.sensitive!.seedValue).toEqual(hex(v.parentSeedValue));
    // The parent's private part matches its public point (d * G = unique).
    checkKeyMaterial(parent.publicArea, parent.sensitive, { pub: 2, sens: 3 });

    const childPublic = unmarshal(TPMT_PUBLIC, hex(v.child_outPublic));
    const childName = hex(v.child_name);
    expect(
      makeObject({
        publicArea: childPublic,
        hierarchy: TPM_RH.OWNER,
        parentQn: parent.qualifiedName,
      }).name,
    ).toEqual(childName);
    const keys = protectionKeys(TPM_ALG.SHA256, parent.sensitive!.seedValue, childName, 128);
    expect(keys.symKey).toEqual(hex(v.symKey_STORAGE));
    expect(keys.hmacKey).toEqual(hex(v.hmacKey_INTEGRITY));

    const blob = hex(v.tpm_outPrivate);
    const sensitive = unwrapPrivate(parent, childName, blob, 1);
    expect(sensitive.sensitiveType).toBe(TPM_ALG.KEYEDHASH);
    // libtpms pads the authValue to the digest size; the padding does not change the value.
    expect(sensitive.authValue.length).toBe(32);
    expect(sensitive.authValue.subarray(0, 7).toString()).toBe('childpw');
    expect(childPublic.unique).toEqual(
      symmetricUnique(childPublic, sensitive.seedValue, sensitive.sensitive),
    );
    checkKeyMaterial(childPublic, sensitive, { pub: 2, sens: 1 });

    const iv = blob.subarray(36, 52);
    expect(wrapPrivate(parent, childName, sensitive, iv)).toEqual(blob);
  });
});

describe('wrapPrivate / unwrapPrivate', () => {
  const parent = transcriptParent();
  const seed = parent.sensitive!.seedValue;
  const name = Buffer.concat([u16(TPM_ALG.SHA256), randomBytes(32)]);
  const sensitive: Sensitive = {
    sensitiveType: TPM_ALG.ECC,
    authValue: Buffer.from('pw'),
    seedValue: Buffer.alloc(0),
    sensitive: randomBytes(32),
  };

  it('agrees with the formulas computed independently', () => {
    const blob = wrapPrivate(parent, name, sensitive);
    expect(unwrapRef(seed, name, blob)).toEqual(marshalSensitive2B(sensitive));
    const mine = wrapRef(seed, name, marshalSensitive2B(sensitive), randomBytes(16));
    expect(unwrapPrivate(parent, name, mine)).toEqual(sensitive);
    // A fresh IV every time.
    expect(wrapPrivate(parent, name, sensitive)).not.toEqual(blob);
  });

  it('checks integrity first: any changed byte, another Name or another seed is TPM_RC_INTEGRITY', () => {
    const blob = wrapPrivate(parent, name, sensitive);
    for (let i = 2; i < blob.length; i++) {
      const bad = Buffer.from(blob);
      bad[i]! ^= 0x80;
      expect(rcOf(() => unwrapPrivate(parent, name, bad, 1))).toBe(0x1df);
    }
    // The HMAC's size field: a size above any digest fails unmarshalling (TPM_RC_SIZE|P1, as
    // libtpms), another digest size fails the comparison.
    const bigSize = Buffer.from(blob);
    bigSize[0]! ^= 0x80;
    expect(rcOf(() => unwrapPrivate(parent, name, bigSize, 1))).toBe(0x1d5);
    const otherSize = Buffer.from(blob);
    otherSize[1]! ^= 0x01;
    expect(rcOf(() => unwrapPrivate(parent, name, otherSize, 1))).toBe(0x1df);
    expect(rcOf(() => unwrapPrivate(parent, name, blob.subarray(0, blob.length - 1), 1))).toBe(
      0x1df,
    );
    const otherName = Buffer.from(name);
    otherName[5]! ^= 1;
    expect(rcOf(() => unwrapPrivate(parent, otherName, blob, 1))).toBe(0x1df);
    // Without a parameter number the base code comes back.
    expect(rcOf(() => unwrapPrivate(parent, otherName, blob))).toBe(TPM_RC.INTEGRITY);
    const otherParent: TpmObject = {
      ...parent,
      sensitive: { ...parent.sensitive!, seedValue: randomBytes(32) },
    };
    expect(rcOf(() => unwrapPrivate(otherParent, name, blob, 1))).toBe(0x1df);
    // Too short to hold its HMAC: an unmarshalling error on the same parameter.
    expect(rcOf(() => unwrapPrivate(parent, name, Buffer.from([0x00]), 1))).toBe(0x1da);
  });

  it('only then looks at the contents: a bad IV is TPM_RC_VALUE, a bad structure TPM_RC_SENSITIVE', () => {
    // Authentic blobs (made with the parent's seed) around bad contents.
    const garbage = wrapRef(seed, name, Buffer.from('0005ffff', 'hex'), randomBytes(16));
    expect(rcOf(() => unwrapPrivate(parent, name, garbage, 1))).toBe(TPM_RC.SENSITIVE);
    const sens2B = marshalSensitive2B(sensitive);
    const wrongSize = wrapRef(
      seed,
      name,
      Buffer.concat([sens2B, Buffer.from([0])]),
      randomBytes(16),
    );
    expect(rcOf(() => unwrapPrivate(parent, name, wrongSize, 1))).toBe(TPM_RC.SENSITIVE);
    // IV of 8 bytes, correctly authenticated.
    const { symKey, hmacKey } = protectionKeysRef(seed, name);
    const ivField = tpm2b(Buffer.alloc(8));
    const enc = createCipheriv('aes-128-cfb', symKey, Buffer.alloc(16)).update(sens2B);
    const shortIv = Buffer.concat([tpm2b(hmac256(hmacKey, ivField, enc, name)), ivField, enc]);
    expect(rcOf(() => unwrapPrivate(parent, name, shortIv, 1))).toBe(0x1c4);
  });
});

describe('primary derivation stream', () => {
  it('is KDFa with the fixed size field, read from the front in any chunks', () => {
    const seed = randomBytes(64);
    const name = Buffer.concat([u16(TPM_ALG.SHA256), randomBytes(32)]);
    const data = Buffer.from('extra');
    const blocks = [1, 2, 3, 4].map((i) =>
      createHmac('sha256', seed)
        .update(u32(i))
        .update(Buffer.from('Primary Object Creation\0', 'latin1'))
        .update(name)
        .update(data)
        .update(u32(0xfffffff8))
        .digest(),
    );
    const stream = primaryStream(TPM_ALG.SHA256, seed, name, data);
    const read = Buffer.concat([stream(10), stream(50), stream(0), stream(36), stream(32)]);
    expect(read).toEqual(Buffer.concat(blocks));
    // Other inputs, other bytes.
    const other = primaryStream(TPM_ALG.SHA256, seed, name, Buffer.from('extrb'));
    expect(Buffer.from(other(32))).not.toEqual(blocks[0]);
  });
});

describe('checkKeyMaterial', () => {
  it('binds symmetric objects to their unique and refuses another key', () => {
    const seed = randomBytes(32);
    const key = randomBytes(32);
    const pub: Public = {
      type: TPM_ALG.KEYEDHASH,
      nameAlg: TPM_ALG.SHA256,
      objectAttributes: 0x00040040,
      authPolicy: Buffer.alloc(0),
      parameters: { scheme: { scheme: TPM_ALG.HMAC, hashAlg: TPM_ALG.SHA256 } },
      unique: createHash('sha256').update(seed).update(key).digest(),
    };
    const sens: Sensitive = {
      sensitiveType: TPM_ALG.KEYEDHASH,
      authValue: Buffer.alloc(0),
      seedValue: seed,
      sensitive: key,
    };
    checkKeyMaterial(pub, sens, { pub: 2, sens: 1 });
    expect(
      rcOf(() =>
        checkKeyMaterial(pub, { ...sens, sensitive: randomBytes(32) }, { pub: 2, sens: 1 }),
      ),
    ).toBe(TPM_RC.BINDING);
    expect(
      rcOf(() =>
        checkKeyMaterial(pub, { ...sens, sensitiveType: TPM_ALG.SYMCIPHER }, { pub: 2, sens: 1 }),
      ),
    ).toBe(0x1ca);
    // Public-only: unique must be one digest.
    checkKeyMaterial(pub, undefined, { pub: 2, sens: 1 });
    expect(
      rcOf(() =>
        checkKeyMaterial({ ...pub, unique: Buffer.alloc(5) }, undefined, { pub: 2, sens: 1 }),
      ),
    ).toBe(0x2dc);
  });
});
