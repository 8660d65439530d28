// agent-sync-protocol/testing: a mock manager for tests of modules built on the library.
import { Status as WireStatus } from '../wire/index.js';

export { computeIndexChecksum } from '../checksum.js';
export { type InProcessHandler, InProcessTransport } from '../transports/in-process.js';

/**
 * The status a manager answer (StartAck, EndAck) carries; {@link MockManager.forceStatus}
 * forces one. The same values as the wire's enum (the members of a generated enum cannot carry
 * their own comments):
 * - `Status.Ok` (0): StartAck: a session is open, its id in the answer. EndAck: the session is
 *   indexed (Check: the checksums match).
 * - `Status.PartialOk` (1): declared by the schema; the manager never sends it and the library
 *   takes it as a failure ('manager-error'). A StartAck forced to it still opens a session.
 * - `Status.Error` (2): StartAck: the Start is refused (size 0 in Full/Delta, or every size 0 on
 *   build ad9475fb35). EndAck: indexing failed, or a Check found a checksum mismatch.
 * - `Status.Offline` (3): the manager's indexer is unavailable; retry later.
 */
export const Status = WireStatus;
export type Status = WireStatus;

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
