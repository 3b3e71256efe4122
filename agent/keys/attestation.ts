/**
 * The device side of attested registration (docs/prt-protocol.md §2 `AikCertificate`,
 * `AttestationData`; the lab's byte format is protocol/tpm-attestation.ts, the checks
 * cloud/registration/attestation.ts).
 *
 * The attestation key (AK) is a primary in the endorsement hierarchy made from the TCG-style AK
 * template (ECC P-256, restricted signing, ECDSA-SHA256, fixedTPM | fixedParent |
 * sensitiveDataOrigin): derived from the endorsement primary seed, so the same AK every time and
 * nothing to store. It certifies the device key and the transport key with TPM2_Certify (Part 3
 * §18.2) over the DRS nonce (qualifyingData = the nonce's ASCII text, at most 64 bytes, Part 2
 * §10.4.3), and the TPM's EK certificate (read from NV, TCG EK Credential Profile §2.2.1.4) goes
 * with the AK's public area as the lab's AikCertificate.
 *
 * What Windows does besides, and the lab does not: TPM2_ActivateCredential with Microsoft's AIK
 * service, which proves the AK sits in the TPM the EK certificate names (README, "DRS").
 */

import * as tpmAttestation from '../../protocol/tpm-attestation.ts';
import {
  type Attestation,
  type Entity,
  readEkCertificate,
  TPM_ALG,
  TPM_RH,
  type TpmClient,
  templates,
} from '../../tpm-sim/client/index.ts';
import { marshal } from '../../tpm-sim/wire/codec.ts';
import { type Public, type SignatureEcc, TPMT_PUBLIC } from '../../tpm-sim/wire/structures.ts';
import { AgentDeviceError } from '../errors.ts';

/** The join body members, base64 as DRS takes them. */
export interface AttestationFields {
  readonly AikCertificate: string;
  readonly AttestationData: string;
}

/**
 * The EK certificate of the TPM: the ECC one (L-2 template) if present, else the RSA one; undefined
 * when the TPM has neither (a bare swtpm or simulator): such a TPM cannot attest, and the device
 * registers without attestation.
 */
export async function ekCertificateOf(client: TpmClient): Promise<Buffer | undefined> {
  return (await readEkCertificate(client, 'ecc')) ?? (await readEkCertificate(client, 'rsa'));
}

/** Creates the AK (a primary under TPM_RH_ENDORSEMENT); flush it after use. */
export function createAttestationKey(client: TpmClient) {
  return client.createPrimary({
    hierarchy: TPM_RH.ENDORSEMENT,
    template: templates.eccAttestationKey(),
  });
}

/** tpm-sim's TPMT_SIGNATURE (an ECDSA one from the AK) in the protocol module's shape. */
function wireSignature(a: Attestation): tpmAttestation.TpmSignature {
  if (a.signature.sigAlg !== TPM_ALG.ECDSA) {
    throw new AgentDeviceError('the attestation key signed with an unexpected scheme');
  }
  const s = a.signature.signature as SignatureEcc;
  return {
    sigAlg: a.signature.sigAlg,
    hashAlg: s.hash,
    ecc: { r: Buffer.from(s.signatureR), s: Buffer.from(s.signatureS) },
  };
}

/** One TPM2_Certify of `key` by `ak` over `nonce`, as AttestationData carries it. */
export async function certifyKey(
  client: TpmClient,
  key: Entity & { publicArea?: Public },
  ak: Entity,
  nonce: string,
): Promise<tpmAttestation.CertifiedKeyData> {
  if (!key.publicArea) throw new TypeError('key.publicArea is required');
  const qualifyingData = Buffer.from(nonce, 'latin1');
  if (qualifyingData.length > tpmAttestation.MAX_EXTRA_DATA) {
    throw new AgentDeviceError('the DRS nonce is longer than TPM2_Certify qualifyingData allows');
  }
  const a = await client.certify(key, ak, { qualifyingData });
  return {
    public: marshal(TPMT_PUBLIC, key.publicArea),
    attest: Buffer.from(a.attestBytes),
    signature: wireSignature(a),
  };
}

/** Packs the AK, the EK certificate and the two certifications into the join body members. */
export function attestationFields(args: {
  readonly akPublic: Public;
  readonly ekCertificate: Buffer;
  readonly deviceKey: tpmAttestation.CertifiedKeyData;
  readonly transportKey: tpmAttestation.CertifiedKeyData;
}): AttestationFields {
  return {
    AikCertificate: tpmAttestation
      .encodeAikCertificate({
        akPublic: marshal(TPMT_PUBLIC, args.akPublic),
        certificates: [args.ekCertificate],
      })
      .toString('base64'),
    AttestationData: tpmAttestation
      .encodeAttestationData({ deviceKey: args.deviceKey, transportKey: args.transportKey })
      .toString('base64'),
  };
}
