/**
 * The client test suite: one set of behaviours, run against every TPM the client can drive (the
 * built-in simulator in-process, prtlab's TCP server in both framings, and Debian's swtpm). The
 * same assertions must hold on each: that is what "the same client drives any TPM" means.
 */
import {
  constants as C,
  createHash,
  createHmac,
  createPublicKey,
  publicEncrypt,
  randomBytes,
  verify,
} from 'node:crypto';
import { p256 } from '@noble/curves/nist.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadedKey, PolicySession } from '../../tpm-sim/client/index.ts';
import {
  passwordAuth,
  pcrSelection,
  TPM_ALG,
  TPM_CAP,
  TPM_GENERATED_VALUE,
  TPM_RH,
  TPMA_NV,
  TPMA_OBJECT,
  type TpmClient,
  TpmResponseError,
  templates,
} from '../../tpm-sim/client/index.ts';
import { marshal } from '../../tpm-sim/wire/codec.ts';
import { COMMANDS, type CommandName, type ParamsOf } from '../../tpm-sim/wire/commands.ts';
import { TPM_PT, TPM_ST } from '../../tpm-sim/wire/constants.ts';
import { buildCommand } from '../../tpm-sim/wire/frame.ts';
import {
  type CertifyInfo,
  type EccPoint,
  type QuoteInfo,
  type Signature,
  type SignatureEcc,
  type SignatureRsa,
  TPMS_NV_PUBLIC,
  TPMT_PUBLIC,
} from '../../tpm-sim/wire/structures.ts';

export interface ClientTarget {
  client: TpmClient;
  close(): Promise<void>;
}

const msg = Buffer.from('prtlab: the same client drives any TPM');
const digest = createHash('sha256').update(msg).digest();

function eccPublicKey(pub: LoadedKey['publicArea']) {
  const u = pub.unique as EccPoint;
  return createPublicKey({
    key: { kty: 'EC', crv: 'P-256', x: u.x.toString('base64url'), y: u.y.toString('base64url') },
    format: 'jwk',
  });
}

function rsaPublicKey(pub: LoadedKey['publicArea']) {
  const n = pub.unique as Buffer;
  return createPublicKey({
    key: { kty: 'RSA', n: n.toString('base64url'), e: 'AQAB' },
    format: 'jwk',
  });
}

function sha(alg: 'sha1' | 'sha256', ...parts: Buffer[]): Buffer {
  const h = createHash(alg);
  for (const p of parts) h.update(p);
  return h.digest();
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0, 0);
  return b;
}

/** The Name of an NV index: nameAlg || SHA-256(TPMS_NV_PUBLIC) (Part 1 §16). */
function nvNameOf(pub: Parameters<typeof TPMS_NV_PUBLIC.write>[1]): Buffer {
  return Buffer.concat([Buffer.from([0, 0x0b]), sha('sha256', marshal(TPMS_NV_PUBLIC, pub))]);
}

/** A command from the command table with one empty password session per auth handle. */
function commandBytes<N extends CommandName>(
  name: N,
  handles: number[],
  params: ParamsOf<N>,
): Buffer {
  const spec = COMMANDS[name];
  const auths = spec.handles.filter((h) => h.auth !== undefined).length;
  const sessions = Array.from({ length: auths }, () => ({
    sessionHandle: TPM_RH.PW,
    nonce: Buffer.alloc(0),
    attributes: 1,
    hmac: Buffer.alloc(0),
  }));
  return buildCommand(spec.cc, handles, sessions, marshal(spec.params as never, params as never));
}

/** `bytes` with commandSize fixed up after an edit. */
function sized(bytes: Buffer): Buffer {
  bytes.writeUInt32BE(bytes.length, 2);
  return bytes;
}

/** Verifies an ECDSA P-256 signature over `data` with the key's public point. */
function ecdsaVerifies(pub: LoadedKey['publicArea'], data: Buffer, sig: Signature): boolean {
  const { signatureR, signatureS } = sig.signature as SignatureEcc;
  return verify(
    'sha256',
    data,
    { key: eccPublicKey(pub), dsaEncoding: 'ieee-p1363' },
    Buffer.concat([signatureR, signatureS]),
  );
}

async function rc(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (err) {
    if (err instanceof TpmResponseError) return err.rc;
    throw err;
  }
  throw new Error('expected the TPM to refuse');
}

export function defineClientSuite(label: string, open: () => Promise<ClientTarget>): void {
  describe(`TPM client against ${label}`, () => {
    let target: ClientTarget;
    let tpm: TpmClient;
    let eccPrimary: LoadedKey;
    let rsaPrimary: LoadedKey;

    beforeAll(async () => {
      target = await open();
      tpm = target.client;
      eccPrimary = await tpm.createPrimary({ template: templates.eccStoragePrimary() });
      rsaPrimary = await tpm.createPrimary({ template: templates.rsaStoragePrimary() });
    }, 120_000);

    afterAll(async () => {
      for (const h of [eccPrimary, rsaPrimary]) if (h) await tpm.flushContext(h).catch(() => {});
      await target?.close();
    });

    /** Loads a child, runs `fn`, and always flushes it: the TPM has 3 object slots. */
    async function withKey<T>(
      parent: LoadedKey,
      template: LoadedKey['publicArea'],
      fn: (k: LoadedKey) => Promise<T>,
      userAuth?: Buffer,
    ): Promise<T> {
      const blob = await tpm.create(parent, { template, ...(userAuth ? { userAuth } : {}) });
      const key = await tpm.load(parent, blob, userAuth);
      try {
        return await fn(key);
      } finally {
        await tpm.flushContext(key);
      }
    }

    it('GetRandom gives the bytes asked for, fresh each time', async () => {
      const a = await tpm.getRandom(32);
      const b = await tpm.getRandom(32);
      expect(a.length).toBe(32);
      expect(a.equals(b)).toBe(false);
    });

    it('GetCapability reports at least 3 transient slots and the algorithms the agent needs', async () => {
      const props = await tpm.getCapability(TPM_CAP.TPM_PROPERTIES, TPM_PT.HR_TRANSIENT_MIN, 1);
      const [slots] = props.data.data as { property: number; value: number }[];
      expect(slots?.property).toBe(TPM_PT.HR_TRANSIENT_MIN);
      expect(slots?.value).toBeGreaterThanOrEqual(3);
      const algs = (await tpm.getCapability(TPM_CAP.ALGS, 0, 128)).data.data as { alg: number }[];
      for (const a of [
        TPM_ALG.RSA,
        TPM_ALG.ECC,
        TPM_ALG.SHA256,
        TPM_ALG.OAEP,
        TPM_ALG.ECDSA,
        TPM_ALG.KEYEDHASH,
      ]) {
        expect(algs.map((x) => x.alg)).toContain(a);
      }
    });

    it('CreatePrimary with the same template gives the same key (ECC and RSA)', async () => {
      const again = await tpm.createPrimary({ template: templates.eccStoragePrimary() });
      expect(again.name.equals(eccPrimary.name)).toBe(true);
      await tpm.flushContext(again);
      const rsaAgain = await tpm.createPrimary({ template: templates.rsaStoragePrimary() });
      expect(rsaAgain.name.equals(rsaPrimary.name)).toBe(true);
      await tpm.flushContext(rsaAgain);
      const other = await tpm.createPrimary({
        template: templates.eccStoragePrimary(),
        data: Buffer.from('another'),
      });
      expect(other.name.equals(eccPrimary.name)).toBe(false);
      await tpm.flushContext(other);
    });

    it('ECDSA P-256: the TPM signature verifies with node:crypto and @noble/curves', async () => {
      await withKey(eccPrimary, templates.eccSigningKey(), async (key) => {
        const sig = await tpm.sign(key, digest);
        expect(sig.sigAlg).toBe(TPM_ALG.ECDSA);
        const { signatureR, signatureS } = sig.signature as SignatureEcc;
        const rs = Buffer.concat([signatureR, signatureS]);
        expect(
          verify(
            'sha256',
            msg,
            { key: eccPublicKey(key.publicArea), dsaEncoding: 'ieee-p1363' },
            rs,
          ),
        ).toBe(true);
        const u = key.publicArea.unique as EccPoint;
        const point = Buffer.concat([Buffer.of(4), u.x, u.y]);
        expect(p256.verify(rs, digest, point, { prehash: false, lowS: false })).toBe(true);
        const tampered = Buffer.from(digest);
        tampered[0]! ^= 1;
        expect(p256.verify(rs, tampered, point, { prehash: false, lowS: false })).toBe(false);
        const ticket = await tpm.verifySignature(key, digest, sig);
        expect(ticket.tag).toBe(TPM_ST.VERIFIED);
        expect(await rc(tpm.verifySignature(key, tampered, sig))).toBe(0x2db);
      });
    });

    it('RSASSA and RSAPSS signatures verify with node:crypto', async () => {
      await withKey(rsaPrimary, templates.rsaSigningKey({ scheme: TPM_ALG.NULL }), async (key) => {
        const pub = rsaPublicKey(key.publicArea);
        const ssa = await tpm.sign(key, digest, {
          scheme: { scheme: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256 },
        });
        expect(verify('sha256', msg, pub, (ssa.signature as SignatureRsa).sig)).toBe(true);
        const pss = await tpm.sign(key, digest, {
          scheme: { scheme: TPM_ALG.RSAPSS, hashAlg: TPM_ALG.SHA256 },
        });
        const pssSig = (pss.signature as SignatureRsa).sig;
        expect(
          verify(
            'sha256',
            msg,
            { key: pub, padding: C.RSA_PKCS1_PSS_PADDING, saltLength: C.RSA_PSS_SALTLEN_AUTO },
            pssSig,
          ),
        ).toBe(true);
        // A key with no scheme of its own needs one per signature (Part 3 §20.2).
        expect(await rc(tpm.sign(key, digest))).toBe(0x2d2);
      });
    });

    it('RSA-OAEP both ways with node:crypto, SHA-1 and SHA-256, with a label', async () => {
      await withKey(rsaPrimary, templates.rsaDecryptKey({ scheme: TPM_ALG.NULL }), async (key) => {
        const pub = rsaPublicKey(key.publicArea);
        const secret = randomBytes(32);
        for (const [hashAlg, oaepHash] of [
          [TPM_ALG.SHA1, 'sha1'],
          [TPM_ALG.SHA256, 'sha256'],
        ] as const) {
          const scheme = { scheme: TPM_ALG.OAEP, hashAlg };
          // A label must end in a zero octet (Part 3 §14.2; libtpms refuses others with TPM_RC_VALUE).
          const label = Buffer.from('device\0');
          const ct = publicEncrypt(
            { key: pub, padding: C.RSA_PKCS1_OAEP_PADDING, oaepHash, oaepLabel: label },
            secret,
          );
          expect((await tpm.rsaDecrypt(key, ct, { scheme, label })).equals(secret)).toBe(true);
          const tpmCt = await tpm.rsaEncrypt(key, secret, { scheme, label });
          expect((await tpm.rsaDecrypt(key, tpmCt, { scheme, label })).equals(secret)).toBe(true);
          expect(await rc(tpm.rsaDecrypt(key, ct, { scheme, label: Buffer.from('device') }))).toBe(
            0x3c4,
          );
        }
      });
    });

    it('HMAC with a caller-supplied key equals node:crypto HMAC', async () => {
      const secret = randomBytes(32);
      const blob = await tpm.create(eccPrimary, {
        template: templates.hmacKey({ callerData: true }),
        data: secret,
      });
      const key = await tpm.load(eccPrimary, blob);
      try {
        const mac = await tpm.hmac(key, msg);
        expect(mac.equals(createHmac('sha256', secret).update(msg).digest())).toBe(true);
      } finally {
        await tpm.flushContext(key);
      }
    });

    it('Hash returns the SHA-256 digest and an owner ticket', async () => {
      const { digest: d, ticket } = await tpm.hash(msg);
      expect(d.equals(digest)).toBe(true);
      expect(ticket.tag).toBe(TPM_ST.HASHCHECK);
      expect(ticket.hierarchy).toBe(TPM_RH.OWNER);
    });

    it('HMAC sessions: commands are authorized and response HMACs verify; a wrong password is refused', async () => {
      const userAuth = Buffer.from('key password');
      const template = templates.eccSigningKey({
        attributes:
          TPMA_OBJECT.fixedTPM |
          TPMA_OBJECT.fixedParent |
          TPMA_OBJECT.sensitiveDataOrigin |
          TPMA_OBJECT.userWithAuth |
          TPMA_OBJECT.noDA |
          TPMA_OBJECT.sign,
      });
      await withKey(
        eccPrimary,
        template,
        async (key) => {
          const session = await tpm.startHmacSession();
          try {
            for (let i = 0; i < 3; i++) {
              const sig = await tpm.sign(key, digest, {}, { auth: session });
              const { signatureR, signatureS } = sig.signature as SignatureEcc;
              expect(
                verify(
                  'sha256',
                  msg,
                  { key: eccPublicKey(key.publicArea), dsaEncoding: 'ieee-p1363' },
                  Buffer.concat([signatureR, signatureS]),
                ),
              ).toBe(true);
            }
            // noDA key: a bad authorization is TPM_RC_BAD_AUTH for session 1 (0x9A2).
            expect(
              await rc(
                tpm.sign(
                  { ...key, authValue: Buffer.from('wrong') },
                  digest,
                  {},
                  { auth: session },
                ),
              ),
            ).toBe(0x9a2);
            // The nonces did not roll on the error: the session still works.
            await tpm.sign(key, digest, {}, { auth: session });
          } finally {
            await tpm.flushContext(session.handle);
          }
          expect(await rc(tpm.sign({ ...key, authValue: Buffer.from('wrong') }, digest))).toBe(
            0x9a2,
          );
        },
        userAuth,
      );
    });

    it('HierarchyChangeAuth under an HMAC session: the response HMAC uses the new owner auth', async () => {
      const ownerpw = Buffer.from('owner password');
      const session = await tpm.startHmacSession();
      try {
        await tpm.changeHierarchyAuth(TPM_RH.OWNER, Buffer.alloc(0), ownerpw, { auth: session });
        // The old (empty) owner auth no longer works; owner hierarchy auth is not DA-protected.
        expect(await rc(tpm.createPrimary({ template: templates.eccStoragePrimary() }))).toBe(
          0x9a2,
        );
        await tpm.changeHierarchyAuth(TPM_RH.OWNER, ownerpw, Buffer.alloc(0), { auth: session });
      } finally {
        await tpm.flushContext(session.handle);
      }
    });

    it('a tampered private blob does not load (TPM_RC_INTEGRITY, parameter 1)', async () => {
      const blob = await tpm.create(eccPrimary, { template: templates.eccSigningKey() });
      const bad = Buffer.from(blob.outPrivate);
      bad[bad.length - 1]! ^= 0x01;
      expect(await rc(tpm.load(eccPrimary, { ...blob, outPrivate: bad }))).toBe(0x1df);
    });

    it('ContextSave / ContextLoad bring a key back with the same Name', async () => {
      const blob = await tpm.create(eccPrimary, { template: templates.eccSigningKey() });
      const key = await tpm.load(eccPrimary, blob);
      const ctx = await tpm.contextSave(key);
      await tpm.flushContext(key);
      const h = await tpm.contextLoad(ctx);
      try {
        expect((await tpm.readPublic(h)).name.equals(key.name)).toBe(true);
        await tpm.sign({ ...key, handle: h }, digest);
      } finally {
        await tpm.flushContext(h);
      }
    });

    it('EvictControl makes a key persistent and removes it again', async () => {
      const persistent = 0x81000123;
      const blob = await tpm.create(eccPrimary, { template: templates.eccSigningKey() });
      const key = await tpm.load(eccPrimary, blob);
      await tpm.evictControl(key, persistent);
      await tpm.flushContext(key);
      try {
        expect((await tpm.readPublic(persistent)).name.equals(key.name)).toBe(true);
        await tpm.sign({ ...key, handle: persistent }, digest);
      } finally {
        await tpm.evictControl(persistent, persistent);
      }
      expect(await rc(tpm.readPublic(persistent))).toBe(0x18b);
    });

    it('runs out of object slots with TPM_RC_OBJECT_MEMORY, like a real TPM without a resource manager', async () => {
      // Two primaries are loaded by the suite; one more fills the third slot.
      const third = await tpm.createPrimary({
        template: templates.eccStoragePrimary(),
        data: Buffer.from('3'),
      });
      try {
        expect(
          await rc(
            tpm.createPrimary({ template: templates.eccStoragePrimary(), data: Buffer.from('4') }),
          ),
        ).toBe(0x902);
      } finally {
        await tpm.flushContext(third);
      }
    });

    /** The rc of raw command bytes (for malformed commands the client would never build). */
    async function rawRc(bytes: Buffer): Promise<number> {
      const rsp = Buffer.from(await tpm.transport.send(bytes));
      return rsp.readUInt32BE(6);
    }

    /**
     * Runs `fn` with both suite primaries saved and flushed, so that it has all three object
     * slots; they are loaded back afterwards.
     */
    async function withoutPrimaries<T>(fn: () => Promise<T>): Promise<T> {
      const eccCtx = await tpm.contextSave(eccPrimary);
      const rsaCtx = await tpm.contextSave(rsaPrimary);
      await tpm.flushContext(eccPrimary);
      await tpm.flushContext(rsaPrimary);
      try {
        return await fn();
      } finally {
        eccPrimary = { ...eccPrimary, handle: await tpm.contextLoad(eccCtx) };
        rsaPrimary = { ...rsaPrimary, handle: await tpm.contextLoad(rsaCtx) };
      }
    }

    const endorsement = { handle: TPM_RH.ENDORSEMENT, name: u32(TPM_RH.ENDORSEMENT) };

    /** A policy session that has satisfied PolicySecret(TPM_RH_ENDORSEMENT): the EK policy. */
    async function ekPolicy(): Promise<PolicySession> {
      const session = await tpm.startPolicySession();
      await tpm.policySecret(endorsement, session);
      return session;
    }

    it('PCR_Extend: PCR = H(PCR || digest) per bank given; PCR_Read sees it; other banks keep their value', async () => {
      const before = await tpm.pcrRead([
        pcrSelection(TPM_ALG.SHA256, [16]),
        pcrSelection(TPM_ALG.SHA1, [16]),
      ]);
      expect(before.values.map((v) => [v.hashAlg, v.pcr])).toEqual([
        [TPM_ALG.SHA256, 16],
        [TPM_ALG.SHA1, 16],
      ]);
      const d = randomBytes(32);
      await tpm.pcrExtend(16, [{ hashAlg: TPM_ALG.SHA256, digest: d }]);
      const after = await tpm.pcrRead([
        pcrSelection(TPM_ALG.SHA256, [16]),
        pcrSelection(TPM_ALG.SHA1, [16]),
      ]);
      expect(after.values[0]!.digest.equals(sha('sha256', before.values[0]!.digest, d))).toBe(true);
      expect(after.values[1]!.digest.equals(before.values[1]!.digest)).toBe(true);
      // Both banks at once.
      const d1 = randomBytes(20);
      await tpm.pcrExtend(23, [
        { hashAlg: TPM_ALG.SHA256, digest: d },
        { hashAlg: TPM_ALG.SHA1, digest: d1 },
      ]);
      const both = await tpm.pcrRead([
        pcrSelection(TPM_ALG.SHA256, [23]),
        pcrSelection(TPM_ALG.SHA1, [23]),
      ]);
      expect(both.values[0]!.digest.equals(sha('sha256', Buffer.alloc(32), d))).toBe(true);
      expect(both.values[1]!.digest.equals(sha('sha1', Buffer.alloc(20), d1))).toBe(true);
    });

    it('pcrUpdateCounter moves for PCR 0-15, not for 16 and 23; DRTM PCRs start as all ones', async () => {
      const count = async () =>
        (await tpm.pcrRead([pcrSelection(TPM_ALG.SHA256, [0])])).updateCounter;
      const c0 = await count();
      await tpm.pcrExtend(16, [{ hashAlg: TPM_ALG.SHA256, digest: randomBytes(32) }]);
      await tpm.pcrExtend(23, [{ hashAlg: TPM_ALG.SHA256, digest: randomBytes(32) }]);
      expect(await count()).toBe(c0);
      await tpm.pcrExtend(15, [{ hashAlg: TPM_ALG.SHA256, digest: randomBytes(32) }]);
      expect(await count()).toBe(c0 + 1);
      const drtm = await tpm.pcrRead([pcrSelection(TPM_ALG.SHA256, [17, 22])]);
      for (const v of drtm.values) expect(v.digest.equals(Buffer.alloc(32, 0xff))).toBe(true);
      // PCR 17 takes extends only from localities 2-4 (TPM_RC_LOCALITY); there is no PCR 24.
      expect(
        await rc(tpm.pcrExtend(17, [{ hashAlg: TPM_ALG.SHA256, digest: randomBytes(32) }])),
      ).toBe(0x907);
      expect(
        await rc(tpm.pcrExtend(24, [{ hashAlg: TPM_ALG.SHA256, digest: randomBytes(32) }])),
      ).toBe(0x184);
      // TPM_RH_NULL as the PCR extends nothing and succeeds.
      await tpm.pcrExtend(TPM_RH.NULL, [{ hashAlg: TPM_ALG.SHA256, digest: randomBytes(32) }]);
      // No authorization at all: TPM_RC_AUTH_MISSING.
      const noAuth = buildCommand(
        COMMANDS.PCR_Extend.cc,
        [16],
        [],
        marshal(COMMANDS.PCR_Extend.params, { digests: [] }),
      );
      expect(await rawRc(noAuth)).toBe(0x125);
    });

    it('PCR_Read returns at most 8 values a call; the client reads the rest; GetCapability lists 4 banks', async () => {
      const ten = Array.from({ length: 10 }, (_, i) => i);
      const { response } = await tpm.call('PCR_Read', [], {
        pcrSelectionIn: [pcrSelection(TPM_ALG.SHA256, ten)],
      });
      expect(response.pcrValues).toHaveLength(8);
      expect(response.pcrSelectionOut[0]!.pcrSelect.toString('hex')).toBe('ff0000');
      const all = await tpm.pcrRead([pcrSelection(TPM_ALG.SHA256, ten)]);
      expect(all.values.map((v) => v.pcr)).toEqual(ten);
      const banks = (await tpm.getCapability(TPM_CAP.PCRS, 0, 1)).data.data as {
        hash: number;
        pcrSelect: Buffer;
      }[];
      expect(banks.map((b) => b.hash)).toEqual([
        TPM_ALG.SHA1,
        TPM_ALG.SHA256,
        TPM_ALG.SHA384,
        TPM_ALG.SHA512,
      ]);
      for (const b of banks) expect(b.pcrSelect.toString('hex')).toBe('ffffff');
    });

    it('malformed PCR commands fail closed with the codes libtpms gives', async () => {
      const read = commandBytes('PCR_Read', [], {
        pcrSelectionIn: [pcrSelection(TPM_ALG.SHA256, [0])],
      });
      // sizeofSelect must be 3 (TPM_RC_VALUE, parameter 1).
      const short = commandBytes('PCR_Read', [], {
        pcrSelectionIn: [{ hash: TPM_ALG.SHA256, pcrSelect: Buffer.from([1]) }],
      });
      expect(await rawRc(short)).toBe(0x1c4);
      // A bank that is no hash (TPM_RC_HASH, parameter 1).
      const rsaBank = Buffer.from(read);
      rsaBank.writeUInt16BE(TPM_ALG.RSA, 14);
      expect(await rawRc(rsaBank)).toBe(0x1c3);
      // Five selections: more than HASH_COUNT (TPM_RC_SIZE, parameter 1).
      const five = Buffer.from(read);
      five.writeUInt32BE(5, 10);
      expect(
        await rawRc(sized(Buffer.concat([five, Buffer.from('000b03010000'.repeat(4), 'hex')]))),
      ).toBe(0x1d5);
      // Truncated (TPM_RC_INSUFFICIENT, parameter 1) and one byte too many (TPM_RC_SIZE).
      expect(await rawRc(sized(Buffer.from(read.subarray(0, read.length - 1))))).toBe(0x1da);
      expect(await rawRc(sized(Buffer.concat([read, Buffer.of(0)])))).toBe(0x95);
      const extend = commandBytes('PCR_Extend', [16], {
        digests: [{ hashAlg: TPM_ALG.SHA256, digest: Buffer.alloc(32) }],
      });
      const nullAlg = Buffer.from(extend);
      nullAlg.writeUInt16BE(TPM_ALG.NULL, extend.length - 34);
      expect(await rawRc(nullAlg)).toBe(0x1c3);
      const count5 = Buffer.from(extend);
      count5.writeUInt32BE(5, extend.length - 38);
      expect(await rawRc(count5)).toBe(0x1d5);
      expect(await rawRc(sized(Buffer.from(extend.subarray(0, extend.length - 1))))).toBe(0x1da);
      const owner = Buffer.from(extend);
      owner.writeUInt32BE(TPM_RH.OWNER, 10);
      expect(await rawRc(owner)).toBe(0x184);
    });

    const NV = 0x01500016;
    const NV_ATTRS =
      TPMA_NV.OWNERWRITE | TPMA_NV.OWNERREAD | TPMA_NV.AUTHWRITE | TPMA_NV.AUTHREAD | TPMA_NV.NO_DA;

    it('NV: define, read public (Name over TPMS_NV_PUBLIC), write, read back, undefine', async () => {
      const authValue = Buffer.from('nv password');
      await tpm.nvDefineSpace({ index: NV, size: 32, attributes: NV_ATTRS, authValue });
      try {
        const pub = await tpm.nvReadPublic(NV);
        expect(pub.nvPublic).toEqual({
          nvIndex: NV,
          nameAlg: TPM_ALG.SHA256,
          attributes: NV_ATTRS,
          authPolicy: Buffer.alloc(0),
          dataSize: 32,
        });
        expect(pub.name.equals(nvNameOf(pub.nvPublic))).toBe(true);
        // Not written yet: TPM_RC_NV_UNINITIALIZED, whoever asks.
        expect(await rc(tpm.nvRead(NV, { authValue }))).toBe(0x14a);
        expect(await rc(tpm.nvRead(NV, { authHandle: TPM_RH.OWNER }))).toBe(0x14a);
        await tpm.nvWrite(NV, Buffer.from('abcd'), { offset: 2, authValue });
        const written = await tpm.nvReadPublic(NV);
        expect(written.nvPublic.attributes).toBe((NV_ATTRS | TPMA_NV.WRITTEN) >>> 0);
        // WRITTEN is in the public area, so the Name changed with it.
        expect(written.name.equals(pub.name)).toBe(false);
        expect(written.name.equals(nvNameOf(written.nvPublic))).toBe(true);
        // Bytes never written read as 0xFF.
        const expected = Buffer.concat([
          Buffer.alloc(2, 0xff),
          Buffer.from('abcd'),
          Buffer.alloc(26, 0xff),
        ]);
        expect((await tpm.nvRead(NV, { authValue })).equals(expected)).toBe(true);
        expect((await tpm.nvRead(NV, { authHandle: TPM_RH.OWNER })).equals(expected)).toBe(true);
        // Through an HMAC session, which signs the index's (new) Name.
        const session = await tpm.startHmacSession();
        try {
          await tpm.nvWrite(NV, Buffer.from('zz'), { authValue }, { auth: session });
          const got = await tpm.nvRead(NV, { authValue, size: 4 }, { auth: session });
          expect(got.toString('latin1')).toBe('zzab');
        } finally {
          await tpm.flushContext(session.handle);
        }
        // A wrong password on a NO_DA index: TPM_RC_BAD_AUTH for session 1.
        expect(await rc(tpm.nvRead(NV, { authValue: Buffer.from('wrong') }))).toBe(0x9a2);
        const handles = (await tpm.getCapability(TPM_CAP.HANDLES, 0x01000000, 64)).data
          .data as number[];
        expect(handles).toContain(NV);
      } finally {
        await tpm.nvUndefineSpace(NV);
      }
      expect(await rc(tpm.nvReadPublic(NV))).toBe(0x18b);
      expect(await rc(tpm.nvUndefineSpace(NV))).toBe(0x28b);
    });

    it('NV: ranges, sizes and who may write are checked with libtpms codes', async () => {
      await tpm.nvDefineSpace({ index: NV, size: 32, attributes: NV_ATTRS });
      try {
        expect(await rc(tpm.nvDefineSpace({ index: NV, size: 32, attributes: NV_ATTRS }))).toBe(
          0x14c,
        );
        expect(await rc(tpm.nvWrite(NV, Buffer.alloc(40)))).toBe(0x146);
        expect(await rc(tpm.nvWrite(NV, Buffer.alloc(4), { offset: 30 }))).toBe(0x146);
        expect(await rc(tpm.nvWrite(NV, Buffer.alloc(0), { offset: 33 }))).toBe(0x2c4);
        await tpm.nvWrite(NV, Buffer.alloc(0), { offset: 32 });
        // An empty write at the end still marks the index written.
        expect((await tpm.nvReadPublic(NV)).nvPublic.attributes & TPMA_NV.WRITTEN).toBe(
          TPMA_NV.WRITTEN,
        );
        expect(await rc(tpm.nvRead(NV, { size: 1, offset: 32 }))).toBe(0x146);
        // More than TPM_PT_NV_BUFFER_MAX at once (the client itself would split it).
        const nvEntity = { handle: NV, name: Buffer.alloc(0) };
        expect(
          await rc(
            tpm.call('NV_Read', [nvEntity, NV], { size: 2000, offset: 0 }, [passwordAuth()]),
          ),
        ).toBe(0x1c4);
        // The platform may not read or write an index without PPREAD/PPWRITE.
        expect(await rc(tpm.nvRead(NV, { size: 1, authHandle: TPM_RH.PLATFORM }))).toBe(0x149);
        expect(await rc(tpm.nvWrite(NV, Buffer.of(1), { authHandle: TPM_RH.PLATFORM }))).toBe(
          0x149,
        );
        // Another index cannot authorize this one; an index that does not exist is TPM_RC_HANDLE.
        expect(await rc(tpm.nvRead(NV, { size: 1, authHandle: 0x01500099 }))).toBe(0x18b);
      } finally {
        await tpm.nvUndefineSpace(NV);
      }
      // Owner-only index: its own authValue cannot authorize it (TPM_RC_AUTH_UNAVAILABLE) ...
      await tpm.nvDefineSpace({
        index: NV,
        size: 8,
        attributes: TPMA_NV.OWNERWRITE | TPMA_NV.OWNERREAD | TPMA_NV.NO_DA,
      });
      try {
        expect(await rc(tpm.nvWrite(NV, Buffer.of(1)))).toBe(0x12f);
        await tpm.nvWrite(NV, Buffer.of(1), { authHandle: TPM_RH.OWNER });
      } finally {
        await tpm.nvUndefineSpace(NV);
      }
      // ... and an index-only one cannot be written by the owner (TPM_RC_NV_AUTHORIZATION).
      await tpm.nvDefineSpace({
        index: NV,
        size: 8,
        attributes: TPMA_NV.AUTHWRITE | TPMA_NV.AUTHREAD | TPMA_NV.NO_DA | TPMA_NV.WRITEALL,
      });
      try {
        expect(await rc(tpm.nvWrite(NV, Buffer.of(1), { authHandle: TPM_RH.OWNER }))).toBe(0x149);
        // WRITEALL: nothing less than the whole index (TPM_RC_NV_RANGE).
        expect(await rc(tpm.nvWrite(NV, Buffer.alloc(3)))).toBe(0x146);
        await tpm.nvWrite(NV, Buffer.alloc(8, 7));
      } finally {
        await tpm.nvUndefineSpace(NV);
      }
    });

    it('NV_DefineSpace refuses bad attributes, sizes and auths with libtpms codes', async () => {
      const define = (attributes: number, size = 32, extra: { authValue?: Buffer } = {}) =>
        rc(tpm.nvDefineSpace({ index: NV, size, attributes, ...extra }));
      expect(await define(TPMA_NV.OWNERWRITE)).toBe(0x2c2); // nobody can read
      expect(await define(TPMA_NV.OWNERREAD)).toBe(0x2c2); // nobody can write
      expect(await define(NV_ATTRS | TPMA_NV.WRITTEN)).toBe(0x2c2);
      expect(await define(NV_ATTRS | TPMA_NV.WRITELOCKED)).toBe(0x2c2);
      expect(await define(NV_ATTRS | TPMA_NV.POLICY_DELETE)).toBe(0x2c2);
      expect(await define(NV_ATTRS | TPMA_NV.PLATFORMCREATE)).toBe(0x182); // owner, not platform
      expect(await define(NV_ATTRS | 0x100)).toBe(0x2e1); // reserved bit
      expect(await define(NV_ATTRS | 0x30)).toBe(0x2c2); // TPM_NT 3 does not exist
      expect(await define(NV_ATTRS | 0x10, 32)).toBe(0x2d5); // a counter is 8 bytes
      expect(await define(NV_ATTRS, 2049)).toBe(0x2d5); // TPM_PT_NV_INDEX_MAX is 2048
      expect(await define(NV_ATTRS, 32, { authValue: Buffer.alloc(33, 1) })).toBe(0x1d5);
      expect(await rc(tpm.nvReadPublic(NV))).toBe(0x18b);
      // The index handle and nameAlg are unmarshalled inside publicInfo (parameter 2).
      const raw = commandBytes('NV_DefineSpace', [TPM_RH.OWNER], {
        auth: Buffer.alloc(0),
        publicInfo: {
          nvIndex: NV,
          nameAlg: TPM_ALG.SHA256,
          attributes: NV_ATTRS,
          authPolicy: Buffer.alloc(0),
          dataSize: 8,
        },
      });
      const badHandle = Buffer.from(raw);
      badHandle.writeUInt32BE(0x02000000, raw.length - 14);
      expect(await rawRc(badHandle)).toBe(0x2c4);
      const nullAlg = Buffer.from(raw);
      nullAlg.writeUInt16BE(TPM_ALG.NULL, raw.length - 10);
      expect(await rawRc(nullAlg)).toBe(0x2c3);
    });

    it('NV: 2048 bytes written and read back in NV-buffer pieces; more than 1024 at once is TPM_RC_SIZE', async () => {
      await tpm.nvDefineSpace({ index: NV, size: 2048, attributes: NV_ATTRS });
      try {
        const data = randomBytes(2048);
        await tpm.nvWrite(NV, data);
        expect((await tpm.nvRead(NV)).equals(data)).toBe(true);
        const write = commandBytes('NV_Write', [NV, NV], { data: Buffer.alloc(1024), offset: 0 });
        const big = Buffer.concat([
          write.subarray(0, write.length - 2 - 1024 - 2),
          Buffer.from([0x04, 0x01]),
          Buffer.alloc(1025),
          Buffer.alloc(2),
        ]);
        expect(await rawRc(sized(big))).toBe(0x1d5);
      } finally {
        await tpm.nvUndefineSpace(NV);
      }
    });

    it('malformed NV, policy, sealing and attestation commands fail closed with libtpms codes', async () => {
      const trailing = (b: Buffer) => sized(Buffer.concat([b, Buffer.of(0)]));
      const truncated = (b: Buffer) => sized(Buffer.from(b.subarray(0, b.length - 1)));
      const blob = await tpm.create(eccPrimary, {
        template: templates.sealedData(),
        data: Buffer.from('x'),
      });
      const sealed = await tpm.load(eccPrimary, blob);
      const session = await tpm.startPolicySession();
      await tpm.nvDefineSpace({ index: NV, size: 8, attributes: NV_ATTRS });
      try {
        expect(await rawRc(trailing(commandBytes('Unseal', [sealed.handle], {})))).toBe(0x95);
        expect(await rawRc(trailing(commandBytes('NV_ReadPublic', [NV], {})))).toBe(0x95);
        expect(await rawRc(trailing(commandBytes('PolicyGetDigest', [session.handle], {})))).toBe(
          0x95,
        );
        const secret = commandBytes('PolicySecret', [TPM_RH.ENDORSEMENT, session.handle], {
          nonceTPM: Buffer.alloc(0),
          cpHashA: Buffer.alloc(0),
          policyRef: Buffer.alloc(0),
          expiration: 0,
        });
        expect(await rawRc(truncated(secret))).toBe(0x4da);
        // policyRef of 65 bytes: more than a TPM2B_NONCE holds (TPM_RC_SIZE, parameter 3).
        const longRef = Buffer.concat([
          secret.subarray(0, secret.length - 6),
          Buffer.from([0, 65]),
          Buffer.alloc(65),
          Buffer.alloc(4),
        ]);
        expect(await rawRc(sized(longRef))).toBe(0x3d5);
        const quote = commandBytes('Quote', [eccPrimary.handle], {
          qualifyingData: Buffer.alloc(0),
          inScheme: { scheme: TPM_ALG.NULL, hashAlg: TPM_ALG.NULL },
          PCRselect: [pcrSelection(TPM_ALG.SHA256, [0])],
        });
        expect(await rawRc(truncated(quote))).toBe(0x3da);
        const certify = commandBytes('Certify', [sealed.handle, eccPrimary.handle], {
          qualifyingData: Buffer.alloc(0),
          inScheme: { scheme: TPM_ALG.NULL, hashAlg: TPM_ALG.NULL },
        });
        const badScheme = Buffer.from(certify);
        badScheme.writeUInt16BE(TPM_ALG.RSA, certify.length - 2);
        expect(await rawRc(badScheme)).toBe(0x2d2);
        // A template with a byte more than TPMT_PUBLIC inside its TPM2B (TPM_RC_SIZE, parameter 2).
        await tpm.flushContext(sealed);
        const createParams = {
          inSensitive: { userAuth: Buffer.alloc(0), data: Buffer.alloc(0) },
          inPublic: marshal(TPMT_PUBLIC, templates.eccSigningKey()),
        };
        const loaded = commandBytes('CreateLoaded', [eccPrimary.handle], createParams);
        // The parameters start with the 6-byte empty TPM2B_SENSITIVE_CREATE; the template's size follows.
        const paramsLength = marshal(COMMANDS.CreateLoaded.params, createParams).length;
        const publicStart = loaded.length - paramsLength + 6;
        const padded = Buffer.concat([loaded, Buffer.of(0)]);
        padded.writeUInt16BE(padded.readUInt16BE(publicStart) + 1, publicStart);
        expect(await rawRc(sized(padded))).toBe(0x2d5);
        const write = commandBytes('NV_Write', [NV, NV], { data: Buffer.from('ab'), offset: 0 });
        expect(await rawRc(truncated(write))).toBe(0x2da);
        const read = commandBytes('NV_Read', [NV, NV], { size: 1, offset: 0 });
        expect(await rawRc(truncated(read))).toBe(0x2da);
        expect(
          await rawRc(trailing(commandBytes('NV_UndefineSpace', [TPM_RH.OWNER, NV], {}))),
        ).toBe(0x95);
      } finally {
        await tpm.nvUndefineSpace(NV);
        await tpm.flushContext(session.handle);
        await tpm.flushContext(sealed).catch(() => {});
      }
    });

    it('seal and unseal: data objects give their data back; keys do not', async () => {
      const secret = Buffer.from('agent-secret-123');
      const blob = await tpm.create(eccPrimary, { template: templates.sealedData(), data: secret });
      const sealed = await tpm.load(eccPrimary, blob);
      try {
        expect((await tpm.unseal(sealed)).equals(secret)).toBe(true);
        const session = await tpm.startHmacSession();
        try {
          expect((await tpm.unseal(sealed, { auth: session })).equals(secret)).toBe(true);
        } finally {
          await tpm.flushContext(session.handle);
        }
      } finally {
        await tpm.flushContext(sealed);
      }
      // Not a KEYEDHASH object: TPM_RC_TYPE; a keyedhash key: TPM_RC_ATTRIBUTES (handle 1).
      expect(await rc(tpm.unseal(eccPrimary))).toBe(0x18a);
      const hmacBlob = await tpm.create(eccPrimary, { template: templates.hmacKey() });
      const hmacKey = await tpm.load(eccPrimary, hmacBlob);
      try {
        expect(await rc(tpm.unseal(hmacKey))).toBe(0x182);
      } finally {
        await tpm.flushContext(hmacKey);
      }
    });

    it('CreateLoaded: a child under a storage parent (its blob loads again), a primary under a hierarchy', async () => {
      const key = await tpm.createLoaded(eccPrimary, { template: templates.eccSigningKey() });
      let name: Buffer;
      try {
        name = key.name;
        const sig = await tpm.sign(key, digest);
        expect(ecdsaVerifies(key.publicArea, msg, sig)).toBe(true);
      } finally {
        await tpm.flushContext(key);
      }
      const again = await tpm.load(eccPrimary, {
        outPrivate: key.outPrivate,
        outPublic: key.publicArea,
      });
      expect(again.name.equals(name)).toBe(true);
      await tpm.flushContext(again);
      // Under the owner hierarchy it is CreatePrimary: the same key, no private blob.
      const primary = await tpm.createLoaded(TPM_RH.OWNER, {
        template: templates.eccStoragePrimary(),
      });
      try {
        expect(primary.name.equals(eccPrimary.name)).toBe(true);
        expect(primary.outPrivate.length).toBe(0);
      } finally {
        await tpm.flushContext(primary);
      }
      // The lockout hierarchy is no parent (TPM_RC_VALUE, handle 1).
      expect(
        await rc(tpm.createLoaded(TPM_RH.LOCKOUT, { template: templates.eccSigningKey() })),
      ).toBe(0x184);
    });

    it('policy sessions: PolicySecret(endorsement) gives the TCG EK policy digest; its checks', async () => {
      const session = await tpm.startPolicySession();
      try {
        expect(session.handle >>> 24).toBe(0x03);
        expect((await tpm.policyGetDigest(session)).equals(Buffer.alloc(32))).toBe(true);
        const { timeout, ticket } = await tpm.policySecret(endorsement, session, {
          bindNonce: true,
        });
        expect(timeout.length).toBe(0);
        expect(ticket).toEqual({
          tag: TPM_ST.AUTH_SECRET,
          hierarchy: TPM_RH.NULL,
          digest: Buffer.alloc(0),
        });
        const expected = sha(
          'sha256',
          sha('sha256', Buffer.alloc(32), u32(COMMANDS.PolicySecret.cc), u32(TPM_RH.ENDORSEMENT)),
        );
        expect(expected.equals(templates.EK_AUTH_POLICY)).toBe(true);
        expect((await tpm.policyGetDigest(session)).equals(templates.EK_AUTH_POLICY)).toBe(true);
        // A nonceTPM that is not the session's: TPM_RC_NONCE (parameter 1).
        const wrongNonce = commandBytes('PolicySecret', [TPM_RH.ENDORSEMENT, session.handle], {
          nonceTPM: Buffer.alloc(32, 1),
          cpHashA: Buffer.alloc(0),
          policyRef: Buffer.alloc(0),
          expiration: 0,
        });
        expect(await rawRc(wrongNonce)).toBe(0x1cf);
        // cpHashA must be a digest of the session's hash (TPM_RC_SIZE, parameter 2).
        expect(
          await rc(tpm.policySecret(endorsement, session, { cpHashA: Buffer.alloc(20) })),
        ).toBe(0x2d5);
        // A wrong endorsement password (hierarchies are not DA-protected).
        expect(
          await rc(tpm.policySecret({ ...endorsement, authValue: Buffer.from('x') }, session)),
        ).toBe(0x9a2);
      } finally {
        await tpm.flushContext(session.handle);
      }
      // The policySession handle must be a loaded policy session.
      expect(await rc(tpm.policyGetDigest(0x02000000))).toBe(0x184);
      expect(await rc(tpm.policyGetDigest(0x03000010))).toBe(0x910);
      // TPM_SE has HMAC (0), POLICY (1) and TRIAL (3) only: TPM_RC_VALUE for parameter 3.
      const noSuchType = commandBytes('StartAuthSession', [TPM_RH.NULL, TPM_RH.NULL], {
        nonceCaller: Buffer.alloc(32, 1),
        encryptedSalt: Buffer.alloc(0),
        sessionType: 2,
        symmetric: { algorithm: TPM_ALG.NULL, keyBits: 0, mode: 0 },
        authHash: TPM_ALG.SHA256,
      });
      expect(await rawRc(noSuchType)).toBe(0x3c4);
    });

    it('policy sessions authorize only objects whose authPolicy they match; trial sessions authorize nothing', async () => {
      await withKey(eccPrimary, templates.eccSigningKey(), async (key) => {
        // The key has no authPolicy: no policy satisfies it (TPM_RC_POLICY_FAIL, session 1).
        const session = await ekPolicy();
        try {
          expect(await rc(tpm.sign(key, digest, {}, { auth: session }))).toBe(0x99d);
        } finally {
          await tpm.flushContext(session.handle);
        }
        const trial = await tpm.startPolicySession({ trial: true });
        try {
          expect(await rc(tpm.sign(key, digest, {}, { auth: trial }))).toBe(0x982);
        } finally {
          await tpm.flushContext(trial.handle);
        }
      });
      const template = { ...templates.eccSigningKey(), authPolicy: templates.EK_AUTH_POLICY };
      await withKey(eccPrimary, template, async (key) => {
        const session = await ekPolicy();
        try {
          const sig = await tpm.sign(key, digest, {}, { auth: session });
          expect(ecdsaVerifies(key.publicArea, msg, sig)).toBe(true);
          // Using the session reset its policy: it must be satisfied again for the next command.
          expect((await tpm.policyGetDigest(session)).equals(Buffer.alloc(32))).toBe(true);
          expect(await rc(tpm.sign(key, digest, {}, { auth: session }))).toBe(0x99d);
        } finally {
          await tpm.flushContext(session.handle);
        }
      });
    });

    it('EK (TCG default templates): the same key every time; an AK is created and loaded under it with the EK policy', async () => {
      await withoutPrimaries(async () => {
        const ekRsa = await tpm.createPrimary({
          hierarchy: TPM_RH.ENDORSEMENT,
          template: templates.ekRsaTemplate(),
        });
        const rsaName = ekRsa.name;
        await tpm.flushContext(ekRsa);
        const ekRsa2 = await tpm.createPrimary({
          hierarchy: TPM_RH.ENDORSEMENT,
          template: templates.ekRsaTemplate(),
        });
        expect(ekRsa2.name.equals(rsaName)).toBe(true);
        expect(ekRsa2.publicArea.objectAttributes).toBe(0x300b2);
        expect((ekRsa2.publicArea.unique as Buffer).length).toBe(256);
        await tpm.flushContext(ekRsa2);

        const ek = await tpm.createPrimary({
          hierarchy: TPM_RH.ENDORSEMENT,
          template: templates.ekEccTemplate(),
        });
        try {
          // userWithAuth is clear: the EK's authValue cannot authorize Create under it.
          expect(await rc(tpm.create(ek, { template: templates.eccAttestationKey() }))).toBe(0x12f);
          let session = await ekPolicy();
          const blob = await tpm.create(
            ek,
            { template: templates.eccAttestationKey() },
            { auth: session },
          );
          await tpm.flushContext(session.handle);
          session = await ekPolicy();
          const ak = await tpm.load(ek, blob, Buffer.alloc(0), { auth: session });
          await tpm.flushContext(session.handle);
          try {
            const pub = await tpm.readPublic(ak.handle);
            expect(pub.name.equals(ak.name)).toBe(true);
            // An AK is restricted: it signs only digests the TPM hashed itself.
            const { ticket } = await tpm.hash(msg, TPM_ALG.SHA256, TPM_RH.ENDORSEMENT);
            const sig = await tpm.sign(ak, digest, { ticket });
            expect(ecdsaVerifies(ak.publicArea, msg, sig)).toBe(true);
          } finally {
            await tpm.flushContext(ak);
          }
        } finally {
          await tpm.flushContext(ek);
        }
      });
    });

    it('Quote and Certify: the signature over TPMS_ATTEST verifies; the attested PCR digest and Names are right', async () => {
      await withoutPrimaries(async () => {
        const parent = await tpm.createPrimary({ template: templates.eccStoragePrimary() });
        const ak = await tpm.createLoaded(parent, { template: templates.eccAttestationKey() });
        try {
          await tpm.pcrExtend(16, [{ hashAlg: TPM_ALG.SHA256, digest: randomBytes(32) }]);
          const nonce = randomBytes(20);
          const pcrs = [pcrSelection(TPM_ALG.SHA256, [0, 16])];
          const q = await tpm.quote(ak, { pcrs, qualifyingData: nonce });
          expect(ecdsaVerifies(ak.publicArea, q.attestBytes, q.signature)).toBe(true);
          expect(q.attest.magic).toBe(TPM_GENERATED_VALUE);
          expect(q.attest.type).toBe(TPM_ST.ATTEST_QUOTE);
          expect(q.attest.extraData.equals(nonce)).toBe(true);
          const { qualifiedName } = await tpm.readPublic(ak.handle);
          expect(q.attest.qualifiedSigner.equals(qualifiedName)).toBe(true);
          const values = await tpm.pcrRead(pcrs);
          const info = q.attest.attested as QuoteInfo;
          expect(info.pcrSelect).toEqual(pcrs);
          expect(info.pcrDigest.equals(sha('sha256', ...values.values.map((v) => v.digest)))).toBe(
            true,
          );
          const tampered = Buffer.from(q.attestBytes);
          tampered[tampered.length - 1]! ^= 1;
          expect(ecdsaVerifies(ak.publicArea, tampered, q.signature)).toBe(false);

          await withKey(parent, templates.eccSigningKey(), async (key) => {
            const c = await tpm.certify(key, ak, { qualifyingData: nonce });
            expect(ecdsaVerifies(ak.publicArea, c.attestBytes, c.signature)).toBe(true);
            expect(c.attest.type).toBe(TPM_ST.ATTEST_CERTIFY);
            const certified = c.attest.attested as CertifyInfo;
            expect(certified.name.equals(key.name)).toBe(true);
            expect(
              certified.qualifiedName.equals((await tpm.readPublic(key.handle)).qualifiedName),
            ).toBe(true);
            // No signer: an unsigned statement, qualifiedSigner is TPM_RH_NULL's Name.
            const unsigned = await tpm.certify(key, null);
            expect(unsigned.signature.sigAlg).toBe(TPM_ALG.NULL);
            expect(unsigned.attest.qualifiedSigner.equals(u32(TPM_RH.NULL))).toBe(true);
            // A signer without the sign attribute: TPM_RC_KEY (handle 2).
            expect(await rc(tpm.certify(key, parent))).toBe(0x29c);
          });
          // Quote: no key that cannot sign (TPM_RC_KEY, handle 1), no scheme the key does not
          // have (TPM_RC_SCHEME, parameter 2), no unsigned quote.
          expect(await rc(tpm.quote(parent, { pcrs }))).toBe(0x19c);
          expect(
            await rc(
              tpm.quote(ak, { pcrs, scheme: { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA1 } }),
            ),
          ).toBe(0x2d2);
          expect(
            await rc(tpm.quote({ handle: TPM_RH.NULL, name: u32(TPM_RH.NULL) }, { pcrs })),
          ).toBe(0x2d2);
        } finally {
          await tpm.flushContext(ak);
          await tpm.flushContext(parent);
        }
      });
    });
  });
}
