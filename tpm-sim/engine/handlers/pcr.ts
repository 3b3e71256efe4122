/**
 * PCR commands: TPM2_PCR_Extend (Part 3 §22.2) and TPM2_PCR_Read (Part 3 §22.4), over the banks
 * of engine/pcr.ts (Part 2 §10.6 TPMS_PCR_SELECTION, §10.9.5 TPML_DIGEST_VALUES).
 */
import { TPM_RH } from '../../wire/constants.ts';
import { TPM_RC } from '../../wire/rc.ts';
import type { Handler } from '../handler.ts';
import { extendPcr, mayExtend, readPcrs } from '../pcr.ts';
import { RcError } from '../rc-error.ts';

/**
 * Part 3 §22.2. The handle is TPMI_DH_PCR+: TPM_RH_NULL extends nothing. Only localities the
 * PCR's attributes allow may extend it (TPM_RC_LOCALITY). Each digest extends the bank of its
 * hash; digests for banks the TPM does not have are ignored.
 */
export const PCR_Extend: Handler<'PCR_Extend'> = (ctx, p) => {
  const pcr = ctx.handles[0]!.handle;
  if (pcr === TPM_RH.NULL) return { response: {} };
  if (!mayExtend(pcr, ctx.locality)) throw new RcError(TPM_RC.LOCALITY);
  extendPcr(ctx.tpm.pcrs, pcr, p.digests);
  return { response: {} };
};

/**
 * Part 3 §22.4: the selected values (at most eight per call), the selection they answer, and
 * pcrUpdateCounter, so a caller that needs more values can tell whether PCRs changed between
 * calls.
 */
export const PCR_Read: Handler<'PCR_Read'> = (ctx, p) => {
  const { selectionOut, values } = readPcrs(ctx.tpm.pcrs, p.pcrSelectionIn);
  return {
    response: {
      pcrUpdateCounter: ctx.tpm.pcrs.updateCounter,
      pcrSelectionOut: selectionOut,
      pcrValues: values,
    },
  };
};
