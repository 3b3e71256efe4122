/** Fixtures shared by the crypto tests. */
import { createHash } from 'node:crypto';
import { p256, p384 } from '@noble/curves/nist.js';
import { TPM_ECC_NIST_P256, TPM_ECC_NIST_P384 } from '../../tpm-sim/crypto/ecc.ts';
import type { ByteStream } from '../../tpm-sim/crypto/stream.ts';

/** The curves the TPM supports: id, coordinate size, OpenSSL name, matching hash, @noble/curves. */
export const CURVES = [
  { id: TPM_ECC_NIST_P256, len: 32, openssl: 'prime256v1', hash: 'sha256', noble: p256 },
  { id: TPM_ECC_NIST_P384, len: 48, openssl: 'secp384r1', hash: 'sha384', noble: p384 },
] as const;

/** A deterministic test stream: SHA-256(seed || counter) blocks, consumed in order. */
export function testStream(seed: string): ByteStream {
  let pending = Buffer.alloc(0);
  let counter = 0;
  return (nBytes) => {
    while (pending.length < nBytes) {
      const block = createHash('sha256').update(seed).update(String(counter++)).digest();
      pending = Buffer.concat([pending, block]);
    }
    const out = pending.subarray(0, nBytes);
    pending = pending.subarray(nBytes);
    return out;
  };
}
