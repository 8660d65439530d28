export { computeIndexChecksum } from '../checksum.js';
export { type InProcessHandler, InProcessTransport } from '../transports/in-process.js';
export { Status } from '../wire/index.js';
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
  type StoredDocument,
} from './mock-manager.js';
export {
  MockManagerServer,
  type MockManagerServerAddress,
  type MockManagerServerOptions,
} from './mock-manager-server.js';
