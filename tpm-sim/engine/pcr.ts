/**
 * Platform Configuration Registers (Part 1 §17; Part 2 §10.6 TPMS_PCR_SELECTION, §10.9.7
 * TPML_PCR_SELECTION): 24 PCRs in a SHA-1, a SHA-256, a SHA-384 and a SHA-512 bank, as swtpm
 * allocates them. Which locality may extend which PCR, the reset values and the PCRs that do
 * not count in pcrUpdateCounter follow the PC Client Platform TPM Profile's PCR allocation:
 *
 *   PCR 0-15   static RTM and OS: any locality extends; saved by Shutdown(STATE)
 *   PCR 16     debug: any locality; not counted
 *   PCR 17-19  dynamic RTM: localities 2-4; reset value all ones
 *   PCR 20     localities 1-3; reset value all ones
 *   PCR 21-22  dynamic OS: locality 2; reset value all ones; not counted
 *   PCR 23     application: any locality; not counted
 */
import { digest, requireHash } from '../crypto/hash.ts';
import { TPM_ALG } from '../wire/constants.ts';
import type { PcrSelection } from '../wire/structures.ts';

export const PCR_COUNT = 24;
/** TPM_PT_PCR_SELECT_MIN: every TPMS_PCR_SELECTION.pcrSelect is exactly this long here. */
export const PCR_SELECT_BYTES = 3;
/** The banks, in TPM_ALG_ID order (what GetCapability(TPM_CAP_PCRS) lists). */
export const PCR_BANKS: readonly number[] = [
  TPM_ALG.SHA1,
  TPM_ALG.SHA256,
  TPM_ALG.SHA384,
  TPM_ALG.SHA512,
];
/** TPML_DIGEST's capacity (Part 2 §10.9.3): PCR_Read returns at most this many values at once. */
export const PCR_READ_MAX = 8;

/** Bit n = locality n may extend. */
const ANY_LOCALITY = 0b11111;
const EXTEND_LOCALITIES: readonly number[] = Array.from({ length: PCR_COUNT }, (_, i) => {
  if (i >= 17 && i <= 19) return 0b11100;
  if (i === 20) return 0b01110;
  if (i === 21 || i === 22) return 0b00100;
  return ANY_LOCALITY;
});
/** PCRs whose extension does not advance pcrUpdateCounter. */
const NO_INCREMENT = new Set([16, 21, 22, 23]);
/** PCRs that Shutdown(STATE) saves and Startup(STATE) restores. */
export const STATE_SAVED_PCRS = 16;

/** The value a PCR holds after a reset: zeros, or all ones for the dynamic PCRs 17-22. */
function resetValue(alg: number, index: number): Buffer {
  return Buffer.alloc(requireHash(alg).digestSize, index >= 17 && index <= 22 ? 0xff : 0x00);
}

export interface PcrState {
  /** bank hash algorithm -> 24 values. */
  readonly banks: Map<number, Buffer[]>;
  /** TPM2_PCR_Read's pcrUpdateCounter (Part 3 §22.4). */
  updateCounter: number;
}

/** PCRs as Startup(CLEAR) leaves them (Part 3 §9.3.1). */
export function resetPcrs(): PcrState {
  const banks = new Map<number, Buffer[]>();
  for (const alg of PCR_BANKS) {
    banks.set(
      alg,
      Array.from({ length: PCR_COUNT }, (_, i) => resetValue(alg, i)),
    );
  }
  return { banks, updateCounter: 0 };
}

/**
 * PCRs after Startup(STATE) (TPM Resume): PCRs 0-15 and the counter come back from what
 * Shutdown(STATE) saved; the others are reset.
 */
export function resumePcrs(saved: PcrState): PcrState {
  const pcrs = resetPcrs();
  for (const [alg, values] of saved.banks) {
    const bank = pcrs.banks.get(alg);
    if (!bank) continue;
    for (let i = 0; i < STATE_SAVED_PCRS; i++) bank[i] = Buffer.from(values[i]!);
  }
  pcrs.updateCounter = saved.updateCounter;
  return pcrs;
}

/** The PCRs Shutdown(STATE) saves. */
export function savedPcrs(pcrs: PcrState): PcrState {
  const banks = new Map<number, Buffer[]>();
  for (const [alg, values] of pcrs.banks)
    banks.set(
      alg,
      values.slice(0, STATE_SAVED_PCRS).map((v) => Buffer.from(v)),
    );
  return { banks, updateCounter: pcrs.updateCounter };
}

/** PCR indexes a selection names, ascending (Part 2 §10.6.2: bit k of byte j is PCR 8j + k). */
export function selectedPcrs(sel: PcrSelection): number[] {
  const out: number[] = [];
  sel.pcrSelect.forEach((byte, j) => {
    for (let k = 0; k < 8; k++) if (byte & (1 << k)) out.push(8 * j + k);
  });
  return out;
}

/**
 * The values a selection names, bank by bank in the order given and each bank's PCRs ascending;
 * banks this TPM does not have and PCRs beyond the last contribute nothing (pcrDigest of Part 3
 * §12.1 creation data and §18.4 quotes).
 */
export function selectedValues(pcrs: PcrState, selection: readonly PcrSelection[]): Buffer[] {
  const values: Buffer[] = [];
  for (const sel of selection) {
    const bank = pcrs.banks.get(sel.hash);
    if (!bank) continue;
    for (const i of selectedPcrs(sel)) if (i < PCR_COUNT) values.push(bank[i]!);
  }
  return values;
}

/** H_hashAlg(selected values concatenated): pcrDigest of creation data and quotes. */
export function pcrDigest(
  pcrs: PcrState,
  hashAlg: number,
  selection: readonly PcrSelection[],
): Buffer {
  return digest(hashAlg, ...selectedValues(pcrs, selection));
}

/**
 * TPM2_PCR_Read's answer (Part 3 §22.4): the selected values in order, at most eight; the
 * selection that comes back names exactly the PCRs whose values are returned (a bank the TPM
 * does not have comes back with no PCR selected).
 */
export function readPcrs(
  pcrs: PcrState,
  selection: readonly PcrSelection[],
): { selectionOut: PcrSelection[]; values: Buffer[] } {
  const values: Buffer[] = [];
  const selectionOut = selection.map((sel) => {
    const out = Buffer.alloc(sel.pcrSelect.length);
    const bank = pcrs.banks.get(sel.hash);
    if (bank) {
      for (const i of selectedPcrs(sel)) {
        if (i >= PCR_COUNT || values.length === PCR_READ_MAX) continue;
        values.push(bank[i]!);
        out[i >> 3]! |= 1 << (i & 7);
      }
    }
    return { hash: sel.hash, pcrSelect: out };
  });
  return { selectionOut, values };
}

/** Whether `locality` may extend PCR `index`. */
export function mayExtend(index: number, locality: number): boolean {
  return locality < 5 && (EXTEND_LOCALITIES[index]! & (1 << locality)) !== 0;
}

/**
 * PCR[i] = H_alg(PCR[i] || digest) for each digest of a bank this TPM has (Part 1 §17.2; Part 3
 * §22.2); digests for other banks are ignored. The update counter advances once per command.
 */
export function extendPcr(
  pcrs: PcrState,
  index: number,
  digests: readonly { hashAlg: number; digest: Buffer }[],
): void {
  for (const d of digests) {
    const bank = pcrs.banks.get(d.hashAlg);
    if (!bank) continue;
    bank[index] = digest(d.hashAlg, bank[index]!, d.digest);
  }
  if (!NO_INCREMENT.has(index)) pcrs.updateCounter = (pcrs.updateCounter + 1) >>> 0;
}
