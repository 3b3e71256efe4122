/**
 * The cloud's symmetric secrets, all derived (HKDF-SHA256) from one 32-byte master key kept in a
 * 0600 file in the data directory: one key per purpose, so a nonce MAC key can never open a PRT.
 */
import { hkdfSync } from 'node:crypto';

export interface TokenKeys {
  /** HMAC key for srv_challenge nonces. */
  readonly nonce: Buffer;
  /** AES-256-GCM key sealing PRTs. */
  readonly prt: Buffer;
  /** AES-256-GCM key sealing app refresh tokens. */
  readonly refreshToken: Buffer;
  /** HMAC key for the replay cache's request fingerprints. */
  readonly replay: Buffer;
}

function derive(master: Uint8Array, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), `prtlab cloud ${purpose} v1`, 32));
}

export function deriveTokenKeys(master: Uint8Array): TokenKeys {
  if (master.length !== 32) throw new RangeError('the cloud master key is 32 bytes');
  return Object.freeze({
    nonce: derive(master, 'srv_challenge nonce'),
    prt: derive(master, 'primary refresh token'),
    refreshToken: derive(master, 'app refresh token'),
    replay: derive(master, 'replay cache'),
  });
}
