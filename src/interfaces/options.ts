import type { AgentInfo } from './agent-info.js';
import type { Logger } from './logger.js';
import type { MQueueTransport } from './transport.js';

/**
 * Options of one sync call. Each missing one comes from the constructor's `syncDefaults`, then
 * from the defaults below. An invalid value rejects the sync's promise with a `TypeError` (wrong
 * type, e.g. `timeoutMs must be an integer >= 1, got string '100'`) or a `RangeError` (out of
 * range), and nothing is sent.
 */
export interface SyncOptions {
  /** Wait for StartAck and for EndAck, each, in milliseconds; an integer >= 1. Default 30000. */
  timeoutMs?: number;
  /** Extra sends of Start and of End when no answer comes; an integer >= 0. Default 3. */
  retries?: number;
  /** Messages per second (Start, data, checksum, End); an integer >= 0, 0 = unlimited. Default 0. */
  maxEps?: number;
  /**
   * Pause before each re-send of Start or End, after a timeout: `min(maxMs, minMs * factor^(attempt-1))`.
   * Default `{ minMs: 0 }`: re-send right after the timeout, as the reference agent does.
   */
  backoff?: {
    /** First pause, in ms; an integer >= 0. Default 0. */
    minMs?: number;
    /** Longest pause, in ms; >= minMs. Default no limit (Infinity). */
    maxMs?: number;
    /** Growth of the pause per attempt; a number >= 1. Default 2. */
    factor?: number;
  };
  /** How many ReqRet rounds one session answers before it fails with 'retransmit-invalid'; an integer >= 1. Default 16. */
  maxReqRetRounds?: number;
  /** Abort a running sync; it resolves `{ ok: false, reason: 'aborted' }`. */
  signal?: AbortSignal;
  /**
   * Called as the sync advances (see {@link SyncProgress} for when). A callback that throws is
   * logged at warn and does not fail the sync.
   */
  onProgress?: (progress: SyncProgress) => void;
}

/**
 * Where a running sync is, as `onProgress` reports it. The phases come in this order:
 * `'start'` once, `'data'` after each page of items (Full and Delta only), `'end'` once, then
 * `'retransmit'` after each page of items resent for a ReqRet (when the manager asks).
 * Check, metadata and group syncs report only `'start'` and `'end'`.
 */
export interface SyncProgress {
  /**
   * `'start'`: the manager acknowledged Start (StartAck Ok); `'data'`: a page of items went out;
   * `'end'`: End went out after the data; `'retransmit'`: a page of resent items went out.
   */
  phase: 'start' | 'data' | 'retransmit' | 'end';
  /** Items sent once so far. */
  sent: number;
  /** Items in this session (0 for Check, metadata and group syncs). */
  total: number;
  /** Items resent for ReqRet so far. */
  retransmitted: number;
}

/** What `new AgentSyncProtocol(options)` and `AgentSyncProtocol.open(options)` take. */
export interface AgentSyncProtocolOptions {
  /**
   * Module name, e.g. 'fim', 'sca', 'syscollector'. Also the `s:<module>:` header of each
   * datagram: at most 64 bytes in UTF-8 (the agent daemon drops longer ones), no control
   * characters.
   */
  moduleName: string;
  /**
   * SQLite file of the persistent queue; ':memory:' allowed. Created with mode 0600. One open
   * instance per file: a second one waits for the first to close (see `busyTimeoutMs`).
   */
  dbPath: string;
  /** The MQueue transport. It belongs to the caller: `close()` does not close it. */
  transport: MQueueTransport;
  /** `(level, message, fields?)` callback or a pino-like object. Default: silent. */
  logger?: Logger;
  /** Metadata for Start; each missing field comes from the host (see AgentInfo). */
  agentInfo?: Partial<AgentInfo>;
  /**
   * How long opening or writing the database waits for another process's lock, and opening waits
   * for another instance on the same `dbPath` to close. Default 5000 ms. The constructor waits
   * blocking the thread; `AgentSyncProtocol.open` waits on timers.
   */
  busyTimeoutMs?: number;
  /** Defaults for every sync call of this instance; checked at each sync, like {@link SyncOptions}. */
  syncDefaults?: Omit<SyncOptions, 'signal' | 'onProgress'>;
}
