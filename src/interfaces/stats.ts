import type { SyncFailureReason } from './results.js';

/** Counters of one AgentSyncProtocol since it was created, for logs and metrics. */
export interface SyncStats {
  /** Syncs (any mode) that resolved ok. */
  syncsOk: number;
  /** Syncs that did not, by reason. */
  syncsFailed: Record<SyncFailureReason, number>;
  /** Messages the transport accepted: Start, data, checksum, End, resends. */
  messagesSent: number;
  /** Bytes of those messages (FlatBuffers bytes, without transport framing). */
  bytesSent: number;
  /** Items resent because a ReqRet asked for them. */
  retransmitted: number;
  /** Changes waiting in the persistent queue now. */
  queueDepth: number;
}
