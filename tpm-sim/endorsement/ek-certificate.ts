/**
 * EK certificates as the TCG EK Credential Profile (version 2.x, §3) describes them: an X.509 v3
 * certificate for the EK public key, issued by the TPM manufacturer's CA, with
 *
 *   - an empty subject, and so a critical subjectAltName holding a directoryName with the TPM
 *     manufacturer (2.23.133.2.1, "id:" + TPM_PT_MANUFACTURER in hex), model (2.23.133.2.2)
 *     and version (2.23.133.2.3, "id:" + TPM_PT_FIRMWARE_VERSION_1 in hex) as UTF8Strings;
 *   - keyUsage (critical): keyEncipherment for an RSA EK, keyAgreement for an ECC EK;
 *   - basicConstraints CA:FALSE (critical);
 *   - extendedKeyUsage tcg-kp-EKCertificate (2.23.133.8.1) and the authority key identifier;
 *   - notAfter 99991231235959Z ("no well-defined expiration", RFC 5280 §4.1.2.5).
 *
 * Certificate policies and the subject directory attributes (TPM specification version) are
 * optional in the profile and left out.
 */
import { type KeyObject, X509Certificate } from 'node:crypto';
import { chars4, FIRMWARE_VERSION_1, TPM_MANUFACTURER, tpmModel } from '../engine/identity.ts';
import { BACKDATE_MS, type ManufacturerCa, randomSerial, signingKeyOf } from './manufacturer-ca.ts';
import { ECDSA_P256_SHA256, webCrypto, x509 } from './x509.ts';

/** TCG OIDs (TCG EK Credential Profile §3.2, "TCG OID registry"). */
export const TCG_OID = {
  tpmManufacturer: '2.23.133.2.1',
  tpmModel: '2.23.133.2.2',
  tpmVersion: '2.23.133.2.3',
  ekCertificate: '2.23.133.8.1',
} as const;

const SUBJECT_ALT_NAME = '2.5.29.17';
const NO_EXPIRY = new Date('9999-12-31T23:59:59Z');

export type EkKind = 'rsa' | 'ecc';

/** DER length octets. */
function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.of(n);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function derTlv(tag: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.of(tag), derLength(body.length), body]);
}

/** "id:" and eight upper-case hex digits: how the profile writes a TPM_PT value. */
function idHex(v: number): string {
  return `id:${(v >>> 0).toString(16).toUpperCase().padStart(8, '0')}`;
}

/**
 * subjectAltName = GeneralNames { directoryName [4] Name }: one RDN with the TPM manufacturer,
 * model and version attributes as UTF8Strings (built here because the library's string form of
 * a Name encodes them as PrintableString).
 */
function tpmSubjectAltName(): x509.Extension {
  const name = new x509.Name([
    {
      [TCG_OID.tpmManufacturer]: [{ utf8String: idHex(chars4(TPM_MANUFACTURER)) }],
      [TCG_OID.tpmModel]: [{ utf8String: tpmModel() }],
      [TCG_OID.tpmVersion]: [{ utf8String: idHex(FIRMWARE_VERSION_1) }],
    },
  ]);
  const directoryName = derTlv(0xa4, Buffer.from(name.toArrayBuffer()));
  const generalNames = derTlv(0x30, directoryName);
  return new x509.Extension(SUBJECT_ALT_NAME, true, generalNames);
}

/** The attribute values the subjectAltName carries, for tests and verifiers. */
export function tpmIdentityAttributes(): Record<string, string> {
  return {
    [TCG_OID.tpmManufacturer]: idHex(chars4(TPM_MANUFACTURER)),
    [TCG_OID.tpmModel]: tpmModel(),
    [TCG_OID.tpmVersion]: idHex(FIRMWARE_VERSION_1),
  };
}

/** Issues the EK certificate for `ekPublic` (an RSA or ECC EK) under the manufacturer CA. */
export async function issueEkCertificate(
  ca: ManufacturerCa,
  ekPublic: KeyObject,
  kind: EkKind,
  now: Date = new Date(),
): Promise<Buffer> {
  const spki = ekPublic.export({ type: 'spki', format: 'der' });
  const usage =
    kind === 'rsa' ? x509.KeyUsageFlags.keyEncipherment : x509.KeyUsageFlags.keyAgreement;
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: '',
      // The CA's subject exactly as encoded in its certificate, so that chains build.
      issuer: new x509.X509Certificate(ca.certDer).subjectName,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: NO_EXPIRY,
      publicKey: spki,
      signingKey: await signingKeyOf(ca.privateKey),
      signingAlgorithm: ECDSA_P256_SHA256,
      extensions: [
        tpmSubjectAltName(),
        new x509.KeyUsagesExtension(usage, true),
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.ExtendedKeyUsageExtension([TCG_OID.ekCertificate]),
        await x509.AuthorityKeyIdentifierExtension.create(
          ca.cert.publicKey.export({ type: 'spki', format: 'der' }),
          false,
          webCrypto,
        ),
      ],
    },
    webCrypto,
  );
  const der = Buffer.from(cert.rawData);
  if (!new X509Certificate(der).checkIssued(ca.cert)) {
    throw new Error('EK certificate issuer does not match the manufacturer CA');
  }
  return der;
}
