/**
 * TPM2_Import (TPM 2.0 Part 3 §13.3; Part 1 §23.3; tpm-formulas.md §5). Every duplication blob
 * here is built from the formulas with node:crypto alone, independently of the engine, plus the
 * swtpm transcript's import vectors and its TPM-made private blob.
 */
import {
  constants,
  createCipheriv,
  createECDH,
  createPublicKey,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as templates from '../../tpm-sim/client/templates.ts';
import { unwrapDuplicate } from '../../tpm-sim/engine/duplication.ts';
import { protectionKeys, readSensitive2B } from '../../tpm-sim/engine/storage.ts';
import type { Tpm } from '../../tpm-sim/engine/tpm.ts';
import { unmarshal } from '../../tpm-sim/wire/codec.ts';
import { TPM_ALG, TPM_RH } from '../../tpm-sim/wire/constants.ts';
import { TPM_RC } from '../../tpm-sim/wire/rc.ts';
import {
  type EccPoint,
  type Public,
  SCHEME_NULL,
  SYM_NULL,
  type SymDef,
  TPMT_PUBLIC,
} from '../../tpm-sim/wire/structures.ts';
import { newTpm, ok, rcOf } from '../shared/engine.ts';
import {
  hmac256,
  label,
  nameOf,
  protectionKeysRef,
  sha256,
  tpm2b,
  u16,
  u32,
  wrapRef,
} from '../shared/formulas.ts';

const vectors = JSON.parse(
  readFileSync(new URL('../vectors/swtpm-transcript.json', import.meta.url), 'utf8'),
);
const hex = (s: string) => Buffer.from(s, 'hex');
const EMPTY = Buffer.alloc(0);
const A = TPM_ALG;
const OWNER = TPM_RH.OWNER;

const AES128CFB: SymDef = { algorithm: A.AES, keyBits: 128, mode: A.CFB };

function storageTemplate(type: number): Public {
  return type === A.RSA ? templates.rsaStoragePrimary() : templates.eccStoragePrimary();
}

async function primary(tpm: Tpm, type: number): Promise<{ handle: number; pub: Public }> {
  const r = await ok(tpm, 'CreatePrimary', [OWNER], {
    inSensitive: { userAuth: EMPTY, data: EMPTY },
    inPublic: storageTemplate(type),
    outsideInfo: EMPTY,
    creationPCR: [],
  });
  return { handle: r.handles[0]!, pub: r.out.outPublic };
}

// ---- the formulas, with node:crypto only ---------------------------------------------------

function kdfe(z: Buffer, lab: string, u: Buffer, v: Buffer): Buffer {
  return sha256(u32(1), z, label(lab), u, v);
}

function cfb(key: Buffer, data: Buffer): Buffer {
  const c = createCipheriv(`aes-${key.length * 8}-cfb`, key, Buffer.alloc(16));
  return Buffer.concat([c.update(data), c.final()]);
}

/** TPM2B_SENSITIVE, written out field by field (Part 2 §12.3.2.4). */
function sens2B(type: number, authValue: Buffer, seedValue: Buffer, sensitive: Buffer): Buffer {
  return tpm2b(Buffer.concat([u16(type), tpm2b(authValue), tpm2b(seedValue), tpm2b(sensitive)]));
}

interface Wrap {
  name: Buffer;
  sens: Buffer;
  /** Outer-wrapper seed; none when absent. */
  seed?: Buffer;
  /** Inner-wrapper key; none when absent. */
  innerKey?: Buffer;
  /** Overrides the inner integrity value (to build a bad one). */
  innerIntegrity?: Buffer;
}

/** The duplication blob of Part 1 §23.3.2 for a SHA-256 / AES-128 parent. */
function duplicate(w: Wrap): Buffer {
  let enc = w.sens;
  if (w.innerKey) {
    const integrity = w.innerIntegrity ?? sha256(w.sens, w.name);
    enc = cfb(w.innerKey, Buffer.concat([tpm2b(integrity), w.sens]));
  }
  if (!w.seed) return enc;
  const { symKey, hmacKey } = protectionKeysRef(w.seed, w.name);
  const dup = cfb(symKey, enc);
  const mac = hmac256(hmacKey, dup, w.name);
  return Buffer.concat([tpm2b(mac), dup]);
}

/** inSymSeed for an RSA parent: OAEP(SHA-256, label "DUPLICATE\0") to the parent's modulus. */
function rsaSeed(parent: Public, seed: Buffer): Buffer {
  const key = createPublicKey({
    key: { kty: 'RSA', n: (parent.unique as Buffer).toString('base64url'), e: 'AQAB' },
    format: 'jwk',
  });
  return publicEncrypt(
    {
      key,
      padding: constants.RSA_PKCS1_OAEP_PADDING,
      oaepHash: 'sha256',
      oaepLabel: label('DUPLICATE'),
    },
    seed,
  );
}

/** An ECC parent: an ephemeral ECDH with its point, seed = KDFe(Z, "DUPLICATE", Qe.x, parent.x). */
function eccSeed(parent: Public): { seed: Buffer; inSymSeed: Buffer } {
  const p = parent.unique as EccPoint;
  const eph = createECDH('prime256v1');
  const q = eph.generateKeys();
  const qx = q.subarray(1, 33);
  const qy = q.subarray(33);
  const z = eph.computeSecret(Buffer.concat([Buffer.from([4]), p.x, p.y]));
  return { seed: kdfe(z, 'DUPLICATE', qx, p.x), inSymSeed: Buffer.concat([tpm2b(qx), tpm2b(qy)]) };
}

function hmacKeyObject() {
  const key = randomBytes(32);
  const seedValue = randomBytes(32);
  const pub: Public = {
    ...templates.hmacKey(),
    objectAttributes: 0x00040040, // sign | userWithAuth, duplicable
    unique: sha256(seedValue, key),
  };
  return {
    key,
    pub,
    name: nameOf(pub),
    sens: sens2B(A.KEYEDHASH, Buffer.from('hmacpw'), seedValue, key),
  };
}

function importParams(o: {
  pub: Public;
  duplicate: Buffer;
  inSymSeed?: Buffer;
  innerKey?: Buffer;
  symmetricAlg?: SymDef;
}) {
  return {
    encryptionKey: o.innerKey ?? EMPTY,
    objectPublic: o.pub,
    duplicate: o.duplicate,
    inSymSeed: o.inSymSeed ?? EMPTY,
    symmetricAlg: o.symmetricAlg ?? (o.innerKey ? AES128CFB : SYM_NULL),
  };
}

const started = () => newTpm({ maxTransientObjects: 6 });

// ---- tests ---------------------------------------------------------------------------------

describe('Import under an RSA parent (inner and outer wrapper)', () => {
  it('imports an HMAC key, which then loads, and refuses bad integrity with 0x3DF', async () => {
    const tpm = await started();
    const parent = await primary(tpm, A.RSA);
    const obj = hmacKeyObject();
    const seed = randomBytes(32);
    const innerKey = randomBytes(16);
    const inSymSeed = rsaSeed(parent.pub, seed);
    const dup = duplicate({ name: obj.name, sens: obj.sens, seed, innerKey });
    const imported = await ok(
      tpm,
      'Import',
      [parent.handle],
      importParams({ pub: obj.pub, duplicate: dup, inSymSeed, innerKey }),
    );
    const loaded = await ok(tpm, 'Load', [parent.handle], {
      inPrivate: imported.out.outPrivate,
      inPublic: obj.pub,
    });
    expect(loaded.out.name).toEqual(obj.name);
    const sensitive = tpm.transientObject(loaded.handles[0]!)!.sensitive!;
    expect(sensitive.sensitive).toEqual(obj.key);
    expect(sensitive.authValue.toString()).toBe('hmacpw');

    // A changed byte in the outer HMAC or in the encrypted part: TPM_RC_INTEGRITY on duplicate.
    for (const at of [4, 40, dup.length - 1]) {
      const bad = Buffer.from(dup);
      bad[at]! ^= 0x01;
      expect(
        await rcOf(
          tpm,
          'Import',
          [parent.handle],
          importParams({ pub: obj.pub, duplicate: bad, inSymSeed, innerKey }),
        ),
      ).toBe(0x3df);
    }
    // A correct outer wrapper around a bad inner integrity value: also 0x3DF.
    const badInner = duplicate({
      name: obj.name,
      sens: obj.sens,
      seed,
      innerKey,
      innerIntegrity: randomBytes(32),
    });
    expect(
      await rcOf(
        tpm,
        'Import',
        [parent.handle],
        importParams({ pub: obj.pub, duplicate: badInner, inSymSeed, innerKey }),
      ),
    ).toBe(0x3df);
    // The wrong inner key decrypts to garbage: its integrity fails too.
    expect(
      await rcOf(
        tpm,
        'Import',
        [parent.handle],
        importParams({ pub: obj.pub, duplicate: dup, inSymSeed, innerKey: randomBytes(16) }),
      ),
    ).toBe(0x3df);
    // Another public area, another Name: the outer HMAC fails.
    const otherPub = { ...obj.pub, objectAttributes: 0x00040440 };
    expect(
      await rcOf(
        tpm,
        'Import',
        [parent.handle],
        importParams({ pub: otherPub, duplicate: dup, inSymSeed, innerKey }),
      ),
    ).toBe(0x3df);
    // A seed the parent cannot decrypt: TPM_RC_VALUE on inSymSeed; a wrong length: TPM_RC_SIZE.
    expect(
      await rcOf(
        tpm,
        'Import',
        [parent.handle],
        importParams({ pub: obj.pub, duplicate: dup, inSymSeed: randomBytes(256), innerKey }),
      ),
    ).toBe(0x4c4);
    expect(
      await rcOf(
        tpm,
        'Import',
        [parent.handle],
        importParams({ pub: obj.pub, duplicate: dup, inSymSeed: randomBytes(255), innerKey }),
      ),
    ).toBe(0x4d5);
  });

  it('checks the attributes and the wrapper parameters first', async () => {
    const tpm = await started();
    const parent = await primary(tpm, A.RSA);
    const obj = hmacKeyObject();
    const seed = randomBytes(32);
    const innerKey = randomBytes(16);
    const inSymSeed = rsaSeed(parent.pub, seed);
    const dup = duplicate({ name: obj.name, sens: obj.sens, seed, innerKey });
    const p = (o: Partial<Parameters<typeof importParams>[0]>) =>
      importParams({ pub: obj.pub, duplicate: dup, inSymSeed, innerKey, ...o });
    // fixedTPM or fixedParent: TPM_RC_ATTRIBUTES on objectPublic.
    expect(
      await rcOf(
        tpm,
        'Import',
        [parent.handle],
        p({ pub: { ...obj.pub, objectAttributes: 0x00040052 } }),
      ),
    ).toBe(0x2c2);
    expect(
      await rcOf(
        tpm,
        'Import',
        [parent.handle],
        p({ pub: { ...obj.pub, objectAttributes: 0x00040050 } }),
      ),
    ).toBe(0x2c2);
    // An inner key of the wrong size for symmetricAlg: TPM_RC_SIZE on encryptionKey.
    expect(
      await rcOf(
        tpm,
        'Import',
        [parent.handle],
        p({ innerKey: randomBytes(15), symmetricAlg: AES128CFB }),
      ),
    ).toBe(0x1d5);
    // encryptedDuplication needs the inner wrapper (encryptionKey) and the outer one (inSymSeed).
    const encDup = { ...obj.pub, objectAttributes: 0x00040840 };
    expect(
      await rcOf(
        tpm,
        'Import',
        [parent.handle],
        p({ pub: encDup, innerKey: EMPTY, symmetricAlg: SYM_NULL }),
      ),
    ).toBe(0x1c2);
    expect(await rcOf(tpm, 'Import', [parent.handle], p({ pub: encDup, inSymSeed: EMPTY }))).toBe(
      0x4c2,
    );
    // A public-only key cannot be authorized at all (TPM_RC_AUTH_UNAVAILABLE, as libtpms).
    const signer = await ok(tpm, 'LoadExternal', [], {
      inPrivate: undefined,
      inPublic: {
        ...storageTemplate(A.RSA),
        objectAttributes: 0x00040040,
        unique: parent.pub.unique,
        parameters: { symmetric: SYM_NULL, scheme: SCHEME_NULL, keyBits: 2048, exponent: 0 },
      },
      hierarchy: OWNER,
    });
    expect(await rcOf(tpm, 'Import', [signer.handles[0]!], p({}))).toBe(0x12f);
  });
});

describe('Import under an ECC parent (outer wrapper only)', () => {
  it('imports an ECC signing key made outside the TPM', async () => {
    const tpm = await started();
    const parent = await primary(tpm, A.ECC);
    const key = createECDH('prime256v1');
    const q = key.generateKeys();
    const d = Buffer.alloc(32);
    const priv = key.getPrivateKey();
    priv.copy(d, 32 - priv.length);
    const pub: Public = {
      type: A.ECC,
      nameAlg: A.SHA256,
      objectAttributes: 0x00040040,
      authPolicy: EMPTY,
      parameters: {
        symmetric: SYM_NULL,
        scheme: { scheme: A.ECDSA, hashAlg: A.SHA256 },
        curveID: 3,
        kdf: SCHEME_NULL,
      },
      unique: { x: q.subarray(1, 33), y: q.subarray(33) },
    };
    const name = nameOf(pub);
    const { seed, inSymSeed } = eccSeed(parent.pub);
    const sens = sens2B(A.ECC, EMPTY, EMPTY, d);
    const dup = duplicate({ name, sens, seed });
    const imported = await ok(
      tpm,
      'Import',
      [parent.handle],
      importParams({ pub, duplicate: dup, inSymSeed }),
    );
    const loaded = await ok(tpm, 'Load', [parent.handle], {
      inPrivate: imported.out.outPrivate,
      inPublic: pub,
    });
    expect(loaded.out.name).toEqual(name);
    expect(tpm.transientObject(loaded.handles[0]!)!.sensitive!.sensitive).toEqual(d);

    const bad = Buffer.from(dup);
    bad[2]! ^= 0x01;
    expect(
      await rcOf(tpm, 'Import', [parent.handle], importParams({ pub, duplicate: bad, inSymSeed })),
    ).toBe(0x3df);
    // An ephemeral point off the curve: TPM_RC_ECC_POINT on inSymSeed.
    const offCurve = Buffer.from(inSymSeed);
    offCurve[offCurve.length - 1]! ^= 0x01;
    expect(
      await rcOf(
        tpm,
        'Import',
        [parent.handle],
        importParams({ pub, duplicate: dup, inSymSeed: offCurve }),
      ),
    ).toBe(0x4e7);
    // A private key that is not the public key's: TPM_RC_BINDING.
    const other = duplicate({ name, sens: sens2B(A.ECC, EMPTY, EMPTY, randomBytes(32)), seed });
    expect(
      await rcOf(
        tpm,
        'Import',
        [parent.handle],
        importParams({ pub, duplicate: other, inSymSeed }),
      ),
    ).toBe(TPM_RC.BINDING);
  });

  it('imports the transcript parent with its known seed, and loads the swtpm-made child blob under it', async () => {
    const tpm = await started();
    const top = await primary(tpm, A.ECC);
    const v5a = vectors['5a_import'];
    const v5b = vectors['5b_protected_storage'];
    const pub = unmarshal(TPMT_PUBLIC, hex(v5a.objectPublic));
    const name = hex(v5a.name);
    expect(nameOf(pub)).toEqual(name);
    const { seed, inSymSeed } = eccSeed(top.pub);
    const innerKey = randomBytes(16);
    const dup = duplicate({ name, sens: hex(v5a.sensitive2B), seed, innerKey });
    const imported = await ok(
      tpm,
      'Import',
      [top.handle],
      importParams({ pub, duplicate: dup, inSymSeed, innerKey }),
    );
    const parent = (
      await ok(tpm, 'Load', [top.handle], {
        inPrivate: imported.out.outPrivate,
        inPublic: pub,
      })
    ).handles[0]!;

    // swtpm made this blob under the same parent: it loads here.
    const childPub = unmarshal(TPMT_PUBLIC, hex(v5b.child_outPublic));
    // The transcript parent's authValue is "parentpw".
    const pw = Buffer.from('parentpw');
    const child = await ok(
      tpm,
      'Load',
      [parent],
      { inPrivate: hex(v5b.tpm_outPrivate), inPublic: childPub },
      [pw],
    );
    expect(child.out.name).toEqual(hex(v5b.child_name));

    // A blob built here for a fixedTPM child of this duplicable parent: well formed, correctly
    // authenticated, and refused for its attributes (0x2C2).
    const parentSeed = hex(v5b.parentSeedValue);
    const seedValue = randomBytes(32);
    const data = Buffer.from('forged');
    const fixedPub: Public = {
      ...templates.sealedData(),
      objectAttributes: 0x00000052,
      unique: sha256(seedValue, data),
    };
    const fixedName = nameOf(fixedPub);
    const iv = randomBytes(16);
    const sens = sens2B(A.KEYEDHASH, EMPTY, seedValue, data);
    const blob = wrapRef(parentSeed, fixedName, sens, iv);
    expect(await rcOf(tpm, 'Load', [parent], { inPrivate: blob, inPublic: fixedPub }, [pw])).toBe(
      0x2c2,
    );
    // The same object without fixedTPM/fixedParent loads.
    const freePub = { ...fixedPub, objectAttributes: 0x00000040 };
    const freeName = nameOf(freePub);
    const loaded = await ok(
      tpm,
      'Load',
      [parent],
      { inPrivate: wrapRef(parentSeed, freeName, sens, iv), inPublic: freePub },
      [pw],
    );
    expect(tpm.transientObject(loaded.handles[0]!)!.sensitive!.sensitive).toEqual(data);
  });
});

describe('the swtpm import vectors', () => {
  it('unwraps the transcript duplicate with its seed', () => {
    const v = vectors['5a_import'];
    const name = hex(v.name);
    const seed = hex(v.seed);
    const keys = protectionKeys(A.SHA256, seed, name, 128);
    expect(keys.symKey).toEqual(hex(v.symKey_STORAGE));
    expect(keys.hmacKey).toEqual(hex(v.hmacKey_INTEGRITY));
    expect(sha256(hex(v.sensitive2B), name)).toEqual(hex(v.innerIntegrity));
    // The parent was swtpm's RSA storage primary: only its nameAlg and AES-128-CFB matter here.
    const sensitive = unwrapDuplicate({
      parent: storageTemplate(A.RSA),
      seed,
      name,
      duplicate: hex(v.duplicate),
      symmetricAlg: AES128CFB,
      encryptionKey: hex(v.encryptionKey),
      objectNameAlg: A.SHA256,
      param: 3,
    });
    expect(sensitive).toEqual(readSensitive2B(hex(v.sensitive2B), TPM_RC.SENSITIVE));
    expect(hex(v.inSymSeed)).toHaveLength(256);
  });
});
