import type { Option } from '../enums/option.js';
import type { AgentInfo } from './agent-info.js';
import type { Logger } from './logger.js';
import type { SessionTransport } from './session-transport.js';
import type { MQueueTransport } from './transport.js';

/**
 * Options of one sync call. Each missing one comes from the constructor's `syncDefaults`, then
 * from the defaults below. An invalid value rejects the sync's promise with a `TypeError` (wrong
 * type, e.g. `timeoutMs must be an integer >= 1, got string '100'`) or a `RangeError` (out of
 * range), and nothing is sent.
 */
export interface SyncOptions {
  /**
   * Wait for StartAck and for EndAck, each, in milliseconds; on the `'fullSession'` wire, for each
   * session's answer (a missing one counts as no answer and is retried). An integer >= 1.
   * Default 30000.
   */
  timeoutMs?: number;
  /**
   * Extra sends of Start and of End when no answer comes; on the `'fullSession'` wire, extra sends
   * of a session answered 415/429/500/502/503/504 or not answered. An integer >= 0. Default 3.
   */
  retries?: number;
  /**
   * Messages per second (Start, data, checksum, End); an integer >= 0, 0 = unlimited. Default 0.
   * Seed wire only (the `'fullSession'` wire sends one message per session).
   */
  maxEps?: number;
  /**
   * Pause before each re-send of Start or End, after a timeout: `min(maxMs, minMs * factor^(attempt-1))`.
   * Default `{ minMs: 0 }`: re-send right after the timeout, as the reference agent does.
   * On the `'fullSession'` wire the pause is full jitter, a random value between 0 and that bound,
   * and at least the answer's Retry-After; default there `{ minMs: 1000, maxMs: 60000, factor: 2 }`.
   */
  backoff?: {
    /** First pause, in ms; an integer >= 0. Default 0. */
    minMs?: number;
    /** Longest pause, in ms; >= minMs. Default no limit (Infinity). */
    maxMs?: number;
    /** Growth of the pause per attempt; a number >= 1. Default 2. */
    factor?: number;
  };
  /** How many ReqRet rounds one session answers before it fails with 'retransmit-invalid'; an integer >= 1. Default 16. Seed wire only. */
  maxReqRetRounds?: number;
  /** Abort a running sync; it resolves `{ ok: false, reason: 'aborted' }`. */
  signal?: AbortSignal;
  /**
   * Called as the sync advances (see {@link SyncProgress} for when). A callback that throws is
   * logged at warn and does not fail the sync.
   */
  onProgress?: (progress: SyncProgress) => void;
  /**
   * `'fullSession'` wire only (the seed wire ignores it): the cap on one session's bytes; a
   * Delta or Full is cut into sessions of at most this estimate (an item larger than the cap goes
   * alone). An integer >= 1. Default 5242880 (5 MiB, the reference's).
   */
  maxSessionBytes?: number;
  /**
   * `'fullSession'` wire only: sessions one Delta sends at most; the rest stays queued for the
   * next sync. An integer >= 1. Default 10 (the reference's).
   */
  maxSessions?: number;
  /**
   * `'fullSession'` wire only: Check sessions sent before a mismatch (409) is trusted, since the
   * manager's indexer may not have caught up with a recent write. An integer >= 1. Default 5
   * (the reference's).
   */
  checkAttempts?: number;
  /** `'fullSession'` wire only: pause between two Check attempts, in ms; an integer >= 0. Default 10000. */
  checkRetryDelayMs?: number;
}

/**
 * Options of `synchronizeModule` and `notifyDataClean`: the {@link SyncOptions} plus the Wazuh
 * 5.0 Start's `option` and `feed_offset`. The seed wire cannot carry them: an option other than
 * `Option.Sync`, or a `feedOffset`, resolves `'unsupported'` there and sends nothing.
 */
export interface ModuleSyncOptions extends SyncOptions {
  /**
   * `'fullSession'` wire: what the sessions are for (see {@link Option}); Delta and
   * `notifyDataClean` only (a Full sync with another option resolves `'unsupported'`).
   * `Option.VDFirst`/`Option.VDSync` need `feedOffset` and lift the `maxSessionBytes` cap, as the
   * reference does. Default `Option.Sync`.
   */
  option?: Option;
  /**
   * `'fullSession'` wire, with `Option.VDFirst`/`Option.VDSync` only (required there, refused
   * with `Option.Sync`): the vulnerability feed offset the manager reported, a u64 > 0 (bigint,
   * or a safe integer). The manager answers 409 (`version_mismatch`) when it is not its own;
   * the sync then fails `'manager-error'` and its items stay queued.
   */
  feedOffset?: bigint | number;
}

/**
 * Options of `synchronizeMetadataOrGroups`: the {@link SyncOptions} plus what a Wazuh 5.0
 * metadata or group session carries in its Start. The seed wire cannot carry them: given there,
 * the sync fails `'unsupported'` and sends nothing.
 */
export interface MetadataSyncOptions extends SyncOptions {
  /**
   * `'fullSession'` wire: the indices whose documents the manager updates (the manager skips
   * those outside its allowlist). Default none.
   */
  indices?: readonly string[];
  /**
   * `'fullSession'` wire: the `global_version` of the change, a u64 (bigint, or a safe integer):
   * documents of a higher `state.document_version` are left alone. Default 0.
   */
  globalVersion?: bigint | number;
}

/**
 * Which wire a protocol instance speaks:
 * - `'seed'`: Start/StartAck/DataValue/End/EndAck datagrams over an {@link MQueueTransport}
 *   (managers built from wazuh/wazuh around October 2025; the default);
 * - `'fullSession'`: Wazuh 5.0, one FlatBuffers message per session over a
 *   {@link SessionTransport}, answered with an HTTP status.
 */
export type Wire = 'seed' | 'fullSession';

/**
 * Where a running sync is, as `onProgress` reports it. The phases come in this order:
 * `'start'` once, `'data'` after each page of items (Full and Delta only), `'end'` once, then
 * `'retransmit'` after each page of items resent for a ReqRet (when the manager asks).
 * Check, metadata and group syncs report only `'start'` and `'end'`. On the `'fullSession'`
 * wire, a Delta or Full reports `'start'` before its first session, `'data'` after each session
 * the manager applied, and `'end'` after the last; Check, metadata and group syncs report nothing.
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

/**
 * What `new AgentSyncProtocol(options)` and `AgentSyncProtocol.open(options)` take: the options
 * of the seed wire (the default) or of the `'fullSession'` wire. The union lets TypeScript type an
 * inline transport by the wire it is for, and makes `clusterName` required where it is.
 */
export type AgentSyncProtocolOptions = SeedWireOptions | FullSessionWireOptions;

/** The options of the seed wire: an {@link MQueueTransport}. */
export interface SeedWireOptions extends CommonOptions {
  /** The wire to speak (see {@link Wire}). Default `'seed'`. */
  wire?: 'seed';
  /** The transport; it belongs to the caller: `close()` does not close it. */
  transport: MQueueTransport;
  /** Read by the `'fullSession'` wire only; the seed wire ignores it. */
  clusterName?: string;
}

/**
 * The options of the `'fullSession'` wire (Wazuh 5.0): a {@link SessionTransport}, the cluster
 * name, and (checked at run time) a numeric `agentInfo.id` and a module name of
 * `[0-9A-Za-z._-]` only.
 */
export interface FullSessionWireOptions extends CommonOptions {
  /** The wire to speak (see {@link Wire}). */
  wire: 'fullSession';
  /** The transport; it belongs to the caller: `close()` does not close it. */
  transport: SessionTransport;
  /**
   * The manager's cluster name (its `<cluster><name>`, `'wazuh'` in the shipped configuration);
   * every session's Start carries it and the manager refuses another (403).
   */
  clusterName: string;
}

/** The options both wires take. */
export interface CommonOptions {
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
