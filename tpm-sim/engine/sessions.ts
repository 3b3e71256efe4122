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
}

/** Whether `session` is bound to the entity with this Name and authValue (Part 1 §19.6.11). */
export function isBoundTo(session: Session, name: Buffer, authValue: Buffer): boolean {
  const bind = session.bind;
  if (!bind) return false;
  return bind.name.equals(name) && trim0(bind.authValue).equals(trim0(authValue));
}

/** The session's HMAC key for an entity: sessionKey || authValue, authValue left out when bound (Part 1 §19.6.5). */
export function hmacKey(
  session: Session,
  entity: { name: Buffer; authValue: Buffer } | undefined,
): Buffer {
  if (!entity || isBoundTo(session, entity.name, entity.authValue)) return session.sessionKey;
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
