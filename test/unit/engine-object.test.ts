/**
 * Object commands driven through real command bytes: CreatePrimary, Create, Load, LoadExternal,
 * ReadPublic and HierarchyChangeAuth (TPM 2.0 Part 3 §12.1-12.4, §24.1, §24.8).
 */
import { createECDH } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as templates from '../../tpm-sim/client/templates.ts';
import { decodeState } from '../../tpm-sim/engine/persistent-state.ts';
import { marshal, unmarshal } from '../../tpm-sim/wire/codec.ts';
import { COMMANDS } from '../../tpm-sim/wire/commands.ts';
import { TPM_ALG, TPM_RH, TPM_ST } from '../../tpm-sim/wire/constants.ts';
import {
  type EccPoint,
  type Public,
  SCHEME_NULL,
  SYM_NULL,
  TPMS_CREATION_DATA,
  TPMT_PUBLIC,
} from '../../tpm-sim/wire/structures.ts';
import { newTpm, ok, rcOf, run } from '../shared/engine.ts';
import { nameOf, sha256, u32 } from '../shared/formulas.ts';

// ---- helpers -------------------------------------------------------------------------------

const EMPTY = Buffer.alloc(0);
const A = TPM_ALG;
const AES128CFB = { algorithm: A.AES, keyBits: 128, mode: A.CFB };

/** The storage primary of tpm2-tools (`-G ecc`), with other attributes or a caller's unique. */
function eccStorage(
  attrs = templates.STORAGE_ATTRIBUTES,
  unique: EccPoint = { x: EMPTY, y: EMPTY },
): Public {
  return { ...templates.eccStoragePrimary(), objectAttributes: attrs, unique };
}

function rsaStorage(attrs = templates.STORAGE_ATTRIBUTES): Public {
  return { ...templates.rsaStoragePrimary(), objectAttributes: attrs };
}

/** A sealed data object: fixedTPM|fixedParent|userWithAuth, no sensitiveDataOrigin. */
function sealed(attrs?: number): Public {
  const template = templates.sealedData();
  return { ...template, objectAttributes: attrs ?? template.objectAttributes };
}

function createParams(inPublic: Public, data: Buffer = EMPTY, userAuth: Buffer = EMPTY) {
  return { inSensitive: { userAuth, data }, inPublic, outsideInfo: EMPTY, creationPCR: [] };
}

const OWNER = TPM_RH.OWNER;

// ---- CreatePrimary -------------------------------------------------------------------------

describe('CreatePrimary', () => {
  it('derives the same ECC key from the same template, and a different one otherwise', async () => {
    const tpm = await newTpm({ maxTransientObjects: 8 });
    const a = await ok(tpm, 'CreatePrimary', [OWNER], createParams(eccStorage()));
    const b = await ok(tpm, 'CreatePrimary', [OWNER], createParams(eccStorage()));
    expect(a.handles[0]).not.toBe(b.handles[0]);
    expect(b.out.name).toEqual(a.out.name);
    expect(b.out.outPublic).toEqual(a.out.outPublic);
    // userAuth does not enter the derivation.
    const c = await ok(
      tpm,
      'CreatePrimary',
      [OWNER],
      createParams(eccStorage(), EMPTY, Buffer.from('pw')),
    );
    expect(c.out.name).toEqual(a.out.name);
    // A different unique, or different sensitive.data, is a different key.
    const unique = { x: Buffer.from('entropy'), y: EMPTY };
    const d = await ok(tpm, 'CreatePrimary', [OWNER], createParams(eccStorage(0x00030072, unique)));
    const e = await ok(
      tpm,
      'CreatePrimary',
      [OWNER],
      createParams(eccStorage(), Buffer.from('salt')),
    );
    const ux = (r: typeof a) => (r.out.outPublic.unique as EccPoint).x.toString('hex');
    expect(new Set([ux(a), ux(d), ux(e)]).size).toBe(3);
    // Another hierarchy has another seed.
    const f = await ok(tpm, 'CreatePrimary', [TPM_RH.ENDORSEMENT], createParams(eccStorage()));
    expect(ux(f)).not.toBe(ux(a));
    // The returned Name is nameAlg || H(outPublic), and the key is on the curve with d.
    expect(a.out.name).toEqual(nameOf(a.out.outPublic));
    const obj = tpm.transientObject(a.handles[0]!)!;
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(obj.sensitive!.sensitive);
    const point = a.out.outPublic.unique as EccPoint;
    expect(ecdh.getPublicKey().subarray(1, 33)).toEqual(point.x);
    expect(obj.sensitive!.seedValue.length).toBe(32);
  });

  it('derives the same RSA key from the same template', async () => {
    const tpm = await newTpm();
    const a = await ok(tpm, 'CreatePrimary', [OWNER], createParams(rsaStorage()));
    const b = await ok(tpm, 'CreatePrimary', [OWNER], createParams(rsaStorage()));
    expect(b.out.name).toEqual(a.out.name);
    const n = a.out.outPublic.unique as Buffer;
    expect(n.length).toBe(256);
    const p = tpm.transientObject(a.handles[0]!)!.sensitive!.sensitive;
    expect(BigInt(`0x${n.toString('hex')}`) % BigInt(`0x${p.toString('hex')}`)).toBe(0n);
    const c = await ok(
      tpm,
      'CreatePrimary',
      [OWNER],
      createParams(rsaStorage(), Buffer.from('other')),
    );
    expect(c.out.outPublic.unique).not.toEqual(n);
  });

  it('gives the same primary after a restart from saved state, in the NULL hierarchy a new one after reset', async () => {
    let saved: Uint8Array | undefined;
    const tpm1 = await newTpm({
      persist: async (s) => {
        saved = s;
      },
    });
    const a = await ok(tpm1, 'CreatePrimary', [OWNER], createParams(eccStorage()));
    const n1 = await ok(tpm1, 'CreatePrimary', [TPM_RH.NULL], createParams(eccStorage()));
    const child = await ok(
      tpm1,
      'Create',
      [a.handles[0]!],
      createParams(sealed(), Buffer.from('kept')),
    );
    expect(saved).toBeDefined();
    const tpm2 = await newTpm({ state: saved! });
    const b = await ok(tpm2, 'CreatePrimary', [OWNER], createParams(eccStorage()));
    expect(b.out.name).toEqual(a.out.name);
    const n2 = await ok(tpm2, 'CreatePrimary', [TPM_RH.NULL], createParams(eccStorage()));
    expect(n2.out.name).not.toEqual(n1.out.name);
    // NULL-hierarchy objects get NULL creation tickets.
    expect(n2.out.creationTicket).toEqual({
      tag: TPM_ST.CREATION,
      hierarchy: TPM_RH.NULL,
      digest: EMPTY,
    });
    // A child made before the restart still loads under the re-created primary.
    const loaded = await ok(tpm2, 'Load', [b.handles[0]!], {
      inPrivate: child.out.outPrivate,
      inPublic: child.out.outPublic,
    });
    expect(tpm2.transientObject(loaded.handles[0]!)!.sensitive!.sensitive.toString()).toBe('kept');
  });

  it('answers the swtpm transcript command with the same layout', async () => {
    const t = JSON.parse(
      readFileSync(new URL('../vectors/swtpm-transcript.json', import.meta.url), 'utf8'),
    )['2_unbound_session'];
    const cmd = Buffer.from(t.createprimary_cmd, 'hex');
    const authSize = cmd.readUInt32BE(14);
    const paramBytes = cmd.subarray(18 + authSize);
    const params = unmarshal(COMMANDS.CreatePrimary.params, paramBytes);
    expect(params.inSensitive.userAuth.toString()).toBe('primpw');

    const tpm = await newTpm();
    const mine = await ok(tpm, 'CreatePrimary', [OWNER], params);
    const rsp = Buffer.from(t.createprimary_rsp, 'hex');
    const theirs = unmarshal(
      COMMANDS.CreatePrimary.response,
      rsp.subarray(18, 18 + rsp.readUInt32BE(14)),
    );

    // The public area: the same bytes up to unique, then 32-byte coordinates.
    const mineBytes = marshal(TPMT_PUBLIC, mine.out.outPublic);
    const theirBytes = Buffer.from(t.outPublic_TPMT_PUBLIC, 'hex');
    expect(mineBytes.length).toBe(theirBytes.length);
    expect(mineBytes.subarray(0, 22)).toEqual(theirBytes.subarray(0, 22));
    const mp = mine.out.outPublic.unique as EccPoint;
    expect([mp.x.length, mp.y.length]).toEqual([32, 32]);
    // Creation data carries nothing key-specific: byte-identical, and so is its hash.
    expect(marshal(TPMS_CREATION_DATA, mine.out.creationData)).toEqual(
      marshal(TPMS_CREATION_DATA, theirs.creationData),
    );
    expect(mine.out.creationHash).toEqual(theirs.creationHash);
    expect(mine.out.creationHash).toEqual(sha256(marshal(TPMS_CREATION_DATA, theirs.creationData)));
    expect(mine.out.creationTicket.tag).toBe(theirs.creationTicket.tag);
    expect(mine.out.creationTicket.hierarchy).toBe(theirs.creationTicket.hierarchy);
    expect(mine.out.name.length).toBe(theirs.name.length);
    expect(mine.out.name).toEqual(nameOf(mine.out.outPublic));
    // swtpm's own public area gives swtpm's Name by the same formula.
    expect(nameOf(theirs.outPublic)).toEqual(Buffer.from(t.name, 'hex'));

    // ReadPublic: the QN of a primary is H(hierarchy handle || Name).
    const rp = await ok(tpm, 'ReadPublic', [mine.handles[0]!], {});
    expect(rp.out.outPublic).toEqual(mine.out.outPublic);
    expect(rp.out.name).toEqual(mine.out.name);
    expect(rp.out.qualifiedName).toEqual(
      Buffer.concat([Buffer.from([0, 0x0b]), sha256(u32(OWNER), mine.out.name)]),
    );
    // The userAuth from inSensitive protects the key.
    expect(tpm.transientObject(mine.handles[0]!)!.sensitive!.authValue.toString()).toBe('primpw');
  });

  it('hashes the selected (all-zero) PCRs and the locality into the creation data', async () => {
    const tpm = await newTpm();
    const params = {
      ...createParams(eccStorage()),
      creationPCR: [{ hash: A.SHA256, pcrSelect: Buffer.from([0x03, 0, 0]) }],
    };
    const r = await ok(tpm, 'CreatePrimary', [OWNER], params);
    expect(r.out.creationData.pcrDigest).toEqual(sha256(Buffer.alloc(32), Buffer.alloc(32)));
    expect(r.out.creationData.locality).toBe(1);
    expect(r.out.creationData.pcrSelect).toEqual(params.creationPCR);
  });

  it('refuses bad templates with the numbered response codes', async () => {
    const tpm = await newTpm();
    const cp = (pub: Public, data: Buffer = EMPTY, auth: Buffer = EMPTY) =>
      rcOf(tpm, 'CreatePrimary', [OWNER], createParams(pub, data, auth));
    // Reserved attribute bit: TPM_RC_RESERVED_BITS on inPublic (parameter 2).
    expect(await cp(eccStorage(0x00030072 | 0x1))).toBe(0x2e1);
    // nameAlg NULL: TPM_RC_HASH|P2.
    expect(await cp({ ...eccStorage(), nameAlg: A.NULL })).toBe(0x2c3);
    // fixedTPM without fixedParent: TPM_RC_ATTRIBUTES|P2.
    expect(await cp(eccStorage(0x00030062))).toBe(0x2c2);
    // restricted with both sign and decrypt.
    expect(await cp(eccStorage(0x00070072))).toBe(0x2c2);
    // A storage key without a symmetric algorithm: TPM_RC_SYMMETRIC|P2.
    const noSym = eccStorage();
    (noSym.parameters as { symmetric: unknown }).symmetric = SYM_NULL;
    expect(await cp(noSym)).toBe(0x2d6);
    // A restricted signing key needs a signing scheme: TPM_RC_SCHEME|P2.
    const restrictedSigner = templates.eccSigningKey({ attributes: 0x00050072 });
    (restrictedSigner.parameters as { scheme: unknown }).scheme = SCHEME_NULL;
    expect(await cp(restrictedSigner)).toBe(0x2d2);
    // A signing key with a symmetric algorithm.
    const signerWithSym = templates.eccSigningKey();
    (signerWithSym.parameters as { symmetric: unknown }).symmetric = AES128CFB;
    expect(await cp(signerWithSym)).toBe(0x2d6);
    // An asymmetric key without sensitiveDataOrigin (caller-supplied private key).
    expect(await cp(templates.eccSigningKey({ attributes: 0x00040052 }), Buffer.from('d'))).toBe(
      0x2c2,
    );
    // Sealed data the TPM would have to invent.
    expect(await cp(sealed(0x00000072))).toBe(0x2c2);
    // Sealed data without data.
    expect(await cp(sealed())).toBe(0x2c2);
    // authPolicy of the wrong size: TPM_RC_SIZE|P2.
    expect(await cp({ ...eccStorage(), authPolicy: Buffer.alloc(20) })).toBe(0x2d5);
    // userAuth longer than the nameAlg digest: TPM_RC_SIZE|P1 (trailing zeros do not count).
    expect(await cp(eccStorage(), EMPTY, Buffer.alloc(33, 1))).toBe(0x1d5);
    expect(
      await run(
        tpm,
        'CreatePrimary',
        [OWNER],
        createParams(eccStorage(), EMPTY, Buffer.concat([Buffer.alloc(32, 1), Buffer.alloc(8)])),
      ),
    ).toMatchObject({ rc: 0 });
  });
});

// ---- Create / Load -------------------------------------------------------------------------

describe('Create and Load', () => {
  it('round-trips an ECC signing key, an RSA key and sealed data', async () => {
    const tpm = await newTpm({ maxTransientObjects: 6 });
    const parent = (await ok(tpm, 'CreatePrimary', [OWNER], createParams(eccStorage())))
      .handles[0]!;
    const parentObj = tpm.transientObject(parent)!;
    const cases: [Public, Buffer][] = [
      [templates.eccSigningKey(), EMPTY],
      [templates.rsaDecryptKey(), EMPTY],
      [sealed(), Buffer.from('agent-secret-123')],
    ];
    for (const [template, data] of cases) {
      const created = await ok(
        tpm,
        'Create',
        [parent],
        createParams(template, data, Buffer.from('childpw')),
      );
      const { outPublic, outPrivate, creationData } = created.out;
      expect(creationData.parentNameAlg).toBe(A.SHA256);
      expect(creationData.parentName).toEqual(parentObj.name);
      expect(creationData.parentQualifiedName).toEqual(parentObj.qualifiedName);
      // The blob: TPM2B_DIGEST(32-byte HMAC) || TPM2B_IV(16) || ciphertext.
      expect(outPrivate.readUInt16BE(0)).toBe(32);
      expect(outPrivate.readUInt16BE(34)).toBe(16);
      const loaded = await ok(tpm, 'Load', [parent], {
        inPrivate: outPrivate,
        inPublic: outPublic,
      });
      expect(loaded.out.name).toEqual(nameOf(outPublic));
      const obj = tpm.transientObject(loaded.handles[0]!)!;
      expect(obj.sensitive!.authValue.toString()).toBe('childpw');
      // Non-parent asymmetric keys keep no seedValue; symmetric objects do.
      expect(obj.sensitive!.seedValue.length).toBe(template.type === A.KEYEDHASH ? 32 : 0);
      if (template.type === A.KEYEDHASH) {
        expect(obj.sensitive!.sensitive).toEqual(data);
        expect(outPublic.unique).toEqual(sha256(obj.sensitive!.seedValue, data));
      }
      const rp = await ok(tpm, 'ReadPublic', [loaded.handles[0]!], {});
      expect(rp.out.qualifiedName).toEqual(
        Buffer.concat([Buffer.from([0, 0x0b]), sha256(parentObj.qualifiedName, loaded.out.name)]),
      );
      await ok(tpm, 'FlushContext', [], { flushHandle: loaded.handles[0]! });
    }
  });

  it('rejects a tampered private blob, a changed public area and a blob of another TPM', async () => {
    const tpm = await newTpm({ maxTransientObjects: 4 });
    const parent = (await ok(tpm, 'CreatePrimary', [OWNER], createParams(eccStorage())))
      .handles[0]!;
    const created = await ok(
      tpm,
      'Create',
      [parent],
      createParams(sealed(), Buffer.from('s3cret')),
    );
    const { outPrivate, outPublic } = created.out;
    // A flipped bit in the HMAC, the IV or the ciphertext: TPM_RC_INTEGRITY|P1.
    for (const at of [5, 36, 40, outPrivate.length - 1]) {
      const bad = Buffer.from(outPrivate);
      bad[at]! ^= 0x01;
      expect(await rcOf(tpm, 'Load', [parent], { inPrivate: bad, inPublic: outPublic })).toBe(
        0x1df,
      );
    }
    // Truncated after the HMAC.
    expect(
      await rcOf(tpm, 'Load', [parent], {
        inPrivate: outPrivate.subarray(0, 34),
        inPublic: outPublic,
      }),
    ).toBe(0x1df);
    // Another public area changes the Name the HMAC covers.
    const other = { ...outPublic, objectAttributes: outPublic.objectAttributes | 0x400 };
    expect(await rcOf(tpm, 'Load', [parent], { inPrivate: outPrivate, inPublic: other })).toBe(
      0x1df,
    );
    // An empty private: TPM_RC_SIZE|P1.
    expect(await rcOf(tpm, 'Load', [parent], { inPrivate: EMPTY, inPublic: outPublic })).toBe(
      0x1d5,
    );

    // The same template on another TPM makes another parent: the blob does not load there.
    const tpm2 = await newTpm();
    const parent2 = (await ok(tpm2, 'CreatePrimary', [OWNER], createParams(eccStorage())))
      .handles[0]!;
    expect(
      await rcOf(tpm2, 'Load', [parent2], { inPrivate: outPrivate, inPublic: outPublic }),
    ).toBe(0x1df);
  });

  it('checks the parent and the attributes against it', async () => {
    const tpm = await newTpm({ maxTransientObjects: 6 });
    const primary = (await ok(tpm, 'CreatePrimary', [OWNER], createParams(eccStorage())))
      .handles[0]!;
    // A signing key is no parent: TPM_RC_TYPE on handle 1.
    const signer = await ok(tpm, 'Create', [primary], createParams(templates.eccSigningKey()));
    const signerHandle = (
      await ok(tpm, 'Load', [primary], {
        inPrivate: signer.out.outPrivate,
        inPublic: signer.out.outPublic,
      })
    ).handles[0]!;
    expect(
      await rcOf(tpm, 'Create', [signerHandle], createParams(sealed(), Buffer.from('x'))),
    ).toBe(0x18a);
    expect(
      await rcOf(tpm, 'Load', [signerHandle], {
        inPrivate: signer.out.outPrivate,
        inPublic: signer.out.outPublic,
      }),
    ).toBe(0x18a);

    // Under a fixedTPM parent, fixedTPM and fixedParent must agree.
    expect(
      await rcOf(tpm, 'Create', [primary], createParams(sealed(0x00000042), Buffer.from('x'))),
    ).toBe(0x2c2);
    // A storage child that cannot move must use its parent's algorithms: TPM_RC_HASH / _SYMMETRIC.
    expect(
      await rcOf(tpm, 'Create', [primary], createParams({ ...eccStorage(), nameAlg: A.SHA384 })),
    ).toBe(0x2c3);
    const aes256 = eccStorage();
    (aes256.parameters as { symmetric: unknown }).symmetric = {
      algorithm: A.AES,
      keyBits: 256,
      mode: A.CFB,
    };
    expect(await rcOf(tpm, 'Create', [primary], createParams(aes256))).toBe(0x2d6);
    // Caller data for a TPM-generated object.
    expect(
      await rcOf(
        tpm,
        'Create',
        [primary],
        createParams(templates.eccSigningKey(), Buffer.from('d')),
      ),
    ).toBe(0x2c2);

    // A duplicable storage parent (fixedTPM and fixedParent clear) ...
    const dupParent = await ok(tpm, 'Create', [primary], createParams(eccStorage(0x00030060)));
    const dupHandle = (
      await ok(tpm, 'Load', [primary], {
        inPrivate: dupParent.out.outPrivate,
        inPublic: dupParent.out.outPublic,
      })
    ).handles[0]!;
    // ... cannot have a fixedTPM child (Part 1 §27.2.2): 0x2C2.
    expect(
      await rcOf(tpm, 'Create', [dupHandle], createParams(sealed(0x00000052), Buffer.from('x'))),
    ).toBe(0x2c2);
    const child = await ok(
      tpm,
      'Create',
      [dupHandle],
      createParams(sealed(0x00000050), Buffer.from('x')),
    );
    await ok(tpm, 'Load', [dupHandle], {
      inPrivate: child.out.outPrivate,
      inPublic: child.out.outPublic,
    });
  });

  it('needs a free object slot, and a scratch slot for Create', async () => {
    const tpm = await newTpm();
    const handles: number[] = [];
    for (let i = 0; i < 3; i++) {
      handles.push(
        (await ok(tpm, 'CreatePrimary', [OWNER], createParams(eccStorage()))).handles[0]!,
      );
    }
    expect(await rcOf(tpm, 'CreatePrimary', [OWNER], createParams(eccStorage()))).toBe(0x902);
    expect(await rcOf(tpm, 'Create', [handles[0]!], createParams(sealed(), Buffer.from('x')))).toBe(
      0x902,
    );
    await ok(tpm, 'FlushContext', [], { flushHandle: handles[2]! });
    const created = await ok(
      tpm,
      'Create',
      [handles[0]!],
      createParams(sealed(), Buffer.from('x')),
    );
    await ok(tpm, 'Load', [handles[0]!], {
      inPrivate: created.out.outPrivate,
      inPublic: created.out.outPublic,
    });
    expect(
      await rcOf(tpm, 'Load', [handles[0]!], {
        inPrivate: created.out.outPrivate,
        inPublic: created.out.outPublic,
      }),
    ).toBe(0x902);
  });

  it('keeps keyed-hash keys within the hash block and AES keys at their size', async () => {
    const tpm = await newTpm();
    const primary = (await ok(tpm, 'CreatePrimary', [OWNER], createParams(eccStorage())))
      .handles[0]!;
    const hmacKey: Public = {
      ...sealed(0x00040052),
      parameters: { scheme: { scheme: A.HMAC, hashAlg: A.SHA256 } },
    };
    expect(await rcOf(tpm, 'Create', [primary], createParams(hmacKey, Buffer.alloc(65, 7)))).toBe(
      0x1d5,
    );
    await ok(tpm, 'Create', [primary], createParams(hmacKey, Buffer.alloc(64, 7)));
    const aes: Public = {
      type: A.SYMCIPHER,
      nameAlg: A.SHA256,
      objectAttributes: 0x00020052,
      authPolicy: EMPTY,
      parameters: { sym: AES128CFB },
      unique: EMPTY,
    };
    expect(await rcOf(tpm, 'Create', [primary], createParams(aes, Buffer.alloc(17, 1)))).toBe(
      0x1c7,
    );
    const made = await ok(tpm, 'Create', [primary], createParams(aes, Buffer.alloc(16, 1)));
    expect(made.out.outPublic.unique).toHaveLength(32);
    // TPM-generated symmetric keys need sensitiveDataOrigin and no data.
    await ok(tpm, 'Create', [primary], createParams({ ...aes, objectAttributes: 0x00020072 }));
  });
});

// ---- LoadExternal --------------------------------------------------------------------------

describe('LoadExternal', () => {
  it('loads public keys and, in the NULL hierarchy, keys with a private part', async () => {
    const tpm = await newTpm();
    const ecdh = createECDH('prime256v1');
    const pubPoint = ecdh.generateKeys();
    const pubOnly: Public = {
      ...templates.eccSigningKey({ attributes: 0x00040040 }),
      unique: { x: pubPoint.subarray(1, 33), y: pubPoint.subarray(33) },
    };
    const a = await ok(tpm, 'LoadExternal', [], {
      inPrivate: undefined,
      inPublic: pubOnly,
      hierarchy: OWNER,
    });
    expect(a.out.name).toEqual(nameOf(pubOnly));
    const rp = await ok(tpm, 'ReadPublic', [a.handles[0]!], {});
    expect(rp.out.qualifiedName).toEqual(a.out.name);
    await ok(tpm, 'FlushContext', [], { flushHandle: a.handles[0]! });

    // A point off the curve: TPM_RC_ECC_POINT|P2.
    const offCurve = {
      ...pubOnly,
      unique: { x: pubPoint.subarray(1, 33), y: Buffer.alloc(32, 1) },
    };
    expect(
      await rcOf(tpm, 'LoadExternal', [], {
        inPrivate: undefined,
        inPublic: offCurve,
        hierarchy: OWNER,
      }),
    ).toBe(0x2e7);

    const key = Buffer.alloc(32, 0x42);
    const seed = Buffer.alloc(32, 0x24);
    const hmacPub: Public = {
      type: A.KEYEDHASH,
      nameAlg: A.SHA256,
      objectAttributes: 0x00040040,
      authPolicy: EMPTY,
      parameters: { scheme: { scheme: A.HMAC, hashAlg: A.SHA256 } },
      unique: sha256(seed, key),
    };
    const sens = {
      sensitiveType: A.KEYEDHASH,
      authValue: Buffer.from('k'),
      seedValue: seed,
      sensitive: key,
    };
    const b = await ok(tpm, 'LoadExternal', [], {
      inPrivate: sens,
      inPublic: hmacPub,
      hierarchy: TPM_RH.NULL,
    });
    expect(tpm.transientObject(b.handles[0]!)!.sensitive!.sensitive).toEqual(key);
    await ok(tpm, 'FlushContext', [], { flushHandle: b.handles[0]! });
    // Private parts only in the NULL hierarchy, and never fixedTPM / fixedParent / restricted.
    expect(
      await rcOf(tpm, 'LoadExternal', [], { inPrivate: sens, inPublic: hmacPub, hierarchy: OWNER }),
    ).toBe(0x3c5);
    const fixed = { ...hmacPub, objectAttributes: 0x00040052 };
    expect(
      await rcOf(tpm, 'LoadExternal', [], {
        inPrivate: sens,
        inPublic: fixed,
        hierarchy: TPM_RH.NULL,
      }),
    ).toBe(0x2c2);
    // A sensitive area that does not belong to the public one: TPM_RC_BINDING.
    const wrongKey = { ...sens, sensitive: Buffer.alloc(32, 0x43) };
    expect(
      await rcOf(tpm, 'LoadExternal', [], {
        inPrivate: wrongKey,
        inPublic: hmacPub,
        hierarchy: TPM_RH.NULL,
      }),
    ).toBe(0x0a5);
    // Not a hierarchy: TPM_RC_VALUE|P3.
    expect(
      await rcOf(tpm, 'LoadExternal', [], {
        inPrivate: undefined,
        inPublic: pubOnly,
        hierarchy: 0x40000002,
      }),
    ).toBe(0x3c4);
  });
});

// ---- HierarchyChangeAuth -------------------------------------------------------------------

describe('HierarchyChangeAuth', () => {
  it('changes and persists hierarchy and lockout auths', async () => {
    let saved: Uint8Array | undefined;
    const tpm = await newTpm({
      persist: async (s) => {
        saved = s;
      },
    });
    saved = undefined;
    await ok(tpm, 'HierarchyChangeAuth', [OWNER], { newAuth: Buffer.from('ownerpw') });
    expect(saved).toBeDefined();
    expect(decodeState(saved!).owner.authValue.toString()).toBe('ownerpw');
    // The old (empty) password no longer works; the new one does (trailing zeros ignored).
    expect(await rcOf(tpm, 'CreatePrimary', [OWNER], createParams(eccStorage()))).toBe(0x9a2);
    await ok(tpm, 'CreatePrimary', [OWNER], createParams(eccStorage()), [
      Buffer.from('ownerpw\0\0'),
    ]);

    await ok(tpm, 'HierarchyChangeAuth', [TPM_RH.LOCKOUT], { newAuth: Buffer.from('lock') });
    expect(decodeState(saved!).lockoutAuth.toString()).toBe('lock');
    // Too long for the TPM's context hash (SHA-256): TPM_RC_SIZE|P1.
    expect(
      await rcOf(tpm, 'HierarchyChangeAuth', [TPM_RH.ENDORSEMENT], {
        newAuth: Buffer.alloc(33, 1),
      }),
    ).toBe(0x1d5);
    await ok(tpm, 'HierarchyChangeAuth', [OWNER], { newAuth: EMPTY }, [Buffer.from('ownerpw')]);
    expect(decodeState(saved!).owner.authValue.length).toBe(0);
  });
});
