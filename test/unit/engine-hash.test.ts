// TPM2_Hash (Part 3 §17.4) and TPM2_HMAC (Part 3 §15.4) driven through real command bytes and
// compared with node:crypto.
import { createHash, createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import * as templates from '../../tpm-sim/client/templates.ts';
import type { Tpm } from '../../tpm-sim/engine/tpm.ts';
import { marshal } from '../../tpm-sim/wire/codec.ts';
import { COMMANDS } from '../../tpm-sim/wire/commands.ts';
import { TPM_ALG, TPM_CC, TPM_RH, TPM_ST, TPMA_OBJECT } from '../../tpm-sim/wire/constants.ts';
import { buildCommand } from '../../tpm-sim/wire/frame.ts';
import {
  nullTicket,
  type Public,
  SCHEME_NULL,
  type Scheme,
} from '../../tpm-sim/wire/structures.ts';
import { loadKeyedHash, loadObject, newTpm, run } from '../shared/engine.ts';

const A = TPM_ALG;
const EMPTY = Buffer.alloc(0);
const KEY_AUTH = Buffer.from('hmacpw');
const HMAC_KEY_ATTRS =
  TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.userWithAuth | TPMA_OBJECT.sign;

const started = () => newTpm({ maxTransientObjects: 16 });

const NODE_HASH: Record<number, string> = {
  [A.SHA1]: 'sha1',
  [A.SHA256]: 'sha256',
  [A.SHA384]: 'sha384',
  [A.SHA512]: 'sha512',
};

/** HMAC_hashAlg(proof, TPM_ST_HASHCHECK || digest): the ticket as this TPM defines it. */
function expectedTicket(proof: Buffer, hashAlg: number, digest: Buffer): Buffer {
  return createHmac(NODE_HASH[hashAlg]!, proof)
    .update(Buffer.from('8024', 'hex'))
    .update(digest)
    .digest();
}

describe('TPM2_Hash', () => {
  let tpm: Tpm;
  beforeAll(async () => {
    tpm = await started();
  });
  const hash = (data: Buffer, hashAlg: number, hierarchy: number) =>
    run(tpm, 'Hash', [], { data, hashAlg, hierarchy });

  it('outHash equals node:crypto for SHA-1/256/384/512, with a HASHCHECK ticket keyed by the hierarchy proof', async () => {
    const data = randomBytes(300);
    for (const alg of [A.SHA1, A.SHA256, A.SHA384, A.SHA512]) {
      const { rc, out } = await hash(data, alg, TPM_RH.OWNER);
      expect(rc).toBe(0);
      const want = createHash(NODE_HASH[alg]!).update(data).digest();
      expect(out.outHash).toEqual(want);
      expect(out.validation.tag).toBe(TPM_ST.HASHCHECK);
      expect(out.validation.hierarchy).toBe(TPM_RH.OWNER);
      expect(out.validation.digest).toEqual(expectedTicket(tpm.state.owner.proof, alg, want));
    }
    const e = await hash(data, A.SHA256, TPM_RH.ENDORSEMENT);
    expect(e.out.validation.hierarchy).toBe(TPM_RH.ENDORSEMENT);
    expect(e.out.validation.digest).toEqual(
      expectedTicket(tpm.state.endorsement.proof, A.SHA256, e.out.outHash),
    );
  });

  it('the exact response bytes: outHash then TPMT_TK_HASHCHECK', async () => {
    const cmd = buildCommand(
      TPM_CC.Hash,
      [],
      [],
      marshal(COMMANDS.Hash.params, {
        data: Buffer.from('abc'),
        hashAlg: A.SHA256,
        hierarchy: TPM_RH.NULL,
      }),
    );
    const rsp = Buffer.from(await tpm.execute(cmd));
    const sha = createHash('sha256').update('abc').digest('hex');
    // header | TPM2B outHash | tag 8024, hierarchy RH_NULL, empty digest
    expect(rsp.toString('hex')).toBe(
      `80010000003400000000 0020${sha} 8024 40000007 0000`.replaceAll(' ', ''),
    );
  });

  it('a NULL ticket for the NULL hierarchy and for data that starts with TPM_GENERATED_VALUE', async () => {
    expect((await hash(Buffer.from('x'), A.SHA256, TPM_RH.NULL)).out.validation).toEqual(
      nullTicket(TPM_ST.HASHCHECK),
    );
    const generated = Buffer.concat([Buffer.from('ff544347', 'hex'), Buffer.from('8018')]);
    expect((await hash(generated, A.SHA256, TPM_RH.OWNER)).out.validation).toEqual(
      nullTicket(TPM_ST.HASHCHECK),
    );
    // A prefix of the value is too short to be a TPM structure: it gets a ticket.
    const short = await hash(Buffer.from('ff5443', 'hex'), A.SHA256, TPM_RH.OWNER);
    expect(short.out.validation.hierarchy).toBe(TPM_RH.OWNER);
    expect(short.out.validation.digest.length).toBe(32);
    // Empty data too (tpm2_sign of an empty file).
    const empty = await hash(EMPTY, A.SHA256, TPM_RH.OWNER);
    expect(empty.out.outHash).toEqual(createHash('sha256').digest());
    expect(empty.out.validation.digest.length).toBe(32);
  });

  it('a hierarchy that is not one is TPM_RC_VALUE for parameter 3 (0x3C4); a NULL hash TPM_RC_HASH for 2 (0x2C3)', async () => {
    expect((await hash(Buffer.from('x'), A.SHA256, TPM_RH.LOCKOUT)).rc).toBe(0x3c4);
    expect((await hash(Buffer.from('x'), A.SHA256, 0x80000000)).rc).toBe(0x3c4);
    expect((await hash(Buffer.from('x'), A.NULL, TPM_RH.OWNER)).rc).toBe(0x2c3);
  });

  it('the ticket changes with the proof: a new TPM does not reproduce it', async () => {
    const other = await started();
    const a = await hash(Buffer.from('same'), A.SHA256, TPM_RH.OWNER);
    const b = await run(other, 'Hash', [], {
      data: Buffer.from('same'),
      hashAlg: A.SHA256,
      hierarchy: TPM_RH.OWNER,
    });
    expect(a.out.outHash).toEqual(b.out.outHash);
    expect(a.out.validation.digest).not.toEqual(b.out.validation.digest);
  });
});

function keyedHash(tpm: Tpm, key: Buffer, opts: { scheme?: Scheme; attrs?: number } = {}): number {
  const template = templates.hmacKey({ callerData: true });
  const publicArea: Public = {
    ...template,
    objectAttributes: opts.attrs ?? template.objectAttributes,
    parameters: opts.scheme ? { scheme: opts.scheme } : template.parameters,
  };
  return loadKeyedHash(tpm, publicArea, key, KEY_AUTH);
}

describe('TPM2_HMAC', () => {
  let tpm: Tpm;
  beforeAll(async () => {
    tpm = await started();
  });
  const mac = (handle: number, buffer: Buffer, hashAlg: number, password = KEY_AUTH) =>
    run(tpm, 'HMAC', [handle], { buffer, hashAlg }, [password]);

  it("equals crypto.createHmac with the key's hash (hashAlg NULL or the same hash)", async () => {
    const key = randomBytes(32);
    const h = keyedHash(tpm, key);
    const data = randomBytes(1000);
    const want = createHmac('sha256', key).update(data).digest();
    const a = await mac(h, data, A.NULL);
    expect(a.rc).toBe(0);
    expect(a.out.outHMAC).toEqual(want);
    expect((await mac(h, data, A.SHA256)).out.outHMAC).toEqual(want);
    // The empty message too.
    expect((await mac(h, EMPTY, A.NULL)).out.outHMAC).toEqual(createHmac('sha256', key).digest());
  });

  it('a key without a scheme takes hashAlg; then NULL is TPM_RC_VALUE for parameter 2 (0x2C4)', async () => {
    const key = randomBytes(48);
    const h = keyedHash(tpm, key, { scheme: SCHEME_NULL });
    const data = Buffer.from('any hash');
    expect((await mac(h, data, A.SHA384)).out.outHMAC).toEqual(
      createHmac('sha384', key).update(data).digest(),
    );
    expect((await mac(h, data, A.SHA1)).out.outHMAC).toEqual(
      createHmac('sha1', key).update(data).digest(),
    );
    expect((await mac(h, data, A.NULL)).rc).toBe(0x2c4);
  });

  it("a hashAlg that conflicts with the key's scheme is TPM_RC_VALUE for parameter 2 (0x2C4)", async () => {
    const h = keyedHash(tpm, randomBytes(32));
    expect((await mac(h, Buffer.from('x'), A.SHA384)).rc).toBe(0x2c4);
  });

  it('key checks: not keyedHash TPM_RC_TYPE (0x18A), restricted TPM_RC_ATTRIBUTES (0x182), no sign TPM_RC_KEY (0x19C)', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = privateKey.export({ format: 'jwk' });
    const ecc = loadObject(
      tpm,
      {
        ...templates.eccSigningKey({ attributes: HMAC_KEY_ATTRS }),
        unique: { x: Buffer.from(jwk.x!, 'base64url'), y: Buffer.from(jwk.y!, 'base64url') },
      },
      {
        sensitiveType: A.ECC,
        authValue: KEY_AUTH,
        seedValue: EMPTY,
        sensitive: Buffer.from(jwk.d!, 'base64url'),
      },
    );
    expect((await mac(ecc, Buffer.from('x'), A.NULL)).rc).toBe(0x18a);
    const restricted = keyedHash(tpm, randomBytes(32), {
      attrs: HMAC_KEY_ATTRS | TPMA_OBJECT.restricted,
    });
    expect((await mac(restricted, Buffer.from('x'), A.NULL)).rc).toBe(0x182);
    // A sealed data object: keyedHash without sign.
    const sealed = keyedHash(tpm, Buffer.from('secret'), {
      attrs: HMAC_KEY_ATTRS & ~TPMA_OBJECT.sign,
      scheme: SCHEME_NULL,
    });
    expect((await mac(sealed, Buffer.from('x'), A.SHA256)).rc).toBe(0x19c);
  });

  it('wrong password: TPM_RC_AUTH_FAIL for session 1 (0x98E); noDA key: TPM_RC_BAD_AUTH (0x9A2)', async () => {
    const fresh = await started();
    const da = keyedHash(fresh, randomBytes(32));
    const noDa = keyedHash(fresh, randomBytes(32), { attrs: HMAC_KEY_ATTRS | TPMA_OBJECT.noDA });
    const params = { buffer: Buffer.from('x'), hashAlg: A.NULL };
    expect((await run(fresh, 'HMAC', [da], params, [Buffer.from('nope')])).rc).toBe(0x98e);
    expect((await run(fresh, 'HMAC', [noDa], params, [Buffer.from('nope')])).rc).toBe(0x9a2);
    // Trailing zeros of a password do not count (Part 1 §19.6.4.3).
    expect(
      (await run(fresh, 'HMAC', [da], params, [Buffer.concat([KEY_AUTH, Buffer.of(0, 0)])])).rc,
    ).toBe(0);
  });

  it('needs an authorization session (TPM_RC_AUTH_MISSING, 0x125, without one)', async () => {
    const h = keyedHash(tpm, randomBytes(32));
    expect(
      (await run(tpm, 'HMAC', [h], { buffer: Buffer.from('x'), hashAlg: A.NULL }, [])).rc,
    ).toBe(0x125);
  });
});
