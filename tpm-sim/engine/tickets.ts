/**
 * Tickets (Part 1 §14.5; Part 2 §10.7): an HMAC under the hierarchy's proof value, so the TPM can
 * later trust that it made a digest, verified a signature or created an object. Objects of the
 * NULL hierarchy get NULL tickets, which prove nothing.
 */
import { hmac, timingSafeEqualBytes } from '../crypto/hash.ts';
import { TPM_RH } from '../wire/constants.ts';
import type { Ticket } from '../wire/structures.ts';
import type { Tpm } from './tpm.ts';

function tagBytes(tag: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(tag, 0);
  return b;
}

export function nullTicketOf(tag: number): Ticket {
  return { tag, hierarchy: TPM_RH.NULL, digest: Buffer.alloc(0) };
}

/**
 * ticket.digest = HMAC_alg(proof(hierarchy), tag || parts...), e.g. TPM_ST_HASHCHECK || digest
 * (Part 3 §17.4), TPM_ST_VERIFIED || digest || keyName (§20.1), TPM_ST_CREATION || name ||
 * creationHash (§12.1).
 */
export function makeTicket(
  tpm: Tpm,
  tag: number,
  hierarchy: number,
  alg: number,
  ...parts: Uint8Array[]
): Ticket {
  const secrets = hierarchy === TPM_RH.NULL ? undefined : tpm.hierarchySecrets(hierarchy);
  if (!secrets) return nullTicketOf(tag);
  return { tag, hierarchy, digest: hmac(alg, secrets.proof, tagBytes(tag), ...parts) };
}

/** Whether `ticket` is a valid, non-NULL ticket of this tag over these parts. */
export function checkTicket(
  tpm: Tpm,
  ticket: Ticket,
  tag: number,
  alg: number,
  ...parts: Uint8Array[]
): boolean {
  if (ticket.tag !== tag || ticket.hierarchy === TPM_RH.NULL) return false;
  const expected = makeTicket(tpm, tag, ticket.hierarchy, alg, ...parts);
  return expected.hierarchy !== TPM_RH.NULL && timingSafeEqualBytes(expected.digest, ticket.digest);
}
