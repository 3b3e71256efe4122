/**
 * Manufacturing step: the EK certificates of a simulated TPM, issued by the lab's manufacturer
 * CA and stored in the TCG EK certificate NV indexes, as a TPM vendor provisions them at the
 * factory. The EKs are the primaries the default EK templates give (TCG EK Credential Profile
 * 2.0, templates L-1 and L-2), derived from the endorsement seed, so `tpm2_createek` (or
 * CreatePrimary with the same template) gives the certified key every time.
 *
 * The indexes are platform indexes like swtpm_setup makes them: PPWRITE, WRITEDEFINE, PPREAD,
 * OWNERREAD, AUTHREAD (empty authValue), NO_DA, PLATFORMCREATE, and written. The owner can read
 * but not delete them.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { EK_CERT_NV_INDEX, ekEccTemplate, ekRsaTemplate } from '../client/templates.ts';
import { makePrimary } from '../engine/handlers/object.ts';
import type { NvIndex } from '../engine/nv.ts';
import type { Tpm } from '../engine/tpm.ts';
import { TPM_ALG, TPM_RH, TPMA_NV } from '../wire/constants.ts';
import type { EccPoint, Public } from '../wire/structures.ts';
import { type EkKind, issueEkCertificate } from './ek-certificate.ts';
import type { ManufacturerCa } from './manufacturer-ca.ts';

/** TPMA_NV of an EK certificate index (0x62072001 once written). */
export const EK_CERT_NV_ATTRIBUTES =
  TPMA_NV.PPWRITE |
  TPMA_NV.WRITEDEFINE |
  TPMA_NV.PPREAD |
  TPMA_NV.OWNERREAD |
  TPMA_NV.AUTHREAD |
  TPMA_NV.NO_DA |
  TPMA_NV.PLATFORMCREATE;

const EMPTY = Buffer.alloc(0);

/** A public area's key as a node:crypto public key (RSA n with e = 65537, or ECC P-256 x, y). */
export function publicKeyOf(pub: Public): KeyObject {
  if (pub.type === TPM_ALG.RSA) {
    return createPublicKey({
      key: { kty: 'RSA', n: (pub.unique as Buffer).toString('base64url'), e: 'AQAB' },
      format: 'jwk',
    });
  }
  const u = pub.unique as EccPoint;
  return createPublicKey({
    key: { kty: 'EC', crv: 'P-256', x: u.x.toString('base64url'), y: u.y.toString('base64url') },
    format: 'jwk',
  });
}

/** The public area of this TPM's EK of `kind` (what CreatePrimary with the default template gives). */
export async function endorsementKey(tpm: Tpm, kind: EkKind): Promise<Public> {
  const template = kind === 'rsa' ? ekRsaTemplate() : ekEccTemplate();
  const ek = await makePrimary(tpm, TPM_RH.ENDORSEMENT, template, { userAuth: EMPTY, data: EMPTY });
  return ek.publicArea;
}

/**
 * Issues and stores the EK certificates this TPM does not have yet. Returns the kinds it
 * provisioned (none when both were there). The caller saves the state.
 */
export async function provisionEkCertificates(tpm: Tpm, ca: ManufacturerCa): Promise<EkKind[]> {
  const done: EkKind[] = [];
  for (const kind of ['rsa', 'ecc'] as const) {
    const nvIndex = EK_CERT_NV_INDEX[kind];
    if (tpm.nvIndex(nvIndex)) continue;
    const ek = await endorsementKey(tpm, kind);
    const der = await issueEkCertificate(ca, publicKeyOf(ek), kind);
    const index: NvIndex = {
      public: {
        nvIndex,
        nameAlg: TPM_ALG.SHA256,
        attributes: (EK_CERT_NV_ATTRIBUTES | TPMA_NV.WRITTEN) >>> 0,
        authPolicy: EMPTY,
        dataSize: der.length,
      },
      authValue: EMPTY,
      data: der,
    };
    tpm.defineNv(index);
    done.push(kind);
  }
  return done;
}

/** The EK certificates a TPM holds, by kind (DER). */
export function ekCertificatesOf(tpm: Tpm): { rsa?: Buffer; ecc?: Buffer } {
  const out: { rsa?: Buffer; ecc?: Buffer } = {};
  for (const kind of ['rsa', 'ecc'] as const) {
    const index = tpm.nvIndex(EK_CERT_NV_INDEX[kind]);
    if (index) out[kind] = Buffer.from(index.data);
  }
  return out;
}
