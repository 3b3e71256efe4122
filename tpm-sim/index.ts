/**
 * tpm-sim's public surface: the simulator as a device, its state-backed opener, the TCP server,
 * and the typed client with its transports. Engine internals are not exported.
 */
export * from './client/index.ts';
export {
  loadOrCreateManufacturerCa,
  MANUFACTURER_CA_CERT,
  MANUFACTURER_DIR_NAME,
  type ManufacturerCaCertificate,
} from './endorsement/manufacturer-ca.ts';
export { type OpenedTpm, openTpm } from './open.ts';
export type { TpmDevice } from './server/device.ts';
export { startTpmServer, type TpmServer, type TpmServerOptions } from './server/tcp-server.ts';
export { createSimulator, type SimulatorOptions } from './simulator.ts';
export { KeyFileSource, type KeySource, SecretServiceSource } from './state/index.ts';
