/**
 * The authorization formulas both sides of a TPM session compute (Part 1 §18.7-18.8, §19.6):
 * cpHash, rpHash and the session HMAC. The engine checks with them; the client signs with them.
 */
import { digest, hmac } from './hash.ts';

/** authValue with trailing zero octets removed (Part 1 §19.6.4.3). */
export function trim0(v: Uint8Array): Buffer {
  let end = v.length;
  while (end > 0 && v[end - 1] === 0) end--;
  return Buffer.from(v.buffer, v.byteOffset, end);
}

/** cpHash = H(commandCode || Name(handle)... || parameters as transmitted) (Part 1 §18.7). */
export function cpHash(
  alg: number,
  cc: number,
  names: readonly Uint8Array[],
  params: Uint8Array,
): Buffer<ArrayBuffer> {
  const ccBytes = Buffer.allocUnsafe(4);
  ccBytes.writeUInt32BE(cc, 0);
  return digest(alg, ccBytes, ...names, params);
}

/** rpHash = H(responseCode (0) || commandCode || parameters as transmitted) (Part 1 §18.8). */
export function rpHash(alg: number, cc: number, params: Uint8Array): Buffer<ArrayBuffer> {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(cc, 4);
  return digest(alg, head, params);
}

/**
 * HMAC(key, pHash || nonceNewer || nonceOlder || extra nonces || attributes) (Part 1 §19.6.5):
 * for a command the newer nonce is the caller's and the older the TPM's; for a response, the
 * reverse. Extra nonces (separate decrypt/encrypt sessions) go into session 1's command HMAC only.
 */
export function sessionHmac(
  alg: number,
  key: Uint8Array,
  pHash: Uint8Array,
  nonceNewer: Uint8Array,
  nonceOlder: Uint8Array,
  extra: readonly Uint8Array[],
  attributes: number,
): Buffer<ArrayBuffer> {
  return hmac(alg, key, pHash, nonceNewer, nonceOlder, ...extra, Buffer.of(attributes));
}
