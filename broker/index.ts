/**
 * The local broker (WAM's role, DESIGN "Components"): a WebSocket JSON-RPC 2.0 server on
 * 127.0.0.1 in front of the device agent (agent-port.ts), with a sealed per-app token cache; and
 * the client library local apps use to call it.
 */
export type {
  AgentAccount,
  AgentCookie,
  AgentTokenRequest,
  AgentTokenResponse,
  BrokerAgent,
  CloudRefusal,
} from './agent-port.ts';
export {
  type BrokerAccount,
  BrokerClient,
  type BrokerClientOptions,
  type BrokerCookie,
  type InteractiveRequest,
  type SilentRequest,
  type TokenResult,
} from './client.ts';
export {
  BrokerError,
  type BrokerErrorCode,
  type BrokerErrorData,
  BrokerRpcError,
  isBrokerError,
} from './errors.ts';
export { BROKER_FILE, type BrokerFile, brokerFilePath, readBrokerFile } from './files.ts';
export { RPC_ERRORS } from './rpc.ts';
export {
  BROKER_HOST,
  type BrokerHandle,
  type BrokerLimits,
  DEFAULT_LIMITS,
  type StartBrokerOptions,
  startBroker,
} from './server.ts';
