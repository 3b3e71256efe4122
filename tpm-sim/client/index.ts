/**
 * The TPM client's public surface: the typed client, authorizations, templates, errors and the
 * transports. Everything outside tpm-sim/ that talks to a TPM imports from here.
 */

export { DeviceTransport } from '../transport/device.ts';
export { InProcessTransport } from '../transport/in-process.ts';
export { type TcpFraming, TcpTransport } from '../transport/tcp.ts';
export type { TpmTransport } from '../transport/transport.ts';
export { TPM_ALG, TPM_CAP, TPM_ECC_CURVE, TPM_RH, TPM_SU, TPMA_OBJECT } from '../wire/constants.ts';
export { describeRc, TPM_RC } from '../wire/rc.ts';
export { type Authorization, HmacSession, passwordAuth } from './auth.ts';
export {
  type AuthOptions,
  type Entity,
  type HandleArg,
  type LoadedKey,
  TpmClient,
} from './client.ts';
export { TpmBadResponseError, TpmError, TpmResponseError, TpmTransportError } from './errors.ts';
export * as templates from './templates.ts';
