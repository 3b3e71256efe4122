/** TPM2_Unseal (Part 3 §12.7): returns the data of a sealed data object. */
import { TPM_ALG, TPMA_OBJECT } from '../../wire/constants.ts';
import { rcHandle, TPM_RC } from '../../wire/rc.ts';
import type { Handler } from '../handler.ts';
import { has, sensitiveForAuth } from '../objects.ts';
import { RcError } from '../rc-error.ts';

/**
 * Part 3 §12.7.1: only a data object gives up its sensitive data: a KEYEDHASH object
 * (TPM_RC_TYPE otherwise) that is neither a signing nor a decryption key nor restricted
 * (TPM_RC_ATTRIBUTES), both for itemHandle.
 */
export const Unseal: Handler<'Unseal'> = (ctx) => {
  const obj = ctx.handles[0]!.object!;
  const pub = obj.publicArea;
  if (pub.type !== TPM_ALG.KEYEDHASH) throw new RcError(rcHandle(TPM_RC.TYPE, 1));
  const a = pub.objectAttributes;
  if (has(a, TPMA_OBJECT.sign) || has(a, TPMA_OBJECT.decrypt) || has(a, TPMA_OBJECT.restricted)) {
    throw new RcError(rcHandle(TPM_RC.ATTRIBUTES, 1));
  }
  return { response: { outData: Buffer.from(sensitiveForAuth(obj).sensitive) } };
};
