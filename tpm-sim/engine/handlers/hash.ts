/**
 * TPM2_Hash (Part 3 §17.4) and TPM2_HMAC (Part 3 §15.4), plus the HASHCHECK ticket that links
 * TPM2_Hash to TPM2_Sign with a restricted key.
 */
import { digest, hmac } from '../../crypto/hash.ts';
import { TPM_ALG, TPM_GENERATED_VALUE, TPM_RH, TPM_ST, TPMA_OBJECT } from '../../wire/constants.ts';
import { rcHandle, rcParam, TPM_RC } from '../../wire/rc.ts';
import type { KeyedHashParms, Ticket } from '../../wire/structures.ts';
import type { Handler } from '../handler.ts';
import { sensitiveForAuth } from '../objects.ts';
import { RcError } from '../rc-error.ts';
import { checkTicket, makeTicket, nullTicketOf } from '../tickets.ts';
import type { Tpm } from '../tpm.ts';

/** TPMI_RH_HIERARCHY+ (Part 2 §9): the three hierarchies, or TPM_RH_NULL. */
export function isHierarchyOrNull(h: number): boolean {
  return (
    h === TPM_RH.OWNER || h === TPM_RH.ENDORSEMENT || h === TPM_RH.PLATFORM || h === TPM_RH.NULL
  );
}

/**
 * TPMT_TK_HASHCHECK (Part 2 §10.7): HMAC_hashAlg(proof(hierarchy), TPM_ST_HASHCHECK || digest).
 * The HMAC runs with the hash that made the digest, as in the reference implementation's
 * TicketComputeHashCheck of rev 1.59, so a ticket only checks out for the algorithm it was made
 * with.
 */
export function hashCheckTicket(
  tpm: Tpm,
  hierarchy: number,
  hashAlg: number,
  outHash: Uint8Array,
): Ticket {
  return makeTicket(tpm, TPM_ST.HASHCHECK, hierarchy, hashAlg, outHash);
}

/** Whether `ticket` is a valid, non-NULL HASHCHECK ticket for `digestBytes` made with `hashAlg`. */
export function isValidHashCheck(
  tpm: Tpm,
  ticket: Ticket,
  hashAlg: number,
  digestBytes: Uint8Array,
): boolean {
  return checkTicket(tpm, ticket, TPM_ST.HASHCHECK, hashAlg, digestBytes);
}

/**
 * Part 3 §17.4: outHash = H_hashAlg(data). The ticket says "the TPM hashed this digest and the
 * data did not start with TPM_GENERATED_VALUE", so that a restricted key never signs something
 * that could pass for a TPM attestation (Part 3 §20.2). No ticket (a NULL one) when the
 * hierarchy is TPM_RH_NULL or the data does start with that value. Data shorter than the value
 * cannot be mistaken for an attestation and gets a ticket, as in the reference TPM2_Hash.
 */
export const Hash: Handler<'Hash'> = (ctx, p) => {
  if (!isHierarchyOrNull(p.hierarchy)) throw new RcError(rcParam(TPM_RC.VALUE, 3));
  const outHash = digest(p.hashAlg, p.data);
  const generated = p.data.length >= 4 && p.data.readUInt32BE(0) === TPM_GENERATED_VALUE;
  const validation =
    p.hierarchy === TPM_RH.NULL || generated
      ? nullTicketOf(TPM_ST.HASHCHECK)
      : hashCheckTicket(ctx.tpm, p.hierarchy, p.hashAlg, outHash);
  return { response: { outHash, validation } };
};

/**
 * Part 3 §15.4: an HMAC over `buffer` with an unrestricted keyedHash signing key. The hash is the
 * key's scheme hash; hashAlg may only repeat it or be TPM_ALG_NULL (else TPM_RC_VALUE). A key
 * whose scheme is TPM_ALG_NULL takes hashAlg, which must then not be NULL.
 */
export const HMAC: Handler<'HMAC'> = (ctx, p) => {
  const obj = ctx.handles[0]!.object!;
  const pub = obj.publicArea;
  if (pub.type !== TPM_ALG.KEYEDHASH) throw new RcError(rcHandle(TPM_RC.TYPE, 1));
  if (pub.objectAttributes & TPMA_OBJECT.restricted)
    throw new RcError(rcHandle(TPM_RC.ATTRIBUTES, 1));
  if (!(pub.objectAttributes & TPMA_OBJECT.sign)) throw new RcError(rcHandle(TPM_RC.KEY, 1));
  const sensitive = sensitiveForAuth(obj);
  const own = (pub.parameters as KeyedHashParms).scheme;
  let hashAlg: number;
  if (own.scheme === TPM_ALG.NULL) hashAlg = p.hashAlg;
  else
    hashAlg = p.hashAlg === TPM_ALG.NULL || p.hashAlg === own.hashAlg ? own.hashAlg : TPM_ALG.NULL;
  if (hashAlg === TPM_ALG.NULL) throw new RcError(rcParam(TPM_RC.VALUE, 2));
  return { response: { outHMAC: hmac(hashAlg, sensitive.sensitive, p.buffer) } };
};
