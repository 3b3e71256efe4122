/** The freshness checks of every signed request: a nonce this cloud issued, used once per request. */
import { CloudRequestError } from '../../errors.ts';
import { checkNonce } from '../../tokens/nonce.ts';
import type { TokenContext } from '../context.ts';

export function checkFreshness(
  ctx: TokenContext,
  payload: Record<string, unknown>,
  signedRequest: string,
): void {
  const nonce = checkNonce(ctx.keys.nonce, payload.request_nonce, ctx.now * 1000);
  if (!nonce.ok) {
    throw nonce.reason === 'expired'
      ? new CloudRequestError(76026, {
          description: 'The request nonce has expired.',
          detail: 'nonce expired',
        })
      : new CloudRequestError(9990101, { detail: `nonce ${nonce.reason}` });
  }
  // The optional exp of session-signed payloads (strings in ROADtools, numbers in the spec).
  const exp = Number(payload.exp);
  if (payload.exp !== undefined && (!Number.isFinite(exp) || exp < ctx.now - 60))
    throw new CloudRequestError(76026);
  // An identical signed request is accepted once (its nonce expires within the cache's window).
  if (!ctx.replay.firstUse(signedRequest, ctx.now * 1000)) {
    throw new CloudRequestError(9990102);
  }
}
