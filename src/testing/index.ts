// agent-sync-protocol/testing: a mock manager for tests of modules built on the library.

export { computeIndexChecksum } from '../checksum.js';
export { type InProcessHandler, InProcessTransport } from '../transports/in-process.js';
/**
 * The status a manager answer (StartAck, EndAck) carries; {@link MockManager.forceStatus}
 * forces one. The wire's own enum, documented member by member in the schema.
 */
export { Status } from '../wire/index.js';
export {
  AgentdIntake,
  type AgentdIntakeOptions,
  type AgentdIntakeSession,
  type AgentdIntakeStats,
} from './agentd-intake.js';
export { type AgentKeys, parseClientKeys } from './client-keys.js';
export { isAgentScopedStateIndex } from './full-session-front.js';

export {
  type AckType,
  type EmptySessions,
  type FaultAction,
  type FaultDirection,
  type FaultMessageType,
  type FaultRule,
  type FaultStats,
  MockManager,
  type MockManagerOptions,
  type MockManagerStats,
  type ReplyFunction,
  type ResponseDelivery,
  type StatefulAnswer,
  type StatefulFault,
  type StatefulFaultAction,
  type StatefulRequest,
  type StatefulStats,
  type StoredDocument,
} from './mock-manager.js';
export {
  MockManagerServer,
  type MockManagerServerAddress,
  type MockManagerServerOptions,
} from './mock-manager-server.js';
