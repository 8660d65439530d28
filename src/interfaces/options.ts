import type { AgentInfo } from './agent-info.js';
import type { Logger } from './logger.js';
import type { MQueueTransport } from './transport.js';

/** Options of one sync call. Defaults come from the constructor's `syncDefaults`, then from here. */
export interface SyncOptions {
  /** Wait for StartAck and for EndAck, each, in milliseconds. Default 30000. */
  timeoutMs?: number;
  /** Extra sends of Start and of End when no answer comes. Default 3. */
  retries?: number;
  /** Messages per second (Start, data, checksum, End). 0 = unlimited. Default 0. */
  maxEps?: number;
  /**
   * Pause before each re-send of Start or End, after a timeout: `min(maxMs, minMs * factor^(attempt-1))`.
   * Default `{ minMs: 0 }`: re-send right after the timeout, as the reference agent does.
   */
  backoff?: { minMs?: number; maxMs?: number; factor?: number };
  /** How many ReqRet rounds one session answers before it fails with 'retransmit-invalid'. Default 16. */
  maxReqRetRounds?: number;
  /** Abort a running sync; it fails with reason 'aborted'. */
  signal?: AbortSignal;
  /** Called as the sync advances: after StartAck, after each page of items, and when End goes out. */
  onProgress?: (progress: SyncProgress) => void;
}

/** Where a running sync is. */
export interface SyncProgress {
  phase: 'start' | 'data' | 'retransmit' | 'end';
  /** Items sent once so far. */
  sent: number;
  /** Items in this session. */
  total: number;
  /** Items resent for ReqRet so far. */
  retransmitted: number;
}

export interface AgentSyncProtocolOptions {
  /** Module name, e.g. 'fim', 'sca', 'syscollector'. Also the `s:<module>:` header of each datagram. */
  moduleName: string;
  /**
   * SQLite file of the persistent queue; ':memory:' allowed. Created with mode 0600. One open
   * instance per file: a second one waits for the first to close (see `busyTimeoutMs`).
   */
  dbPath: string;
  /** The MQueue transport. It belongs to the caller: `close()` does not close it. */
  transport: MQueueTransport;
  /** `(level, message)` callback or a pino-like object. Default: silent. */
  logger?: Logger;
  /** Metadata for Start; each missing field comes from the host (see AgentInfo). */
  agentInfo?: Partial<AgentInfo>;
  /**
   * How long opening or writing the database waits for another process's lock, and opening waits
   * for another instance on the same `dbPath` to close. Default 5000 ms.
   */
  busyTimeoutMs?: number;
  /** Defaults for every sync call of this instance. */
  syncDefaults?: Omit<SyncOptions, 'signal' | 'onProgress'>;
}
