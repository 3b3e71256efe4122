/**
 * The DRS join bodies, read strictly (docs/prt-protocol.md §2):
 *
 * - join/register, `POST /EnrollmentServer/device/`: CertificateRequest, TransportKey,
 *   TargetDomain, DeviceType, OSVersion, DeviceDisplayName, JoinType, attributes, and the
 *   optional AikCertificate / AttestationData [HB-spec].
 * - hybrid join, `PUT /EnrollmentServer/device/{id}`: CertificateRequest, JoinType 6,
 *   attributes, ServerAdJoinData { TransportKey, TargetDomain, DeviceType, OSVersion,
 *   DeviceDisplayName, TargetDomainId, SourceDomainController (AADInternals only), ClientIdentity }.
 * - both: the optional `LabSystemLabels`, a lab convention for the device's Graph systemLabels
 *   (LAB_SYSTEM_LABELS below).
 *
 * The CSR is parsed and its signature checked here (parseCsr), its subject must be the fixed
 * `CN=7E980AD9-B86D-4306-9425-9AC066FB014A` (§1.4), and the transport key must be an RSA-2048
 * BCRYPT_RSAKEY_BLOB (§1.3). Only the Windows encodings are accepted: a macOS or Android body
 * (JWK transport key, `DeviceKeys`) is refused, since the lab's device is a Windows device.
 */
import type { KeyObject } from 'node:crypto';
import {
  CSR_SUBJECT_CN,
  DRS_JOIN_TYPE,
  isProtocolError,
  MAX_RSA_BLOB_BYTES,
  parseRsaBlobBase64,
} from '../../protocol/index.ts';
import { CloudRequestError, isCloudError } from '../errors.ts';
import { MAX_CSR_BYTES, parseCsr } from '../pki/device-cert.ts';
import type { AttestationMembers } from './attestation.ts';
import {
  asObject,
  badField,
  base64,
  eitherKey,
  flag,
  type JsonObject,
  onlyKeys,
  required,
  text,
} from './fields.ts';

/** The transport key size DRS accepts (§1.2: RSA-2048). */
export const TRANSPORT_KEY_BITS = 2048;
/** Directory limits: display names 256 characters, OS and device type 64 (directory/types.ts). */
const MAX_DISPLAY_NAME = 256;
const MAX_SHORT_TEXT = 64;
/** A domain name is at most 253 characters; ROADtools says TargetDomain is not validated. */
const MAX_TARGET_DOMAIN = 253;
/** Optional TPM attestation members (attestation.ts) and the MSA device ticket. */
const MAX_ATTESTATION_BYTES = 16 * 1024;
const MAX_DEVICE_TICKET_BYTES = 8 * 1024;

/** The device facts both join bodies carry (top level for POST, ServerAdJoinData for PUT). */
export interface DeviceFacts {
  /** The RSA1 blob as received (decoded), stored as the device's transport key. */
  readonly transportKeyBlob: Buffer;
  readonly transportKey: KeyObject;
  readonly targetDomain: string;
  readonly deviceType: string;
  readonly osVersion: string;
  readonly displayName: string;
}

export interface JoinAttributes {
  /** Read and validated, but a registration always creates a new device (README, "DRS"). */
  readonly reuseDevice: boolean;
  /** Whether the response lists MembershipChanges [HB-spec]. */
  readonly returnClientSid: boolean;
  readonly sharedDevice: boolean;
}

export interface VerifiedCsr {
  /** The device key (RSA-2048) the CSR was signed with. */
  readonly publicKey: KeyObject;
}

export interface JoinRequest {
  readonly csr: VerifiedCsr;
  /** 0 (Entra joined) or 4 (registered). */
  readonly joinType: 0 | 4;
  readonly device: DeviceFacts;
  readonly attributes: JoinAttributes;
  /** `LabSystemLabels` (a lab convention, see LAB_SYSTEM_LABELS); empty when absent. */
  readonly systemLabels: readonly string[];
  /** AikCertificate and AttestationData, decoded; absent when the body sent neither. */
  readonly attestation?: AttestationMembers;
}

export interface ClientIdentityField {
  /** `<computer objectSid>.<yyyy-MM-dd HH:mm:ss>Z`, exactly as signed. */
  readonly sid: string;
  readonly signedBlob: Buffer;
}

export interface HybridJoinRequest {
  readonly csr: VerifiedCsr;
  readonly device: DeviceFacts;
  readonly attributes: JoinAttributes;
  readonly targetDomainId: string;
  readonly clientIdentity: ClientIdentityField;
  /** `LabSystemLabels` (a lab convention, see LAB_SYSTEM_LABELS); empty when absent. */
  readonly systemLabels: readonly string[];
}

/** The members readDeviceFacts reads, in both bodies. */
const DEVICE_FACT_KEYS = [
  'TransportKey',
  'TargetDomain',
  'DeviceType',
  'OSVersion',
  'DeviceDisplayName',
] as const;

const JOIN_KEYS = [
  'CertificateRequest',
  ...DEVICE_FACT_KEYS,
  'JoinType',
  'attributes',
  'Attributes',
  'AikCertificate',
  'AttestationData',
  'LabSystemLabels',
] as const;

const HYBRID_KEYS = [
  'CertificateRequest',
  'JoinType',
  'attributes',
  'Attributes',
  'ServerAdJoinData',
  'LabSystemLabels',
];

/**
 * The Graph `systemLabels` a lab device may claim at join (`LabSystemLabels`). Entra sets these
 * labels from provisioning services (Teams Rooms, AVD, Windows 365, Power Automate), never from
 * the DRS body; the lab has no such services, so a join may name them itself. This is a lab
 * convention, not part of [HB-spec]. Only the labels the token-protection catalog recognises
 * (cloud/ca/catalog.ts) are accepted, spelled exactly so, each at most once.
 */
export const LAB_SYSTEM_LABELS: readonly string[] = Object.freeze([
  'SurfaceHub',
  'MicrosoftTeamsRoom',
  'AzureVirtualDesktop',
  'CloudPC',
  'MicrosoftPowerAutomate',
]);
const SERVER_AD_KEYS = [
  ...DEVICE_FACT_KEYS,
  'TargetDomainId',
  'SourceDomainController',
  'ClientIdentity',
];
const ATTRIBUTE_KEYS = ['ReuseDevice', 'ReturnClientSid', 'SharedDevice', 'MSA-DDID'];
/** The longest ClientIdentity signature: an RSA-8192 on-premises key. */
const MAX_SIGNED_BLOB_BYTES = 1024;
/** A SID string is at most 184 characters (15 sub-authorities); the timestamp adds 21. */
const MAX_CLIENT_SID = 256;

/** Reads `POST /EnrollmentServer/device/` (JoinType 0 or 4). */
export async function readJoinRequest(body: unknown): Promise<JoinRequest> {
  const obj = asObject(body, 'request body');
  onlyKeys(obj, JOIN_KEYS, 'request body');
  // JoinType first: a hybrid body sent here is told where to go before any crypto runs.
  const joinType = readJoinType(required(obj, 'JoinType', 'JoinType'));
  if (joinType !== DRS_JOIN_TYPE.joined && joinType !== DRS_JOIN_TYPE.registered) {
    throw new CloudRequestError(9990206, {
      description:
        joinType === DRS_JOIN_TYPE.hybrid
          ? 'JoinType 6 (hybrid join) is sent with PUT /EnrollmentServer/device/{deviceId}, without a bearer token.'
          : `JoinType ${joinType} is not accepted; this endpoint takes 0 (join) or 4 (register).`,
    });
  }
  const attributes = readAttributes(eitherKey(obj, 'attributes', 'Attributes'));
  const attestation = readAttestationMembers(obj);
  const systemLabels = readLabSystemLabels(obj.LabSystemLabels);
  const device = readDeviceFacts(obj, '');
  const csr = await readCertificateRequest(
    required(obj, 'CertificateRequest', 'CertificateRequest'),
  );
  return {
    csr,
    joinType,
    device,
    attributes,
    systemLabels,
    ...(attestation ? { attestation } : {}),
  };
}

/**
 * `AikCertificate` and `AttestationData` (§2, optional): both absent (or empty strings, which is
 * what ROADtools sends) means no attestation; both present are decoded here (base64, capped) and
 * verified by attestation.ts; one without the other is AADSTS9990214.
 */
function readAttestationMembers(obj: JsonObject): AttestationMembers | undefined {
  const present = (key: string) => obj[key] !== undefined && obj[key] !== '';
  const aik = present('AikCertificate');
  const data = present('AttestationData');
  if (!aik && !data) return undefined;
  if (!aik || !data) {
    throw new CloudRequestError(9990214, {
      description: 'AikCertificate and AttestationData must be sent together.',
    });
  }
  return {
    aikCertificate: base64(obj.AikCertificate, 'AikCertificate', MAX_ATTESTATION_BYTES),
    attestationData: base64(obj.AttestationData, 'AttestationData', MAX_ATTESTATION_BYTES),
  };
}

/** Reads `PUT /EnrollmentServer/device/{id}` (JoinType 6). */
export async function readHybridJoinRequest(body: unknown): Promise<HybridJoinRequest> {
  const obj = asObject(body, 'request body');
  onlyKeys(obj, HYBRID_KEYS, 'request body');
  const joinType = readJoinType(required(obj, 'JoinType', 'JoinType'));
  if (joinType !== DRS_JOIN_TYPE.hybrid) {
    throw new CloudRequestError(9990206, {
      description: `JoinType ${joinType} is not accepted here; PUT /EnrollmentServer/device/{deviceId} is the hybrid join (JoinType 6).`,
    });
  }
  const attributes = readAttributes(eitherKey(obj, 'attributes', 'Attributes'));
  const ad = asObject(required(obj, 'ServerAdJoinData', 'ServerAdJoinData'), 'ServerAdJoinData');
  onlyKeys(ad, SERVER_AD_KEYS, 'ServerAdJoinData');
  const targetDomainId = text(
    required(ad, 'TargetDomainId', 'ServerAdJoinData.TargetDomainId'),
    'ServerAdJoinData.TargetDomainId',
    MAX_TARGET_DOMAIN,
  );
  if (ad.SourceDomainController !== undefined) {
    text(ad.SourceDomainController, 'ServerAdJoinData.SourceDomainController', MAX_TARGET_DOMAIN);
  }
  const clientIdentity = readClientIdentity(
    required(ad, 'ClientIdentity', 'ServerAdJoinData.ClientIdentity'),
  );
  const systemLabels = readLabSystemLabels(obj.LabSystemLabels);
  const device = readDeviceFacts(ad, 'ServerAdJoinData.');
  const csr = await readCertificateRequest(
    required(obj, 'CertificateRequest', 'CertificateRequest'),
  );
  return { csr, device, attributes, targetDomainId, clientIdentity, systemLabels };
}

/**
 * `LabSystemLabels`: absent, or an array of distinct labels from LAB_SYSTEM_LABELS. Anything else
 * (another type, an unknown or differently spelled label, a repeat) is AADSTS9990205.
 */
export function readLabSystemLabels(value: unknown): readonly string[] {
  if (value === undefined) return [];
  const path = 'LabSystemLabels';
  if (!Array.isArray(value) || value.length > LAB_SYSTEM_LABELS.length) {
    throw badField(
      `'${path}' must be an array of at most ${LAB_SYSTEM_LABELS.length} of: ${LAB_SYSTEM_LABELS.join(', ')}.`,
    );
  }
  const seen = new Set<string>();
  for (const [i, label] of value.entries()) {
    if (typeof label !== 'string' || !LAB_SYSTEM_LABELS.includes(label)) {
      throw badField(`'${path}[${i}]' must be one of: ${LAB_SYSTEM_LABELS.join(', ')}.`);
    }
    if (seen.has(label)) throw badField(`'${path}' names '${label}' twice.`);
    seen.add(label);
  }
  return [...seen];
}

function readJoinType(value: unknown): number {
  // A JSON number, as every client sends it; "0" as a string is a type error, not a join.
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 255) {
    throw badField("'JoinType' must be an integer.");
  }
  return value;
}

function readAttributes(value: unknown): JoinAttributes {
  if (value === undefined || value === null) {
    return { reuseDevice: false, returnClientSid: false, sharedDevice: false };
  }
  const obj = asObject(value, 'attributes');
  onlyKeys(obj, ATTRIBUTE_KEYS, 'attributes');
  const opt = (key: string) =>
    obj[key] === undefined ? false : flag(obj[key], `attributes.${key}`);
  // MSA-DDID is ROADtools' b64 of a device ticket [RT-dev]; the lab has no MSA, so it is only checked.
  if (obj['MSA-DDID'] !== undefined) {
    base64(obj['MSA-DDID'], 'attributes.MSA-DDID', MAX_DEVICE_TICKET_BYTES);
  }
  return {
    reuseDevice: opt('ReuseDevice'),
    returnClientSid: opt('ReturnClientSid'),
    sharedDevice: opt('SharedDevice'),
  };
}

function readDeviceFacts(obj: JsonObject, prefix: string): DeviceFacts {
  const field = (key: string) => required(obj, key, `${prefix}${key}`);
  const targetDomain = text(field('TargetDomain'), `${prefix}TargetDomain`, MAX_TARGET_DOMAIN);
  const deviceType = text(field('DeviceType'), `${prefix}DeviceType`, MAX_SHORT_TEXT);
  const osVersion = text(field('OSVersion'), `${prefix}OSVersion`, MAX_SHORT_TEXT);
  const displayName = text(
    field('DeviceDisplayName'),
    `${prefix}DeviceDisplayName`,
    MAX_DISPLAY_NAME,
  );
  const { blob, key } = readTransportKey(field('TransportKey'), `${prefix}TransportKey`);
  return {
    transportKeyBlob: blob,
    transportKey: key,
    targetDomain,
    deviceType,
    osVersion,
    displayName,
  };
}

/**
 * `TransportKey`: b64 of a BCRYPT_RSAKEY_BLOB "RSA1" (§1.3), parsed with protocol's
 * parseRsaBlobBase64 and required to be RSA-2048 (§1.2). Bad base64 (AADSTS9990201) is told
 * apart from a bad blob (AADSTS9990204).
 */
export function readTransportKey(value: unknown, path: string): { blob: Buffer; key: KeyObject } {
  const blob = base64(value, path, MAX_RSA_BLOB_BYTES);
  const refuse = (detail: string, cause?: unknown) =>
    new CloudRequestError(9990204, { detail: `${path}: ${detail}`, cause });
  let parsed: ReturnType<typeof parseRsaBlobBase64>;
  try {
    parsed = parseRsaBlobBase64(value as string);
  } catch (err) {
    if (isProtocolError(err)) throw refuse(err.message, err);
    throw err;
  }
  if (parsed.bits !== TRANSPORT_KEY_BITS) throw refuse(`${parsed.bits}-bit key`);
  return { blob, key: parsed.publicKey };
}

/**
 * `CertificateRequest` {Type: "pkcs10", Data: b64(DER)}: parsed and signature-checked with
 * parseCsr (RSA-2048, sha256WithRSAEncryption), then the subject must be exactly the fixed CN
 * Windows uses (§1.4, [HB-spec]: "The CN of the request MUST equal ..."). A CSR naming anything
 * else is refused rather than ignored, so a client cannot believe it chose its certificate subject
 * (the issued subject is always CN=<deviceId>).
 */
export async function readCertificateRequest(value: unknown): Promise<VerifiedCsr> {
  const obj = asObject(value, 'CertificateRequest');
  onlyKeys(obj, ['Type', 'Data'], 'CertificateRequest');
  const type = required(obj, 'Type', 'CertificateRequest.Type');
  if (type !== 'pkcs10') throw badField('\'CertificateRequest.Type\' must be "pkcs10".');
  const der = base64(
    required(obj, 'Data', 'CertificateRequest.Data'),
    'CertificateRequest.Data',
    MAX_CSR_BYTES,
  );
  let csr: Awaited<ReturnType<typeof parseCsr>>;
  try {
    csr = await parseCsr(der);
  } catch (err) {
    // parseCsr answers AADSTS9002313 with one generic description (no parsing oracle); DRS
    // gives CSR failures their own number, keeping that description and the private detail.
    if (isCloudError(err, 'ERR_CLOUD_REQUEST')) {
      throw new CloudRequestError(9990202, {
        description: err.description,
        ...(err.detail ? { detail: err.detail } : {}),
        cause: err,
      });
    }
    throw err;
  }
  if (csr.subject.toUpperCase() !== `CN=${CSR_SUBJECT_CN}`) {
    throw new CloudRequestError(9990203, { detail: 'CSR subject is not the fixed DRS CN' });
  }
  return { publicKey: csr.publicKey };
}

function readClientIdentity(value: unknown): ClientIdentityField {
  const path = 'ServerAdJoinData.ClientIdentity';
  const obj = asObject(value, path);
  onlyKeys(obj, ['Type', 'Sid', 'SignedBlob'], path);
  if (required(obj, 'Type', `${path}.Type`) !== 'sha256signed') {
    throw badField(`'${path}.Type' must be "sha256signed".`);
  }
  const sid = required(obj, 'Sid', `${path}.Sid`);
  if (typeof sid !== 'string' || sid.length === 0 || sid.length > MAX_CLIENT_SID) {
    throw badField(`'${path}.Sid' must be a string of 1 to ${MAX_CLIENT_SID} characters.`);
  }
  const signedBlob = base64(
    required(obj, 'SignedBlob', `${path}.SignedBlob`),
    `${path}.SignedBlob`,
    MAX_SIGNED_BLOB_BYTES,
  );
  return { sid, signedBlob };
}
