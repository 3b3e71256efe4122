/**
 * A way to reach a TPM: the in-process simulator, a TPM server over TCP, or a kernel TPM device.
 * Callers build TPM commands and parse responses; a transport only moves the bytes.
 */
export interface TpmTransport {
  /**
   * Sends one complete TPM command and resolves with the complete response. Calls made while one
   * is in flight are queued and run in order. Failures to move the bytes reject with
   * ERR_TPM_TRANSPORT; a TPM error response is not a failure here, it resolves like any other.
   */
  send(command: Uint8Array): Promise<Uint8Array>;
  /** Lets queued sends finish, then releases the connection. Later sends reject. Idempotent. */
  close(): Promise<void>;
}
