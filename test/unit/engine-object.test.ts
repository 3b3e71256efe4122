/**
 * Object commands driven through real command bytes: CreatePrimary, Create, Load, LoadExternal,
 * ReadPublic and HierarchyChangeAuth (TPM 2.0 Part 3 §12.1-12.4, §24.1, §24.8).
 */
import { createECDH, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { _dispatchInternals } from '../../tpm-sim/engine/dispatch.ts';
import { decodeState } from '../../tpm-sim/engine/persistent-state.ts';
import { Tpm } from '../../tpm-sim/engine/tpm.ts';
import { marshal, unmarshal } from '../../tpm-sim/wire/codec.ts';
import {
  COMMANDS,
  type CommandName,
  type ParamsOf,
  type ResponseOf,
} from '../../tpm-sim/wire/commands.ts';
import { TPM_ALG, TPM_RH, TPM_ST } from '../../tpm-sim/wire/constants.ts';
import { buildCommand, readResponse } from '../../tpm-sim/wire/frame.ts';
import {
  type EccPoint,
  type Public,
  SCHEME_NULL,
  SYM_NULL,
  TPMS_CREATION_DATA,
  TPMT_PUBLIC,
} from '../../tpm-sim/wire/structures.ts';

// ---- helpers -------------------------------------------------------------------------------

const EMPTY = Buffer.alloc(0);
const A = TPM_ALG;

interface Result<N extends CommandName> {
  rc: number;
  handles: number[];
  response?: ResponseOf<N>;
}

/** Sends one command with a password session (empty password unless given) per auth handle. */
async function run<N extends CommandName>(
  tpm: Tpm,
  name: N,
  handles: number[],
  params: ParamsOf<N>,
  passwords?: Buffer[],
): Promise<Result<N>> {
  const spec = COMMANDS[name];
  const authCount = spec.handles.filter((h) => h.auth !== undefined).length;
  const pws = passwords ?? new Array<Buffer>(authCount).fill(EMPTY);
  const sessions = pws.map((hmac) => ({
    sessionHandle: TPM_RH.PW,
    nonce: EMPTY,
    attributes: 1,
    hmac,
  }));
  const cmd = buildCommand(
    spec.cc,
    handles,
    sessions,
    marshal(spec.params as never, params as never),
  );
  _dispatchInternals.lastInternalError = undefined;
  const rsp = await tpm.execute(cmd);
  const rc = Buffer.from(rsp).readUInt32BE(6);
  if (rc !== 0) {
    expect(_dispatchInternals.lastInternalError).toBeUndefined();
    return { rc, handles: [] };
  }
  const frame = readResponse(rsp, spec.responseHandles.length, sessions.length);
  return {
    rc,
    handles: frame.handles,
    response: unmarshal(spec.response as never, frame.params) as ResponseOf<N>,
  };
}

async function ok<N extends CommandName>(
  tpm: Tpm,
  name: N,
  handles: number[],
  params: ParamsOf<N>,
  passwords?: Buffer[],
): Promise<{ handles: number[]; response: ResponseOf<N> }> {
  const r = await run(tpm, name, handles, params, passwords);
  expect(r.rc.toString(16)).toBe('0');
  return { handles: r.handles, response: r.response! };
}

async function rcOf<N extends CommandName>(
  tpm: Tpm,
  name: N,
  handles: number[],
  params: ParamsOf<N>,
  passwords?: Buffer[],
): Promise<number> {
  return (await run(tpm, name, handles, params, passwords)).rc;
}

const AES128CFB = { algorithm: A.AES, keyBits: 128, mode: A.CFB };
const EMPTY_POINT: EccPoint = { x: EMPTY, y: EMPTY };

function eccStorage(attrs = 0x00030072, unique: EccPoint = EMPTY_POINT): Public {
  return {
    type: A.ECC,
    nameAlg: A.SHA256,
    objectAttributes: attrs,
    authPolicy: EMPTY,
    parameters: { symmetric: AES128CFB, scheme: SCHEME_NULL, curveID: 3, kdf: SCHEME_NULL },
    unique,
  };
}

function rsaStorage(attrs = 0x00030072): Public {
  return {
    type: A.RSA,
    nameAlg: A.SHA256,
    objectAttributes: attrs,
    authPolicy: EMPTY,
    parameters: { symmetric: AES128CFB, scheme: SCHEME_NULL, keyBits: 2048, exponent: 0 },
    unique: EMPTY,
  };
}

function eccSigner(attrs = 0x00040072): Public {
  return {
    type: A.ECC,
    nameAlg: A.SHA256,
    objectAttributes: attrs,
    authPolicy: EMPTY,
    parameters: {
      symmetric: SYM_NULL,
      scheme: { scheme: A.ECDSA, hashAlg: A.SHA256 },
      curveID: 3,
      kdf: SCHEME_NULL,
    },
    unique: EMPTY_POINT,
  };
}

function rsaDecrypter(keyBits = 2048): Public {
  return {
    type: A.RSA,
    nameAlg: A.SHA256,
    objectAttributes: 0x00020072,
    authPolicy: EMPTY,
    parameters: {
      symmetric: SYM_NULL,
      scheme: { scheme: A.OAEP, hashAlg: A.SHA256 },
      keyBits,
      exponent: 0,
    },
    unique: EMPTY,
  };
}

/** A sealed data object: fixedTPM|fixedParent|userWithAuth, no sensitiveDataOrigin. */
function sealed(attrs = 0x00000052): Public {
  return {
    type: A.KEYEDHASH,
    nameAlg: A.SHA256,
    objectAttributes: attrs,
    authPolicy: EMPTY,
    parameters: { scheme: SCHEME_NULL },
    unique: EMPTY,
  };
}

function createParams(inPublic: Public, data: Buffer = EMPTY, userAuth: Buffer = EMPTY) {
  return { inSensitive: { userAuth, data }, inPublic, outsideInfo: EMPTY, creationPCR: [] };
}

const sha256 = (...parts: Buffer[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

function nameOf(pub: Public): Buffer {
  return Buffer.concat([Buffer.from([0x00, 0x0b]), sha256(marshal(TPMT_PUBLIC, pub))]);
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0, 0);
  return b;
}

async function newTpm(options: ConstructorParameters<typeof Tpm>[0] = {}): Promise<Tpm> {
  const tpm = new Tpm(options);
  await tpm.powerOn();
  return tpm;
}

const OWNER = TPM_RH.OWNER;

// ---- CreatePrimary -------------------------------------------------------------------------

describe('CreatePrimary', () => {
  it('derives the same ECC key from the same template, and a different one otherwise', async () => {
    const tpm = await newTpm({ maxTransientObjects: 8 });
    const a = await ok(tpm, 'CreatePrimary', [OWNER], createParams(eccStorage()));
    const b = await ok(tpm, 'CreatePrimary', [OWNER], createParams(eccStorage()));
    expect(a.handles[0]).not.toBe(b.handles[0]);
    expect(b.response.name).toEqual(a.response.name);
    expect(b.response.outPublic).toEqual(a.response.outPublic);
    // userAuth does not enter the derivation.
    const c = await ok(
      tpm,
      'CreatePrimary',
      [OWNER],
      createParams(eccStorage(), EMPTY, Buffer.from('pw')),
    );
    expect(c.response.name).toEqual(a.response.name);
    // A different unique, or different sensitive.data, is a different key.
    const unique = { x: Buffer.from('entropy'), y: EMPTY };
    const d = await ok(tpm, 'CreatePrimary', [OWNER], createParams(eccStorage(0x00030072, unique)));
    const e = await ok(
      tpm,
      'CreatePrimary',
      [OWNER],
      createParams(eccStorage(), Buffer.from('salt')),
    );
    const ux = (r: typeof a) => (r.response.outPublic.unique as EccPoint).x.toString('hex');
    expect(new Set([ux(a), ux(d), ux(e)]).size).toBe(3);
    // Another hierarchy has another seed.
    const f = await ok(tpm, 'CreatePrimary', [TPM_RH.ENDORSEMENT], createParams(eccStorage()));
    expect(ux(f)).not.toBe(ux(a));
    // The returned Name is nameAlg || H(outPublic), and the key is on the curve with d.
    expect(a.response.name).toEqual(nameOf(a.response.outPublic));
    const obj = tpm.transientObject(a.handles[0]!)!;
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(obj.sensitive!.sensitive);
    const point = a.response.outPublic.unique as EccPoint;
    expect(ecdh.getPublicKey().subarray(1, 33)).toEqual(point.x);
    expect(obj.sensitive!.seedValue.length).toBe(32);
  });

  it('derives the same RSA key from the same template', async () => {
    const tpm = await newTpm();
    const a = await ok(tpm, 'CreatePrimary', [OWNER], createParams(rsaStorage()));
    const b = await ok(tpm, 'CreatePrimary', [OWNER], createParams(rsaStorage()));
    expect(b.response.name).toEqual(a.response.name);
    const n = a.response.outPublic.unique as Buffer;
    expect(n.length).toBe(256);
    const p = tpm.transientObject(a.handles[0]!)!.sensitive!.sensitive;
    expect(BigInt(`0x${n.toString('hex')}`) % BigInt(`0x${p.toString('hex')}`)).toBe(0n);
    const c = await ok(
      tpm,
      'CreatePrimary',
      [OWNER],
      createParams(rsaStorage(), Buffer.from('other')),
    );
    expect(c.response.outPublic.unique).not.toEqual(n);
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
    expect(b.response.name).toEqual(a.response.name);
    const n2 = await ok(tpm2, 'CreatePrimary', [TPM_RH.NULL], createParams(eccStorage()));
    expect(n2.response.name).not.toEqual(n1.response.name);
    // NULL-hierarchy objects get NULL creation tickets.
    expect(n2.response.creationTicket).toEqual({
      tag: TPM_ST.CREATION,
      hierarchy: TPM_RH.NULL,
      digest: EMPTY,
    });
    // A child made before the restart still loads under the re-created primary.
    const loaded = await ok(tpm2, 'Load', [b.handles[0]!], {
      inPrivate: child.response.outPrivate,
      inPublic: child.response.outPublic,
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
    const mineBytes = marshal(TPMT_PUBLIC, mine.response.outPublic);
    const theirBytes = Buffer.from(t.outPublic_TPMT_PUBLIC, 'hex');
    expect(mineBytes.length).toBe(theirBytes.length);
    expect(mineBytes.subarray(0, 22)).toEqual(theirBytes.subarray(0, 22));
    const mp = mine.response.outPublic.unique as EccPoint;
    expect([mp.x.length, mp.y.length]).toEqual([32, 32]);
    // Creation data carries nothing key-specific: byte-identical, and so is its hash.
    expect(marshal(TPMS_CREATION_DATA, mine.response.creationData)).toEqual(
      marshal(TPMS_CREATION_DATA, theirs.creationData),
    );
    expect(mine.response.creationHash).toEqual(theirs.creationHash);
    expect(mine.response.creationHash).toEqual(
      sha256(marshal(TPMS_CREATION_DATA, theirs.creationData)),
    );
    expect(mine.response.creationTicket.tag).toBe(theirs.creationTicket.tag);
    expect(mine.response.creationTicket.hierarchy).toBe(theirs.creationTicket.hierarchy);
    expect(mine.response.name.length).toBe(theirs.name.length);
    expect(mine.response.name).toEqual(nameOf(mine.response.outPublic));
    // swtpm's own public area gives swtpm's Name by the same formula.
    expect(nameOf(theirs.outPublic)).toEqual(Buffer.from(t.name, 'hex'));

    // ReadPublic: the QN of a primary is H(hierarchy handle || Name).
    const rp = await ok(tpm, 'ReadPublic', [mine.handles[0]!], {});
    expect(rp.response.outPublic).toEqual(mine.response.outPublic);
    expect(rp.response.name).toEqual(mine.response.name);
    expect(rp.response.qualifiedName).toEqual(
      Buffer.concat([Buffer.from([0, 0x0b]), sha256(u32(OWNER), mine.response.name)]),
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
    expect(r.response.creationData.pcrDigest).toEqual(sha256(Buffer.alloc(32), Buffer.alloc(32)));
    expect(r.response.creationData.locality).toBe(1);
    expect(r.response.creationData.pcrSelect).toEqual(params.creationPCR);
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
    const restrictedSigner = eccSigner(0x00050072);
    (restrictedSigner.parameters as { scheme: unknown }).scheme = SCHEME_NULL;
    expect(await cp(restrictedSigner)).toBe(0x2d2);
    // A signing key with a symmetric algorithm.
    const signerWithSym = eccSigner();
    (signerWithSym.parameters as { symmetric: unknown }).symmetric = AES128CFB;
    expect(await cp(signerWithSym)).toBe(0x2d6);
    // An asymmetric key without sensitiveDataOrigin (caller-supplied private key).
    expect(await cp(eccSigner(0x00040052), Buffer.from('d'))).toBe(0x2c2);
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
      [eccSigner(), EMPTY],
      [rsaDecrypter(2048), EMPTY],
      [sealed(), Buffer.from('agent-secret-123')],
    ];
    for (const [template, data] of cases) {
      const created = await ok(
        tpm,
        'Create',
        [parent],
        createParams(template, data, Buffer.from('childpw')),
      );
      const { outPublic, outPrivate, creationData } = created.response;
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
      expect(loaded.response.name).toEqual(nameOf(outPublic));
      const obj = tpm.transientObject(loaded.handles[0]!)!;
      expect(obj.sensitive!.authValue.toString()).toBe('childpw');
      // Non-parent asymmetric keys keep no seedValue; symmetric objects do.
      expect(obj.sensitive!.seedValue.length).toBe(template.type === A.KEYEDHASH ? 32 : 0);
      if (template.type === A.KEYEDHASH) {
        expect(obj.sensitive!.sensitive).toEqual(data);
        expect(outPublic.unique).toEqual(sha256(obj.sensitive!.seedValue, data));
      }
      const rp = await ok(tpm, 'ReadPublic', [loaded.handles[0]!], {});
      expect(rp.response.qualifiedName).toEqual(
        Buffer.concat([
          Buffer.from([0, 0x0b]),
          sha256(parentObj.qualifiedName, loaded.response.name),
        ]),
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
    const { outPrivate, outPublic } = created.response;
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
    const signer = await ok(tpm, 'Create', [primary], createParams(eccSigner()));
    const signerHandle = (
      await ok(tpm, 'Load', [primary], {
        inPrivate: signer.response.outPrivate,
        inPublic: signer.response.outPublic,
      })
    ).handles[0]!;
    expect(
      await rcOf(tpm, 'Create', [signerHandle], createParams(sealed(), Buffer.from('x'))),
    ).toBe(0x18a);
    expect(
      await rcOf(tpm, 'Load', [signerHandle], {
        inPrivate: signer.response.outPrivate,
        inPublic: signer.response.outPublic,
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
    expect(await rcOf(tpm, 'Create', [primary], createParams(eccSigner(), Buffer.from('d')))).toBe(
      0x2c2,
    );

    // A duplicable storage parent (fixedTPM and fixedParent clear) ...
    const dupParent = await ok(tpm, 'Create', [primary], createParams(eccStorage(0x00030060)));
    const dupHandle = (
      await ok(tpm, 'Load', [primary], {
        inPrivate: dupParent.response.outPrivate,
        inPublic: dupParent.response.outPublic,
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
      inPrivate: child.response.outPrivate,
      inPublic: child.response.outPublic,
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
      inPrivate: created.response.outPrivate,
      inPublic: created.response.outPublic,
    });
    expect(
      await rcOf(tpm, 'Load', [handles[0]!], {
        inPrivate: created.response.outPrivate,
        inPublic: created.response.outPublic,
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
    expect(made.response.outPublic.unique).toHaveLength(32);
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
      ...eccSigner(0x00040040),
      unique: { x: pubPoint.subarray(1, 33), y: pubPoint.subarray(33) },
    };
    const a = await ok(tpm, 'LoadExternal', [], {
      inPrivate: undefined,
      inPublic: pubOnly,
      hierarchy: OWNER,
    });
    expect(a.response.name).toEqual(nameOf(pubOnly));
    const rp = await ok(tpm, 'ReadPublic', [a.handles[0]!], {});
    expect(rp.response.qualifiedName).toEqual(a.response.name);
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
