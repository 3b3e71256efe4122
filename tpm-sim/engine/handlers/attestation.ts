/**
 * Attestation commands (Part 3 §18): TPM2_Certify (§18.2) and TPM2_Quote (§18.4). Each builds a
 * TPMS_ATTEST (Part 2 §10.12.12) — magic TPM_GENERATED_VALUE, type, the signer's qualified Name,
 * the caller's qualifyingData, TPMS_CLOCK_INFO (§10.11.1), the firmware version and the
 * command's TPMU_ATTEST arm: TPMS_CERTIFY_INFO (§10.12.3) or TPMS_QUOTE_INFO (§10.12.4) — and
 * signs H_scheme(TPMS_ATTEST) with the signing key. Because the structure starts with
 * TPM_GENERATED_VALUE, a restricted key's signature over it proves the TPM made it (TPM2_Hash
 * never issues a ticket for such data, §17.4).
 *
 * Privacy (Part 3 §18.1): when the signing key is not in the endorsement or platform hierarchy,
 * resetCount, restartCount and firmwareVersion are obfuscated, so that keys of the owner (who
 * may not be trusted with them) cannot be used to correlate the TPM's boots. The mask is
 * KDFa(SHA-256, owner proof, "OBFUSCATE", Name(signer), {}, 128): bytes 0-3 mask resetCount,
 * 4-7 restartCount and 8-15 firmwareVersion. It is fixed per signer, so a verifier still sees
 * the counts move.
 */
import { digest } from '../../crypto/hash.ts';
import { kdfa } from '../../crypto/kdf.ts';
import { marshal } from '../../wire/codec.ts';
import { TPM_ALG, TPM_GENERATED_VALUE, TPM_RH, TPM_ST } from '../../wire/constants.ts';
import { rcHandle, rcParam, TPM_RC } from '../../wire/rc.ts';
import {
  type Attest,
  type CertifyInfo,
  type ClockInfo,
  type QuoteInfo,
  type Scheme,
  type Signature,
  TPMS_ATTEST,
} from '../../wire/structures.ts';
import type { CommandContext, Entity, Handler } from '../handler.ts';
import { FIRMWARE_VERSION } from '../identity.ts';
import { pcrDigest } from '../pcr.ts';
import { RcError } from '../rc-error.ts';
import { isSigningKey, produceSignature, selectSignScheme } from './signing.ts';

const NULL_SIGNATURE: Signature = { sigAlg: TPM_ALG.NULL, signature: {} };

/** Whether attestations signed by this entity may show the TPM's real counts. */
function revealsCounts(signer: Entity): boolean {
  const h = signer.object?.hierarchy;
  return h === TPM_RH.ENDORSEMENT || h === TPM_RH.PLATFORM;
}

function clockInfoFor(
  ctx: CommandContext,
  signer: Entity,
): {
  clockInfo: ClockInfo;
  firmwareVersion: bigint;
} {
  const { tpm } = ctx;
  let resetCount = tpm.state.resetCount;
  let restartCount = tpm.state.restartCount;
  let firmwareVersion = FIRMWARE_VERSION;
  if (!revealsCounts(signer)) {
    const mask = kdfa(
      TPM_ALG.SHA256,
      tpm.state.owner.proof,
      'OBFUSCATE',
      signer.name,
      Buffer.alloc(0),
      128,
    );
    resetCount = (resetCount ^ mask.readUInt32BE(0)) >>> 0;
    restartCount = (restartCount ^ mask.readUInt32BE(4)) >>> 0;
    firmwareVersion ^= mask.readBigUInt64BE(8);
  }
  return {
    clockInfo: { clock: BigInt(tpm.clock()), resetCount, restartCount, safe: 1 },
    firmwareVersion,
  };
}

/**
 * The signing key's scheme for an attestation (Part 3 §18.2.1, §18.4.1): TPM_RH_NULL signs
 * nothing (its scheme stays NULL); a key without the sign attribute is TPM_RC_KEY for its handle;
 * otherwise as TPM2_Sign selects it (TPM_RC_SCHEME for inScheme, parameter 2).
 */
function attestScheme(signer: Entity, handleNumber: number, inScheme: Scheme): Scheme | undefined {
  const obj = signer.object;
  if (!obj) return undefined;
  if (!isSigningKey(obj.publicArea)) throw new RcError(rcHandle(TPM_RC.KEY, handleNumber));
  return selectSignScheme(obj.publicArea, inScheme);
}

/** TPMS_ATTEST for `signer`, marshalled, and its signature. */
function signAttest(
  ctx: CommandContext,
  signer: Entity,
  scheme: Scheme | undefined,
  type: number,
  extraData: Buffer,
  attested: CertifyInfo | QuoteInfo,
): { bytes: Buffer; signature: Signature } {
  const attest: Attest = {
    magic: TPM_GENERATED_VALUE,
    type,
    qualifiedSigner: signer.object?.qualifiedName ?? signer.name,
    extraData,
    ...clockInfoFor(ctx, signer),
    attested,
  };
  const bytes = marshal(TPMS_ATTEST, attest);
  if (!scheme || !signer.object) return { bytes, signature: NULL_SIGNATURE };
  return {
    bytes,
    signature: produceSignature(signer.object, scheme, digest(scheme.hashAlg, bytes)),
  };
}

/**
 * Part 3 §18.2: the signing key (or TPM_RH_NULL, for an unsigned statement) attests that the
 * object is loaded in this TPM, with its Name and qualified Name. objectHandle is authorized in
 * the ADMIN role: an object with adminWithPolicy needs a policy for it.
 */
export const Certify: Handler<'Certify'> = (ctx, p) => {
  const object = ctx.handles[0]!.object!;
  const signer = ctx.handles[1]!;
  const scheme = attestScheme(signer, 2, p.inScheme);
  const info: CertifyInfo = { name: object.name, qualifiedName: object.qualifiedName };
  const { bytes, signature } = signAttest(
    ctx,
    signer,
    scheme,
    TPM_ST.ATTEST_CERTIFY,
    p.qualifyingData,
    info,
  );
  return { response: { certifyInfo: bytes, signature } };
};

/**
 * Part 3 §18.4: a signed digest of the selected PCRs, pcrDigest = H_schemeHash(selected values
 * in selection order). A quote without a key would prove nothing; libtpms refuses TPM_RH_NULL
 * with TPM_RC_SCHEME for inScheme, and so does this TPM.
 */
export const Quote: Handler<'Quote'> = (ctx, p) => {
  const signer = ctx.handles[0]!;
  const scheme = attestScheme(signer, 1, p.inScheme);
  if (!scheme) throw new RcError(rcParam(TPM_RC.SCHEME, 2));
  const info: QuoteInfo = {
    pcrSelect: p.PCRselect,
    pcrDigest: pcrDigest(ctx.tpm.pcrs, scheme.hashAlg, p.PCRselect),
  };
  const { bytes, signature } = signAttest(
    ctx,
    signer,
    scheme,
    TPM_ST.ATTEST_QUOTE,
    p.qualifyingData,
    info,
  );
  return { response: { quoted: bytes, signature } };
};
