export { hostAgentInfo, PACKAGE_VERSION } from './agent/host-info.js';
export { AgentSyncProtocol } from './agent-sync-protocol.js';
export { computeIndexChecksum, type IndexDocuments } from './checksum.js';
export { type MetadataMode, Mode, type SyncModuleMode } from './enums/mode.js';
export { type ChangeOperation, Operation } from './enums/operation.js';
export { Option } from './enums/option.js';
export type { AgentInfo } from './interfaces/agent-info.js';
export type { Change } from './interfaces/change.js';
export type {
  LevelLogger,
  LogFields,
  LogFunction,
  Logger,
  LogLevel,
} from './interfaces/logger.js';
export type {
  AgentSyncProtocolOptions,
  CommonOptions,
  FullSessionWireOptions,
  MetadataSyncOptions,
  ModuleSyncOptions,
  SeedWireOptions,
  SyncOptions,
  SyncProgress,
  Wire,
} from './interfaces/options.js';
export type {
  IntegrityCheckResult,
  SyncFailure,
  SyncFailureReason,
  SyncResult,
  SyncSuccess,
} from './interfaces/results.js';
export type {
  SessionAnswer,
  SessionRequest,
  SessionResult,
  SessionResultReceiver,
  SessionTransport,
} from './interfaces/session-transport.js';
export type { SyncStats } from './interfaces/stats.js';
export type { MQueueTransport } from './interfaces/transport.js';
export { StorageError } from './queue/storage-error.js';
export { ClosedError } from './session/closed-error.js';
export {
  BACKOFF_BASE_MS,
  BACKOFF_CAP_MS,
  type HttpSessionRetryOptions,
  type HttpSessionTlsOptions,
  HttpSessionTransport,
  type HttpSessionTransportOptions,
  STATEFUL_MAX_ATTEMPTS,
  STATEFUL_TIMEOUT_MS,
} from './transports/http-session-transport.js';
export { type InProcessHandler, InProcessTransport } from './transports/in-process.js';
export {
  AGENTD_ACCEPTED_ANSWER,
  QUEUE_SYNC_RESULT_MODULES,
  QueueSyncTransport,
  type QueueSyncTransportOptions,
} from './transports/queue-sync-transport.js';
export {
  AesCmac,
  aesCmac,
  canonicalRequestHead,
  DEFAULT_MAX_FUTURE_SKEW_SECONDS,
  DEFAULT_MAX_REQUEST_AGE_SECONDS,
  parseAgentKey,
  SIGNATURE_PROTOCOL_VERSION,
  type SignatureRefusal,
  type SignatureVerdict,
  type SignRequestInput,
  signRequest,
  type VerifyRequestInput,
  verifyRequestSignature,
} from './transports/request-signature.js';
export {
  type TcpReconnectOptions,
  TcpTransport,
  type TcpTransportOptions,
} from './transports/tcp-transport.js';
export {
  WazuhQueueTransport,
  type WazuhQueueTransportOptions,
} from './transports/wazuh-queue-transport.js';
export {
  type ResponseTarget,
  WazuhResponseListener,
  type WazuhResponseListenerOptions,
} from './transports/wazuh-response-listener.js';
export { MAX_DATAGRAM_BYTES } from './wire/framing.js';
