/**
 * The elliptic curves the simulator supports, keyed by TPM_ECC_CURVE (TPM 2.0 Part 2 §6.4), with
 * the parameters the ECC and ECDSA code needs.
 */
import { leftPad } from './bigint.ts';

export const TPM_ECC_NIST_P256 = 0x0003;
export const TPM_ECC_NIST_P384 = 0x0004;

export interface EccCurve {
  /** The TPM_ECC_CURVE id. */
  readonly id: number;
  /** JWK "crv" name (RFC 7518 §6.2.1.1). */
  readonly jwkName: 'P-256' | 'P-384';
  /** OpenSSL's name, for crypto.createECDH. */
  readonly opensslName: string;
  /** Size of a coordinate, of d and of r and s, in bytes. */
  readonly byteLength: number;
  /** Order n of the base point (FIPS 186-4 §D.1.2.3, §D.1.2.4). */
  readonly n: bigint;
  /** Bit length of n. */
  readonly orderBits: number;
}

const CURVES: ReadonlyMap<number, EccCurve> = new Map<number, EccCurve>([
  [
    TPM_ECC_NIST_P256,
    {
      id: TPM_ECC_NIST_P256,
      jwkName: 'P-256',
      opensslName: 'prime256v1',
      byteLength: 32,
      n: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
      orderBits: 256,
    },
  ],
  [
    TPM_ECC_NIST_P384,
    {
      id: TPM_ECC_NIST_P384,
      jwkName: 'P-384',
      opensslName: 'secp384r1',
      byteLength: 48,
      n: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
      orderBits: 384,
    },
  ],
]);

/** The curve with this TPM_ECC_CURVE id, or undefined if the simulator does not implement it. */
export function eccCurve(id: number): EccCurve | undefined {
  return CURVES.get(id);
}

/** Like eccCurve, for ids the caller has already validated (an unknown id is a caller bug). */
export function requireCurve(id: number): EccCurve {
  const curve = CURVES.get(id);
  if (curve === undefined)
    throw new RangeError(`unsupported ECC curve 0x${id.toString(16).padStart(4, '0')}`);
  return curve;
}

/**
 * The point (x, y) with both coordinates left-padded to the curve size, or undefined if one is
 * longer. A TPMS_ECC_POINT coordinate may have lost its leading zeros (Part 2 §11.2.5.2 holds it
 * in a TPM2B), so shorter ones are taken at face value.
 */
export function padPoint(
  curve: EccCurve,
  x: Uint8Array,
  y: Uint8Array,
): { x: Buffer<ArrayBuffer>; y: Buffer<ArrayBuffer> } | undefined {
  const px = leftPad(x, curve.byteLength);
  const py = leftPad(y, curve.byteLength);
  return px === undefined || py === undefined ? undefined : { x: px, y: py };
}

/** The uncompressed SEC 1 encoding 0x04 || X || Y (SEC 1 §2.3.3); undefined as for padPoint. */
export function encodePoint(
  curve: EccCurve,
  x: Uint8Array,
  y: Uint8Array,
): Buffer<ArrayBuffer> | undefined {
  const p = padPoint(curve, x, y);
  return p === undefined ? undefined : Buffer.concat([Buffer.of(0x04), p.x, p.y]);
}
