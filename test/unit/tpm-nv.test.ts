/**
 * NV indexes in the engine (Part 3 §31): persistence across restarts, the state format change
 * (version 1 -> 2), platform indexes, policy-authorized indexes and NV memory limits.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  InProcessTransport,
  TPM_RH,
  TPMA_NV,
  TpmClient,
  templates,
} from '../../tpm-sim/client/index.ts';
import { NV_LIMITS } from '../../tpm-sim/engine/nv.ts';
import {
  decodeState,
  encodeState,
  STATE_VERSION,
  StateFormatError,
} from '../../tpm-sim/engine/persistent-state.ts';
import { Tpm } from '../../tpm-sim/engine/tpm.ts';
import { marshal } from '../../tpm-sim/wire/codec.ts';
import { TPMS_NV_PUBLIC } from '../../tpm-sim/wire/structures.ts';

const INDEX = 0x01500020;
const ATTRS =
  TPMA_NV.OWNERWRITE | TPMA_NV.OWNERREAD | TPMA_NV.AUTHWRITE | TPMA_NV.AUTHREAD | TPMA_NV.NO_DA;

async function boot(state?: Uint8Array, persist?: (s: Uint8Array) => Promise<void>) {
  const tpm = new Tpm({ ...(state ? { state } : {}), ...(persist ? { persist } : {}) });
  await tpm.powerOn();
  return { tpm, client: new TpmClient(new InProcessTransport(tpm)) };
}

async function rc(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (err) {
    return (err as { rc: number }).rc;
  }
  return 0;
}

/** State as a version 1 TPM wrote it: no `nv`, no `orderly`. */
function asVersion1(bytes: Uint8Array): Uint8Array {
  const raw = JSON.parse(Buffer.from(bytes).toString('utf8'));
  delete raw.nv;
  delete raw.orderly;
  raw.version = 1;
  return Buffer.from(JSON.stringify(raw));
}

describe('NV indexes', () => {
  it('an index, its data, its authValue and WRITTEN survive a restart; so does undefining it', async () => {
    let saved: Uint8Array | undefined;
    const save = async (s: Uint8Array) => {
      saved = s;
    };
    const first = await boot(undefined, save);
    const authValue = Buffer.from('nv secret');
    await first.client.nvDefineSpace({ index: INDEX, size: 16, attributes: ATTRS, authValue });
    await first.client.nvWrite(INDEX, Buffer.from('persisted!'), { authValue });
    const name = (await first.client.nvReadPublic(INDEX)).name;
    await first.tpm.powerOff();

    const second = await boot(saved, save);
    const pub = await second.client.nvReadPublic(INDEX);
    expect(pub.name.equals(name)).toBe(true);
    expect(pub.nvPublic.attributes).toBe((ATTRS | TPMA_NV.WRITTEN) >>> 0);
    const data = await second.client.nvRead(INDEX, { authValue, size: 10 });
    expect(data.toString()).toBe('persisted!');
    expect(await rc(second.client.nvRead(INDEX, { authValue: Buffer.from('x') }))).toBe(0x9a2);
    await second.client.nvUndefineSpace(INDEX);
    await second.tpm.powerOff();

    const third = await boot(saved, save);
    expect(await rc(third.client.nvReadPublic(INDEX))).toBe(0x18b);
  });

  it('state format 2 is written; version 1 state (before NV) still loads and gains NV', async () => {
    let saved: Uint8Array | undefined;
    const save = async (s: Uint8Array) => {
      saved = s;
    };
    const first = await boot(undefined, save);
    const primary = await first.client.createPrimary({ template: templates.eccStoragePrimary() });
    const blob = await first.client.create(primary, { template: templates.eccSigningKey() });
    const key = await first.client.load(primary, blob);
    await first.client.evictControl(key, 0x81000005);
    await first.tpm.powerOff();
    expect(JSON.parse(Buffer.from(saved!).toString()).version).toBe(STATE_VERSION);
    expect(STATE_VERSION).toBe(2);

    const v1 = asVersion1(saved!);
    const decoded = decodeState(v1);
    expect(decoded.nv.size).toBe(0);
    expect(decoded.orderly).toBeUndefined();
    expect(decoded.objects).toHaveLength(1);

    saved = undefined;
    const second = await boot(v1, save);
    // What version 1 kept is all there: the persistent key and the seeds.
    expect((await second.client.readPublic(0x81000005)).name.equals(key.name)).toBe(true);
    const again = await second.client.createPrimary({ template: templates.eccStoragePrimary() });
    expect(again.name.equals(primary.name)).toBe(true);
    await second.client.flushContext(again);
    // And NV works; the next save is version 2.
    await second.client.nvDefineSpace({ index: INDEX, size: 8, attributes: ATTRS });
    const written = JSON.parse(Buffer.from(saved!).toString());
    expect(written.version).toBe(2);
    expect(written.nv).toHaveLength(1);
    expect(decodeState(saved!).nv.get(INDEX)?.public.dataSize).toBe(8);
  });

  it('decodeState refuses malformed NV entries and unknown versions', () => {
    const good = JSON.parse(Buffer.from(encodeState(new Tpm().state)).toString());
    const entry = {
      public: { nvIndex: INDEX, nameAlg: 0x0b, attributes: ATTRS, authPolicy: '', dataSize: 4 },
      authValue: '',
      data: 'ffffffff',
    };
    const withNv = (nv: unknown) => Buffer.from(JSON.stringify({ ...good, nv }));
    expect(
      decodeState(withNv([entry]))
        .nv.get(INDEX)
        ?.data.toString('hex'),
    ).toBe('ffffffff');
    expect(() => decodeState(withNv([{ ...entry, data: 'ff' }]))).toThrow(StateFormatError);
    expect(() =>
      decodeState(withNv([{ ...entry, public: { ...entry.public, nvIndex: 0x81000000 } }])),
    ).toThrow(StateFormatError);
    expect(() =>
      decodeState(withNv([{ ...entry, public: { ...entry.public, nameAlg: 0x10 } }])),
    ).toThrow(StateFormatError);
    expect(() => decodeState(withNv([entry, entry]))).toThrow(StateFormatError);
    expect(() => decodeState(withNv('nope'))).toThrow(StateFormatError);
    expect(() => decodeState(Buffer.from(JSON.stringify({ ...good, version: 3 })))).toThrow(
      /unknown state version 3/,
    );
  });

  it('platform indexes: only the platform defines and deletes them; POLICY_DELETE needs the special command', async () => {
    const { client } = await boot();
    const platform = { authHandle: TPM_RH.PLATFORM };
    const attrs =
      TPMA_NV.PPWRITE | TPMA_NV.PPREAD | TPMA_NV.OWNERREAD | TPMA_NV.PLATFORMCREATE | TPMA_NV.NO_DA;
    await client.nvDefineSpace({ index: 0x01c00100, size: 8, attributes: attrs, ...platform });
    // Without PLATFORMCREATE the platform is refused (TPM_RC_ATTRIBUTES, handle 1).
    expect(
      await rc(
        client.nvDefineSpace({
          index: 0x01c00101,
          size: 8,
          attributes: attrs & ~TPMA_NV.PLATFORMCREATE,
          ...platform,
        }),
      ),
    ).toBe(0x182);
    await client.nvWrite(0x01c00100, Buffer.from('platform'), { authHandle: TPM_RH.PLATFORM });
    expect((await client.nvRead(0x01c00100, { authHandle: TPM_RH.OWNER })).toString()).toBe(
      'platform',
    );
    expect(await rc(client.nvWrite(0x01c00100, Buffer.of(1), { authHandle: TPM_RH.OWNER }))).toBe(
      0x149,
    );
    expect(await rc(client.nvUndefineSpace(0x01c00100))).toBe(0x149);
    await client.nvUndefineSpace(0x01c00100, platform);
    await client.nvDefineSpace({
      index: 0x01c00102,
      size: 8,
      attributes: attrs | TPMA_NV.POLICY_DELETE,
      authPolicy: Buffer.alloc(32),
      ...platform,
    });
    expect(await rc(client.nvUndefineSpace(0x01c00102, platform))).toBe(0x282);
  });

  it('a policy index: written under PolicySecret(endorsement), never with its authValue', async () => {
    const { client } = await boot();
    await client.nvDefineSpace({
      index: INDEX,
      size: 8,
      attributes: TPMA_NV.POLICYWRITE | TPMA_NV.POLICYREAD | TPMA_NV.NO_DA,
      authPolicy: templates.EK_AUTH_POLICY,
    });
    expect(await rc(client.nvWrite(INDEX, Buffer.from('x')))).toBe(0x12f);
    const session = await client.startPolicySession();
    const endorsement = { handle: TPM_RH.ENDORSEMENT, name: Buffer.from('4000000b', 'hex') };
    expect(await rc(client.nvWrite(INDEX, Buffer.from('x'), {}, { auth: session }))).toBe(0x99d);
    await client.policySecret(endorsement, session);
    await client.nvWrite(INDEX, Buffer.from('policy'), {}, { auth: session });
    await client.policySecret(endorsement, session);
    expect((await client.nvRead(INDEX, { size: 6 }, { auth: session })).toString()).toBe('policy');
  });

  it('NV memory is finite: TPM_RC_NV_SPACE when it runs out', async () => {
    const { client } = await boot();
    const per = 2048;
    const fit = Math.floor(NV_LIMITS.maxTotalBytes / per);
    for (let i = 0; i < fit; i++)
      await client.nvDefineSpace({ index: 0x01500100 + i, size: per, attributes: ATTRS });
    expect(
      await rc(client.nvDefineSpace({ index: 0x01500100 + fit, size: per, attributes: ATTRS })),
    ).toBe(0x14b);
  });

  it('the Name is nameAlg || H(TPMS_NV_PUBLIC) for every name hash', async () => {
    const { client } = await boot();
    await client.nvDefineSpace({ index: INDEX, size: 8, attributes: ATTRS, nameAlg: 0x0004 });
    const pub = await client.nvReadPublic(INDEX);
    const expected = Buffer.concat([
      Buffer.from([0, 4]),
      createHash('sha1').update(marshal(TPMS_NV_PUBLIC, pub.nvPublic)).digest(),
    ]);
    expect(pub.name.equals(expected)).toBe(true);
  });
});
