/**
 * TPM2_StartAuthSession (Part 3 §11.1): HMAC, policy and trial sessions, each unbound or bound,
 * unsalted or salted, with or without AES-CFB parameter encryption.
 */
import { randomBytes } from 'node:crypto';
import { hashInfo } from '../../crypto/hash.ts';
import { kdfa } from '../../crypto/kdf.ts';
import { TPM_ALG, TPM_HT, TPM_RH, TPM_SE } from '../../wire/constants.ts';
import { rcHandle, rcParam, TPM_RC } from '../../wire/rc.ts';
import type { Handler } from '../handler.ts';
import { check } from '../rc-error.ts';
import { decryptSalt } from '../salt.ts';
import { newPolicyState, type Session, trim0 } from '../sessions.ts';

export const StartAuthSession: Handler<'StartAuthSession'> = (ctx, p) => {
  const [tpmKey, bind] = ctx.handles as [(typeof ctx.handles)[0], (typeof ctx.handles)[0]];
  const info = hashInfo(p.authHash)!;
  // Part 3 §11.1.1: nonceCaller is 16 octets up to the digest size of authHash.
  check(
    p.nonceCaller.length >= 16 && p.nonceCaller.length <= info.digestSize,
    rcParam(TPM_RC.SIZE, 1),
  );
  const type = p.sessionType;
  check(
    type === TPM_SE.HMAC || type === TPM_SE.POLICY || type === TPM_SE.TRIAL,
    rcParam(TPM_RC.VALUE, 3),
  );
  const sym = p.symmetric;
  check(
    sym.algorithm === TPM_ALG.NULL || sym.algorithm === TPM_ALG.AES,
    rcParam(TPM_RC.SYMMETRIC, 4),
  );
  check(sym.algorithm === TPM_ALG.NULL || sym.mode === TPM_ALG.CFB, rcParam(TPM_RC.MODE, 4));

  let salt: Buffer = Buffer.alloc(0);
  if (tpmKey!.handle === TPM_RH.NULL) {
    check(p.encryptedSalt.length === 0, rcParam(TPM_RC.VALUE, 2));
  } else {
    check(tpmKey!.object?.sensitive, rcHandle(TPM_RC.KEY, 1));
    salt = decryptSalt(tpmKey!.object, p.encryptedSalt);
  }

  const nonceTPM = randomBytes(p.nonceCaller.length);
  const bound = bind!.handle !== TPM_RH.NULL;
  // Part 1 §19.6.8: sessionKey = KDFa(authHash, bind authValue || salt, "ATH", nonceTPM, nonceCaller, digest bits);
  // with neither a bind entity nor a salt the session key is empty.
  const sessionKey =
    !bound && tpmKey!.handle === TPM_RH.NULL
      ? Buffer.alloc(0)
      : kdfa(
          p.authHash,
          Buffer.concat([bound ? trim0(bind!.authValue) : Buffer.alloc(0), salt]),
          'ATH',
          nonceTPM,
          p.nonceCaller,
          info.digestSize * 8,
        );
  // Policy and trial sessions take handles of the policy range (Part 2 §7.5).
  const handle = ctx.tpm.allocateSessionHandle(
    type === TPM_SE.HMAC ? TPM_HT.HMAC_SESSION : TPM_HT.POLICY_SESSION,
  );
  const session: Session = {
    handle,
    authHash: p.authHash,
    sessionKey,
    symmetric: sym,
    nonceTPM,
    loaded: true,
    ...(bound ? { bind: { name: bind!.name, authValue: bind!.authValue } } : {}),
    ...(type === TPM_SE.HMAC
      ? {}
      : { policy: newPolicyState(info.digestSize, type === TPM_SE.TRIAL, ctx.tpm.time()) }),
  };
  ctx.tpm.sessions.set(handle, session);
  return { handles: [handle], response: { nonceTPM } };
};
