/**
 * TPM attestation on the DRS wire (docs/prt-protocol.md §2: the optional join members
 * `AikCertificate` and `AttestationData`, "an exported TPMS_ATTEST" [HB-spec]). Pure parsing and
 * encoding, shared by the device (which builds the bytes) and the cloud (which checks them); it
 * imports nothing from tpm-sim, so the two sides meet only on the wire.
 *
 * The exact bytes Windows puts in these members are not public, so the lab defines two small
 * containers (big-endian, TPM style: every length is a u16 before its bytes):
 *
 *   AikCertificate  = u16 version (1)
 *                     TPM2B_PUBLIC  the attestation key (AK)                      Part 2 §12.2.5
 *                     u8 n (1..4), then n × (u16 length || DER certificate):
 *                       [0] the TPM's EK certificate, [1..] intermediates, leaf first, up to
 *                       (not including) a trusted TPM manufacturer CA
 *   AttestationData = u16 version (1)
 *                     2 × { TPM2B_PUBLIC  the certified key (device key, then transport key)
 *                           TPM2B_ATTEST  TPMS_ATTEST of TPM2_Certify, signed by the AK  §10.12.12
 *                           TPMT_SIGNATURE                                                §11.3.4 }
 *
 * Every read is bounded by the bytes left and by a named cap, trailing bytes are an error, and
 * failures are ProtocolErrors (ERR_PROTOCOL_MALFORMED / _TOO_LARGE / _UNSUPPORTED), never a crash.
 */
import { createHash, createPublicKey, type KeyObject, verify } from 'node:crypto';
import { malformed, ProtocolError, tooLarge, unsupported } from './errors.ts';

/** TPM_ALG_ID values (Part 2 §6.3) the parsers name. */
export const ALG = Object.freeze({
  RSA: 0x0001,
  SHA1: 0x0004,
  HMAC: 0x0005,
  AES: 0x0006,
  KEYEDHASH: 0x0008,
  XOR: 0x000a,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  RSASSA: 0x0014,
  RSAES: 0x0015,
  RSAPSS: 0x0016,
  OAEP: 0x0017,
  ECDSA: 0x0018,
  ECDAA: 0x001a,
  ECC: 0x0023,
});

/** TPMA_OBJECT bits (Part 2 §8.3.2). */
export const TPMA = Object.freeze({
  fixedTPM: 1 << 1,
  fixedParent: 1 << 4,
  sensitiveDataOrigin: 1 << 5,
  userWithAuth: 1 << 6,
  restricted: 1 << 16,
  decrypt: 1 << 17,
  sign: 1 << 18,
});

/** TPM_GENERATED_VALUE (Part 2 §6.2) and TPM_ST_ATTEST_CERTIFY (§6.9). */
export const TPM_GENERATED = 0xff544347;
export const TPM_ST_ATTEST_CERTIFY = 0x8017;

/** Container format version of both members. */
export const ATTESTATION_FORMAT_VERSION = 1;
/** TPMT_PUBLIC is at most about 600 bytes for RSA-4096 (Part 2 §12.2.4); TPMS_ATTEST of Certify less. */
const MAX_PUBLIC_BYTES = 1024;
const MAX_ATTEST_BYTES = 1024;
/** TPM2B_DATA (extraData) holds at most sizeof(TPMU_HA) = 64 bytes (Part 2 §10.4.3). */
export const MAX_EXTRA_DATA = 64;
/** EK certificate plus at most three intermediates. */
export const MAX_AK_CHAIN = 4;
const MAX_CERT_BYTES = 4096;
/** Digest sizes of the name algorithms accepted (SHA-1 is refused: Part 1 §11.4.10 deprecates it). */
const NAME_ALGS: Readonly<Record<number, { readonly node: string; readonly size: number }>> = {
  [ALG.SHA256]: { node: 'sha256', size: 32 },
  [ALG.SHA384]: { node: 'sha384', size: 48 },
  [ALG.SHA512]: { node: 'sha512', size: 64 },
};
/** TPM_ECC_CURVE (Part 2 §6.4) to JOSE names and coordinate sizes. */
const CURVES: Readonly<Record<number, { readonly crv: string; readonly size: number }>> = {
  3: { crv: 'P-256', size: 32 },
  4: { crv: 'P-384', size: 48 },
};

/** A bounded big-endian reader; every overrun is ERR_PROTOCOL_MALFORMED naming `what`. */
class Reader {
  #off = 0;
  readonly buf: Buffer;
  readonly what: string;
  constructor(buf: Buffer, what: string) {
    this.buf = buf;
    this.what = what;
  }
  get offset(): number {
    return this.#off;
  }
  #need(n: number, field: string): void {
    if (this.buf.length - this.#off < n) {
      throw malformed(this.what, `truncated at ${field} (offset ${this.#off})`);
    }
  }
  u8(field: string): number {
    this.#need(1, field);
    return this.buf[this.#off++]!;
  }
  u16(field: string): number {
    this.#need(2, field);
    const v = this.buf.readUInt16BE(this.#off);
    this.#off += 2;
    return v;
  }
  u32(field: string): number {
    this.#need(4, field);
    const v = this.buf.readUInt32BE(this.#off);
    this.#off += 4;
    return v;
  }
  bytes(n: number, field: string): Buffer {
    this.#need(n, field);
    const v = this.buf.subarray(this.#off, this.#off + n);
    this.#off += n;
    return Buffer.from(v);
  }
  /** A TPM2B: u16 size, then that many bytes, at most `max`. */
  sized(field: string, max: number): Buffer {
    const n = this.u16(field);
    if (n > max) throw tooLarge(`${this.what} ${field}`, n, max);
    return this.bytes(n, field);
  }
  end(): void {
    if (this.#off !== this.buf.length) {
      throw malformed(this.what, `${this.buf.length - this.#off} trailing bytes`);
    }
  }
}

/** A parsed TPMT_PUBLIC (Part 2 §12.2.4) of an RSA or ECC key. */
export interface TpmPublicArea {
  /** The TPMT_PUBLIC bytes exactly as received (the Name is over these). */
  readonly bytes: Buffer;
  readonly type: number;
  readonly nameAlg: number;
  readonly objectAttributes: number;
  /** The key's own signing scheme (TPM_ALG_NULL if none) and its hash. */
  readonly scheme: number;
  readonly schemeHash: number;
  readonly publicKey: KeyObject;
  /** RSA: the modulus and exponent (0 read as 65537, Part 2 §12.2.3.5). */
  readonly rsa?: { readonly modulus: Buffer; readonly exponent: number };
}

/** `nameAlg || H_nameAlg(TPMT_PUBLIC)`: an object's Name (Part 1 §16, tpm-formulas §2). */
export function tpmObjectName(nameAlg: number, publicBytes: Buffer): Buffer {
  const alg = NAME_ALGS[nameAlg];
  if (!alg) throw unsupported('TPMT_PUBLIC', `nameAlg 0x${nameAlg.toString(16)}`);
  const head = Buffer.alloc(2);
  head.writeUInt16BE(nameAlg);
  return Buffer.concat([head, createHash(alg.node).update(publicBytes).digest()]);
}

function schemeOf(r: Reader, field: string): { scheme: number; hash: number } {
  const scheme = r.u16(field);
  if (scheme === ALG.NULL) return { scheme, hash: ALG.NULL };
  // RSAES has no parameters (TPMS_ENC_SCHEME_RSAES is empty, Part 2 §11.2.2.2).
  if (scheme === ALG.RSAES) return { scheme, hash: ALG.NULL };
  const hash = r.u16(`${field}.hashAlg`);
  // ECDAA also has a count (TPMS_SCHEME_ECDAA, §11.2.3.3); not used by a device key or an AK.
  if (scheme === ALG.ECDAA) throw unsupported(r.what, 'ECDAA scheme');
  return { scheme, hash };
}

/** Parses TPMT_PUBLIC (Part 2 §12.2.4) of an RSA or ECC key; anything else is refused. */
export function parseTpmtPublic(bytes: Buffer, what = 'TPMT_PUBLIC'): TpmPublicArea {
  if (bytes.length > MAX_PUBLIC_BYTES) throw tooLarge(what, bytes.length, MAX_PUBLIC_BYTES);
  const r = new Reader(bytes, what);
  const type = r.u16('type');
  const nameAlg = r.u16('nameAlg');
  if (!NAME_ALGS[nameAlg]) throw unsupported(what, `nameAlg 0x${nameAlg.toString(16)}`);
  const objectAttributes = r.u32('objectAttributes');
  r.sized('authPolicy', 64);
  // TPMT_SYM_DEF_OBJECT (§11.1.7): algorithm, then keyBits and mode unless NULL.
  if (r.u16('symmetric') !== ALG.NULL) {
    r.u16('symmetric.keyBits');
    r.u16('symmetric.mode');
  }
  let scheme: { scheme: number; hash: number };
  let publicKey: KeyObject;
  let rsa: TpmPublicArea['rsa'];
  if (type === ALG.RSA) {
    // TPMS_RSA_PARMS (§12.2.3.5), unique TPM2B_PUBLIC_KEY_RSA (§11.2.4.5).
    scheme = schemeOf(r, 'scheme');
    const keyBits = r.u16('keyBits');
    const exp = r.u32('exponent');
    const modulus = r.sized('unique', 512);
    if (keyBits < 1024 || keyBits > 4096 || modulus.length * 8 !== keyBits) {
      throw malformed(what, 'RSA modulus does not match keyBits');
    }
    const exponent = exp === 0 ? 65537 : exp;
    const e = Buffer.alloc(4);
    e.writeUInt32BE(exponent);
    publicKey = jwkKey(
      { kty: 'RSA', n: modulus.toString('base64url'), e: stripZeros(e).toString('base64url') },
      what,
    );
    rsa = { modulus, exponent };
  } else if (type === ALG.ECC) {
    // TPMS_ECC_PARMS (§12.2.3.6), unique TPMS_ECC_POINT (§11.2.5.2).
    scheme = schemeOf(r, 'scheme');
    const curve = CURVES[r.u16('curveID')];
    if (!curve) throw unsupported(what, 'ECC curve');
    if (r.u16('kdf') !== ALG.NULL) r.u16('kdf.hashAlg');
    const x = r.sized('unique.x', 66);
    const y = r.sized('unique.y', 66);
    if (x.length !== curve.size || y.length !== curve.size) {
      throw malformed(what, 'ECC point does not match the curve');
    }
    publicKey = jwkKey(
      { kty: 'EC', crv: curve.crv, x: x.toString('base64url'), y: y.toString('base64url') },
      what,
    );
  } else {
    throw unsupported(what, `object type 0x${type.toString(16)} (RSA or ECC keys only)`);
  }
  r.end();
  return {
    bytes: Buffer.from(bytes),
    type,
    nameAlg,
    objectAttributes,
    scheme: scheme.scheme,
    schemeHash: scheme.hash,
    publicKey,
    ...(rsa ? { rsa } : {}),
  };
}

function stripZeros(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

function jwkKey(jwk: Record<string, string>, what: string): KeyObject {
  try {
    return createPublicKey({ key: jwk, format: 'jwk' });
  } catch (err) {
    // e.g. an ECC point not on the curve
    throw new ProtocolError('ERR_PROTOCOL_MALFORMED', `${what}: not a valid public key`, {
      cause: err,
    });
  }
}

/** TPMS_ATTEST of TPM2_Certify (Part 2 §10.12.12 with TPMS_CERTIFY_INFO, §10.12.3). */
export interface CertifyAttest {
  /** The TPMS_ATTEST bytes exactly as signed. */
  readonly bytes: Buffer;
  readonly magic: number;
  readonly type: number;
  readonly qualifiedSigner: Buffer;
  readonly extraData: Buffer;
  /** TPMS_CERTIFY_INFO.name and .qualifiedName of the certified object. */
  readonly certifiedName: Buffer;
  readonly certifiedQualifiedName: Buffer;
}

/**
 * Parses TPMS_ATTEST (Part 2 §10.12.12). Only the certify arm (TPM_ST_ATTEST_CERTIFY) is
 * accepted: magic and type are checked here, since a structure with another magic was not made
 * by a TPM (Part 3 §18.1) and another type is not a Certify.
 */
export function parseCertifyAttest(bytes: Buffer, what = 'TPMS_ATTEST'): CertifyAttest {
  if (bytes.length > MAX_ATTEST_BYTES) throw tooLarge(what, bytes.length, MAX_ATTEST_BYTES);
  const r = new Reader(bytes, what);
  const magic = r.u32('magic');
  const type = r.u16('type');
  if (magic !== TPM_GENERATED) throw malformed(what, 'magic is not TPM_GENERATED_VALUE');
  if (type !== TPM_ST_ATTEST_CERTIFY) throw malformed(what, 'type is not TPM_ST_ATTEST_CERTIFY');
  const qualifiedSigner = r.sized('qualifiedSigner', 66);
  const extraData = r.sized('extraData', MAX_EXTRA_DATA);
  // TPMS_CLOCK_INFO (§10.11.1): clock u64, resetCount u32, restartCount u32, safe u8.
  r.bytes(8 + 4 + 4 + 1, 'clockInfo');
  r.bytes(8, 'firmwareVersion');
  const certifiedName = r.sized('attested.name', 66);
  const certifiedQualifiedName = r.sized('attested.qualifiedName', 66);
  r.end();
  return {
    bytes: Buffer.from(bytes),
    magic,
    type,
    qualifiedSigner,
    extraData,
    certifiedName,
    certifiedQualifiedName,
  };
}

/** TPMT_SIGNATURE (Part 2 §11.3.4), RSASSA, RSAPSS or ECDSA. */
export interface TpmSignature {
  readonly sigAlg: number;
  readonly hashAlg: number;
  /** RSA: the signature; ECDSA: r || s, each left-padded to the curve size by the verifier. */
  readonly rsa?: Buffer;
  readonly ecc?: { readonly r: Buffer; readonly s: Buffer };
}

function readSignature(r: Reader): TpmSignature {
  const sigAlg = r.u16('signature.sigAlg');
  if (sigAlg === ALG.RSASSA || sigAlg === ALG.RSAPSS) {
    const hashAlg = r.u16('signature.hash');
    return { sigAlg, hashAlg, rsa: r.sized('signature.sig', 512) };
  }
  if (sigAlg === ALG.ECDSA) {
    const hashAlg = r.u16('signature.hash');
    const sr = r.sized('signature.r', 66);
    const ss = r.sized('signature.s', 66);
    return { sigAlg, hashAlg, ecc: { r: sr, s: ss } };
  }
  throw unsupported(r.what, `signature algorithm 0x${sigAlg.toString(16)}`);
}

function writeSignature(sig: TpmSignature): Buffer {
  const head = u16s(sig.sigAlg, sig.hashAlg);
  if (sig.rsa) return Buffer.concat([head, tpm2b(sig.rsa)]);
  if (sig.ecc) return Buffer.concat([head, tpm2b(sig.ecc.r), tpm2b(sig.ecc.s)]);
  throw new TypeError('signature has neither rsa nor ecc');
}

/**
 * Whether `sig` is the signature of `key` (an AK's public area) over `message` (TPMS_ATTEST).
 * A restricted key signs with its own scheme (Part 3 §18.2.1), so scheme and hash must be the
 * key's. Verification failures are `false`; a scheme the lab does not verify is ERR_PROTOCOL_UNSUPPORTED.
 */
export function verifyTpmSignature(
  key: TpmPublicArea,
  message: Buffer,
  sig: TpmSignature,
): boolean {
  if (sig.sigAlg !== key.scheme || sig.hashAlg !== key.schemeHash) return false;
  const hash = NAME_ALGS[sig.hashAlg];
  if (!hash) throw unsupported('TPMT_SIGNATURE', `hash 0x${sig.hashAlg.toString(16)}`);
  if (sig.sigAlg === ALG.ECDSA && sig.ecc) {
    const size = (key.publicKey.asymmetricKeyDetails?.namedCurve ?? '').includes('384') ? 48 : 32;
    if (sig.ecc.r.length > size || sig.ecc.s.length > size) return false;
    const raw = Buffer.concat([leftPad(sig.ecc.r, size), leftPad(sig.ecc.s, size)]);
    return verify(hash.node, message, { key: key.publicKey, dsaEncoding: 'ieee-p1363' }, raw);
  }
  if (sig.sigAlg === ALG.RSASSA && sig.rsa) {
    return verify(hash.node, message, key.publicKey, sig.rsa);
  }
  throw unsupported('TPMT_SIGNATURE', `scheme 0x${sig.sigAlg.toString(16)}`);
}

function leftPad(b: Buffer, size: number): Buffer {
  return b.length >= size ? b : Buffer.concat([Buffer.alloc(size - b.length), b]);
}

function u16s(...values: number[]): Buffer {
  const b = Buffer.alloc(2 * values.length);
  for (const [i, v] of values.entries()) b.writeUInt16BE(v, 2 * i);
  return b;
}

function tpm2b(bytes: Buffer): Buffer {
  if (bytes.length > 0xffff) throw new RangeError('TPM2B content longer than 65535 bytes');
  return Buffer.concat([u16s(bytes.length), bytes]);
}

// ---- the lab containers -------------------------------------------------------------------

/** `AikCertificate` (lab format, see the file comment). */
export interface AikCertificateData {
  /** The AK's TPMT_PUBLIC bytes. */
  readonly akPublic: Buffer;
  /** DER certificates: the EK certificate first, then intermediates. */
  readonly certificates: readonly Buffer[];
}

/** One TPM2_Certify of a key in `AttestationData`. */
export interface CertifiedKeyData {
  /** The certified key's TPMT_PUBLIC bytes. */
  readonly public: Buffer;
  /** TPMS_ATTEST as the TPM signed it. */
  readonly attest: Buffer;
  readonly signature: TpmSignature;
}

/** `AttestationData` (lab format): the device key's certification, then the transport key's. */
export interface AttestationDataContent {
  readonly deviceKey: CertifiedKeyData;
  readonly transportKey: CertifiedKeyData;
}

export function encodeAikCertificate(data: AikCertificateData): Buffer {
  if (data.certificates.length < 1 || data.certificates.length > MAX_AK_CHAIN) {
    throw new RangeError(`1 to ${MAX_AK_CHAIN} certificates`);
  }
  return Buffer.concat([
    u16s(ATTESTATION_FORMAT_VERSION),
    tpm2b(data.akPublic),
    Buffer.of(data.certificates.length),
    ...data.certificates.map(tpm2b),
  ]);
}

export function decodeAikCertificate(bytes: Buffer): AikCertificateData {
  const r = new Reader(bytes, 'AikCertificate');
  if (r.u16('version') !== ATTESTATION_FORMAT_VERSION) {
    throw unsupported('AikCertificate', 'format version');
  }
  const akPublic = r.sized('akPublic', MAX_PUBLIC_BYTES);
  const n = r.u8('certificate count');
  if (n < 1 || n > MAX_AK_CHAIN) {
    throw malformed('AikCertificate', `certificate count must be 1 to ${MAX_AK_CHAIN}`);
  }
  const certificates: Buffer[] = [];
  for (let i = 0; i < n; i++) certificates.push(r.sized(`certificate ${i}`, MAX_CERT_BYTES));
  r.end();
  return { akPublic, certificates };
}

export function encodeAttestationData(data: AttestationDataContent): Buffer {
  const one = (k: CertifiedKeyData) =>
    Buffer.concat([tpm2b(k.public), tpm2b(k.attest), writeSignature(k.signature)]);
  return Buffer.concat([
    u16s(ATTESTATION_FORMAT_VERSION),
    one(data.deviceKey),
    one(data.transportKey),
  ]);
}

export function decodeAttestationData(bytes: Buffer): AttestationDataContent {
  const r = new Reader(bytes, 'AttestationData');
  if (r.u16('version') !== ATTESTATION_FORMAT_VERSION) {
    throw unsupported('AttestationData', 'format version');
  }
  const one = (): CertifiedKeyData => ({
    public: r.sized('public', MAX_PUBLIC_BYTES),
    attest: r.sized('attest', MAX_ATTEST_BYTES),
    signature: readSignature(r),
  });
  const deviceKey = one();
  const transportKey = one();
  r.end();
  return { deviceKey, transportKey };
}
