import type { SyncFailureReason } from './results.js';

/** Counters of one AgentSyncProtocol since it was created, for logs and metrics. */
export interface SyncStats {
  /** Syncs (any mode) that resolved ok, Check syncs that found a match included. */
  syncsOk: number;
  /** Syncs that did not, by reason. A Check that found a mismatch is not among them. */
  syncsFailed: Record<SyncFailureReason, number>;
  /**
   * Check syncs the manager answered with a mismatch (EndAck Error in Check mode): an answer,
   * not a failure, so counted neither in `syncsOk` nor in `syncsFailed`.
   */
  checksMismatched: number;
  /** Messages the transport accepted: Start, data, checksum, End, resends. */
  messagesSent: number;
  /** Bytes of those messages (FlatBuffers bytes, without transport framing). */
  bytesSent: number;
  /** Items resent because a ReqRet asked for them. */
  retransmitted: number;
  /** Changes waiting in the persistent queue now. */
  queueDepth: number;
}
