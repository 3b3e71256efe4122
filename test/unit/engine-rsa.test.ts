// TPM2_RSA_Encrypt and TPM2_RSA_Decrypt (Part 3 §14.2, §14.3) driven through real command bytes,
// interoperating with node:crypto's publicEncrypt / privateDecrypt.
import {
  constants,
  generateKeyPairSync,
  type KeyObject,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import * as templates from '../../tpm-sim/client/templates.ts';
import { handleName, makeObject } from '../../tpm-sim/engine/objects.ts';
import type { Tpm } from '../../tpm-sim/engine/tpm.ts';
import { TPM_ALG, TPM_ECC_CURVE, TPM_RH, TPMA_OBJECT } from '../../tpm-sim/wire/constants.ts';
import {
  type Public,
  SCHEME_NULL,
  type Scheme,
  type Sensitive,
  SYM_NULL,
} from '../../tpm-sim/wire/structures.ts';
import { loadObject, newTpm, run } from '../shared/engine.ts';

const A = TPM_ALG;
const EMPTY = Buffer.alloc(0);
const KEY_AUTH = Buffer.from('rsapw');
const DECRYPT_KEY =
  TPMA_OBJECT.fixedTPM |
  TPMA_OBJECT.fixedParent |
  TPMA_OBJECT.sensitiveDataOrigin |
  TPMA_OBJECT.userWithAuth |
  TPMA_OBJECT.decrypt;
const OAEP_SHA1: Scheme = { scheme: A.OAEP, hashAlg: A.SHA1 };
const OAEP_SHA256: Scheme = { scheme: A.OAEP, hashAlg: A.SHA256 };
const RSAES: Scheme = { scheme: A.RSAES, hashAlg: A.NULL };

interface Loaded {
  handle: number;
  pub: KeyObject;
  priv: KeyObject;
}

// One RSA-2048 key pair for the whole file: generating one costs ~100 ms.
const PAIR = generateKeyPairSync('rsa', { modulusLength: 2048 });
const JWK = PAIR.privateKey.export({ format: 'jwk' });

function rsaKey(
  tpm: Tpm,
  opts: { scheme?: Scheme; attrs?: number; publicOnly?: boolean; keyAuth?: Buffer } = {},
): Loaded {
  const template = templates.rsaDecryptKey({ scheme: A.NULL });
  const publicArea: Public = {
    ...template,
    objectAttributes: opts.attrs ?? template.objectAttributes,
    parameters: { ...template.parameters, scheme: opts.scheme ?? SCHEME_NULL },
    unique: Buffer.from(JWK.n!, 'base64url'),
  };
  const sensitive: Sensitive = {
    sensitiveType: A.RSA,
    authValue: opts.keyAuth ?? KEY_AUTH,
    seedValue: EMPTY,
    sensitive: Buffer.from(JWK.p!, 'base64url'),
  };
  const obj = makeObject({
    publicArea,
    hierarchy: opts.publicOnly ? TPM_RH.NULL : TPM_RH.OWNER,
    parentQn: handleName(TPM_RH.OWNER),
    ...(opts.publicOnly ? {} : { sensitive }),
  });
  return { handle: tpm.loadTransient(obj), pub: PAIR.publicKey, priv: PAIR.privateKey };
}

const started = () => newTpm({ maxTransientObjects: 16 });

describe('TPM2_RSA_Encrypt and TPM2_RSA_Decrypt with node:crypto on the other side', () => {
  let tpm: Tpm;
  let key: Loaded;
  beforeAll(async () => {
    tpm = await started();
    key = rsaKey(tpm);
  });

  const encrypt = (handle: number, message: Buffer, inScheme: Scheme, label = EMPTY) =>
    run(tpm, 'RSA_Encrypt', [handle], { message, inScheme, label });
  const decrypt = (
    handle: number,
    cipherText: Buffer,
    inScheme: Scheme,
    label = EMPTY,
    password = KEY_AUTH,
  ) => run(tpm, 'RSA_Decrypt', [handle], { cipherText, inScheme, label }, [password]);

  it('RSA_Encrypt OAEP-SHA1 without a label -> privateDecrypt', async () => {
    const msg = randomBytes(40);
    const { rc, out } = await encrypt(key.handle, msg, OAEP_SHA1);
    expect(rc).toBe(0);
    expect(out.outData.length).toBe(256);
    expect(privateDecrypt({ key: key.priv, oaepHash: 'sha1' }, out.outData)).toEqual(msg);
  });

  it('RSA_Encrypt OAEP-SHA256 with a label (its terminating zero is part of the OAEP label) -> privateDecrypt', async () => {
    const msg = Buffer.from('secret for the agent');
    const label = Buffer.from('my label\0');
    const { rc, out } = await encrypt(key.handle, msg, OAEP_SHA256, label);
    expect(rc).toBe(0);
    expect(
      privateDecrypt({ key: key.priv, oaepHash: 'sha256', oaepLabel: label }, out.outData),
    ).toEqual(msg);
    // And back through the TPM.
    expect((await decrypt(key.handle, out.outData, OAEP_SHA256, label)).out.message).toEqual(msg);
  });

  it('publicEncrypt (OAEP-SHA1, OAEP-SHA256 with a label, PKCS#1 v1.5) -> RSA_Decrypt', async () => {
    const msg = randomBytes(32);
    const c1 = publicEncrypt({ key: key.pub, oaepHash: 'sha1' }, msg);
    expect((await decrypt(key.handle, c1, OAEP_SHA1)).out.message).toEqual(msg);
    const label = Buffer.from('DUPLICATE\0');
    const c2 = publicEncrypt({ key: key.pub, oaepHash: 'sha256', oaepLabel: label }, msg);
    const d2 = await decrypt(key.handle, c2, OAEP_SHA256, label);
    expect(d2.rc).toBe(0);
    expect(d2.out.message).toEqual(msg);
    const c3 = publicEncrypt({ key: key.pub, padding: constants.RSA_PKCS1_PADDING }, msg);
    expect((await decrypt(key.handle, c3, RSAES)).out.message).toEqual(msg);
  });

  it('RSAES: RSA_Encrypt output has PKCS#1 v1.5 type-2 padding and round-trips', async () => {
    const msg = Buffer.from('pkcs1 v1.5');
    const { out } = await encrypt(key.handle, msg, RSAES);
    const em = privateDecrypt({ key: key.priv, padding: constants.RSA_NO_PADDING }, out.outData);
    expect(em.subarray(0, 2)).toEqual(Buffer.from([0, 2]));
    expect(em.subarray(em.length - msg.length - 1)).toEqual(Buffer.concat([Buffer.of(0), msg]));
    expect((await decrypt(key.handle, out.outData, RSAES)).out.message).toEqual(msg);
  });

  it('NULL scheme on both sides is raw RSA: m^e mod n, and c^d mod n at the modulus size', async () => {
    const msg = Buffer.concat([Buffer.alloc(3), randomBytes(100)]);
    const { rc, out } = await encrypt(key.handle, msg, SCHEME_NULL);
    expect(rc).toBe(0);
    const plain = privateDecrypt({ key: key.priv, padding: constants.RSA_NO_PADDING }, out.outData);
    expect(plain).toEqual(Buffer.concat([Buffer.alloc(256 - msg.length), msg]));

    const block = Buffer.concat([Buffer.of(0), randomBytes(255)]);
    const c = publicEncrypt({ key: key.pub, padding: constants.RSA_NO_PADDING }, block);
    const d = await decrypt(key.handle, c, SCHEME_NULL);
    expect(d.rc).toBe(0);
    expect(d.out.message).toEqual(block);
  });

  it("the key's scheme applies when inScheme is NULL; a different inScheme is TPM_RC_SCHEME for parameter 2 (0x2D2)", async () => {
    const oaepKey = rsaKey(tpm, { scheme: OAEP_SHA256 });
    const msg = Buffer.from('key scheme');
    const { out } = await encrypt(oaepKey.handle, msg, SCHEME_NULL);
    expect(privateDecrypt({ key: key.priv, oaepHash: 'sha256' }, out.outData)).toEqual(msg);
    expect((await decrypt(oaepKey.handle, out.outData, SCHEME_NULL)).out.message).toEqual(msg);
    expect((await encrypt(oaepKey.handle, msg, OAEP_SHA1)).rc).toBe(0x2d2);
    expect((await encrypt(oaepKey.handle, msg, RSAES)).rc).toBe(0x2d2);
    expect((await decrypt(oaepKey.handle, out.outData, OAEP_SHA1)).rc).toBe(0x2d2);
    // A sign-and-decrypt key whose scheme is a signature scheme cannot encrypt with it.
    const signScheme = rsaKey(tpm, {
      attrs: DECRYPT_KEY | TPMA_OBJECT.sign,
      scheme: { scheme: A.RSASSA, hashAlg: A.SHA256 },
    });
    expect((await encrypt(signScheme.handle, msg, SCHEME_NULL)).rc).toBe(0x2d2);
  });

  it('a label without its terminating zero is TPM_RC_VALUE for parameter 3 (0x3C4)', async () => {
    const msg = Buffer.from('x');
    expect((await encrypt(key.handle, msg, OAEP_SHA256, Buffer.from('label'))).rc).toBe(0x3c4);
    const c = publicEncrypt({ key: key.pub, oaepHash: 'sha256' }, msg);
    expect((await decrypt(key.handle, c, OAEP_SHA256, Buffer.from('label'))).rc).toBe(0x3c4);
  });

  it('a message too long for the scheme, or raw input not below n, is TPM_RC_VALUE for parameter 1 (0x1C4)', async () => {
    // OAEP-SHA256 with RSA-2048 carries at most 256 - 2*32 - 2 = 190 bytes.
    expect((await encrypt(key.handle, randomBytes(190), OAEP_SHA256)).rc).toBe(0);
    expect((await encrypt(key.handle, randomBytes(191), OAEP_SHA256)).rc).toBe(0x1c4);
    expect((await encrypt(key.handle, randomBytes(246), RSAES)).rc).toBe(0x1c4);
    expect((await encrypt(key.handle, Buffer.alloc(256, 0xff), SCHEME_NULL)).rc).toBe(0x1c4);
    expect((await encrypt(key.handle, Buffer.alloc(257, 1), SCHEME_NULL)).rc).toBe(0x1c4);
  });

  it('decryption failures are a bare TPM_RC_VALUE (0x084); a wrong-size ciphertext TPM_RC_SIZE for parameter 1 (0x1D5)', async () => {
    const msg = randomBytes(16);
    const c = publicEncrypt(
      { key: key.pub, oaepHash: 'sha256', oaepLabel: Buffer.from('a\0') },
      msg,
    );
    expect((await decrypt(key.handle, c, OAEP_SHA256, Buffer.from('b\0'))).rc).toBe(0x084);
    const tampered = Buffer.from(c);
    tampered[100] = tampered[100]! ^ 1;
    expect((await decrypt(key.handle, tampered, OAEP_SHA256, Buffer.from('a\0'))).rc).toBe(0x084);
    expect((await decrypt(key.handle, c, RSAES)).rc).toBe(0x084);
    expect((await decrypt(key.handle, Buffer.alloc(256, 0xff), SCHEME_NULL)).rc).toBe(0x084);
    expect((await decrypt(key.handle, c.subarray(1), OAEP_SHA256)).rc).toBe(0x1d5);
  });

  it('key checks: not RSA TPM_RC_KEY (0x19C); no decrypt, or restricted for Decrypt, TPM_RC_ATTRIBUTES (0x182)', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = privateKey.export({ format: 'jwk' });
    const ecc = loadObject(
      tpm,
      {
        type: A.ECC,
        nameAlg: A.SHA256,
        objectAttributes: DECRYPT_KEY,
        authPolicy: EMPTY,
        parameters: {
          symmetric: SYM_NULL,
          scheme: SCHEME_NULL,
          curveID: TPM_ECC_CURVE.NIST_P256,
          kdf: SCHEME_NULL,
        },
        unique: { x: Buffer.from(jwk.x!, 'base64url'), y: Buffer.from(jwk.y!, 'base64url') },
      },
      {
        sensitiveType: A.ECC,
        authValue: KEY_AUTH,
        seedValue: EMPTY,
        sensitive: Buffer.from(jwk.d!, 'base64url'),
      },
    );
    expect((await encrypt(ecc, Buffer.from('x'), OAEP_SHA256)).rc).toBe(0x19c);
    expect((await decrypt(ecc, randomBytes(256), OAEP_SHA256)).rc).toBe(0x19c);

    const signOnly = rsaKey(tpm, {
      attrs: (DECRYPT_KEY & ~TPMA_OBJECT.decrypt) | TPMA_OBJECT.sign,
    });
    expect((await encrypt(signOnly.handle, Buffer.from('x'), OAEP_SHA256)).rc).toBe(0x182);
    expect((await decrypt(signOnly.handle, randomBytes(256), OAEP_SHA256)).rc).toBe(0x182);

    // A storage parent: it may be encrypted to, but never decrypts in the clear.
    const parent = rsaKey(tpm, { attrs: DECRYPT_KEY | TPMA_OBJECT.restricted });
    const { rc, out } = await encrypt(parent.handle, Buffer.from('seed'), OAEP_SHA256);
    expect(rc).toBe(0);
    expect((await decrypt(parent.handle, out.outData, OAEP_SHA256)).rc).toBe(0x182);
  });

  it('RSA_Encrypt needs no authorization and works on a public-only key; RSA_Decrypt on one is TPM_RC_AUTH_UNAVAILABLE', async () => {
    const pubOnly = rsaKey(tpm, { publicOnly: true });
    const msg = Buffer.from('public only');
    const { rc, out } = await encrypt(pubOnly.handle, msg, OAEP_SHA256);
    expect(rc).toBe(0);
    expect(privateDecrypt({ key: key.priv, oaepHash: 'sha256' }, out.outData)).toEqual(msg);
    expect((await decrypt(pubOnly.handle, out.outData, OAEP_SHA256, EMPTY, EMPTY)).rc).toBe(0x12f);
  });

  it('RSA_Decrypt with a wrong password: TPM_RC_AUTH_FAIL for session 1 (0x98E), or TPM_RC_BAD_AUTH (0x9A2) with noDA', async () => {
    const fresh = await started();
    const da = rsaKey(fresh);
    const noDa = rsaKey(fresh, { attrs: DECRYPT_KEY | TPMA_OBJECT.noDA });
    const c = publicEncrypt({ key: PAIR.publicKey, oaepHash: 'sha256' }, Buffer.from('x'));
    const params = { cipherText: c, inScheme: OAEP_SHA256, label: EMPTY };
    expect((await run(fresh, 'RSA_Decrypt', [da.handle], params, [Buffer.from('bad')])).rc).toBe(
      0x98e,
    );
    expect((await run(fresh, 'RSA_Decrypt', [noDa.handle], params, [Buffer.from('bad')])).rc).toBe(
      0x9a2,
    );
    expect((await run(fresh, 'RSA_Decrypt', [da.handle], params, [KEY_AUTH])).rc).toBe(0);
  });
});
