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
export { StorageError } from './storage-error.js';
