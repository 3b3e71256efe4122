/**
 * agent/: the device agent's public surface (DESIGN.md "Components"). The broker and the CLI use
 * these and nothing deeper: add a device (keys in its TPM, registration with the cloud), open it
 * as a BrokerAgent (PRT, app tokens, cookies, sealing), read its configuration, remove it.
 */
export {
  DEFAULT_RENEWAL_INTERVAL_MS,
  type DeviceAgent,
  type OpenDeviceAgentOptions,
} from './agent.ts';
export { type Clock, LabClock, startTicker, systemClock } from './clock.ts';
export { listDevices, loadDeviceConfig, openDeviceAgent, removeDevice } from './devices.ts';
export {
  AgentCloudError,
  AgentDeviceError,
  AgentError,
  type AgentErrorCode,
  AgentNoPrtError,
  isAgentError,
} from './errors.ts';
export {
  type AddDeviceOptions,
  type AddDeviceResult,
  addDevice,
  COMPUTER_CERT_FILE,
  DEFAULT_OS_VERSION,
  drsDeviceType,
  labSystemLabels,
} from './register.ts';
export { type AccountStatus, type DeviceStatus, formatStatus } from './status.ts';
export {
  checkDeviceName,
  DEVICE_KINDS,
  type DeviceConfig,
  type DeviceKind,
  deviceDir,
  JOIN_KINDS,
  type JoinKind,
  KEYSTORE_KINDS,
  type KeystoreKind,
} from './store.ts';
export { formatTpmSpec, parseTpmSpec, type TpmSpec } from './tpm-spec.ts';
