/**
 * Values for the DRS-issued device certificate and its CSR (§1.4), and the GUID byte order its
 * extensions use. Building and parsing X.509 itself happens elsewhere; this module only supplies
 * the constants and the extension payload encodings.
 *
 * Every Entra extension value is a DER OCTET STRING wrapping the payload (`04 10 <16 bytes>` for a
 * GUID) [AADI-CU Get-OidRawValue]. GUIDs are in .NET `Guid.ToByteArray()` order: the first three
 * fields little-endian, the last eight bytes as written [AADI-CU].
 */
import { malformed } from './errors.ts';

/** The fixed subject CN of every device CSR [HB-spec][RT-dev][AADI-PRTU] (§1.4). */
export const CSR_SUBJECT_CN = '7E980AD9-B86D-4306-9425-9AC066FB014A';

/** Issuer CN of Entra device certificates [MSCA] (§1.4). */
export const DEVICE_CERT_ISSUER_CN = 'MS-Organization-Access';

/** Extension OIDs of the device certificate [AADI-CU] (§1.4). */
export const DEVICE_CERT_OID = {
  /** DeviceId, a GUID. */
  deviceId: '1.2.840.113556.1.5.284.2',
  /** AuthUserObjectId: object id of the user who joined or registered the device, a GUID. */
  authUserObjectId: '1.2.840.113556.1.5.284.3',
  /** TenantId, a GUID. */
  tenantId: '1.2.840.113556.1.5.284.5',
  /** JoinType as ASCII: "0" registered, "1" joined (CERT_JOIN_TYPE). */
  joinType: '1.2.840.113556.1.5.284.7',
  /** Tenant region as ASCII, e.g. "EU", "NA". */
  region: '1.2.840.113556.1.5.284.8',
} as const;

/** Optional CSR extension carrying a DRS nonce; the spec says SHOULD, tools omit it [HB-spec]. */
export const CSR_NONCE_OID = '1.2.840.113556.1.5.284.2.1';

/** The certificate's JoinType extension values [AADI-CU] (not the DRS body's JoinType). */
export const CERT_JOIN_TYPE = { registered: '0', joined: '1' } as const;

/**
 * `JoinType` in the DRS registration body (§1.5): 0 joined, 4 registered (workplace join),
 * 6 hybrid. [HB-spec] also lists 8 for "Azure AD join"; the tools send 0.
 */
export const DRS_JOIN_TYPE = { joined: 0, registered: 4, hybrid: 6 } as const;

const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const GUID_BYTES = 16;

/**
 * A GUID's 16 bytes in .NET order: Data1 (4 bytes), Data2 and Data3 (2 bytes each) little-endian,
 * then the last 8 bytes in text order. Accepts the hyphenated form in either case; anything else
 * is ERR_PROTOCOL_MALFORMED.
 */
export function guidToBytes(guid: string): Buffer {
  if (typeof guid !== 'string') throw new TypeError('GUID must be a string');
  if (!GUID_RE.test(guid)) {
    throw malformed('GUID', 'not in xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx form');
  }
  const text = Buffer.from(guid.replaceAll('-', ''), 'hex');
  const out = Buffer.from(text);
  out.writeUInt32LE(text.readUInt32BE(0), 0);
  out.writeUInt16LE(text.readUInt16BE(4), 4);
  out.writeUInt16LE(text.readUInt16BE(6), 6);
  return out;
}

/** The lowercase hyphenated GUID for 16 bytes in .NET order; other lengths are malformed. */
export function guidFromBytes(bytes: Uint8Array): string {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('GUID bytes must be a Uint8Array');
  if (bytes.length !== GUID_BYTES) throw malformed('GUID', `expected ${GUID_BYTES} bytes`);
  const b = Buffer.from(bytes);
  const hex = Buffer.alloc(GUID_BYTES);
  hex.writeUInt32BE(b.readUInt32LE(0), 0);
  hex.writeUInt16BE(b.readUInt16LE(4), 4);
  hex.writeUInt16BE(b.readUInt16LE(6), 6);
  b.copy(hex, 8, 8);
  const h = hex.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// Values here are short, so DER's short-form length (one byte, < 128) is the only valid one.
const OCTET_STRING = 0x04;
const MAX_SHORT_LENGTH = 127;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

function octetString(payload: Buffer): Buffer {
  return Buffer.concat([Buffer.of(OCTET_STRING, payload.length), payload]);
}

function readOctetString(value: Uint8Array, what: string): Buffer {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${what}: expected a Uint8Array`);
  if (value.length < 2 || value[0] !== OCTET_STRING || value[1]! > MAX_SHORT_LENGTH) {
    throw malformed(what, 'not a short DER OCTET STRING');
  }
  if (value.length !== 2 + value[1]!) throw malformed(what, 'OCTET STRING length mismatch');
  return Buffer.from(value.subarray(2));
}

/** The extension value (extnValue contents) for a GUID extension: DER OCTET STRING of 16 bytes. */
export function guidExtensionValue(guid: string): Buffer {
  return octetString(guidToBytes(guid));
}

/** Reads a GUID extension value written by guidExtensionValue (or by DRS). */
export function readGuidExtensionValue(value: Uint8Array): string {
  return guidFromBytes(readOctetString(value, 'GUID extension'));
}

/** The extension value for an ASCII extension (JoinType, region): DER OCTET STRING of the text. */
export function asciiExtensionValue(text: string): Buffer {
  if (typeof text !== 'string' || !PRINTABLE_ASCII.test(text) || text.length > MAX_SHORT_LENGTH) {
    throw new RangeError(
      `extension text must be printable ASCII of at most ${MAX_SHORT_LENGTH} chars`,
    );
  }
  return octetString(Buffer.from(text, 'ascii'));
}

/** Reads an ASCII extension value; non-printable bytes are malformed. */
export function readAsciiExtensionValue(value: Uint8Array): string {
  const text = readOctetString(value, 'ASCII extension').toString('latin1');
  if (!PRINTABLE_ASCII.test(text)) throw malformed('ASCII extension', 'not printable ASCII');
  return text;
}
