/**
 * Quote and Certify in the engine (Part 3 §18): RSA signatures, the privacy rule for clock
 * values (§18.1) and quotes over several banks.
 */
import { createHash, createPublicKey, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  InProcessTransport,
  type LoadedKey,
  pcrSelection,
  TPM_ALG,
  TPM_RH,
  TPMA_OBJECT,
  TpmClient,
  templates,
} from '../../tpm-sim/client/index.ts';
import { Tpm } from '../../tpm-sim/engine/tpm.ts';
import type { QuoteInfo, SignatureRsa } from '../../tpm-sim/wire/structures.ts';

const endorsement = { handle: TPM_RH.ENDORSEMENT, name: Buffer.from('4000000b', 'hex') };

async function boot() {
  const tpm = new Tpm();
  await tpm.powerOn();
  return new TpmClient(new InProcessTransport(tpm));
}

/** An ECC AK under the ECC EK, created and loaded with the EK policy (what tpm2_createak does). */
async function akUnderEk(client: TpmClient): Promise<LoadedKey> {
  const ek = await client.createPrimary({
    hierarchy: TPM_RH.ENDORSEMENT,
    template: templates.ekEccTemplate(),
  });
  let session = await client.startPolicySession();
  await client.policySecret(endorsement, session);
  const blob = await client.create(
    ek,
    { template: templates.eccAttestationKey() },
    { auth: session },
  );
  await client.flushContext(session.handle);
  session = await client.startPolicySession();
  await client.policySecret(endorsement, session);
  const ak = await client.load(ek, blob, Buffer.alloc(0), { auth: session });
  await client.flushContext(session.handle);
  await client.flushContext(ek);
  return ak;
}

describe('attestation', () => {
  it('an endorsement-hierarchy AK reports the real reset count and firmware version; an owner key a fixed mask of them', async () => {
    const client = await boot();
    const clock = await client.readClock();
    const ak = await akUnderEk(client);
    const q = await client.quote(ak, { pcrs: [pcrSelection(TPM_ALG.SHA256, [0])] });
    expect(q.attest.clockInfo.resetCount).toBe(clock.clockInfo.resetCount);
    expect(q.attest.clockInfo.restartCount).toBe(clock.clockInfo.restartCount);
    expect(q.attest.firmwareVersion).toBe(0x0000000100000000n);
    await client.flushContext(ak);

    const parent = await client.createPrimary({ template: templates.eccStoragePrimary() });
    const ownerAk = await client.createLoaded(parent, { template: templates.eccAttestationKey() });
    const a = await client.quote(ownerAk, { pcrs: [] });
    const b = await client.quote(ownerAk, { pcrs: [] });
    expect(a.attest.clockInfo.resetCount).not.toBe(clock.clockInfo.resetCount);
    expect(a.attest.firmwareVersion).not.toBe(0x0000000100000000n);
    // The mask is fixed per key: the same values in every quote of that key.
    expect(b.attest.clockInfo.resetCount).toBe(a.attest.clockInfo.resetCount);
    expect(b.attest.firmwareVersion).toBe(a.attest.firmwareVersion);
    // The clock itself is not masked, and moves forward.
    expect(b.attest.clockInfo.clock >= a.attest.clockInfo.clock).toBe(true);
  });

  it('an RSASSA AK quotes two banks; node:crypto verifies; pcrDigest covers both in selection order', async () => {
    const client = await boot();
    const parent = await client.createPrimary({ template: templates.eccStoragePrimary() });
    const template = templates.rsaSigningKey({
      attributes:
        TPMA_OBJECT.fixedTPM |
        TPMA_OBJECT.fixedParent |
        TPMA_OBJECT.sensitiveDataOrigin |
        TPMA_OBJECT.userWithAuth |
        TPMA_OBJECT.restricted |
        TPMA_OBJECT.sign,
    });
    const ak = await client.createLoaded(parent, { template });
    await client.pcrExtend(4, [
      { hashAlg: TPM_ALG.SHA1, digest: Buffer.alloc(20, 1) },
      { hashAlg: TPM_ALG.SHA256, digest: Buffer.alloc(32, 2) },
    ]);
    const pcrs = [pcrSelection(TPM_ALG.SHA256, [4]), pcrSelection(TPM_ALG.SHA1, [4, 5])];
    const q = await client.quote(ak, { pcrs, qualifyingData: Buffer.from('nonce') });
    const pub = createPublicKey({
      key: { kty: 'RSA', n: (ak.publicArea.unique as Buffer).toString('base64url'), e: 'AQAB' },
      format: 'jwk',
    });
    expect(q.signature.sigAlg).toBe(TPM_ALG.RSASSA);
    expect(verify('sha256', q.attestBytes, pub, (q.signature.signature as SignatureRsa).sig)).toBe(
      true,
    );
    const values = (await client.pcrRead(pcrs)).values.map((v) => v.digest);
    expect(values.map((v) => v.length)).toEqual([32, 20, 20]);
    const h = createHash('sha256');
    for (const v of values) h.update(v);
    expect((q.attest.attested as QuoteInfo).pcrDigest.equals(h.digest())).toBe(true);
  });
});
