/**
 * The simulated TPM as code outside tpm-sim sees it: a device that takes command bytes and
 * returns response bytes, plus the platform signals. Key material lives in the engine, which this
 * facade closes over and never returns: private parts leave the TPM only wrapped (Create,
 * ContextSave) or sealed at rest (tpm-sim/state), exactly as through a real TPM's interface.
 */
import { Tpm, type TpmOptions } from './engine/tpm.ts';
import type { TpmDevice } from './server/device.ts';

export type SimulatorOptions = TpmOptions;

/** Wraps an engine in a frozen TpmDevice with no other properties. */
export function deviceOf(tpm: Tpm): TpmDevice {
  return Object.freeze({
    execute: (command: Uint8Array, locality = 0) => tpm.execute(command, locality),
    powerOn: () => tpm.powerOn(),
    powerOff: () => tpm.powerOff(),
    cancel: (on: boolean) => tpm.cancel(on),
  });
}

/** A new simulated TPM (state kept in memory unless `persist` is given), not yet powered on. */
export function createSimulator(options: SimulatorOptions = {}): TpmDevice {
  return deviceOf(new Tpm(options));
}
