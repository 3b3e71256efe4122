/**
 * The device's certificate requests and certificates, signed by keys that stay in the TPM:
 *
 * - the PKCS#10 request for the device certificate (RFC 2986 §4), subject fixed to
 *   CN=7E980AD9-B86D-4306-9425-9AC066FB014A as Windows sends it (prt-protocol §1.4), signed
 *   sha256WithRSAEncryption by the device key;
 * - the self-signed certificate of a hybrid device's on-premises computer account, CN=<device
 *   GUID> (§1.5, §2 "Hybrid join": the cloud knows the device by this certificate once it is
 *   synced, i.e. pre-created);
 * - reading what DRS issued: the device id (subject CN) and tenant id (extension .284.5).
 *
 * The structures are the ASN.1 schemas of @peculiar/asn1-csr and @peculiar/asn1-x509, encoded by
 * @peculiar/asn1-schema; only the signature comes from `sign`. @peculiar/x509's own generators are
 * not used: they want a WebCrypto key, and they always write an extensions field, empty when there
 * are none, which RFC 5280 §4.1 (Extensions ::= SEQUENCE SIZE (1..MAX)) does not allow.
 */
import { createPublicKey, type KeyObject, randomBytes, X509Certificate } from 'node:crypto';
import { CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  Certificate,
  type Extension,
  Name,
  RelativeDistinguishedName,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
} from '@peculiar/asn1-x509';
import {
  CSR_SUBJECT_CN,
  DEVICE_CERT_OID,
  isProtocolError,
  readGuidExtensionValue,
} from '../protocol/index.ts';
import { AgentDeviceError } from './errors.ts';

/** Makes a PKCS#1 v1.5 SHA-256 signature over `data` (a TPM-held key does, in practice). */
export type Rs256Signer = (data: Buffer) => Promise<Buffer>;

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** id-at-commonName (RFC 5280 Appendix A.1). */
const COMMON_NAME_OID = '2.5.4.3';
/** sha256WithRSAEncryption (RFC 4055 §5). */
const SHA256_WITH_RSA_OID = '1.2.840.113549.1.1.11';

function spki(publicKey: KeyObject): Buffer {
  return publicKey.export({ type: 'spki', format: 'der' });
}

/** A fresh ArrayBuffer with `bytes` (a Buffer may be a view into a larger shared pool). */
function arrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return new Uint8Array(bytes).buffer;
}

/** sha256WithRSAEncryption; RFC 4055 §5 has its parameters present and NULL. */
function sha256WithRsa(): AlgorithmIdentifier {
  return new AlgorithmIdentifier({ algorithm: SHA256_WITH_RSA_OID, parameters: null });
}

/**
 * A Name of one RDN, CN=`cn` (RFC 5280 §4.1.2.4), as a UTF8String, which §4.1.2.4 asks of new
 * certificates. Built from structure, so nothing in `cn` is read as DN syntax.
 */
function commonName(cn: string): Name {
  const value = new AttributeValue({ utf8String: cn });
  return new Name([
    new RelativeDistinguishedName([new AttributeTypeAndValue({ type: COMMON_NAME_OID, value })]),
  ]);
}

/** The device key as SubjectPublicKeyInfo, exactly as node exports it (RFC 5280 §4.1.2.7). */
function subjectPublicKeyInfo(publicKey: KeyObject): SubjectPublicKeyInfo {
  return AsnConvert.parse(spki(publicKey), SubjectPublicKeyInfo);
}

/**
 * The DER PKCS#10 request DRS takes in CertificateRequest.Data (§2): version 0, the fixed subject,
 * the device key and attributes [0] present but empty (RFC 2986 §4.1), signed by `sign` over the
 * DER certificationRequestInfo (§4.2).
 */
export async function deviceCsr(publicKey: KeyObject, sign: Rs256Signer): Promise<Buffer> {
  const info = new CertificationRequestInfo({
    subject: commonName(CSR_SUBJECT_CN),
    subjectPKInfo: subjectPublicKeyInfo(publicKey),
  });
  const signature = await sign(Buffer.from(AsnConvert.serialize(info)));
  const request = new CertificationRequest({
    certificationRequestInfo: info,
    signatureAlgorithm: sha256WithRsa(),
    signature: arrayBuffer(signature),
  });
  return Buffer.from(AsnConvert.serialize(request));
}

/**
 * A self-signed v3 certificate CN=`deviceId` on `publicKey`, valid from an hour before `now` for
 * a year: what an on-premises computer object carries and Entra Connect syncs (§1.5). Pre-creation
 * reads only its subject and key, so it has no extensions, and therefore no extensions field
 * either (RFC 5280 §4.1 does not allow an empty one).
 */
export async function computerCertificate(
  deviceId: string,
  publicKey: KeyObject,
  sign: Rs256Signer,
  now: Date,
): Promise<Buffer> {
  // RFC 5280 §4.1.2.2: a positive integer of at most 20 octets. The top bit clear keeps it
  // positive, the next one set keeps the first octet non-zero (so DER has nothing to trim).
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x40;
  const name = commonName(deviceId.toUpperCase());
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: arrayBuffer(serial),
    signature: sha256WithRsa(),
    issuer: name,
    // Whole seconds, UTCTime through 2049 and GeneralizedTime from 2050 (RFC 5280 §4.1.2.5).
    validity: new Validity({
      notBefore: new Date(now.getTime() - HOUR_MS),
      notAfter: new Date(now.getTime() + 365 * DAY_MS),
    }),
    subject: name,
    subjectPublicKeyInfo: subjectPublicKeyInfo(publicKey),
  });
  const signature = await sign(Buffer.from(AsnConvert.serialize(tbs)));
  const cert = new Certificate({
    tbsCertificate: tbs,
    signatureAlgorithm: sha256WithRsa(),
    signatureValue: arrayBuffer(signature),
  });
  return Buffer.from(AsnConvert.serialize(cert));
}

/** What the device reads from the certificate DRS issued. */
export interface IssuedCertificate {
  readonly der: Buffer;
  readonly deviceId: string;
  readonly tenantId: string;
  /** Uppercase SHA-1 hex, as dsregcmd shows it. */
  readonly thumbprint: string;
  readonly validFrom: Date;
  readonly validTo: Date;
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Reads the device certificate DRS returned and checks that it certifies `deviceKey` (the key
 * the CSR carried): a certificate for another key would make every later PRT request fail.
 */
export function readIssuedCertificate(der: Buffer, deviceKey: KeyObject): IssuedCertificate {
  const refuse = (why: string, cause?: unknown) =>
    new AgentDeviceError(`the device certificate from the cloud ${why}`, { cause });
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
  } catch (err) {
    throw refuse('does not parse', err);
  }
  // node's raw is the DER of the certificate it parsed. OpenSSL ignores bytes after it and node
  // also takes PEM; either is refused, so the thumbprint and the stored bytes are of one and the
  // same DER certificate (RFC 5280 §4.1).
  if (!cert.raw.equals(der)) throw refuse('is not exactly one DER certificate');
  if (!spki(cert.publicKey).equals(spki(deviceKey))) throw refuse('is not for the device key');
  const cn = /^CN=(.+)$/.exec(cert.subject.trim())?.[1];
  if (!cn || !GUID.test(cn)) throw refuse('does not name a device id as its subject');
  // node:crypto exposes no arbitrary extensions, so the schema decoder reads them; it parses
  // untrusted bytes here and bounds depth, node count and content length by default.
  let extensions: readonly Extension[];
  try {
    extensions = AsnConvert.parse(der, Certificate).tbsCertificate.extensions ?? [];
  } catch (err) {
    throw refuse('has malformed extensions', err);
  }
  // RFC 5280 §4.2: one instance of an extension at most, so two are refused, not one picked.
  const tenant = extensions.filter((e) => e.extnID === DEVICE_CERT_OID.tenantId);
  if (tenant.length === 0) throw refuse('has no TenantId extension');
  if (tenant.length > 1) throw refuse('has more than one TenantId extension');
  let tenantId: string;
  try {
    // extnValue's content, itself a DER OCTET STRING around the GUID (prt-protocol §1.4).
    tenantId = readGuidExtensionValue(new Uint8Array(tenant[0]!.extnValue.buffer));
  } catch (err) {
    if (isProtocolError(err)) throw refuse('has a malformed extension', err);
    throw err;
  }
  return {
    der: Buffer.from(der),
    deviceId: cn.toLowerCase(),
    tenantId,
    thumbprint: cert.fingerprint.replaceAll(':', '').toUpperCase(),
    validFrom: new Date(cert.validFrom),
    validTo: new Date(cert.validTo),
  };
}

/**
 * The public key of an RSA TPM object: its unique is the modulus, and an exponent of 0 means the
 * default 2^16 + 1 (Part 2 §12.2.3.5, TPMS_RSA_PARMS).
 */
export function rsaPublicKey(modulus: Buffer, exponent = 0): KeyObject {
  const e = Buffer.alloc(4);
  e.writeUInt32BE(exponent === 0 ? 65537 : exponent >>> 0);
  let i = 0;
  while (i < 3 && e[i] === 0) i++;
  return createPublicKey({
    key: { kty: 'RSA', n: modulus.toString('base64url'), e: e.subarray(i).toString('base64url') },
    format: 'jwk',
  });
}
