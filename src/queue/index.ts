export {
  CreateStatus,
  PersistentQueue,
  type PersistentQueueOptions,
  type QueueChange,
  type QueueEntry,
  type SyncRow,
  SyncStatus,
  type TakeResult,
} from './persistent-queue.js';
export { RecoveryBuffer } from './recovery-buffer.js';
export {
  DEFAULT_MAX_SESSION_BYTES,
  estimateItemBytes,
  ITEM_OVERHEAD_BYTES,
  MAX_SESSIONS_PER_SYNC,
  type QueueSession,
  type RunSessionsOptions,
  type RunSessionsResult,
  runSessions,
  SESSION_GRACE_BYTES,
  SESSION_OVERHEAD_BYTES,
  type SessionOutcome,
  type SessionRow,
  sessionBudget,
} from './sessions.js';
export { StorageError } from './storage-error.js';
