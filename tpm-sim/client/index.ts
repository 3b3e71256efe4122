/**
 * The TPM client's public surface: the typed client, authorizations, templates, errors and the
 * transports. Everything outside tpm-sim/ that talks to a TPM imports from here.
 */

export { DeviceTransport } from '../transport/device.ts';
export { InProcessTransport } from '../transport/in-process.ts';
export { type TcpFraming, TcpTransport } from '../transport/tcp.ts';
export type { TpmTransport } from '../transport/transport.ts';
export {
  TPM_ALG,
  TPM_CAP,
  TPM_ECC_CURVE,
  TPM_GENERATED_VALUE,
  TPM_NT,
  TPM_RH,
  TPM_ST,
  TPM_SU,
  TPMA_NV,
  TPMA_OBJECT,
} from '../wire/constants.ts';
export { describeRc, TPM_RC } from '../wire/rc.ts';
export type { Attest, NvPublic, PcrSelection } from '../wire/structures.ts';
export { type Authorization, HmacSession, PolicySession, passwordAuth } from './auth.ts';
export {
  type Attestation,
  type AuthOptions,
  type Entity,
  type HandleArg,
  type LoadedKey,
  type NvAuthArgs,
  type PcrValue,
  pcrSelection,
  TpmClient,
} from './client.ts';
export { type EkKind, readEkCertificate } from './endorsement.ts';
export { TpmBadResponseError, TpmError, TpmResponseError, TpmTransportError } from './errors.ts';
export * as templates from './templates.ts';
