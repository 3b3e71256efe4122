/** Picks the key provider for a device's --tpm spec and its keystore key source. */
import { join } from 'node:path';
import { KeyFileSource, type KeySource, SecretServiceSource } from '../../tpm-sim/state/index.ts';
import { AgentDeviceError } from '../errors.ts';
import { KEYSTORE_FILE, type KeystoreKind } from '../store.ts';
import type { TpmSpec } from '../tpm-spec.ts';
import type { KeyProvider } from './provider.ts';
import { SoftwareKeyProvider, type SoftwareKeyRecord } from './software.ts';
import { TpmKeyProvider, type TpmKeyRecord } from './tpm.ts';

/** The Secret Service entry's `service` attribute for device keystore keys. */
export const KEYSTORE_SERVICE = 'prtlab-device';

/**
 * The device's keystore key source: a 0600 key file in the device directory, or the OS keystore
 * (Secret Service) under an account id chosen when the device was added, so that the entry
 * survives the directory's move from staging to its final name.
 */
export function keySourceFor(
  dir: string,
  keystore: { kind: KeystoreKind; account: string },
): KeySource {
  return keystore.kind === 'secret-service'
    ? new SecretServiceSource({ service: KEYSTORE_SERVICE, account: keystore.account })
    : new KeyFileSource(join(dir, KEYSTORE_FILE));
}

export async function createKeyProvider(
  spec: TpmSpec,
  dir: string,
  keySource: KeySource,
  options: { computerKey: boolean },
): Promise<{ provider: KeyProvider; record: TpmKeyRecord | SoftwareKeyRecord }> {
  if (spec.kind === 'none') return SoftwareKeyProvider.create(dir, keySource, options);
  return TpmKeyProvider.create(spec, dir, keySource, options);
}

export async function openKeyProvider(
  spec: TpmSpec,
  dir: string,
  keySource: KeySource,
  record: TpmKeyRecord | SoftwareKeyRecord,
): Promise<KeyProvider> {
  if ((spec.kind === 'none') !== (record.provider === 'software')) {
    throw new AgentDeviceError('device.json is corrupt: its keys do not match its --tpm spec');
  }
  if (record.provider === 'software') return SoftwareKeyProvider.open(dir, keySource);
  return TpmKeyProvider.open(spec, dir, keySource, record);
}
