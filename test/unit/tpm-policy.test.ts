/**
 * Policy sessions in the engine (Part 1 §19.7; Part 3 §11.1, §23.4 PolicySecret, §23.19
 * PolicyGetDigest): saved and loaded sessions, cpHash binding, expiration and tickets, trial
 * sessions.
 */
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  InProcessTransport,
  PolicySession,
  TPM_ALG,
  TPM_RH,
  TPM_ST,
  TpmClient,
  templates,
} from '../../tpm-sim/client/index.ts';
import { cpHash } from '../../tpm-sim/crypto/auth-hmac.ts';
import { kdfa } from '../../tpm-sim/crypto/kdf.ts';
import { Tpm } from '../../tpm-sim/engine/tpm.ts';
import { marshal } from '../../tpm-sim/wire/codec.ts';
import { COMMANDS } from '../../tpm-sim/wire/commands.ts';
import { nullTicket } from '../../tpm-sim/wire/structures.ts';

const endorsement = { handle: TPM_RH.ENDORSEMENT, name: Buffer.from('4000000b', 'hex') };
const digest = createHash('sha256').update('policy').digest();

async function boot() {
  const tpm = new Tpm();
  await tpm.powerOn();
  return new TpmClient(new InProcessTransport(tpm));
}

async function rc(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (err) {
    return (err as { rc: number }).rc;
  }
  return 0;
}

/** A loaded ECC signing key whose authPolicy is the EK policy, and its parent. */
async function policyKey(client: TpmClient) {
  const parent = await client.createPrimary({ template: templates.eccStoragePrimary() });
  const template = { ...templates.eccSigningKey(), authPolicy: templates.EK_AUTH_POLICY };
  const key = await client.createLoaded(parent, { template });
  return { parent, key };
}

describe('policy sessions', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('StartAuthSession takes HMAC, policy and trial sessions only (TPM_RC_VALUE, parameter 3)', async () => {
    const client = await boot();
    const start = (sessionType: number) =>
      client.call('StartAuthSession', [TPM_RH.NULL, TPM_RH.NULL], {
        nonceCaller: Buffer.alloc(32, 1),
        encryptedSalt: Buffer.alloc(0),
        sessionType,
        symmetric: { algorithm: TPM_ALG.NULL, keyBits: 0, mode: 0 },
        authHash: TPM_ALG.SHA256,
      });
    expect(await rc(start(2))).toBe(0x3c4);
    const trial = await start(3);
    expect(trial.handles[0]! >>> 24).toBe(0x03);
  });

  it('a policy session keeps its digest through ContextSave and ContextLoad', async () => {
    const client = await boot();
    const { key } = await policyKey(client);
    const session = await client.startPolicySession();
    await client.policySecret(endorsement, session);
    const ctx = await client.contextSave(session.handle);
    expect(await client.contextLoad(ctx)).toBe(session.handle);
    expect((await client.policyGetDigest(session)).equals(templates.EK_AUTH_POLICY)).toBe(true);
    await client.sign(key, digest, {}, { auth: session });
  });

  it('a trial session computes the same digest and authorizes nothing', async () => {
    const client = await boot();
    const trial = await client.startPolicySession({ trial: true });
    await client.policySecret(endorsement, trial);
    expect((await client.policyGetDigest(trial)).equals(templates.EK_AUTH_POLICY)).toBe(true);
    // PolicySecret still checks the secret for a trial session.
    expect(
      await rc(client.policySecret({ ...endorsement, authValue: Buffer.from('no') }, trial)),
    ).toBe(0x9a2);
    const { key } = await policyKey(client);
    expect(await rc(client.sign(key, digest, {}, { auth: trial }))).toBe(0x982);
  });

  it('cpHashA binds the session to one command with one set of parameters', async () => {
    const client = await boot();
    const { key } = await policyKey(client);
    const params = (d: Buffer) =>
      marshal(COMMANDS.Sign.params, {
        digest: d,
        inScheme: { scheme: TPM_ALG.NULL, hashAlg: TPM_ALG.NULL },
        validation: nullTicket(),
      });
    const cp = cpHash(TPM_ALG.SHA256, COMMANDS.Sign.cc, [key.name], params(digest));
    const session = await client.startPolicySession();
    await client.policySecret(endorsement, session, { cpHashA: cp });
    // Another cpHashA for the same session: TPM_RC_CPHASH.
    expect(
      await rc(client.policySecret(endorsement, session, { cpHashA: Buffer.alloc(32, 1) })),
    ).toBe(0x151);
    const other = createHash('sha256').update('other').digest();
    expect(await rc(client.sign(key, other, {}, { auth: session }))).toBe(0x99d);
    // The failed use changed nothing: the bound command still goes through.
    const sig = await client.sign(key, digest, {}, { auth: session });
    expect(sig.sigAlg).toBe(TPM_ALG.ECDSA);
  });

  it('expiration: the session stops authorizing; a negative one also gives a ticket', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
    const client = await boot();
    const { key } = await policyKey(client);
    const session = await client.startPolicySession();
    const { timeout, ticket } = await client.policySecret(endorsement, session, {
      expiration: -5,
    });
    expect(timeout.length).toBe(8);
    // No nonceTPM given: the timeout is marked as expiring on TPM Reset (its top bit).
    expect(timeout[0]! & 0x80).toBe(0x80);
    expect(ticket.tag).toBe(TPM_ST.AUTH_SECRET);
    expect(ticket.hierarchy).toBe(TPM_RH.ENDORSEMENT);
    expect(ticket.digest.length).toBe(32);
    vi.setSystemTime(new Date('2030-01-01T00:00:06Z'));
    expect(await rc(client.sign(key, digest, {}, { auth: session }))).toBe(0x9a3);

    // A positive expiration: no ticket, still a limit.
    const bound = await client.startPolicySession();
    const r = await client.policySecret(endorsement, bound, { expiration: 5, bindNonce: true });
    expect(r.timeout.length).toBe(0);
    expect(r.ticket.hierarchy).toBe(TPM_RH.NULL);
    await client.sign(key, digest, {}, { auth: bound });
  });

  it('a bound policy session signs its commands with its session key (and only with it)', async () => {
    const client = await boot();
    const { key } = await policyKey(client);
    const ownerAuth = Buffer.from('owner secret');
    await client.changeHierarchyAuth(TPM_RH.OWNER, Buffer.alloc(0), ownerAuth);
    const nonceCaller = Buffer.alloc(32, 7);
    const { handles, response } = await client.call(
      'StartAuthSession',
      [TPM_RH.NULL, { handle: TPM_RH.OWNER, name: Buffer.from('40000001', 'hex') }],
      {
        nonceCaller,
        encryptedSalt: Buffer.alloc(0),
        sessionType: 1,
        symmetric: { algorithm: TPM_ALG.NULL, keyBits: 0, mode: 0 },
        authHash: TPM_ALG.SHA256,
      },
    );
    // Part 1 §19.6.8: sessionKey = KDFa(authHash, bind authValue, "ATH", nonceTPM, nonceCaller, 256).
    const sessionKey = kdfa(TPM_ALG.SHA256, ownerAuth, 'ATH', response.nonceTPM, nonceCaller, 256);
    const make = (k: Buffer) =>
      new PolicySession({
        handle: handles[0]!,
        authHash: TPM_ALG.SHA256,
        nonceTPM: response.nonceTPM,
        sessionKey: k,
      });
    await client.policySecret(endorsement, make(sessionKey));
    // The key is DA-protected: a wrong HMAC is TPM_RC_AUTH_FAIL for session 1.
    expect(await rc(client.sign(key, digest, {}, { auth: make(Buffer.alloc(32)) }))).toBe(0x98e);
    const sig = await client.sign(key, digest, {}, { auth: make(sessionKey) });
    expect(sig.sigAlg).toBe(TPM_ALG.ECDSA);
  });

  it('the EK (adminWithPolicy) cannot be certified with its authValue: the ADMIN role needs a policy', async () => {
    const client = await boot();
    const ek = await client.createPrimary({
      hierarchy: TPM_RH.ENDORSEMENT,
      template: templates.ekEccTemplate(),
    });
    expect(await rc(client.certify(ek, null))).toBe(0x12f);
  });
});
