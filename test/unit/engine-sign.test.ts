// TPM2_Sign and TPM2_VerifySignature (Part 3 §20.2, §20.1) driven through real command bytes;
// signatures are checked by node:crypto and @noble/curves, never by the TPM's own code alone.
import {
  constants,
  createHash,
  createHmac,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign as nodeSign,
  verify as nodeVerify,
  randomBytes,
} from 'node:crypto';
import { p256 } from '@noble/curves/nist.js';
import { beforeAll, describe, expect, it } from 'vitest';
import * as templates from '../../tpm-sim/client/templates.ts';
import type { Tpm } from '../../tpm-sim/engine/tpm.ts';
import {
  TPM_ALG,
  TPM_ECC_CURVE,
  TPM_RH,
  TPM_ST,
  TPMA_OBJECT,
} from '../../tpm-sim/wire/constants.ts';
import {
  type Ha,
  nullTicket,
  type Public,
  SCHEME_NULL,
  type Scheme,
  type Sensitive,
  type Signature,
  type SignatureEcc,
  type SignatureRsa,
} from '../../tpm-sim/wire/structures.ts';
import { loadKeyedHash, loadObject, newTpm, run } from '../shared/engine.ts';
import { sha256 } from '../shared/formulas.ts';

const A = TPM_ALG;
const EMPTY = Buffer.alloc(0);
const SIGN_KEY =
  TPMA_OBJECT.fixedTPM |
  TPMA_OBJECT.fixedParent |
  TPMA_OBJECT.sensitiveDataOrigin |
  TPMA_OBJECT.userWithAuth |
  TPMA_OBJECT.sign;
const KEY_AUTH = Buffer.from('keypw');

const started = () => newTpm({ maxTransientObjects: 32 });

function jwkBytes(v: string | undefined): Buffer {
  if (v === undefined) throw new Error('missing JWK field');
  return Buffer.from(v, 'base64url');
}

// ---- objects built from node:crypto keys (loaded directly, as Load would) ----

interface Loaded {
  handle: number;
  pub: KeyObject;
  priv: KeyObject;
}

function eccKey(
  tpm: Tpm,
  opts: {
    curve?: 'P-256' | 'P-384';
    scheme?: Scheme;
    attrs?: number;
    hierarchy?: number;
    publicOnly?: boolean;
  } = {},
): Loaded {
  const curve = opts.curve ?? 'P-256';
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
  const jwk = privateKey.export({ format: 'jwk' });
  const template = templates.eccSigningKey({ attributes: opts.attrs });
  const publicArea: Public = {
    ...template,
    parameters: {
      ...template.parameters,
      scheme: opts.scheme ?? { scheme: A.ECDSA, hashAlg: curve === 'P-256' ? A.SHA256 : A.SHA384 },
      curveID: curve === 'P-256' ? TPM_ECC_CURVE.NIST_P256 : TPM_ECC_CURVE.NIST_P384,
    },
    unique: { x: jwkBytes(jwk.x), y: jwkBytes(jwk.y) },
  };
  const sensitive: Sensitive = {
    sensitiveType: A.ECC,
    authValue: KEY_AUTH,
    seedValue: EMPTY,
    sensitive: jwkBytes(jwk.d),
  };
  const handle = loadObject(
    tpm,
    publicArea,
    opts.publicOnly ? undefined : sensitive,
    opts.hierarchy,
  );
  return { handle, pub: publicKey, priv: privateKey };
}

function rsaKey(tpm: Tpm, opts: { scheme?: Scheme; attrs?: number } = {}): Loaded {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  const template = templates.rsaSigningKey({ scheme: A.NULL, attributes: opts.attrs });
  const publicArea: Public = {
    ...template,
    parameters: { ...template.parameters, scheme: opts.scheme ?? SCHEME_NULL },
    unique: jwkBytes(jwk.n),
  };
  const sensitive: Sensitive = {
    sensitiveType: A.RSA,
    authValue: KEY_AUTH,
    seedValue: EMPTY,
    sensitive: jwkBytes(jwk.p),
  };
  return { handle: loadObject(tpm, publicArea, sensitive), pub: publicKey, priv: privateKey };
}

function hmacKey(
  tpm: Tpm,
  key: Buffer,
  scheme: Scheme = { scheme: A.HMAC, hashAlg: A.SHA256 },
): number {
  return loadKeyedHash(tpm, { ...templates.hmacKey(), parameters: { scheme } }, key, KEY_AUTH);
}

const NULL_SCHEME = SCHEME_NULL;
const NO_TICKET = nullTicket(TPM_ST.HASHCHECK);

function sign(
  tpm: Tpm,
  handle: number,
  digest: Buffer,
  inScheme: Scheme = NULL_SCHEME,
  validation = NO_TICKET,
) {
  return run(tpm, 'Sign', [handle], { digest, inScheme, validation }, [KEY_AUTH]);
}

function ecdsaRS(sig: Signature): Buffer {
  const body = sig.signature as SignatureEcc;
  return Buffer.concat([body.signatureR, body.signatureS]);
}

function uncompressed(pub: KeyObject): Buffer {
  const jwk = pub.export({ format: 'jwk' });
  return Buffer.concat([Buffer.of(4), jwkBytes(jwk.x), jwkBytes(jwk.y)]);
}

describe('TPM2_Sign: signatures that other implementations accept', () => {
  let tpm: Tpm;
  beforeAll(async () => {
    tpm = await started();
  });

  it('ECDSA P-256 / SHA-256: verified by node:crypto (IEEE P1363) and by @noble/curves (prehash off)', async () => {
    const k = eccKey(tpm);
    // Enough signatures to run through more than one precomputed nonce batch.
    for (let i = 0; i < 80; i++) {
      const msg = randomBytes(1 + i);
      const digest = sha256(msg);
      const { rc, out } = await sign(tpm, k.handle, digest);
      expect(rc).toBe(0);
      expect(out.signature.sigAlg).toBe(A.ECDSA);
      const body = out.signature.signature as SignatureEcc;
      expect(body.hash).toBe(A.SHA256);
      expect(body.signatureR.length).toBe(32);
      expect(body.signatureS.length).toBe(32);
      const rs = ecdsaRS(out.signature);
      expect(nodeVerify('sha256', msg, { key: k.pub, dsaEncoding: 'ieee-p1363' }, rs)).toBe(true);
      expect(p256.verify(rs, digest, uncompressed(k.pub), { prehash: false, lowS: false })).toBe(
        true,
      );
    }
  });

  it('ECDSA P-384 / SHA-384, and a P-256 key with a SHA-384 digest (truncated to the order size)', async () => {
    const k384 = eccKey(tpm, { curve: 'P-384' });
    const msg = Buffer.from('p-384 message');
    const d384 = createHash('sha384').update(msg).digest();
    const r1 = await sign(tpm, k384.handle, d384);
    expect(r1.rc).toBe(0);
    expect((r1.out.signature.signature as SignatureEcc).signatureR.length).toBe(48);
    expect(
      nodeVerify(
        'sha384',
        msg,
        { key: k384.pub, dsaEncoding: 'ieee-p1363' },
        ecdsaRS(r1.out.signature),
      ),
    ).toBe(true);

    const k256 = eccKey(tpm, { scheme: NULL_SCHEME });
    const r2 = await sign(tpm, k256.handle, d384, { scheme: A.ECDSA, hashAlg: A.SHA384 });
    expect(r2.rc).toBe(0);
    expect(
      nodeVerify(
        'sha384',
        msg,
        { key: k256.pub, dsaEncoding: 'ieee-p1363' },
        ecdsaRS(r2.out.signature),
      ),
    ).toBe(true);
  });

  it('RSASSA-PKCS1-v1_5 and RSASSA-PSS (salt = digest size) verified by node:crypto', async () => {
    const k = rsaKey(tpm);
    const msg = Buffer.from('rsa message');
    const digest = sha256(msg);
    const ssa = await sign(tpm, k.handle, digest, { scheme: A.RSASSA, hashAlg: A.SHA256 });
    expect(ssa.rc).toBe(0);
    expect(ssa.out.signature.sigAlg).toBe(A.RSASSA);
    const ssaSig = (ssa.out.signature.signature as SignatureRsa).sig;
    expect(ssaSig.length).toBe(256);
    expect(
      nodeVerify('sha256', msg, { key: k.pub, padding: constants.RSA_PKCS1_PADDING }, ssaSig),
    ).toBe(true);

    const pss = await sign(tpm, k.handle, digest, { scheme: A.RSAPSS, hashAlg: A.SHA256 });
    expect(pss.rc).toBe(0);
    const pssSig = (pss.out.signature.signature as SignatureRsa).sig;
    expect(
      nodeVerify(
        'sha256',
        msg,
        { key: k.pub, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 },
        pssSig,
      ),
    ).toBe(true);
  });

  it("an RSA key's own scheme is used when inScheme is NULL", async () => {
    const k = rsaKey(tpm, { scheme: { scheme: A.RSASSA, hashAlg: A.SHA384 } });
    const msg = Buffer.from('key scheme');
    const { rc, out } = await sign(tpm, k.handle, createHash('sha384').update(msg).digest());
    expect(rc).toBe(0);
    expect(out.signature.sigAlg).toBe(A.RSASSA);
    expect((out.signature.signature as SignatureRsa).hash).toBe(A.SHA384);
    const sig = (out.signature.signature as SignatureRsa).sig;
    expect(
      nodeVerify('sha384', msg, { key: k.pub, padding: constants.RSA_PKCS1_PADDING }, sig),
    ).toBe(true);
  });

  it('HMAC with a keyedHash signing key equals crypto.createHmac over the digest', async () => {
    const key = randomBytes(32);
    const h = hmacKey(tpm, key);
    const digest = sha256(Buffer.from('hmac me'));
    const { rc, out } = await sign(tpm, h, digest);
    expect(rc).toBe(0);
    expect(out.signature.sigAlg).toBe(A.HMAC);
    const body = out.signature.signature as Ha;
    expect(body.hashAlg).toBe(A.SHA256);
    expect(body.digest).toEqual(createHmac('sha256', key).update(digest).digest());
  });
});

describe('TPM2_Sign: the checks of Part 3 §20.2', () => {
  let tpm: Tpm;
  beforeAll(async () => {
    tpm = await started();
  });
  const digest = sha256(Buffer.from('x'));

  it('a key without the sign attribute is TPM_RC_KEY for handle 1 (0x19C)', async () => {
    const k = eccKey(tpm, {
      attrs: (SIGN_KEY & ~TPMA_OBJECT.sign) | TPMA_OBJECT.decrypt,
      scheme: NULL_SCHEME,
    });
    expect((await sign(tpm, k.handle, digest, { scheme: A.ECDSA, hashAlg: A.SHA256 })).rc).toBe(
      0x19c,
    );
  });

  it('schemes: conflicting, both NULL, or not for this key type are TPM_RC_SCHEME for parameter 2 (0x2D2)', async () => {
    const withScheme = eccKey(tpm);
    expect(
      (await sign(tpm, withScheme.handle, digest, { scheme: A.ECDSA, hashAlg: A.SHA384 })).rc,
    ).toBe(0x2d2);
    // Same scheme and hash as the key's: accepted.
    expect(
      (await sign(tpm, withScheme.handle, digest, { scheme: A.ECDSA, hashAlg: A.SHA256 })).rc,
    ).toBe(0);
    const bare = eccKey(tpm, { scheme: NULL_SCHEME });
    expect((await sign(tpm, bare.handle, digest, NULL_SCHEME)).rc).toBe(0x2d2);
    expect((await sign(tpm, bare.handle, digest, { scheme: A.RSASSA, hashAlg: A.SHA256 })).rc).toBe(
      0x2d2,
    );
    expect((await sign(tpm, bare.handle, digest, { scheme: A.HMAC, hashAlg: A.SHA256 })).rc).toBe(
      0x2d2,
    );
  });

  it('a digest that is not the size of the scheme hash is TPM_RC_SIZE for parameter 1 (0x1D5)', async () => {
    const k = eccKey(tpm);
    expect((await sign(tpm, k.handle, digest.subarray(0, 20))).rc).toBe(0x1d5);
    expect((await sign(tpm, k.handle, Buffer.concat([digest, digest]))).rc).toBe(0x1d5);
  });

  it('a ticket with another tag is TPM_RC_TAG, a bad hierarchy TPM_RC_VALUE (parameter 3)', async () => {
    const k = eccKey(tpm);
    expect((await sign(tpm, k.handle, digest, NULL_SCHEME, nullTicket(TPM_ST.VERIFIED))).rc).toBe(
      0x3d7,
    );
    const badHierarchy = { tag: TPM_ST.HASHCHECK, hierarchy: 0x40000002, digest: EMPTY };
    expect((await sign(tpm, k.handle, digest, NULL_SCHEME, badHierarchy)).rc).toBe(0x3c4);
  });

  it('wrong password: TPM_RC_AUTH_FAIL (0x98E) for a DA-protected key, TPM_RC_BAD_AUTH (0x9A2) with noDA', async () => {
    const fresh = await started();
    const da = eccKey(fresh);
    const noDa = eccKey(fresh, { attrs: SIGN_KEY | TPMA_OBJECT.noDA });
    const params = { digest, inScheme: NULL_SCHEME, validation: NO_TICKET };
    expect((await run(fresh, 'Sign', [da.handle], params, [Buffer.from('wrong')])).rc).toBe(0x98e);
    expect((await run(fresh, 'Sign', [noDa.handle], params, [Buffer.from('wrong')])).rc).toBe(
      0x9a2,
    );
    expect((await run(fresh, 'Sign', [noDa.handle], params, [KEY_AUTH])).rc).toBe(0);
  });

  it('a public-only key cannot sign (TPM_RC_AUTH_UNAVAILABLE, 0x12F)', async () => {
    const k = eccKey(tpm, { publicOnly: true, hierarchy: TPM_RH.NULL });
    const params = { digest, inScheme: NULL_SCHEME, validation: NO_TICKET };
    expect((await run(tpm, 'Sign', [k.handle], params, [EMPTY])).rc).toBe(0x12f);
  });
});

describe('HASHCHECK tickets: TPM2_Hash -> TPM2_Sign with a restricted key', () => {
  let tpm: Tpm;
  let restricted: Loaded;
  beforeAll(async () => {
    tpm = await started();
    restricted = eccKey(tpm, { attrs: SIGN_KEY | TPMA_OBJECT.restricted });
  });

  const hash = (data: Buffer, hierarchy: number = TPM_RH.OWNER) =>
    run(tpm, 'Hash', [], { data, hashAlg: A.SHA256, hierarchy });

  it('a ticket from TPM2_Hash is accepted and the signature verifies', async () => {
    const msg = Buffer.from('token payload');
    const h = await hash(msg);
    expect(h.rc).toBe(0);
    expect(h.out.validation.hierarchy).toBe(TPM_RH.OWNER);
    const { rc, out } = await sign(
      tpm,
      restricted.handle,
      h.out.outHash,
      NULL_SCHEME,
      h.out.validation,
    );
    expect(rc).toBe(0);
    expect(
      nodeVerify(
        'sha256',
        msg,
        { key: restricted.pub, dsaEncoding: 'ieee-p1363' },
        ecdsaRS(out.signature),
      ),
    ).toBe(true);
  });

  it('no ticket, a forged ticket, or a ticket for another digest is TPM_RC_TICKET for parameter 3 (0x3E0)', async () => {
    const h = await hash(Buffer.from('genuine'));
    const digest = h.out.outHash;
    expect((await sign(tpm, restricted.handle, digest)).rc).toBe(0x3e0);
    const forged = { ...h.out.validation, digest: randomBytes(32) };
    expect((await sign(tpm, restricted.handle, digest, NULL_SCHEME, forged)).rc).toBe(0x3e0);
    const other = sha256(Buffer.from('something else'));
    expect((await sign(tpm, restricted.handle, other, NULL_SCHEME, h.out.validation)).rc).toBe(
      0x3e0,
    );
    const moved = { ...h.out.validation, hierarchy: TPM_RH.ENDORSEMENT };
    expect((await sign(tpm, restricted.handle, digest, NULL_SCHEME, moved)).rc).toBe(0x3e0);
  });

  it('data that starts with TPM_GENERATED_VALUE gets no ticket, so a restricted key will not sign it', async () => {
    const h = await hash(Buffer.concat([Buffer.from('ff544347', 'hex'), randomBytes(20)]));
    expect(h.out.validation).toEqual(nullTicket(TPM_ST.HASHCHECK));
    expect(
      (await sign(tpm, restricted.handle, h.out.outHash, NULL_SCHEME, h.out.validation)).rc,
    ).toBe(0x3e0);
  });

  it('a ticket made by another TPM (other proof values) is rejected', async () => {
    const other = await started();
    const h = await run(other, 'Hash', [], {
      data: Buffer.from('elsewhere'),
      hashAlg: A.SHA256,
      hierarchy: TPM_RH.OWNER,
    });
    expect(
      (await sign(tpm, restricted.handle, h.out.outHash, NULL_SCHEME, h.out.validation)).rc,
    ).toBe(0x3e0);
  });

  it('an unrestricted key also checks a ticket that is present, and accepts a valid one', async () => {
    const k = eccKey(tpm);
    const h = await hash(Buffer.from('tpm2_sign always sends one'));
    expect((await sign(tpm, k.handle, h.out.outHash, NULL_SCHEME, h.out.validation)).rc).toBe(0);
    const forged = { ...h.out.validation, digest: randomBytes(32) };
    expect((await sign(tpm, k.handle, h.out.outHash, NULL_SCHEME, forged)).rc).toBe(0x3e0);
  });
});

describe('TPM2_VerifySignature (Part 3 §20.1)', () => {
  let tpm: Tpm;
  beforeAll(async () => {
    tpm = await started();
  });

  function verify(handle: number, digest: Buffer, signature: Signature) {
    return run(tpm, 'VerifySignature', [handle], { digest, signature });
  }
  const ecdsa = (rs: Buffer, hash: number = A.SHA256): Signature => {
    const half = rs.length / 2;
    return {
      sigAlg: A.ECDSA,
      signature: { hash, signatureR: rs.subarray(0, half), signatureS: rs.subarray(half) },
    };
  };

  it("accepts the TPM's own ECDSA signature and returns a VERIFIED ticket over digest || keyName", async () => {
    const k = eccKey(tpm);
    const digest = sha256(Buffer.from('verify me'));
    const signed = await sign(tpm, k.handle, digest);
    const { rc, out } = await verify(k.handle, digest, signed.out.signature);
    expect(rc).toBe(0);
    expect(out.validation.tag).toBe(TPM_ST.VERIFIED);
    expect(out.validation.hierarchy).toBe(TPM_RH.OWNER);
    const name = tpm.transientObject(k.handle)!.name;
    const tag = Buffer.from('8022', 'hex');
    const expected = createHmac('sha256', tpm.state.owner.proof)
      .update(tag)
      .update(digest)
      .update(name)
      .digest();
    expect(out.validation.digest).toEqual(expected);
  });

  it("accepts node:crypto's ECDSA, RSASSA and RSA-PSS signatures and rejects tampered ones (0x2DB)", async () => {
    const msg = Buffer.from('signed by node');
    const digest = sha256(msg);
    const e = eccKey(tpm);
    const rs = nodeSign('sha256', msg, { key: e.priv, dsaEncoding: 'ieee-p1363' });
    expect((await verify(e.handle, digest, ecdsa(rs))).rc).toBe(0);
    const badS = Buffer.from(rs);
    badS[63] = badS[63]! ^ 1;
    expect((await verify(e.handle, digest, ecdsa(badS))).rc).toBe(0x2db);
    expect((await verify(e.handle, sha256(Buffer.from('other')), ecdsa(rs))).rc).toBe(0x2db);
    // r = 0 and an over-long r are malformed, not errors of the TPM.
    expect((await verify(e.handle, digest, ecdsa(Buffer.alloc(64)))).rc).toBe(0x2db);

    const r = rsaKey(tpm);
    const pkcs1 = nodeSign('sha256', msg, { key: r.priv, padding: constants.RSA_PKCS1_PADDING });
    const rsassa = (sig: Buffer): Signature => ({
      sigAlg: A.RSASSA,
      signature: { hash: A.SHA256, sig },
    });
    expect((await verify(r.handle, digest, rsassa(pkcs1))).rc).toBe(0);
    const badPkcs1 = Buffer.from(pkcs1);
    badPkcs1[10] = badPkcs1[10]! ^ 0x80;
    expect((await verify(r.handle, digest, rsassa(badPkcs1))).rc).toBe(0x2db);
    expect((await verify(r.handle, digest, rsassa(pkcs1.subarray(1)))).rc).toBe(0x2db);

    const pss = nodeSign('sha256', msg, {
      key: r.priv,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: 32,
    });
    const rsapss: Signature = { sigAlg: A.RSAPSS, signature: { hash: A.SHA256, sig: pss } };
    expect((await verify(r.handle, digest, rsapss)).rc).toBe(0);
    expect((await verify(r.handle, sha256(Buffer.from('nope')), rsapss)).rc).toBe(0x2db);
    // The PKCS#1 signature is no PSS signature.
    expect(
      (
        await verify(r.handle, digest, {
          sigAlg: A.RSAPSS,
          signature: { hash: A.SHA256, sig: pkcs1 },
        })
      ).rc,
    ).toBe(0x2db);
  });

  it('HMAC signatures: the right one verifies, a wrong one or another hash does not', async () => {
    const key = randomBytes(32);
    const h = hmacKey(tpm, key);
    const digest = sha256(Buffer.from('mac'));
    const mac = createHmac('sha256', key).update(digest).digest();
    const sig = (hashAlg: number, d: Buffer): Signature => ({
      sigAlg: A.HMAC,
      signature: { hashAlg, digest: d },
    });
    expect((await verify(h, digest, sig(A.SHA256, mac))).rc).toBe(0);
    expect((await verify(h, digest, sig(A.SHA256, randomBytes(32)))).rc).toBe(0x2db);
    const mac384 = createHmac('sha384', key).update(digest).digest();
    expect((await verify(h, digest, sig(A.SHA384, mac384))).rc).toBe(0x2db);
  });

  it('a signature of another kind is TPM_RC_SCHEME (0x2D2), a NULL one TPM_RC_SIGNATURE (0x2DB)', async () => {
    const e = eccKey(tpm);
    const digest = sha256(Buffer.from('kind'));
    const rsaSig: Signature = {
      sigAlg: A.RSASSA,
      signature: { hash: A.SHA256, sig: randomBytes(256) },
    };
    expect((await verify(e.handle, digest, rsaSig)).rc).toBe(0x2d2);
    const r = rsaKey(tpm);
    expect((await verify(r.handle, digest, ecdsa(randomBytes(64)))).rc).toBe(0x2d2);
    expect((await verify(e.handle, digest, { sigAlg: A.NULL, signature: {} })).rc).toBe(0x2db);
  });

  it('a key without the sign attribute is TPM_RC_ATTRIBUTES for handle 1 (0x182)', async () => {
    const e = eccKey(tpm, {
      attrs: (SIGN_KEY & ~TPMA_OBJECT.sign) | TPMA_OBJECT.decrypt,
      scheme: NULL_SCHEME,
    });
    expect((await verify(e.handle, sha256(EMPTY), ecdsa(randomBytes(64)))).rc).toBe(0x182);
  });

  it('works with a public-only key in the NULL hierarchy, which gets a NULL ticket', async () => {
    const e = eccKey(tpm, { publicOnly: true, hierarchy: TPM_RH.NULL });
    const msg = Buffer.from('external');
    const rs = nodeSign('sha256', msg, { key: e.priv, dsaEncoding: 'ieee-p1363' });
    const { rc, out } = await verify(e.handle, sha256(msg), ecdsa(rs));
    expect(rc).toBe(0);
    expect(out.validation).toEqual(nullTicket(TPM_ST.VERIFIED));
  });

  it('P-384 signatures from node:crypto verify', async () => {
    const e = eccKey(tpm, { curve: 'P-384' });
    const msg = Buffer.from('p384');
    const rs = nodeSign('sha384', msg, { key: e.priv, dsaEncoding: 'ieee-p1363' });
    const digest = createHash('sha384').update(msg).digest();
    expect((await verify(e.handle, digest, ecdsa(rs, A.SHA384))).rc).toBe(0);
    expect(e.pub.asymmetricKeyDetails?.namedCurve).toBe('secp384r1');
  });
});

describe('with objects made by the TPM itself (CreatePrimary, LoadExternal)', () => {
  it('tpm2_sign flow: CreatePrimary(ECDSA P-256) -> Hash -> Sign -> VerifySignature, checked by node:crypto', async () => {
    const tpm = await started();
    const created = await run(
      tpm,
      'CreatePrimary',
      [TPM_RH.OWNER],
      {
        inSensitive: { userAuth: KEY_AUTH, data: EMPTY },
        inPublic: templates.eccSigningKey(),
        outsideInfo: EMPTY,
        creationPCR: [],
      },
      [EMPTY],
    );
    expect(created.rc).toBe(0);
    const handle = created.handles[0]!;
    const point = created.out.outPublic.unique as { x: Buffer; y: Buffer };
    const pub = createPublicKey({
      key: {
        kty: 'EC',
        crv: 'P-256',
        x: point.x.toString('base64url'),
        y: point.y.toString('base64url'),
      },
      format: 'jwk',
    });

    const msg = Buffer.from('a token to sign');
    const h = await run(tpm, 'Hash', [], { data: msg, hashAlg: A.SHA256, hierarchy: TPM_RH.OWNER });
    const signed = await sign(tpm, handle, h.out.outHash, NULL_SCHEME, h.out.validation);
    expect(signed.rc).toBe(0);
    const rs = ecdsaRS(signed.out.signature);
    expect(nodeVerify('sha256', msg, { key: pub, dsaEncoding: 'ieee-p1363' }, rs)).toBe(true);

    const v = await run(tpm, 'VerifySignature', [handle], {
      digest: h.out.outHash,
      signature: signed.out.signature,
    });
    expect(v.rc).toBe(0);
    expect(v.out.validation.hierarchy).toBe(TPM_RH.OWNER);

    // The same public key brought in with LoadExternal (public part only, NULL hierarchy).
    const ext = await run(tpm, 'LoadExternal', [], {
      inPrivate: undefined,
      inPublic: created.out.outPublic,
      hierarchy: TPM_RH.NULL,
    });
    expect(ext.rc).toBe(0);
    const v2 = await run(tpm, 'VerifySignature', [ext.handles[0]!], {
      digest: h.out.outHash,
      signature: signed.out.signature,
    });
    expect(v2.rc).toBe(0);
    expect(v2.out.validation).toEqual(nullTicket(TPM_ST.VERIFIED));
  });
});
