/**
 * Reading a TPM's EK certificates through the client: the RSA one at NV index 0x01C00002 and the
 * ECC one at 0x01C0000A (TCG EK Credential Profile 2.0, §2.2.1.4). The indexes have AUTHREAD
 * with an empty authValue, so they authorize their own reads whatever the owner's auth is.
 */
import { rcBase, TPM_RC } from '../wire/rc.ts';
import type { TpmClient } from './client.ts';
import { TpmResponseError } from './errors.ts';
import { EK_CERT_NV_INDEX } from './templates.ts';

export type EkKind = keyof typeof EK_CERT_NV_INDEX;

/** The DER EK certificate of `kind`, or undefined when the TPM has none (no such NV index). */
export async function readEkCertificate(
  client: TpmClient,
  kind: EkKind,
): Promise<Buffer | undefined> {
  const index = EK_CERT_NV_INDEX[kind];
  let size: number;
  try {
    size = (await client.nvReadPublic(index)).nvPublic.dataSize;
  } catch (err) {
    if (err instanceof TpmResponseError && rcBase(err.rc) === TPM_RC.HANDLE) return undefined;
    throw err;
  }
  return client.nvRead(index, { size });
}
