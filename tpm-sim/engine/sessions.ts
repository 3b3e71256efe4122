/**
 * Authorization sessions (Part 1 §19): HMAC sessions, their keys, command and response HMACs,
 * and parameter encryption (Part 1 §21). Formulas as in docs checked against swtpm.
 */

import { trim0 } from '../crypto/auth-hmac.ts';
import { cfbDecrypt, cfbEncrypt } from '../crypto/cfb.ts';
import { kdfa } from '../crypto/kdf.ts';
import { TPM_ALG } from '../wire/constants.ts';
import type { SymDef } from '../wire/structures.ts';

export { cpHash, rpHash, sessionHmac, trim0 } from '../crypto/auth-hmac.ts';

/**
 * What a policy session accumulates (Part 1 §19.7; Part 3 §23): the running policyDigest and
 * the conditions policy commands added. A trial session only computes the digest and can
 * authorize nothing.
 */
export interface PolicyState {
  readonly trial: boolean;
  /** policyDigest: zeros of the authHash size at the start, then PolicyUpdate() by each command. */
  digest: Buffer;
  /** A cpHash a policy command bound the session to (Part 3 §23.4 cpHashA). */
  cpHash?: Buffer;
  /** TPM time (ms since power-on) when the session started or was last reset. */
  startTime: number;
  /** TPM time after which the session no longer authorizes (PolicySecret expiration). */
  timeout?: number;
}

export interface Session {
  readonly handle: number;
  readonly authHash: number;
  readonly sessionKey: Buffer;
  readonly symmetric: SymDef;
  /** The bind entity: its Name and authValue at session start (Part 1 §19.6.11). */
  readonly bind?: { name: Buffer; authValue: Buffer };
  /** The latest nonceTPM, rolled on every successful command. */
  nonceTPM: Buffer;
  /** False once saved with ContextSave: the session stays active but is not loaded. */
  loaded: boolean;
  /** The sequence of the last saved context: only that context may be loaded back. */
  savedSequence?: bigint;
  /** Present for policy and trial sessions (TPM_SE_POLICY, TPM_SE_TRIAL). */
  policy?: PolicyState;
}

/** A fresh policy state (Part 3 §11.1: policyDigest starts as a zero digest of authHash's size). */
export function newPolicyState(digestSize: number, trial: boolean, now: number): PolicyState {
  return { trial, digest: Buffer.alloc(digestSize), startTime: now };
}

/** PolicyRestart's reset, also done when a policy session authorizes a command (Part 1 §19.7). */
export function resetPolicy(policy: PolicyState, now: number): void {
  policy.digest = Buffer.alloc(policy.digest.length);
  delete policy.cpHash;
  delete policy.timeout;
  policy.startTime = now;
}

/** Whether `session` is bound to the entity with this Name and authValue (Part 1 §19.6.11). */
export function isBoundTo(session: Session, name: Buffer, authValue: Buffer): boolean {
  const bind = session.bind;
  if (!bind) return false;
  return bind.name.equals(name) && trim0(bind.authValue).equals(trim0(authValue));
}

/**
 * The session's HMAC key for an entity: sessionKey || authValue, authValue left out when bound
 * (Part 1 §19.6.5). A policy session's key is its sessionKey alone: the authValue would only join
 * after TPM2_PolicyAuthValue, which this TPM does not implement (Part 1 §19.7).
 */
export function hmacKey(
  session: Session,
  entity: { name: Buffer; authValue: Buffer } | undefined,
): Buffer {
  if (!entity || session.policy || isBoundTo(session, entity.name, entity.authValue))
    return session.sessionKey;
  const auth = trim0(entity.authValue);
  return auth.length === 0 ? session.sessionKey : Buffer.concat([session.sessionKey, auth]);
}

/** Parameter encryption key for a session (Part 1 §21.1): sessionKey || authValue of the entity it authorizes, if any. */
export function paramKey(session: Session, entityAuth: Buffer | undefined): Buffer {
  return entityAuth ? Buffer.concat([session.sessionKey, trim0(entityAuth)]) : session.sessionKey;
}

/**
 * AES-CFB parameter encryption (Part 1 §21.3): k || iv = KDFa(authHash, key, "CFB", nonceNewer,
 * nonceOlder, keyBits + 128). Only the data of the first TPM2B parameter is transformed; its size
 * stays in clear.
 */
export function cfbTransform(
  session: Session,
  key: Buffer,
  nonceNewer: Buffer,
  nonceOlder: Buffer,
  data: Uint8Array,
  decrypt: boolean,
): Buffer {
  const bits = session.symmetric.keyBits;
  const kiv = kdfa(session.authHash, key, 'CFB', nonceNewer, nonceOlder, bits + 128);
  const k = kiv.subarray(0, bits / 8);
  const iv = kiv.subarray(bits / 8);
  return decrypt ? cfbDecrypt(k, iv, data) : cfbEncrypt(k, iv, data);
}

export function usesCfb(session: Session): boolean {
  return session.symmetric.algorithm === TPM_ALG.AES;
}
