/**
 * TPM attestation of a join (docs/prt-protocol.md §2 `AikCertificate`/`AttestationData`, §8 "an
 * attacker registering their own device with software keys"). The lab's wire format is
 * protocol/tpm-attestation.ts; this module decides.
 *
 * Lab convention (README, "DRS"). A real Windows device gets an AIK certificate from Microsoft's
 * AIK service after a credential activation: the service encrypts a secret to the TPM's EK bound
 * to the AK's Name (TPM2_MakeCredential, Part 3 §12.6), and only the TPM holding both keys can
 * recover it (TPM2_ActivateCredential, §12.5), which proves the AK lives in the TPM the EK
 * certificate names. The lab's TPM has no ActivateCredential, so the lab's `AikCertificate` carries
 * the EK certificate chain and the AK's public area, and the registration service checks:
 *
 *   1. both members present, well-formed (bounded parsers)                      else AADSTS9990214
 *   2. the AK: restricted signing key, fixedTPM, fixedParent, sensitiveDataOrigin   else 9990218
 *   3. the EK certificate chains (with the intermediates sent) to a trusted TPM
 *      manufacturer CA, every certificate in its validity period                   else 9990215
 *   4. each TPMS_ATTEST (TPM_GENERATED_VALUE, TPM_ST_ATTEST_CERTIFY; Part 2 §10.12.12) is
 *      signed by the AK with its own scheme (Part 3 §18.2)                         else 9990219
 *   5. extraData (qualifyingData, Part 3 §18.2.1) of both is the same DRS nonce, issued by this
 *      service, fresh and not spent; it is spent here                             else 9990216
 *   6. TPMS_CERTIFY_INFO.name is the Name (nameAlg || H(TPMT_PUBLIC), Part 1 §16) of the public
 *      area sent, and that area's key is the CSR key (device key), resp. the transport key
 *                                                                                  else 9990217
 *   7. the certified keys are fixedTPM, fixedParent, sensitiveDataOrigin (Part 1 §27.2: created
 *      by this TPM and never duplicable)                                           else 9990218
 *
 * What the lab cannot prove without credential activation: that the AK is in the same TPM as the
 * EK (an EK certificate is public; whoever copies one could pair it with a software AK). A real
 * TPM and Microsoft's AIK service close that gap; the lab's check is the rest of the chain, and
 * it is enough to tell a TPM-made registration from the software keys of §8's attacker who does
 * not hold an EK certificate. Presented attestation that fails a check refuses the registration
 * (fail closed); a registration without attestation is recorded as not hardware-backed.
 */
import { type KeyObject, X509Certificate } from 'node:crypto';
import { isProtocolError } from '../../protocol/index.ts';
import * as tpm from '../../protocol/tpm-attestation.ts';
import type { DeviceAttestation } from '../directory/types.ts';
import { CloudRequestError } from '../errors.ts';
import type { DrsNonces } from './device-auth.ts';
import type { TrustedManufacturer } from './trusted-manufacturers.ts';

/** The raw members as the join body carried them (base64-decoded). */
export interface AttestationMembers {
  readonly aikCertificate: Buffer;
  readonly attestationData: Buffer;
}

const REQUIRED_KEY_ATTRIBUTES =
  tpm.TPMA.fixedTPM | tpm.TPMA.fixedParent | tpm.TPMA.sensitiveDataOrigin;
const REQUIRED_AK_ATTRIBUTES = REQUIRED_KEY_ATTRIBUTES | tpm.TPMA.restricted | tpm.TPMA.sign;

export const ABSENT: DeviceAttestation = Object.freeze({
  status: 'absent',
  reason: 'no TPM attestation was presented (AikCertificate and AttestationData absent)',
});

function malformed(description: string, err?: unknown): CloudRequestError {
  return new CloudRequestError(9990214, {
    description,
    ...(err instanceof Error ? { detail: err.message } : {}),
    ...(err !== undefined ? { cause: err } : {}),
  });
}

/** Runs a protocol parser; its failures become AADSTS9990214 naming `what`. */
function parse<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (isProtocolError(err)) throw malformed(`${what} does not parse as a TPM structure.`, err);
    throw err;
  }
}

function spki(key: KeyObject): Buffer {
  return key.export({ type: 'spki', format: 'der' });
}

function inValidity(cert: X509Certificate, now: Date): boolean {
  return now >= new Date(cert.validFrom) && now <= new Date(cert.validTo);
}

/** Step 3: EK certificate (+ intermediates) to a trusted manufacturer CA; returns that CA. */
function checkChain(
  certificates: readonly Buffer[],
  anchors: readonly TrustedManufacturer[],
  now: Date,
): TrustedManufacturer {
  const refuse = (detail: string) => new CloudRequestError(9990215, { detail });
  let chain: X509Certificate[];
  try {
    chain = certificates.map((der) => new X509Certificate(der));
  } catch (err) {
    throw malformed('A certificate in AikCertificate does not parse.', err);
  }
  for (const [i, cert] of chain.entries()) {
    if (!inValidity(cert, now)) throw refuse(`certificate ${i} is outside its validity period`);
    const issuer = chain[i + 1];
    if (issuer) {
      if (!issuer.ca || !cert.checkIssued(issuer) || !cert.verify(issuer.publicKey)) {
        throw refuse(`certificate ${i} is not issued by certificate ${i + 1}`);
      }
    }
  }
  const top = chain[chain.length - 1]!;
  for (const anchor of anchors) {
    if (
      inValidity(anchor.cert, now) &&
      top.checkIssued(anchor.cert) &&
      top.verify(anchor.cert.publicKey)
    ) {
      return anchor;
    }
  }
  throw refuse('no trusted TPM manufacturer CA issued the chain');
}

/**
 * Verifies a join's attestation (steps 1-7 above) for the CSR's device key and the body's
 * transport key, and returns what the device record keeps. `members` undefined: absent.
 */
export function verifyJoinAttestation(args: {
  readonly members: AttestationMembers | undefined;
  readonly deviceKey: KeyObject;
  readonly transportKey: KeyObject;
  readonly anchors: readonly TrustedManufacturer[];
  readonly nonces: DrsNonces;
  readonly now: Date;
}): DeviceAttestation {
  if (!args.members) return ABSENT;
  // 1. Parse everything before any crypto.
  const aik = parse('AikCertificate', () => tpm.decodeAikCertificate(args.members!.aikCertificate));
  const data = parse('AttestationData', () =>
    tpm.decodeAttestationData(args.members!.attestationData),
  );
  const ak = parse('AikCertificate (the AK public area)', () =>
    tpm.parseTpmtPublic(aik.akPublic, 'AK TPMT_PUBLIC'),
  );
  const entries = (
    [
      ['device key', data.deviceKey, args.deviceKey],
      ['transport key', data.transportKey, args.transportKey],
    ] as const
  ).map(([what, entry, expected]) => ({
    what,
    expected,
    public: parse(`AttestationData (${what} public area)`, () =>
      tpm.parseTpmtPublic(entry.public, `${what} TPMT_PUBLIC`),
    ),
    attest: parse(`AttestationData (${what} TPMS_ATTEST)`, () =>
      tpm.parseCertifyAttest(entry.attest, `${what} TPMS_ATTEST`),
    ),
    signature: entry.signature,
  }));

  // 2. The AK: only a restricted signing key's signature says "the TPM made this" (Part 1 §25.2).
  if (
    (ak.objectAttributes & REQUIRED_AK_ATTRIBUTES) !== REQUIRED_AK_ATTRIBUTES ||
    (ak.objectAttributes & tpm.TPMA.decrypt) !== 0
  ) {
    throw new CloudRequestError(9990218, {
      description:
        'The attestation key is not a restricted signing key with fixedTPM, fixedParent and sensitiveDataOrigin.',
    });
  }

  // 3. The chain.
  const anchor = checkChain(aik.certificates, args.anchors, args.now);

  // 4. Signatures, over the exact TPMS_ATTEST bytes.
  for (const e of entries) {
    let ok: boolean;
    try {
      ok = tpm.verifyTpmSignature(ak, e.attest.bytes, e.signature);
    } catch (err) {
      if (!isProtocolError(err)) throw err;
      ok = false;
    }
    if (!ok) {
      throw new CloudRequestError(9990219, {
        description: `The TPM2_Certify signature of the ${e.what} does not verify with the attestation key.`,
      });
    }
  }

  // 5. The nonce: both certifications over one DRS nonce (its ASCII text), spent once.
  const [dk, tk] = entries;
  if (!dk!.attest.extraData.equals(tk!.attest.extraData)) {
    throw new CloudRequestError(9990216, {
      description: 'The two certifications carry different nonces.',
    });
  }
  const nonce = dk!.attest.extraData.toString('latin1');
  const spent = args.nonces.trySpend(nonce, args.now.getTime());
  if (spent !== 'ok') {
    throw new CloudRequestError(9990216, {
      description:
        spent === 'expired'
          ? 'The attestation nonce has expired; get a new one from the nonce service.'
          : spent === 'used'
            ? 'The attestation nonce was already used.'
            : 'The attestation nonce was not issued by this service.',
    });
  }

  // 6. Names and keys.
  for (const e of entries) {
    const name = tpm.tpmObjectName(e.public.nameAlg, e.public.bytes);
    if (
      !name.equals(e.attest.certifiedName) ||
      !spki(e.public.publicKey).equals(spki(e.expected))
    ) {
      throw new CloudRequestError(9990217, {
        description:
          e.what === 'device key'
            ? 'The certified device key is not the key of the certificate request.'
            : 'The certified transport key is not the TransportKey of the request.',
      });
    }
  }

  // 7. Attributes of the certified keys.
  for (const e of entries) {
    if ((e.public.objectAttributes & REQUIRED_KEY_ATTRIBUTES) !== REQUIRED_KEY_ATTRIBUTES) {
      throw new CloudRequestError(9990218, {
        description: `The certified ${e.what} is not fixedTPM, fixedParent and sensitiveDataOrigin.`,
      });
    }
  }

  return {
    status: 'verified',
    reason:
      `TPM attestation verified: EK certificate chains to ${anchor.cert.subject.replaceAll('\n', ', ')} ` +
      `(${anchor.source}); device and transport keys certified fixedTPM by a restricted AK over a DRS nonce`,
  };
}
