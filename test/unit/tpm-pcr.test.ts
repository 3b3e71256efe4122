/**
 * PCRs in the engine (Part 1 §17; Part 3 §22.2 PCR_Extend, §22.4 PCR_Read): what Startup and
 * Shutdown do to them, localities, the update counter, and PCR values in creation data.
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { pcrSelection, templates } from '../../tpm-sim/client/index.ts';
import type { Tpm } from '../../tpm-sim/engine/tpm.ts';
import { marshal } from '../../tpm-sim/wire/codec.ts';
import { TPM_ALG, TPM_RH, TPM_SU } from '../../tpm-sim/wire/constants.ts';
import { TPMS_CREATION_DATA } from '../../tpm-sim/wire/structures.ts';
import { newTpm, ok, rcOf } from '../shared/engine.ts';

const A = TPM_ALG;
const EMPTY = Buffer.alloc(0);

function sha256(...parts: Buffer[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

async function read(tpm: Tpm, alg: number, pcrs: number[]) {
  return (await ok(tpm, 'PCR_Read', [], { pcrSelectionIn: [pcrSelection(alg, pcrs)] })).out;
}

async function extend(tpm: Tpm, pcr: number, digest: Buffer, alg: number = A.SHA256) {
  await ok(tpm, 'PCR_Extend', [pcr], { digests: [{ hashAlg: alg, digest }] });
}

/** A TPM without automatic Startup, so a test can choose the startup type. */
async function bootWith(state?: Uint8Array, save?: (s: Uint8Array) => Promise<void>) {
  return newTpm({
    autoStartup: false,
    ...(state ? { state } : {}),
    ...(save ? { persist: save } : {}),
  });
}

describe('PCR banks', () => {
  it('four banks of 24; SHA-384 and SHA-512 extend like the others', async () => {
    const tpm = await newTpm();
    const d = randomBytes(48);
    await extend(tpm, 16, d, A.SHA384);
    const out = await read(tpm, A.SHA384, [16]);
    expect(
      out.pcrValues[0]!.equals(createHash('sha384').update(Buffer.alloc(48)).update(d).digest()),
    ).toBe(true);
    const bigger = await read(tpm, A.SHA512, [23]);
    expect(bigger.pcrValues[0]!.equals(Buffer.alloc(64))).toBe(true);
  });

  it('Shutdown(STATE) then Startup(STATE) restores PCRs 0-15 and the counter, also across a power cycle and a restart', async () => {
    let saved: Uint8Array | undefined;
    const save = async (s: Uint8Array) => {
      saved = s;
    };
    const first = await bootWith(undefined, save);
    await ok(first, 'Startup', [], { startupType: TPM_SU.CLEAR });
    const d = randomBytes(32);
    await extend(first, 0, d);
    await extend(first, 16, d);
    const before = await read(first, A.SHA256, [0, 16]);
    await ok(first, 'Shutdown', [], { shutdownType: TPM_SU.STATE });
    await first.powerOff();

    // A new process with the saved state: TPM Resume.
    const second = await bootWith(saved, save);
    await ok(second, 'Startup', [], { startupType: TPM_SU.STATE });
    const after = await read(second, A.SHA256, [0, 16]);
    expect(after.pcrValues[0]!.equals(sha256(Buffer.alloc(32), d))).toBe(true);
    expect(after.pcrValues[0]!.equals(before.pcrValues[0]!)).toBe(true);
    expect(after.pcrValues[1]!.equals(Buffer.alloc(32))).toBe(true); // PCR 16 is reset
    expect(after.pcrUpdateCounter).toBe(before.pcrUpdateCounter);

    // The resume used the saved PCRs up: a second power cycle without Shutdown(STATE) resets them.
    await second.powerOff();
    const third = await bootWith(saved, save);
    await ok(third, 'Startup', [], { startupType: TPM_SU.STATE });
    expect((await read(third, A.SHA256, [0])).pcrValues[0]!.equals(Buffer.alloc(32))).toBe(true);
  });

  it('Startup(CLEAR) resets every PCR and the counter, even after Shutdown(STATE)', async () => {
    const tpm = await bootWith();
    await ok(tpm, 'Startup', [], { startupType: TPM_SU.CLEAR });
    await extend(tpm, 3, randomBytes(32));
    expect((await read(tpm, A.SHA256, [3])).pcrUpdateCounter).toBe(1);
    await ok(tpm, 'Shutdown', [], { shutdownType: TPM_SU.STATE });
    await tpm.powerOff();
    await tpm.powerOn();
    await ok(tpm, 'Startup', [], { startupType: TPM_SU.CLEAR });
    const out = await read(tpm, A.SHA256, [3, 17]);
    expect(out.pcrValues[0]!.equals(Buffer.alloc(32))).toBe(true);
    expect(out.pcrValues[1]!.equals(Buffer.alloc(32, 0xff))).toBe(true);
    expect(out.pcrUpdateCounter).toBe(0);
  });

  it('localities: the DRTM PCRs take extends from the localities the PC Client profile allows', async () => {
    const tpm = await newTpm();
    const d = randomBytes(32);
    const at = (pcr: number, locality: number) =>
      rcOf(
        tpm,
        'PCR_Extend',
        [pcr],
        { digests: [{ hashAlg: A.SHA256, digest: d }] },
        undefined,
        locality,
      );
    expect(await at(17, 0)).toBe(0x907);
    expect(await at(17, 1)).toBe(0x907);
    expect(await at(17, 4)).toBe(0);
    expect(await at(20, 1)).toBe(0);
    expect(await at(20, 4)).toBe(0x907);
    expect(await at(21, 2)).toBe(0);
    expect(await at(21, 3)).toBe(0x907);
    expect(await at(0, 3)).toBe(0);
    const v = (await read(tpm, A.SHA256, [17])).pcrValues[0]!;
    expect(v.equals(sha256(Buffer.alloc(32, 0xff), d))).toBe(true);
  });

  it('a selection that names no PCR answers no values and the same empty selection', async () => {
    const tpm = await newTpm();
    const out = (
      await ok(tpm, 'PCR_Read', [], {
        pcrSelectionIn: [{ hash: A.SHA1, pcrSelect: Buffer.alloc(3) }],
      })
    ).out;
    expect(out.pcrValues).toEqual([]);
    expect(out.pcrSelectionOut).toEqual([{ hash: A.SHA1, pcrSelect: Buffer.alloc(3) }]);
  });

  it('Create and CreatePrimary put the selected PCR values into creationData.pcrDigest', async () => {
    const tpm = await newTpm();
    const d = randomBytes(32);
    await extend(tpm, 7, d);
    const creationPCR = [pcrSelection(A.SHA256, [7, 16])];
    const r = await ok(tpm, 'CreatePrimary', [TPM_RH.OWNER], {
      inSensitive: { userAuth: EMPTY, data: EMPTY },
      inPublic: templates.eccStoragePrimary(),
      outsideInfo: EMPTY,
      creationPCR,
    });
    const pcr7 = sha256(Buffer.alloc(32), d);
    expect(r.out.creationData.pcrDigest.equals(sha256(pcr7, Buffer.alloc(32)))).toBe(true);
    expect(r.out.creationHash.equals(sha256(marshal(TPMS_CREATION_DATA, r.out.creationData)))).toBe(
      true,
    );
  });
});
