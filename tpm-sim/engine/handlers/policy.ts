/**
 * Policy commands (Part 3 §23): TPM2_PolicySecret (§23.4) and TPM2_PolicyGetDigest (§23.19).
 * A policy session's digest grows by PolicyUpdate (Part 3 §23.2.3):
 *
 *   policyDigest = H(policyDigest || commandCode || arg2)
 *   policyDigest = H(policyDigest || arg3)
 *
 * For PolicySecret arg2 is the Name of the authorizing entity and arg3 the policyRef, so a
 * PolicySecret on TPM_RH_ENDORSEMENT with an empty policyRef gives the authPolicy of the TCG
 * default EK templates (837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa).
 */
import { digest } from '../../crypto/hash.ts';
import { TPM_HT, TPM_RH, TPM_ST, TPMA_NV } from '../../wire/constants.ts';
import { rcParam, TPM_RC } from '../../wire/rc.ts';
import type { Entity, Handler } from '../handler.ts';
import { RcError } from '../rc-error.ts';
import type { PolicyState, Session } from '../sessions.ts';
import { makeTicket, nullTicketOf } from '../tickets.ts';

const EMPTY = Buffer.alloc(0);
/** The timeout of a ticket whose session had no nonceTPM expires on TPM Reset: its top bit. */
const EXPIRES_ON_RESET = 1n << 63n;

function u32(v: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(v >>> 0, 0);
  return b;
}

/** PolicyUpdate() of Part 3 §23.2.3. */
export function policyUpdate(
  session: Session,
  commandCode: number,
  arg2: Uint8Array,
  arg3: Uint8Array,
): void {
  const policy = session.policy!;
  const first = digest(session.authHash, policy.digest, u32(commandCode), arg2);
  policy.digest = digest(session.authHash, first, arg3);
}

/** The policy session in the handle area (dispatch admits only loaded policy sessions there). */
function policySession(e: Entity): Session & { policy: PolicyState } {
  return e.session as Session & { policy: PolicyState };
}

/** The hierarchy whose proof keys a ticket about `e` (Part 3 §23.4.1 policyTicket). */
function hierarchyOf(e: Entity): number {
  if (e.object) return e.object.hierarchy;
  if (e.nv) return e.nv.public.attributes & TPMA_NV.PLATFORMCREATE ? TPM_RH.PLATFORM : TPM_RH.OWNER;
  const h = e.handle;
  if (h === TPM_RH.ENDORSEMENT || h === TPM_RH.PLATFORM) return h;
  if (h >>> 24 === TPM_HT.PERMANENT) return TPM_RH.OWNER;
  return TPM_RH.NULL;
}

/**
 * Part 3 §23.4. The authorization of authHandle was checked by dispatch (USER role), so the
 * secret is known. Then:
 *  - nonceTPM, if given, must be the session's current nonce (TPM_RC_NONCE, parameter 1);
 *  - cpHashA, if given, must be a digest of the session's hash (TPM_RC_SIZE, parameter 2) and
 *    agree with any cpHash the session already carries (TPM_RC_CPHASH);
 *  - expiration != 0 limits the session to |expiration| seconds from its start
 *    (TPM_RC_EXPIRED, parameter 4, if that is already past); a negative expiration also asks
 *    for a ticket, HMAC(proof, TPM_ST_AUTH_SECRET || timeout || cpHashA || policyRef ||
 *    Name(authHandle)), that carries the timeout.
 * A trial session only has its digest updated.
 */
export const PolicySecret: Handler<'PolicySecret'> = (ctx, p) => {
  const { tpm } = ctx;
  const auth = ctx.handles[0]!;
  const session = policySession(ctx.handles[1]!);
  const policy = session.policy;
  if (p.nonceTPM.length !== 0 && !p.nonceTPM.equals(session.nonceTPM))
    throw new RcError(rcParam(TPM_RC.NONCE, 1));
  const digestSize = policy.digest.length;
  if (p.cpHashA.length !== 0 && p.cpHashA.length !== digestSize)
    throw new RcError(rcParam(TPM_RC.SIZE, 2));

  let timeout: number | undefined;
  if (p.expiration !== 0 && !policy.trial) {
    timeout = policy.startTime + Math.abs(p.expiration) * 1000;
    if (timeout < tpm.time()) throw new RcError(rcParam(TPM_RC.EXPIRED, 4));
  }
  if (p.cpHashA.length !== 0 && !policy.trial) {
    if (policy.cpHash && !policy.cpHash.equals(p.cpHashA)) throw new RcError(TPM_RC.CPHASH);
    policy.cpHash = p.cpHashA;
  }
  policyUpdate(session, ctx.cc, auth.name, p.policyRef);
  if (timeout !== undefined && (policy.timeout === undefined || timeout < policy.timeout))
    policy.timeout = timeout;

  if (p.expiration >= 0 || policy.trial) {
    return { response: { timeout: EMPTY, policyTicket: nullTicketOf(TPM_ST.AUTH_SECRET) } };
  }
  const t = Buffer.alloc(8);
  t.writeBigUInt64BE(BigInt(timeout ?? 0) | (p.nonceTPM.length === 0 ? EXPIRES_ON_RESET : 0n), 0);
  const ticket = makeTicket(
    tpm,
    TPM_ST.AUTH_SECRET,
    hierarchyOf(auth),
    session.authHash,
    t,
    p.cpHashA,
    p.policyRef,
    auth.name,
  );
  return { response: { timeout: t, policyTicket: ticket } };
};

/** Part 3 §23.19: the session's current policyDigest. */
export const PolicyGetDigest: Handler<'PolicyGetDigest'> = (ctx) => ({
  response: { policyDigest: Buffer.from(policySession(ctx.handles[0]!).policy.digest) },
});
