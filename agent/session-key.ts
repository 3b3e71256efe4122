/**
 * The PRT session key's derived keys, computed by the TPM (prt-protocol §5, §5.6). With a 256-bit
 * output, SP 800-108 counter mode is one HMAC block:
 *
 *   derived = HMAC-SHA256(session key, [1]_32 || "AzureAD-SecureConversation" || 0x00 || context || [256]_32)
 *
 * so the TPM's TPM2_HMAC over that input, under the imported session key, is the derived key:
 * context = ctx for KDFv1 and for response keys (§5.1, §5.5), SHA-256(ctx || payload) for KDFv2
 * (§5.2). The derived key comes back to the agent, as NCryptKeyDerivation's does on Windows
 * (§5.6); it is used once and zeroed.
 */
import { DERIVED_KEY_BYTES, KDF_LABEL } from '../protocol/index.ts';
import type { KeyProvider, WrappedSessionKey } from './keys/provider.ts';

/** The fixed input of the single SP 800-108 block (label "AzureAD-SecureConversation", L = 256). */
export function kdfBlockInput(context: Buffer): Buffer {
  const label = Buffer.from(KDF_LABEL, 'ascii');
  const out = Buffer.alloc(4 + label.length + 1 + context.length + 4);
  out.writeUInt32BE(1, 0);
  label.copy(out, 4);
  // out[4 + label.length] stays 0x00, the separator.
  context.copy(out, 4 + label.length + 1);
  out.writeUInt32BE(DERIVED_KEY_BYTES * 8, out.length - 4);
  return out;
}

/**
 * A derive function for protocol's *With helpers (signWithSessionKeyDerive, decryptResponseWith)
 * that asks the TPM, plus `wipe` to zero every key it handed out once the caller is done.
 */
export function tpmDeriver(provider: KeyProvider, sessionKey: WrappedSessionKey) {
  const handedOut: Buffer[] = [];
  return {
    derive: async (context: Buffer): Promise<Buffer> => {
      const key = await provider.sessionHmac(sessionKey, kdfBlockInput(context));
      handedOut.push(key);
      return key;
    },
    wipe: () => {
      for (const key of handedOut) key.fill(0);
    },
  };
}
