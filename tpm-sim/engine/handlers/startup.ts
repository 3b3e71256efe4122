/** Startup and Shutdown (Part 3 §9.3, §9.4). */
import { TPM_SU } from '../../wire/constants.ts';
import { rcParam, TPM_RC } from '../../wire/rc.ts';
import type { Handler } from '../handler.ts';
import { check } from '../rc-error.ts';

export const Startup: Handler<'Startup'> = (ctx, p) => {
  check(p.startupType === TPM_SU.CLEAR || p.startupType === TPM_SU.STATE, rcParam(TPM_RC.VALUE, 1));
  ctx.tpm.startup(p.startupType);
  return { response: {} };
};

export const Shutdown: Handler<'Shutdown'> = (ctx, p) => {
  check(
    p.shutdownType === TPM_SU.CLEAR || p.shutdownType === TPM_SU.STATE,
    rcParam(TPM_RC.VALUE, 1),
  );
  // Shutdown(STATE) lets the next Startup(STATE) resume with saved contexts and PCRs 0-15.
  ctx.tpm.shutdown(p.shutdownType);
  return { response: {} };
};
