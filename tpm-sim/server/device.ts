/** A TPM as the server sees it: command bytes in, response bytes out, plus the platform signals. */
export interface TpmDevice {
  /** Runs one TPM command. Never rejects for bad command bytes: those get a TPM error response. */
  execute(command: Uint8Array, locality: number): Promise<Uint8Array>;
  /** Platform power-on. With autoStartup the device runs TPM2_Startup(CLEAR) itself. Repeated power-on while on is harmless. */
  powerOn(): Promise<void>;
  powerOff(): Promise<void>;
  /** Asks the device to cancel a running command (may be a no-op). */
  cancel(on: boolean): void;
}
