/**
 * The device agent's errors: one base class, AgentError, for everything agent/ raises on purpose.
 * The TPM's own failures stay TpmError (ERR_TPM_*), the protocol's ProtocolError (ERR_PROTOCOL_*),
 * and sealed-state files StateError; the agent adds three codes:
 *
 * - ERR_AGENT_DEVICE: the device's side: an unknown or existing device name, a bad --tpm spec, a
 *   device directory that is missing, corrupt or insecure, an answer from the cloud the agent
 *   cannot use, a registration or sign-in step that failed on the device.
 * - ERR_AGENT_NO_PRT: no usable PRT for the account (never signed in, expired, revoked).
 * - ERR_AGENT_CLOUD: the cloud refused a request; `refusal` carries its Entra error fields.
 *
 * Messages never carry a token, a password or key material.
 */
import type { CloudRefusal } from '../broker/agent-port.ts';
import { type ErrorCode, PrtlabError } from '../lib/errors.ts';

/** The subset of ErrorCode that agent/ raises. */
export type AgentErrorCode = Extract<ErrorCode, `ERR_AGENT_${string}`>;

export class AgentError extends PrtlabError {
  declare readonly code: AgentErrorCode;

  constructor(code: AgentErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** The device's side of things failed (see ERR_AGENT_DEVICE above). */
export class AgentDeviceError extends AgentError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_AGENT_DEVICE', message, options);
  }
}

/** The account has no usable PRT on this device. */
export class AgentNoPrtError extends AgentError {
  /** Why: never signed in, expired, revoked or refused by the cloud. */
  readonly reason: 'none' | 'expired' | 'revoked';

  constructor(reason: 'none' | 'expired' | 'revoked', message: string) {
    super('ERR_AGENT_NO_PRT', message);
    this.reason = reason;
  }
}

/** The cloud refused a device request; the Entra fields are in `refusal`. */
export class AgentCloudError extends AgentError {
  readonly refusal: CloudRefusal;
  /** The HTTP status of the refusal. */
  readonly status: number;

  constructor(refusal: CloudRefusal, status: number, what: string) {
    super(
      'ERR_AGENT_CLOUD',
      `the cloud refused ${what}: ${refusal.error} AADSTS${refusal.aadsts} (correlation id ${refusal.correlationId})`,
    );
    this.refusal = refusal;
    this.status = status;
  }
}

export function isAgentError(err: unknown, code?: AgentErrorCode): err is AgentError {
  return err instanceof AgentError && (code === undefined || err.code === code);
}
