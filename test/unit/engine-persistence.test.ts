import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  InProcessTransport,
  TPM_RH,
  TpmClient,
  TpmTransportError,
  templates,
} from '../../tpm-sim/client/index.ts';
import { Tpm } from '../../tpm-sim/engine/tpm.ts';

const digest = createHash('sha256').update('persist').digest();

async function boot(state?: Uint8Array, persist?: (s: Uint8Array) => Promise<void>) {
  const tpm = new Tpm({ ...(state ? { state } : {}), ...(persist ? { persist } : {}) });
  await tpm.powerOn();
  return { tpm, client: new TpmClient(new InProcessTransport(tpm)) };
}

describe('what survives a restart', () => {
  it('persistent keys, hierarchy seeds and auths survive; the NULL hierarchy does not', async () => {
    let saved: Uint8Array | undefined;
    const save = async (s: Uint8Array) => {
      saved = s;
    };
    const first = await boot(undefined, save);
    const primary = await first.client.createPrimary({ template: templates.eccStoragePrimary() });
    const nullPrimary = await first.client.createPrimary({
      hierarchy: TPM_RH.NULL,
      template: templates.eccStoragePrimary(),
    });
    const blob = await first.client.create(primary, { template: templates.eccSigningKey() });
    const key = await first.client.load(primary, blob);
    await first.client.evictControl(key, 0x81000002);
    await first.client.changeHierarchyAuth(TPM_RH.ENDORSEMENT, Buffer.alloc(0), Buffer.from('ek'));
    await first.tpm.powerOff();

    const second = await boot(saved, save);
    expect((await second.client.readPublic(0x81000002)).name.equals(key.name)).toBe(true);
    await second.client.sign({ handle: 0x81000002, name: key.name }, digest);
    const again = await second.client.createPrimary({ template: templates.eccStoragePrimary() });
    expect(again.name.equals(primary.name)).toBe(true);
    // A blob made before the restart loads under the re-created primary.
    const reloaded = await second.client.load(again, blob);
    expect(reloaded.name.equals(key.name)).toBe(true);
    await second.client.flushContext(reloaded);
    const nullAgain = await second.client.createPrimary({
      hierarchy: TPM_RH.NULL,
      template: templates.eccStoragePrimary(),
    });
    expect(nullAgain.name.equals(nullPrimary.name)).toBe(false);
    await second.client.flushContext(nullAgain);
    const withOldAuth = await second.client
      .createPrimary({ hierarchy: TPM_RH.ENDORSEMENT, template: templates.eccStoragePrimary() })
      .catch((e: { rc?: number }) => e.rc);
    expect(withOldAuth).toBe(0x9a2);
  });

  it('a context saved before a restart does not load after it (TPM_RC_INTEGRITY)', async () => {
    let saved: Uint8Array | undefined;
    const first = await boot(undefined, async (s) => {
      saved = s;
    });
    const primary = await first.client.createPrimary({ template: templates.eccStoragePrimary() });
    const ctx = await first.client.contextSave(primary);
    await first.tpm.powerOff();
    const second = await boot(saved);
    expect(await second.client.contextLoad(ctx).catch((e: { rc?: number }) => e.rc)).toBe(0x1df);
  });

  it('a failed state write fails the command and leaves the TPM as it was', async () => {
    let fail = false;
    const { client } = await boot(undefined, async () => {
      if (fail) throw new Error('disk full');
    });
    const primary = await client.createPrimary({ template: templates.eccStoragePrimary() });
    fail = true;
    const err = await client.evictControl(primary, 0x81000003).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TpmTransportError);
    fail = false;
    expect(await client.readPublic(0x81000003).catch((e: { rc?: number }) => e.rc)).toBe(0x18b);
    await client.evictControl(primary, 0x81000003);
    expect((await client.readPublic(0x81000003)).name.equals(primary.name)).toBe(true);
  });
});
