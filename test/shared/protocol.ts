/** Shared by the protocol/ tests: the coded-error helpers and the real Entra known-answer data. */
import { readFileSync } from 'node:fs';
import { ProtocolError } from '../../protocol/index.ts';

/** The code of the ProtocolError `fn` throws. Any other exception is thrown on; none fails. */
export function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProtocolError) return err.code;
    throw err;
  }
  throw new Error('expected a ProtocolError');
}

/** codeOf for a function whose promise should reject. */
export async function asyncCodeOf(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof ProtocolError) return err.code;
    throw err;
  }
  throw new Error('expected a ProtocolError');
}

/** test/vectors/entra-prt-kat.json (prt-protocol.md §9, test/vectors/README.md). */
export interface Kat {
  source: string;
  transport_private_key_pkcs1_pem: string;
  session_key_jwe: string;
  session_key_hex: string;
  response_jwe: string;
  response_ctx_hex: string;
  response_derived_key_hex: string;
  response_plaintext: string;
  kdf_label: string;
  kdf_v1_example: { session_key_hex: string; ctx_hex: string; derived_key_hex: string };
  kdf_v2_example: {
    session_key_hex: string;
    ctx_hex: string;
    payload_utf8: string;
    derived_key_hex: string;
  };
}

export const kat = JSON.parse(
  readFileSync(new URL('../vectors/entra-prt-kat.json', import.meta.url), 'utf8'),
) as Kat;
