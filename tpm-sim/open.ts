/**
 * Opens a simulated TPM backed by a sealed state directory: the state is loaded (or the TPM is
 * manufactured and its first state saved), and every later change is saved before the command
 * that made it answers.
 */
import { Tpm, type TpmOptions } from './engine/tpm.ts';
import type { TpmDevice } from './server/device.ts';
import { deviceOf } from './simulator.ts';
import { type KeySource, StateStore } from './state/index.ts';

export interface OpenedTpm {
  readonly device: TpmDevice;
  readonly store: StateStore;
  /** True when this call manufactured the TPM (no state existed). */
  readonly created: boolean;
  /** Powers the TPM off (saving its clock) and releases the state directory. */
  close(): Promise<void>;
}

export async function openTpm(
  options: { dir: string; keySource: KeySource } & Omit<TpmOptions, 'state' | 'persist'>,
): Promise<OpenedTpm> {
  const { dir, keySource, ...tpmOptions } = options;
  const store = await StateStore.open({ dir, keySource });
  try {
    const state = await store.load();
    const tpm = new Tpm({
      ...tpmOptions,
      ...(state ? { state } : {}),
      persist: (bytes) => store.save(bytes),
    });
    if (!state) await store.save(tpm.exportState());
    return {
      device: deviceOf(tpm),
      store,
      created: !state,
      async close() {
        try {
          await tpm.powerOff();
        } finally {
          await store.close();
        }
      },
    };
  } catch (err) {
    await store.close();
    throw err;
  }
}
