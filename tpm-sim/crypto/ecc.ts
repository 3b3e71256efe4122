/**
 * Elliptic curves the simulator supports, ECC key material and ECDH.
 *
 * Curves are keyed by TPM_ECC_CURVE (curves.ts). The TPM keeps the private scalar d (TPMT_SENSITIVE
 * sensitive.ecc, TPM 2.0 Part 2 §12.3.2.4) and the public point as two fixed-size coordinates
 * (TPMS_ECC_POINT, Part 2 §11.2.5.2); KeyObjects are rebuilt from them on load.
 */
import {
  createECDH,
  createPrivateKey,
  createPublicKey,
  type ECDH,
  type KeyObject,
} from 'node:crypto';
import { bigIntToBytes, bytesToBigInt, leftPad } from './bigint.ts';
import { type EccCurve, encodePoint, padPoint, requireCurve } from './curves.ts';
import type { ByteStream } from './stream.ts';

// The curve table and ECDSA live in their own modules; this module is the single import point
// for ECC callers.
export {
  type EccCurve,
  eccCurve,
  requireCurve,
  TPM_ECC_NIST_P256,
  TPM_ECC_NIST_P384,
} from './curves.ts';
export { type EcdsaSignature, ecdsaSignDigest, ecdsaVerifyDigest } from './ecdsa.ts';
export type { ByteStream } from './stream.ts';

export interface EccPoint {
  readonly x: Buffer<ArrayBuffer>;
  readonly y: Buffer<ArrayBuffer>;
}

export interface EccKeyPair extends EccPoint {
  /** The private scalar, exactly byteLength bytes. */
  readonly d: Buffer<ArrayBuffer>;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

// One ECDH object per curve serves the synchronous helpers below: every use sets its own
// private key first, so no state carries over from one call to the next.
const ecdhCache = new Map<number, ECDH>();
function sharedEcdh(curve: EccCurve): ECDH {
  let ecdh = ecdhCache.get(curve.id);
  if (ecdh === undefined) {
    ecdh = createECDH(curve.opensslName);
    ecdhCache.set(curve.id, ecdh);
  }
  return ecdh;
}

/** Splits an uncompressed SEC 1 point (0x04 || X || Y) into fixed-size coordinates. */
function splitPoint(curve: EccCurve, encoded: Uint8Array): EccPoint {
  const len = curve.byteLength;
  return {
    x: Buffer.from(encoded.subarray(1, 1 + len)),
    y: Buffer.from(encoded.subarray(1 + len, 1 + 2 * len)),
  };
}

function keyPair(curve: EccCurve, d: Buffer<ArrayBuffer>, point: EccPoint): EccKeyPair {
  const privateKey = createPrivateKey({
    key: {
      kty: 'EC',
      crv: curve.jwkName,
      d: d.toString('base64url'),
      x: point.x.toString('base64url'),
      y: point.y.toString('base64url'),
    },
    format: 'jwk',
  });
  return { d, x: point.x, y: point.y, privateKey, publicKey: createPublicKey(privateKey) };
}

/** A fresh key pair on `curveId` from OpenSSL (TPM2_Create of an ECC key). */
export function eccGenerate(curveId: number): EccKeyPair {
  const curve = requireCurve(curveId);
  const ecdh = createECDH(curve.opensslName);
  const pub = ecdh.generateKeys();
  // getPrivateKey() drops leading zero bytes, so d is padded back to the curve size.
  const d = leftPad(ecdh.getPrivateKey(), curve.byteLength)!;
  return keyPair(curve, d, splitPoint(curve, pub));
}

/** True when d is a valid private scalar: 1 <= d <= n - 1 (SEC 1 §3.2.1). */
function validScalar(curve: EccCurve, d: Uint8Array): boolean {
  if (d.length > curve.byteLength) return false;
  const v = bytesToBigInt(d);
  return v >= 1n && v < curve.n;
}

/**
 * The key pair for a known private scalar (loading an ECC object, or a primary key from
 * eccDerivePrivate). The public point is computed by OpenSSL. Undefined if d is out of range.
 */
export function eccFromPrivate(curveId: number, d: Uint8Array): EccKeyPair | undefined {
  const curve = requireCurve(curveId);
  if (!validScalar(curve, d)) return undefined;
  const dd = leftPad(d, curve.byteLength)!;
  const ecdh = sharedEcdh(curve);
  ecdh.setPrivateKey(dd);
  return keyPair(curve, dd, splitPoint(curve, ecdh.getPublicKey()));
}

/**
 * The public key for the point (x, y). Undefined if the point is not on the curve (OpenSSL
 * checks this when it imports the JWK) or a coordinate is longer than the curve size; shorter
 * coordinates are taken as having lost leading zeros.
 */
export function eccPublicKey(curveId: number, x: Uint8Array, y: Uint8Array): KeyObject | undefined {
  const curve = requireCurve(curveId);
  const point = padPoint(curve, x, y);
  if (point === undefined) return undefined;
  try {
    return createPublicKey({
      key: {
        kty: 'EC',
        crv: curve.jwkName,
        x: point.x.toString('base64url'),
        y: point.y.toString('base64url'),
      },
      format: 'jwk',
    });
  } catch {
    return undefined;
  }
}

/**
 * Whether `key`'s public point (from eccGenerate or eccFromPrivate, so at the curve size) is
 * (x, y), with the coordinates read as padPoint reads them. Loading a key checks this binding of
 * the private scalar to the public area (Part 3 §12.2: TPM_RC_BINDING).
 */
export function eccHasPoint(
  curveId: number,
  key: EccPoint,
  point: { readonly x: Uint8Array; readonly y: Uint8Array },
): boolean {
  const p = padPoint(requireCurve(curveId), point.x, point.y);
  if (p === undefined) return false;
  return p.x.equals(key.x) && p.y.equals(key.y);
}

/**
 * A deterministic private scalar from a byte stream, for primary keys:
 *   d = (int(stream(orderBytes + 8)) mod (n - 1)) + 1
 * i.e. 64 extra bits make the bias of the reduction negligible (FIPS 186-4 §B.4.1, "extra random
 * bits"), and the result always lies in [1, n - 1]. This is the construction libtpms uses for
 * primaries (BnEccGetPrivate; tpm-formulas.md §6), though the stream itself differs.
 */
export function eccDerivePrivate(stream: ByteStream, curveId: number): Buffer<ArrayBuffer> {
  const curve = requireCurve(curveId);
  const want = Math.ceil(curve.orderBits / 8) + 8;
  const raw = stream(want);
  if (raw.length !== want) throw new RangeError('byte stream returned the wrong number of bytes');
  return bigIntToBytes((bytesToBigInt(raw) % (curve.n - 1n)) + 1n, curve.byteLength);
}

/**
 * Z = x(d * Q), the ECDH shared secret (SEC 1 §3.3.1) as the curve-size x coordinate, as KDFe
 * expects it (TPM 2.0 Part 1 §11.4.10.3 and Annex C.6). The TPM side uses its key's d and the
 * caller's ephemeral point Q (salted sessions, TPM2_Import of an ECC-wrapped duplicate,
 * ActivateCredential, ECDH_ZGen). Undefined if d is out of range or Q is not on the curve.
 */
export function ecdhZ(
  curveId: number,
  d: Uint8Array,
  peerX: Uint8Array,
  peerY: Uint8Array,
): Buffer<ArrayBuffer> | undefined {
  const curve = requireCurve(curveId);
  if (!validScalar(curve, d)) return undefined;
  const peer = encodePoint(curve, peerX, peerY);
  if (peer === undefined) return undefined;
  const ecdh = sharedEcdh(curve);
  try {
    ecdh.setPrivateKey(leftPad(d, curve.byteLength)!);
    return leftPad(ecdh.computeSecret(peer), curve.byteLength);
  } catch {
    return undefined;
  }
}

/**
 * The caller's side of one-pass ECDH (Part 1 Annex C.6; a TPM uses it in TPM2_ECDH_KeyGen,
 * MakeCredential and in tests of the TPM side): a fresh ephemeral key, the shared Z with the
 * peer's point, and the ephemeral public point to send. Undefined if the peer point is invalid.
 */
export function ecdhEphemeral(
  curveId: number,
  peerX: Uint8Array,
  peerY: Uint8Array,
): { z: Buffer<ArrayBuffer>; ephemeral: EccPoint } | undefined {
  const curve = requireCurve(curveId);
  const peer = encodePoint(curve, peerX, peerY);
  if (peer === undefined) return undefined;
  const ecdh = createECDH(curve.opensslName);
  const pub = ecdh.generateKeys();
  try {
    const z = leftPad(ecdh.computeSecret(peer), curve.byteLength);
    if (z === undefined) return undefined;
    return { z, ephemeral: splitPoint(curve, pub) };
  } catch {
    return undefined;
  }
}
