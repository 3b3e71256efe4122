export { TpmBadResponseError, TpmError, TpmResponseError, TpmTransportError } from '../errors.ts';
