/**
 * Opens a simulated TPM backed by a sealed state directory: the state is loaded (or the TPM is
 * manufactured and its first state saved), and every later change is saved before the command
 * that made it answers. With the lab's data directory, the TPM also gets EK certificates from
 * the lab's TPM manufacturer CA (endorsement/), as a real TPM has them from its factory.
 */

import { openManufacturerCa } from './endorsement/manufacturer-ca.ts';
import { ekCertificatesOf, provisionEkCertificates } from './endorsement/provision.ts';
import { Tpm, type TpmOptions } from './engine/tpm.ts';
import type { TpmDevice } from './server/device.ts';
import { deviceOf } from './simulator.ts';
import { type KeySource, StateStore } from './state/index.ts';

export interface OpenedTpm {
  readonly device: TpmDevice;
  readonly store: StateStore;
  /** True when this call manufactured the TPM (no state existed). */
  readonly created: boolean;
  /** The EK certificates (DER) in the TPM's NV, by kind: present once provisioned. */
  readonly ekCertificates: { readonly rsa?: Buffer; readonly ecc?: Buffer };
  /** Powers the TPM off (saving its clock) and releases the state directory. */
  close(): Promise<void>;
}

export async function openTpm(
  options: {
    dir: string;
    keySource: KeySource;
    /**
     * The lab's data directory. When given, the lab's TPM manufacturer CA (created on first use
     * in `<dataDir>/tpm-manufacturer/`) issues this TPM's RSA and ECC EK certificates, stored in
     * NV indexes 0x01C00002 and 0x01C0000A, unless the TPM has them already.
     */
    dataDir?: string;
  } & Omit<TpmOptions, 'state' | 'persist'>,
): Promise<OpenedTpm> {
  const { dir, keySource, dataDir, ...tpmOptions } = options;
  const store = await StateStore.open({ dir, keySource });
  try {
    const state = await store.load();
    const tpm = new Tpm({
      ...tpmOptions,
      ...(state ? { state } : {}),
      persist: (bytes) => store.save(bytes),
    });
    // A new TPM is saved at once; so is one that just got its EK certificates.
    if (!state) tpm.dirty = true;
    if (dataDir !== undefined) {
      await provisionEkCertificates(tpm, await openManufacturerCa(dataDir));
    }
    await tpm.saveState();
    return {
      device: deviceOf(tpm),
      store,
      created: !state,
      ekCertificates: ekCertificatesOf(tpm),
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
