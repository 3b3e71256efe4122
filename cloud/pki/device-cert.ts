/**
 * What DRS does with certificates (docs/prt-protocol.md §1.4, §1.5, §2): check a device's PKCS#10
 * request, issue its device certificate from `CN=MS-Organization-Access` with the Entra extensions,
 * and read the self-signed on-premises certificate a hybrid device is pre-created with.
 *
 * The extension payload encodings (DER OCTET STRING, GUIDs in .NET byte order) come from
 * protocol/, which the device side shares, so both ends agree on the bytes by construction.
 */
import {
  createPublicKey,
  constants as cryptoConstants,
  verify as cryptoVerify,
  type KeyObject,
  X509Certificate,
} from 'node:crypto';
import {
  asciiExtensionValue,
  CERT_JOIN_TYPE,
  DEVICE_CERT_OID,
  DRS_JOIN_TYPE,
  guidExtensionValue,
} from '../../protocol/device-certificate.ts';
import { CloudRequestError, DirectoryError } from '../errors.ts';
import { isGuid } from '../ids.ts';
import {
  type Authority,
  BACKDATE_MS,
  certificateThumbprint,
  signCertificate,
} from './authority.ts';
import { DerError, splitSigned } from './der.ts';
import { x509 } from './x509.ts';

/** The DRS `JoinType` values a device record or certificate can have (§1.5). */
export type JoinType = 0 | 4 | 6;

export const JOIN_TYPES: readonly JoinType[] = [
  DRS_JOIN_TYPE.joined,
  DRS_JOIN_TYPE.registered,
  DRS_JOIN_TYPE.hybrid,
];

/** Largest CSR accepted (an RSA-2048 request is about 700 bytes). */
export const MAX_CSR_BYTES = 16 * 1024;
const DEVICE_KEY_BITS = 2048;
const DAY_MS = 86_400_000;
/** Device certificates are long-lived; Windows keeps one for the life of the registration. */
const DEVICE_CERT_VALIDITY_DAYS = 10 * 365;

/** sha256WithRSAEncryption, 1.2.840.113549.1.1.11, as the OID's content bytes. */
const SHA256_WITH_RSA_OID = Buffer.from('2a864886f70d01010b', 'hex');
/** An absent or NULL parameters field, both seen for RSA signature algorithms. */
const NULL_PARAMS = Buffer.from('0500', 'hex');

export interface DeviceCertificateParams {
  /** The device's PKCS#10 request (DER); verified with parseCsr. Give this or `publicKey`. */
  csrDer?: Uint8Array;
  /** The device key's public half (a KeyObject or SPKI DER); RSA-2048. */
  publicKey?: KeyObject | Uint8Array;
  deviceId: string;
  tenantId: string;
  /** Object id of the user who joined or registered the device (AuthUserObjectId). */
  userObjectId: string;
  /** The DRS JoinType: 0 joined, 4 registered, 6 hybrid joined. */
  joinType: JoinType;
  /** Tenant region for extension .284.8, e.g. "NA", "EU". */
  region: string;
  now?: Date;
}

export interface IssuedDeviceCertificate {
  readonly der: Buffer;
  readonly pem: string;
  /** SHA-1 of the DER, uppercase hex, as DRS returns it in `Certificate.Thumbprint`. */
  readonly thumbprint: string;
  readonly serialNumber: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/**
 * Issues a device certificate: subject `CN=<deviceId>`, issuer `CN=MS-Organization-Access`, the
 * Entra extensions .284.2 (DeviceId), .284.3 (AuthUserObjectId), .284.5 (TenantId), .284.7
 * (JoinType as the certificate writes it: "1" joined or hybrid, "0" registered) and .284.8
 * (region), each an OCTET STRING. A CSR that fails parseCsr is ERR_CLOUD_REQUEST (AADSTS9002313).
 */
export async function issueDeviceCertificate(
  deviceCa: Authority,
  params: DeviceCertificateParams,
): Promise<IssuedDeviceCertificate> {
  for (const field of ['deviceId', 'tenantId', 'userObjectId'] as const) {
    if (!isGuid(params[field])) throw new TypeError(`${field} must be a GUID`);
  }
  if (!JOIN_TYPES.includes(params.joinType)) throw new RangeError('joinType must be 0, 4 or 6');
  if ((params.csrDer === undefined) === (params.publicKey === undefined)) {
    throw new TypeError('give exactly one of csrDer and publicKey');
  }
  const publicKey =
    params.csrDer !== undefined
      ? (await parseCsr(params.csrDer)).publicKey
      : checkDeviceKey(
          params.publicKey instanceof Uint8Array
            ? importSpki(params.publicKey)
            : (params.publicKey as KeyObject),
        );
  const now = params.now ?? new Date();
  const certJoinType =
    params.joinType === DRS_JOIN_TYPE.registered
      ? CERT_JOIN_TYPE.registered
      : CERT_JOIN_TYPE.joined;
  const deviceId = params.deviceId.toLowerCase();
  const cert = await signCertificate(deviceCa, {
    subject: `CN=${deviceId}`,
    publicKey,
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: new Date(now.getTime() + DEVICE_CERT_VALIDITY_DAYS * DAY_MS),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
      new x509.Extension(DEVICE_CERT_OID.deviceId, false, guidExtensionValue(deviceId)),
      new x509.Extension(
        DEVICE_CERT_OID.authUserObjectId,
        false,
        guidExtensionValue(params.userObjectId),
      ),
      new x509.Extension(DEVICE_CERT_OID.tenantId, false, guidExtensionValue(params.tenantId)),
      new x509.Extension(DEVICE_CERT_OID.joinType, false, asciiExtensionValue(certJoinType)),
      new x509.Extension(DEVICE_CERT_OID.region, false, asciiExtensionValue(params.region)),
    ],
  });
  return Object.freeze({
    der: Buffer.from(cert.raw),
    pem: cert.toString(),
    thumbprint: certificateThumbprint(cert),
    serialNumber: cert.serialNumber.toUpperCase(),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
  });
}

export interface ParsedCsr {
  /** Subject DN, e.g. "CN=7E980AD9-B86D-4306-9425-9AC066FB014A". */
  readonly subject: string;
  /** The subject's CN, if it has one. */
  readonly subjectCn: string | undefined;
  /** The verified RSA-2048 public key. */
  readonly publicKey: KeyObject;
  /** The public key as SPKI DER. */
  readonly publicKeySpki: Buffer;
  /** Value of the optional DRS nonce extension (.284.2.1) if the request carries one. */
  readonly nonceExtension: Buffer | undefined;
}

const CSR_NONCE_EXTENSION = '1.2.840.113556.1.5.284.2.1';

/**
 * Parses a device's PKCS#10 request and verifies its signature over the exact signed bytes. Only
 * sha256WithRSAEncryption with an RSA-2048 key is accepted (§1.2). Anything else (malformed DER,
 * trailing bytes, another algorithm or key, a bad signature) is ERR_CLOUD_REQUEST with
 * AADSTS9002313 and one generic public description, so the answer is no parsing oracle.
 */
export async function parseCsr(der: Uint8Array): Promise<ParsedCsr> {
  if (!(der instanceof Uint8Array)) throw new TypeError('der must be a Uint8Array');
  const refuse = (detail: string, cause?: unknown) =>
    new CloudRequestError(9002313, {
      description: 'The certificate signing request is malformed or its signature is invalid.',
      detail,
      cause,
    });
  if (der.length > MAX_CSR_BYTES) throw refuse(`CSR is ${der.length} bytes`);
  let parts: ReturnType<typeof splitSigned>;
  try {
    parts = splitSigned(der);
  } catch (err) {
    throw refuse(`CSR DER: ${err instanceof DerError ? err.message : 'unreadable'}`, err);
  }
  if (!Buffer.from(parts.algorithmOid).equals(SHA256_WITH_RSA_OID)) {
    throw refuse('CSR signature algorithm is not sha256WithRSAEncryption');
  }
  if (
    parts.algorithmParams.length !== 0 &&
    !Buffer.from(parts.algorithmParams).equals(NULL_PARAMS)
  ) {
    throw refuse('CSR signature algorithm has unexpected parameters');
  }
  let csr: x509.Pkcs10CertificateRequest;
  let publicKey: KeyObject;
  try {
    csr = new x509.Pkcs10CertificateRequest(Buffer.from(der));
    publicKey = importSpki(new Uint8Array(csr.publicKey.rawData));
  } catch (err) {
    throw refuse('CSR does not parse', err);
  }
  try {
    checkDeviceKey(publicKey);
  } catch (err) {
    throw refuse(err instanceof Error ? err.message : 'CSR key refused', err);
  }
  const ok = cryptoVerify(
    'sha256',
    parts.tbs,
    { key: publicKey, padding: cryptoConstants.RSA_PKCS1_PADDING },
    parts.signature,
  );
  if (!ok) throw refuse('CSR signature does not verify');
  const nonce = csr.getExtension(CSR_NONCE_EXTENSION);
  return Object.freeze({
    subject: csr.subject,
    subjectCn: csr.subjectName.getField('CN')[0],
    publicKey,
    publicKeySpki: Buffer.from(publicKey.export({ type: 'spki', format: 'der' })),
    nonceExtension: nonce ? Buffer.from(nonce.value) : undefined,
  });
}

function importSpki(spki: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
}

/** Device keys are RSA-2048 (§1.2); a CSR with anything else is refused. */
function checkDeviceKey(key: KeyObject): KeyObject {
  if (key.type !== 'public' || key.asymmetricKeyType !== 'rsa') {
    throw new CloudRequestError(9002313, {
      description: 'The device key must be an RSA-2048 public key.',
    });
  }
  if (key.asymmetricKeyDetails?.modulusLength !== DEVICE_KEY_BITS) {
    throw new CloudRequestError(9002313, {
      description: 'The device key must be an RSA-2048 public key.',
      detail: `modulus is ${key.asymmetricKeyDetails?.modulusLength} bits`,
    });
  }
  return key;
}

/** A hybrid device's on-premises certificate, read for pre-creation (§1.5, §2 hybrid join). */
export interface OnPremDeviceCertificate {
  /** The device id: the certificate's subject CN, a GUID (lowercase). */
  readonly deviceId: string;
  readonly der: Buffer;
  readonly thumbprint: string;
  readonly publicKey: KeyObject;
}

/**
 * Reads the self-signed certificate of an on-premises computer object (PEM or DER). Its subject
 * CN is the device GUID, and its RSA key later verifies `ServerAdJoinData.ClientIdentity`. A
 * certificate that is not self-signed, has no GUID CN or no RSA key is ERR_DIRECTORY.
 */
export function parseOnPremDeviceCertificate(data: Uint8Array | string): OnPremDeviceCertificate {
  const refuse = (why: string, cause?: unknown) =>
    new DirectoryError(9990003, `the on-premises device certificate ${why}`, { cause });
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(typeof data === 'string' ? Buffer.from(data) : Buffer.from(data));
  } catch (err) {
    throw refuse('is not a PEM or DER X.509 certificate', err);
  }
  const cn = cert.subject
    .split('\n')
    .find((line) => line.startsWith('CN='))
    ?.slice(3);
  if (cn === undefined || !isGuid(cn)) throw refuse('must have a device GUID as its subject CN');
  if (cert.publicKey.asymmetricKeyType !== 'rsa') throw refuse('must have an RSA key');
  if (!cert.checkIssued(cert) || !cert.verify(cert.publicKey)) throw refuse('must be self-signed');
  return Object.freeze({
    deviceId: cn.toLowerCase(),
    der: Buffer.from(cert.raw),
    thumbprint: certificateThumbprint(cert),
    publicKey: cert.publicKey,
  });
}
