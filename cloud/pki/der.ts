/**
 * Just enough DER reading to take a PKCS#10 request apart into the exact signed bytes, the
 * signature algorithm and the signature, so the signature can be checked with node:crypto over
 * the bytes the client really signed (not a re-encoding). Every length is checked against the
 * bytes that remain; indefinite lengths, non-minimal lengths and high tag numbers are refused, as
 * DER requires. Failures throw DerError; callers turn it into their own coded error.
 */

export class DerError extends Error {}

export interface Tlv {
  readonly tag: number;
  /** Offset of the tag byte. */
  readonly start: number;
  /** Offset of the first content byte. */
  readonly contentStart: number;
  /** Offset just past the last content byte. */
  readonly end: number;
}

export const TAG_SEQUENCE = 0x30;
export const TAG_BIT_STRING = 0x03;
export const TAG_OID = 0x06;
export const TAG_NULL = 0x05;

/** Lengths above this are refused outright; nothing the cloud parses comes close. */
const MAX_LENGTH_BYTES = 3;

/** Reads one TLV starting at `offset`, which must end at or before `limit`. */
export function readTlv(buf: Uint8Array, offset: number, limit: number = buf.length): Tlv {
  if (offset + 2 > limit) throw new DerError('truncated TLV header');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('high tag numbers are not used here');
  const first = buf[offset + 1]!;
  let length: number;
  let contentStart: number;
  if (first < 0x80) {
    length = first;
    contentStart = offset + 2;
  } else {
    const count = first & 0x7f;
    if (count === 0) throw new DerError('indefinite length is not DER');
    if (count > MAX_LENGTH_BYTES) throw new DerError('length too large');
    if (offset + 2 + count > limit) throw new DerError('truncated length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + buf[offset + 2 + i]!;
    // DER: the shortest form only.
    if (length < 0x80 || buf[offset + 2]! === 0) throw new DerError('non-minimal length');
    contentStart = offset + 2 + count;
  }
  const end = contentStart + length;
  if (end > limit) throw new DerError('content runs past its container');
  return { tag, start: offset, contentStart, end };
}

/** Reads a TLV and checks its tag. */
export function expectTlv(buf: Uint8Array, offset: number, limit: number, tag: number): Tlv {
  const tlv = readTlv(buf, offset, limit);
  if (tlv.tag !== tag) {
    throw new DerError(`expected tag 0x${tag.toString(16)}, found 0x${tlv.tag.toString(16)}`);
  }
  return tlv;
}

/** The parts of a signed structure: SEQUENCE { tbs, AlgorithmIdentifier, BIT STRING }. */
export interface SignedParts {
  /** The exact DER of the signed part (certificationRequestInfo or tbsCertificate). */
  readonly tbs: Uint8Array;
  /** The DER of the algorithm OID's content bytes. */
  readonly algorithmOid: Uint8Array;
  /** Parameters after the OID, if any (their DER), e.g. NULL for RSA. */
  readonly algorithmParams: Uint8Array;
  /** The signature bits (the BIT STRING content after its unused-bits byte, which must be 0). */
  readonly signature: Uint8Array;
}

/** Splits a whole signed DER structure, refusing trailing bytes. */
export function splitSigned(der: Uint8Array): SignedParts {
  const outer = expectTlv(der, 0, der.length, TAG_SEQUENCE);
  if (outer.end !== der.length) throw new DerError('trailing bytes after the structure');
  const tbs = expectTlv(der, outer.contentStart, outer.end, TAG_SEQUENCE);
  const alg = expectTlv(der, tbs.end, outer.end, TAG_SEQUENCE);
  const sig = expectTlv(der, alg.end, outer.end, TAG_BIT_STRING);
  if (sig.end !== outer.end) throw new DerError('extra fields after the signature');
  const oid = expectTlv(der, alg.contentStart, alg.end, TAG_OID);
  if (sig.end - sig.contentStart < 1 || der[sig.contentStart] !== 0) {
    throw new DerError('signature BIT STRING has unused bits');
  }
  return {
    tbs: der.subarray(tbs.start, tbs.end),
    algorithmOid: der.subarray(oid.contentStart, oid.end),
    algorithmParams: der.subarray(oid.end, alg.end),
    signature: der.subarray(sig.contentStart + 1, sig.end),
  };
}
