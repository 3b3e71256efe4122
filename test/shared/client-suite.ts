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
import type { LoadedKey } from '../../tpm-sim/client/index.ts';
import {
  TPM_ALG,
  TPM_CAP,
  TPM_RH,
  TPMA_OBJECT,
  type TpmClient,
  TpmResponseError,
  templates,
} from '../../tpm-sim/client/index.ts';
import { TPM_PT, TPM_ST } from '../../tpm-sim/wire/constants.ts';
import type { EccPoint, SignatureEcc, SignatureRsa } from '../../tpm-sim/wire/structures.ts';

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
  });
}
