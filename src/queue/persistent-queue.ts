import Database from 'better-sqlite3';
import { Operation } from '../enums/operation.js';
import type { Change } from '../interfaces/change.js';
import { IntentLog } from './intent-log.js';
import { createOwnerOnlyFile, OwnerLock } from './owner-lock.js';
import {
  DEFAULT_MAX_SESSION_BYTES,
  ITEM_OVERHEAD_BYTES,
  type QueueSession,
  SESSION_OVERHEAD_BYTES,
  type SessionRow,
  sessionBudget,
} from './sessions.js';
import { StorageError } from './storage-error.js';

/** Where a row stands with respect to the sync session. */
export enum SyncStatus {
  /** Waiting for the next take. */
  Pending = 0,
  /** Taken by the active sync, unchanged since. */
  Syncing = 1,
  /** Taken by the active sync and changed since; goes back to Pending when the sync ends. */
  SyncingUpdated = 2,
}

/** Whether the manager has (possibly) seen the item. */
export enum CreateStatus {
  /** The manager knows the item (or may know it). */
  Existing = 0,
  /** Created on the agent and never acknowledged by the manager. */
  New = 1,
  /** Created and then deleted while a sync that carries the creation was in flight. */
  NewDeleted = 2,
}

/**
 * One change to queue, as given to {@link PersistentQueue.persistMany}. Any Operation: the public
 * {@link Change} is narrower, and the validator keeps NoOp out before the queue sees a change.
 */
export type QueueChange = Omit<Change, 'operation'> & {
  operation: Operation;
  /**
   * The item's version, a u64 (0..2^64-1; a number must be a safe integer). 0 (the default) =
   * unversioned; > 0 = external versioning on the 5.0 manager.
   */
  version?: bigint | number;
  /**
   * A DataContext item (5.0: session context for vulnerability detection, never indexed).
   * Default false: a DataValue.
   */
  dataContext?: boolean;
};

/** A row of the active take (or of a {@link RecoveryBuffer} snapshot), as streamed to the manager. */
export interface SyncRow {
  seq: number;
  id: string;
  index: string;
  data: string;
  operation: Operation;
}

export interface TakeResult {
  /** Number of rows taken; their seqs are 0..size-1. */
  size: number;
  /** Sorted unique index names of the taken rows. */
  indices: string[];
}

/** A raw queue row, as returned by {@link PersistentQueue.inspect}. */
export interface QueueEntry {
  id: string;
  index: string;
  data: string;
  operation: Operation;
  syncStatus: SyncStatus;
  createStatus: CreateStatus;
  /** Operation in flight when the active sync took the row; NoOp when not taken. */
  inFlight: Operation;
  seq: number | null;
  /**
   * The item's version; absent when 0 (unversioned), so that the entries of unversioned items
   * read exactly as before versions existed.
   */
  version?: bigint;
  /** Present (true) only for a DataContext item. */
  dataContext?: true;
}

export interface PersistentQueueOptions {
  /** How long a statement waits for another connection's lock before failing. Default 5000. */
  busyTimeoutMs?: number;
}

const DEFAULT_BUSY_TIMEOUT_MS = 5000;

// open() tries again after 5, 10, 20, 40, 50, 50... ms: an owner that closes is seen within
// 50 ms, and a long wait costs one failed attempt (two lock-file opens) per 50 ms.
const FIRST_RETRY_MS = 5;
const MAX_RETRY_MS = 50;

// Logged changes move into SQLite in one transaction once there are this many (or this many
// bytes of them), and before any call that reads the queue. Bounds the log and the memory
// holding its changes; at 1024 the per-transaction cost is already noise.
const FLUSH_CHANGES = 1024;
const FLUSH_BYTES = 1024 * 1024;

// SQLite truncates the WAL back to this size when it restarts it after a checkpoint, so one
// huge transaction (a take over millions of rows) does not leave a huge -wal file behind.
const JOURNAL_SIZE_LIMIT_BYTES = 8 * 1024 * 1024;

// completeSuccess removes a take's rows this many at a time (see there).
const DELETE_BATCH_ROWS = 1000;

/**
 * Rows a session's reader loads at a time: enough to amortise a statement, few enough that a
 * session's rows never sit in memory together (they die young instead of filling the heap).
 */
const SESSION_READ_ROWS = 256;

/**
 * Rows takeSession sums at a time while it looks for a session's cut: a statement's cost is
 * spread over many rows, and only the batch the cut falls in is summed again, as a running sum.
 */
const CUT_BATCH_ROWS = 1024;

// The schema's version, in PRAGMA user_version: 0 is the 0.1.x schema (which never set it),
// and MIGRATIONS[v] takes a file from v to v + 1. A file newer than this code is refused.
const SCHEMA_VERSION = 1;

// Why the version is an INTEGER holding the u64's bits as a signed 64-bit value (2^64 - 1 is
// stored as -1): SQLite's INTEGER is a signed 64-bit value, so this maps every u64 to exactly
// one stored value and back (BigInt.asIntN / asUintN) with nothing lost; it takes 0 bytes for 0
// (the common, unversioned case) and at most 8, and it is what the reference agent stores
// (static_cast<int64_t>, persistent_queue_storage.cpp). Its order is not the u64 order, but
// nothing compares versions in SQL: a later change's version replaces the row's (last write
// wins). TEXT would take up to 20 bytes and a parse; a BLOB 8 bytes even for 0.
// ADD COLUMN rewrites nothing (old rows read the defaults), so migrating a large queue is
// instant; a new database is made by the same steps, so every file has the same schema.
const MIGRATIONS = [
  `ALTER TABLE persistent_queue ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE persistent_queue ADD COLUMN data_context INTEGER NOT NULL DEFAULT 0
    CHECK (data_context BETWEEN 0 AND 1);
  CREATE INDEX persistent_queue_data_context ON persistent_queue (data_context)
    WHERE data_context = 1;`,
] as const;

const U64_MAX = (1n << 64n) - 1n;

const EXISTING = CreateStatus.Existing;
const NEW = CreateStatus.New;
const NEW_DELETED = CreateStatus.NewDeleted;
const DELETE = Operation.Delete;

// Why not a status and a seq column on each row: a take would then rewrite every row of the
// queue (data included), ~8 s for 1,000,000 rows of 300 bytes, and a failed sync as much again.
// Instead a take appends (pos, ord, in-flight op) rows to sync_take and records the last taken
// ord; rows are told apart by ord alone:
// - ord <= take_end: taken by the active take (queue_state.take_end = 0 when none is active);
//   `updated` = changed since the take (Syncing when 0, SyncingUpdated when 1).
// - ord > take_end: Pending. New rows always land here: ord is max(ord) + 1 and the row at
//   take_end cannot be removed before the take completes.
// CHECKs use BETWEEN: `IN (0, 1, 2)` halved insert throughput (measured 100k vs 180k rows/s).
// `ord` is an explicit INTEGER PRIMARY KEY (rowid alias) so VACUUM cannot renumber it; an upsert
// keeps it, so it is the order of an id's first insert. `data` comes last so that scans of the
// other columns never follow its overflow pages.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS persistent_queue (
  ord INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  idx TEXT NOT NULL,
  operation INTEGER NOT NULL CHECK (operation BETWEEN 0 AND 2),
  create_status INTEGER NOT NULL CHECK (create_status BETWEEN 0 AND 2),
  updated INTEGER NOT NULL CHECK (updated BETWEEN 0 AND 1),
  data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS persistent_queue_updated ON persistent_queue (updated)
  WHERE updated = 1;
CREATE TABLE IF NOT EXISTS sync_take (
  pos INTEGER PRIMARY KEY,
  ord INTEGER NOT NULL,
  operation INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS queue_state (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  take_end INTEGER NOT NULL
);
INSERT OR IGNORE INTO queue_state (singleton, take_end) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS intent_log_state (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  applied INTEGER NOT NULL
);
INSERT OR IGNORE INTO intent_log_state (singleton, applied) VALUES (1, 0);
`;

// Per connection, empty between calls: holds the rows that survive a successful sync while the
// table is emptied in one go (see completeSuccess).
const TEMP_SCHEMA = `
CREATE TEMP TABLE IF NOT EXISTS queue_keep (
  ord INTEGER PRIMARY KEY,
  id TEXT NOT NULL,
  idx TEXT NOT NULL,
  operation INTEGER NOT NULL,
  create_status INTEGER NOT NULL,
  updated INTEGER NOT NULL,
  data TEXT NOT NULL,
  version INTEGER NOT NULL,
  data_context INTEGER NOT NULL
);
`;

const COLUMNS = 'ord, id, idx, operation, create_status, updated, data, version, data_context';

const TAKE_END = '(SELECT take_end FROM queue_state)';

/**
 * A batch of SESSION_READ_ROWS session rows, `filter` added to the range. Version 0 reads as
 * NULL: no string to parse for the unversioned rows most modules send.
 */
function sessionRowsSql(filter: string): string {
  return `SELECT ord, id, idx, data, operation, iif(version = 0, NULL, CAST(version AS TEXT)),
      data_context
    FROM persistent_queue WHERE ord > ? AND ord <= ? ${filter}
    ORDER BY ord LIMIT ${SESSION_READ_ROWS}`;
}

/** A row's estimate in a session, as {@link estimateItemBytes} counts it. */
const ROW_ESTIMATE = `octet_length(id) + octet_length(idx) + octet_length(data) + ${ITEM_OVERHEAD_BYTES}`;

const SQL = {
  // A creation the manager never saw (New and Pending): deleting it just drops it.
  deleteNewPending: `DELETE FROM persistent_queue
    WHERE id = ? AND create_status = ${NEW} AND ord > ${TAKE_END}`,
  // All other coalescing rules in one statement; parameters: id, idx, operation, create_status
  // for a new row, data, version, data_context. Last write wins for every field the change
  // carries (index, data, operation, version, DataContext flag), a Delete's included, as the
  // reference's applyCoalesceLogic (persistent_queue_storage.cpp) updates them.
  upsert: `INSERT INTO persistent_queue (id, idx, operation, create_status, updated, data, version,
      data_context)
    VALUES (?, ?, ?, ?, 0, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET
      idx = excluded.idx,
      data = excluded.data,
      operation = excluded.operation,
      version = excluded.version,
      data_context = excluded.data_context,
      updated = ord <= ${TAKE_END},
      create_status = CASE
        WHEN excluded.operation = ${DELETE} AND create_status = ${NEW} THEN ${NEW_DELETED}
        WHEN excluded.operation <> ${DELETE} AND create_status = ${NEW_DELETED} THEN ${NEW}
        ELSE create_status END`,
  takeEnd: 'SELECT take_end FROM queue_state',
  // The serial of the last intent-log record moved into SQLite.
  logApplied: 'SELECT applied FROM intent_log_state',
  setLogApplied: 'UPDATE intent_log_state SET applied = ?',
  // With no take active every row is Pending, so a take takes the whole table.
  allIndices: 'SELECT DISTINCT idx FROM persistent_queue',
  clearTake: 'DELETE FROM sync_take',
  // Numbering happens inside SQLite, so a take never loads rows into JS memory: inserted in ord
  // order into the emptied table, rows get pos 1, 2, ... (seq = pos - 1). 3x faster than
  // numbering with row_number().
  take: `INSERT INTO sync_take (ord, operation)
    SELECT ord, operation FROM persistent_queue ORDER BY ord`,
  setTakeEnd: `UPDATE queue_state
    SET take_end = (SELECT coalesce(max(ord), 0) FROM persistent_queue)`,
  resetTakeEnd: 'UPDATE queue_state SET take_end = 0',
  // Parameters: first pos, last pos, limit.
  readSeqs: `SELECT t.pos - 1 AS seq, q.id, q.idx AS "index", q.data, q.operation
    FROM sync_take AS t JOIN persistent_queue AS q ON q.ord = t.ord
    WHERE t.pos >= ? AND t.pos <= ? ORDER BY t.pos LIMIT ?`,
  // takeSession's cut, summed in SQLite a batch of CUT_BATCH_ROWS rows at a time (a row read
  // into JS costs more than SQLite summing it). octet_length() reads a TEXT's size from the
  // record header, never its pages. Parameter: the last ord counted (at first the take's end:
  // Pending rows are those after it). Returns the batch's last ord and the sum of its rows'
  // estimates; NULLs when no row is left.
  sessionBatch: `SELECT max(ord), sum(bytes) FROM (
      SELECT ord, ${ROW_ESTIMATE} AS bytes
      FROM persistent_queue WHERE ord > ? ORDER BY ord LIMIT ${CUT_BATCH_ROWS})`,
  // The batch the cut falls in: its last ord whose running sum of estimates is within the items'
  // budget (the second parameter), and that sum; NULLs when not even the first row fits.
  sessionCut: `SELECT max(ord), max(total) FROM (
      SELECT ord, sum(bytes) OVER (ORDER BY ord) AS total FROM (
        SELECT ord, ${ROW_ESTIMATE} AS bytes
        FROM persistent_queue WHERE ord > ? ORDER BY ord LIMIT ${CUT_BATCH_ROWS}))
    WHERE total <= ?`,
  // The first Pending row and its estimate: a row over the budget goes alone.
  firstPending: `SELECT ord, ${ROW_ESTIMATE}
    FROM persistent_queue WHERE ord > ? ORDER BY ord LIMIT 1`,
  // Parameters: the take's end so far, the last ord of the session.
  takeUpTo: `INSERT INTO sync_take (ord, operation)
    SELECT ord, operation FROM persistent_queue WHERE ord > ? AND ord <= ? ORDER BY ord`,
  setTakeEndTo: 'UPDATE queue_state SET take_end = ?',
  // The DataValue rows' indices of a session. Parameters: the session's first ord less one, its
  // last ord.
  sessionIndices: `SELECT DISTINCT idx FROM persistent_queue
    WHERE ord > ? AND ord <= ? AND data_context = 0`,
  // A batch of a session's rows: all of them, its DataValue rows, its DataContext rows (these
  // found through their partial index, so a session without any costs nothing to look).
  // Parameters: the last ord read (at first the session's first less one), its last ord.
  sessionRows: sessionRowsSql(''),
  sessionValues: sessionRowsSql('AND data_context = 0'),
  sessionContexts: sessionRowsSql('AND data_context = 1'),
  // Rows this connection has changed since it opened: a session's rows are read lazily, and an
  // unchanged count proves the queue is as the session was taken.
  changes: 'SELECT total_changes()',
  // Ends the take at the parameter: the sessions after it leave the take (see completeSessions).
  dropTakeAfter: 'DELETE FROM sync_take WHERE ord > ?',
  clearDataContext: 'DELETE FROM persistent_queue WHERE data_context = 1',
  removeIndex: 'DELETE FROM persistent_queue WHERE idx = ?',
  markSeen: `UPDATE persistent_queue SET create_status = ${EXISTING}
    WHERE id = ? AND create_status <> ${EXISTING}`,
  takenCount: 'SELECT coalesce(max(pos), 0) FROM sync_take',
  updatedCount: 'SELECT count(*) FROM persistent_queue WHERE updated = 1',
  // Pending rows, counted up to a limit: a session leaves most of the queue Pending, and counting
  // it all on each success would read the whole table each time.
  pendingUpTo: `SELECT count(*) FROM (SELECT 1 FROM persistent_queue WHERE ord > ${TAKE_END}
    LIMIT ?)`,
  // Parameters: the range of ords (after, through). completeSuccess runs it over the take in
  // batches, last batch first.
  successDelete: `DELETE FROM persistent_queue WHERE ord > ? AND ord <= ? AND updated = 0`,
  takenOrd: 'SELECT ord FROM sync_take WHERE pos = ?',
  keepPending: `INSERT INTO temp.queue_keep (${COLUMNS})
    SELECT ${COLUMNS} FROM main.persistent_queue WHERE ord > ${TAKE_END}`,
  keepUpdated: `INSERT INTO temp.queue_keep (${COLUMNS})
    SELECT ${COLUMNS} FROM main.persistent_queue WHERE updated = 1`,
  // No WHERE: SQLite's truncate optimization frees the pages without rewriting them.
  deleteAll: 'DELETE FROM main.persistent_queue',
  restoreKept: `INSERT INTO main.persistent_queue (${COLUMNS})
    SELECT ${COLUMNS} FROM temp.queue_keep ORDER BY ord`,
  clearKept: 'DELETE FROM temp.queue_keep',
  successRequeue: `UPDATE persistent_queue SET updated = 0, create_status = ${EXISTING}
    WHERE updated = 1`,
  // The failure statements take the first failed row's ord less one: 0 fails the whole take;
  // more fails only the sessions after the ones that went through (see completeSessions).
  // Created and deleted around a sync that did not go through: the manager keeps nothing.
  // Only a change during a take makes a row NewDeleted, so such rows all have updated = 1.
  failureDelete: `DELETE FROM persistent_queue
    WHERE updated = 1 AND ord > ? AND operation = ${DELETE} AND create_status = ${NEW_DELETED}`,
  failureRequeue: 'UPDATE persistent_queue SET updated = 0 WHERE updated = 1 AND ord > ?',
  // Reliability fix: a failed sync whose data went out may still have been indexed (the EndAck
  // was lost, forced to Error/Offline after indexing, the process died waiting for it...), so
  // its rows are no longer creations the manager never saw: a later Delete must be sent, not
  // dropped (test/reliability/model.test.ts found the resurrection). Touches New rows only.
  failureSeen: `UPDATE persistent_queue SET create_status = ${EXISTING}
    WHERE ord > ? AND ord <= ${TAKE_END} AND create_status <> ${EXISTING}`,
  pendingCount: `SELECT count(*) FROM persistent_queue WHERE ord > ${TAKE_END}`,
  size: 'SELECT count(*) FROM persistent_queue',
  inspect: `SELECT q.id, q.idx AS "index", q.data, q.operation,
      CASE WHEN t.pos IS NULL THEN ${SyncStatus.Pending} WHEN q.updated = 1
        THEN ${SyncStatus.SyncingUpdated} ELSE ${SyncStatus.Syncing} END AS syncStatus,
      q.create_status AS createStatus, coalesce(t.operation, ${Operation.NoOp}) AS inFlight,
      t.pos - 1 AS seq, CAST(q.version AS TEXT) AS version, q.data_context AS dataContext
    FROM persistent_queue AS q LEFT JOIN sync_take AS t ON t.ord = q.ord ORDER BY q.ord`,
} as const;

type Statement = Database.Statement<unknown[], unknown>;

/** A readSeqs row in raw mode: seq, id, index, data, operation. */
type RawSyncRow = [number, string, string, string, Operation];

/**
 * A sessionRows row in raw mode: ord, id, index, data, operation, version (signed decimal; NULL
 * for 0), flag.
 */
type RawSessionRow = [number, string, string, string, Operation, string | null, number];

/** A session as the takeSession transaction marks it, before its rows are read. */
interface TakenSession {
  /** The ord the session's rows come after (the take's previous end). */
  after: number;
  /** The session's last ord (the take's new end); 0 when nothing was taken. */
  through: number;
  count: number;
  indices: string[];
  estimatedBytes: number;
  /** total_changes() once the session was marked. */
  changes: number;
}

/** An inspect row before its version and flag are put in {@link QueueEntry}'s shape. */
type RawEntry = Omit<QueueEntry, 'version' | 'dataContext'> & {
  version: string;
  dataContext: number;
};

type Statements = { [K in keyof typeof SQL]: Statement };

interface Connection {
  db: Database.Database;
  s: Statements;
  /** Applies the logged changes (recording the last one's serial) and then `items`. */
  persistMany: Database.Transaction<
    (logged: readonly QueueChange[], serial: number, items: readonly QueueChange[]) => void
  >;
  take: Database.Transaction<() => TakeResult>;
  /** Marks the next session; `extend` adds it to an active take. */
  takeSession: Database.Transaction<(budget: number, extend: boolean) => TakenSession>;
  /** `failedAfter`: on failure, the ord the take's sessions that went through end at (0: none). */
  complete: Database.Transaction<
    (success: boolean, dataSent: boolean, failedAfter: number) => void
  >;
}

/**
 * The agent's persistent, coalescing change queue: one SQLite row per item id.
 *
 * Synchronous API on better-sqlite3. A single change goes first to an {@link IntentLog} beside
 * the database (one `write()`), and logged changes move into SQLite in batches, before any call
 * that reads the queue; opening replays what a crash left in the log. Every storage failure
 * surfaces as a {@link StorageError} and leaves the queue as it was. One open queue owns a
 * database file (an {@link OwnerLock}): a second opener waits for it to close, up to the busy
 * timeout (the constructor blocking the thread, {@link PersistentQueue.open} on timers).
 */
export class PersistentQueue {
  /**
   * How long the next construction waits for a lock: set by {@link PersistentQueue.open} around
   * each attempt (0, it waits on timers instead), unset for `new` (the busy timeout).
   */
  static #attemptWaitMs: number | undefined;

  readonly path: string;
  readonly busyTimeoutMs: number;
  #conn: Connection | undefined;
  /** Absent for an in-memory database, which has nothing to survive. */
  #log: IntentLog | undefined;
  /** Absent for an in-memory database, which nobody else can open. */
  #owner: OwnerLock | undefined;
  /** Changes in the log and not yet in SQLite, in order; their last serial is `serial`. */
  #logged: QueueChange[] = [];
  #loggedBytes = 0;
  /** The take's end after each session {@link takeNextSession} added to the active take. */
  #sessionEnds: number[] = [];
  /** The first sessions of {@link #sessionEnds}: an earlier sync's, carried (see carrySessions). */
  #carried = 0;
  /** A carried take waits for the next sync (no takeNextSession since carrySessions). */
  #waiting = false;
  #serial = 0;
  /**
   * The last full pendingCount and total_changes() when it was counted: counting reads a whole
   * index, and a Delta loop asks again with nothing written in between (the 5.0 driver at a
   * call's start, a caller's `while (pendingCount > 0)` after it).
   */
  #pending = { changes: -1, count: 0 };

  /**
   * Opens (or creates) the queue at `path`. While another queue (in this process or another)
   * has the database open, or another connection holds its write lock, this blocks the thread up
   * to `busyTimeoutMs` (SQLite sleeps; no timer or I/O callback runs); {@link PersistentQueue.open}
   * waits without blocking.
   *
   * @throws {RangeError} When `busyTimeoutMs` is not a non-negative integer.
   * @throws {StorageError} When the database cannot be opened (still in use after
   *   `busyTimeoutMs`, unreadable, corrupt, missing directory).
   */
  constructor(path: string, options: PersistentQueueOptions = {}) {
    const attemptWaitMs = PersistentQueue.#attemptWaitMs;
    PersistentQueue.#attemptWaitMs = undefined;
    const busyTimeoutMs = busyTimeoutOf(options);
    this.path = path;
    this.busyTimeoutMs = busyTimeoutMs;
    const memory = path === ':memory:' || path === '';
    const waitMs = attemptWaitMs ?? busyTimeoutMs;

    // Owned before anything is read: crash recovery below would reset another owner's take.
    if (!memory) this.#owner = this.#own(path, waitMs);
    let db: Database.Database | undefined;
    try {
      if (!memory) createOwnerOnlyFile(path);
      // `timeout` is SQLite's busy timeout: a second opener waits out a lock instead of failing.
      const handle = new Database(path, { timeout: waitMs });
      db = handle;
      if (!memory) handle.pragma('journal_mode = WAL');
      // In WAL mode NORMAL loses no commit on a process crash, only possibly on power loss.
      handle.pragma('synchronous = NORMAL');
      handle.pragma(`journal_size_limit = ${JOURNAL_SIZE_LIMIT_BYTES}`);
      handle.transaction(() => migrate(handle)).immediate();
      handle.exec(TEMP_SCHEMA);
      const conn = prepare(handle);
      this.#conn = conn;
      this.#serial = conn.s.logApplied.get() as number;
      if (!memory) {
        this.#log = new IntentLog(`${path}-intent`);
        // Changes logged before a crash come first: they followed any take still active.
        this.#logged = this.#log.read(this.#serial);
        this.#serial += this.#logged.length;
        this.#moveLogged(conn);
      }
      // Crash recovery: a take left behind failed, and its data may have reached the manager.
      conn.complete.immediate(false, true, 0);
      // Opened by open(): later statements wait as those of a constructed queue do.
      if (waitMs !== busyTimeoutMs) handle.pragma(`busy_timeout = ${busyTimeoutMs}`);
    } catch (err) {
      this.#conn = undefined;
      this.#logged = [];
      // The lock last: the files are closed when the next owner comes.
      for (const release of [
        () => this.#log?.close(),
        () => db?.close(),
        () => this.#owner?.release(),
      ]) {
        try {
          release();
        } catch {
          // The open error is the one worth reporting.
        }
      }
      this.#log = undefined;
      this.#owner = undefined;
      throw new StorageError(`persistent queue: cannot open ${path}: ${this.#reason(err)}`, {
        cause: err,
      });
    }
  }

  /**
   * Opens (or creates) the queue at `path` like the constructor, but waits for another queue
   * (or another connection's write lock) on timers instead of blocking the thread: each attempt
   * fails at once on a lock, and the next comes at most 50 ms later, until `busyTimeoutMs` has
   * passed. A failed attempt closes everything it opened.
   *
   * @throws {RangeError} (as a rejected promise, at once) When `busyTimeoutMs` is not a
   *   non-negative integer.
   * @throws {StorageError} (as a rejected promise) The constructor's error: the database is
   *   still in use after `busyTimeoutMs`, or cannot be opened at all (at once).
   * @example
   * const queue = await PersistentQueue.open('/var/lib/module/queue.db', { busyTimeoutMs: 5000 });
   */
  static async open(path: string, options: PersistentQueueOptions = {}): Promise<PersistentQueue> {
    const busyTimeoutMs = busyTimeoutOf(options);
    const start = performance.now();
    let pause = FIRST_RETRY_MS;
    for (;;) {
      try {
        return PersistentQueue.#attempt(path, options);
      } catch (err) {
        const waited = performance.now() - start;
        if (!isBusy(err) || waited >= busyTimeoutMs) throw err;
        await sleep(Math.min(pause, busyTimeoutMs - waited));
        pause = Math.min(pause * 2, MAX_RETRY_MS);
      }
    }
  }

  /** One attempt of open(): the constructor, failing at once on a lock. */
  static #attempt(path: string, options: PersistentQueueOptions): PersistentQueue {
    PersistentQueue.#attemptWaitMs = 0;
    try {
      return new PersistentQueue(path, options);
    } finally {
      PersistentQueue.#attemptWaitMs = undefined;
    }
  }

  #own(path: string, waitMs: number): OwnerLock {
    try {
      return new OwnerLock(`${path}-lock`, waitMs);
    } catch (err) {
      const busy = err instanceof Database.SqliteError && err.code.startsWith('SQLITE_BUSY');
      const reason = busy
        ? `another queue has this database open (${path}-lock stayed locked for more than ` +
          `${this.busyTimeoutMs} ms); open one queue per database, in this process or any other`
        : this.#reason(err);
      throw new StorageError(`persistent queue: cannot open ${path}: ${reason}`, { cause: err });
    }
  }

  /**
   * Queues a change to item `id`, coalescing it with the row already queued for that id (last
   * write wins: a later change replaces the index, data, operation, version and DataContext flag
   * of the queued one). When this returns the change survives a crash of the process. A failure
   * (the log's write, or moving a full log into SQLite first) leaves the queue as it was.
   *
   * @param version The item's version, a u64 (see {@link QueueChange.version}). Default 0.
   * @param dataContext A DataContext item (see {@link QueueChange.dataContext}). Default false.
   * @throws {RangeError} When `operation` is not Create, Modify or Delete, or `version` is not a
   *   u64.
   * @throws {TypeError} When `version` is not a bigint or number, or `dataContext` not a boolean.
   */
  persist(
    id: string,
    operation: Operation,
    index: string,
    data: string,
    version: bigint | number = 0n,
    dataContext = false,
  ): void {
    const what = 'persist a change';
    const o = this.#live(what);
    // Checked here, not by SQLite's CHECK: a logged change SQLite refuses would block every
    // later batch.
    if (operation !== Operation.Create && operation !== Operation.Modify && operation !== DELETE) {
      throw new RangeError(
        `persistent queue: cannot ${what}: operation must be Create, Modify or Delete, got ${operation}`,
      );
    }
    const v = u64(version, what);
    checkFlag(dataContext, what);
    if (this.#logged.length >= FLUSH_CHANGES || this.#loggedBytes >= FLUSH_BYTES) {
      this.#flush(o, what);
    }
    try {
      this.#log?.append(this.#serial + 1, id, operation, index, data, v, dataContext);
    } catch (err) {
      throw this.#wrap(what, err);
    }
    this.#serial++;
    this.#logged.push(
      v === 0n && !dataContext
        ? { id, operation, index, data }
        : { id, operation, index, data, version: v, dataContext },
    );
    this.#loggedBytes += id.length + index.length + data.length;
  }

  /**
   * Applies `items` in order, with the same rules as {@link persist}, all or nothing.
   *
   * @throws {RangeError} / {TypeError} As {@link persist}, for an item's version or DataContext
   *   flag, before anything is applied.
   */
  persistMany(items: readonly QueueChange[]): void {
    const what = 'persist changes';
    const o = this.#live(what);
    if (items.length === 0) return;
    for (const item of items) {
      if (item.version !== undefined) u64(item.version, what);
      if (item.dataContext !== undefined) checkFlag(item.dataContext, what);
    }
    this.#flush(o, what, items);
  }

  /**
   * Starts a sync: marks every Pending row Syncing and numbers them 0..size-1 in insertion order.
   * Throws an Error if the previous take was not completed.
   */
  take(): TakeResult {
    const o = this.#live('take');
    this.#flush(o, 'take');
    try {
      this.#settle(o);
      return o.take.immediate();
    } catch (err) {
      throw this.#wrap('take', err);
    }
  }

  /**
   * Starts one FullSession (Wazuh 5.0): marks the next rows in queue order Syncing, as many as fit
   * in one session of at most `maxSessionBytes`, and returns them, as the reference's
   * fetchAndMarkForSync(maxBytes) does; {@link QueueSession.rows} reads them. Rows are
   * estimated with {@link estimateItemBytes} and the session with {@link SESSION_OVERHEAD_BYTES}
   * more; the rows taken are the longest prefix of the queue whose estimate stays within
   * {@link sessionBudget}(maxSessionBytes), or the first row alone when it does not fit by
   * itself. 0 means no cap (the whole queue: the reference's VDFirst/VDSync syncs). No row is
   * loaded here: the queue is scanned for sizes up to the cut, and the session's rows are read
   * when they are encoded.
   *
   * End it with {@link completeSession}: success removes exactly these rows (a row changed
   * meanwhile stays, with its new content, Pending), failure returns them to Pending. An empty
   * queue returns no row and starts nothing. The seed wire's {@link take} and this share the
   * queue's one active take: either must be completed before the next.
   *
   * @throws {RangeError} When `maxSessionBytes` is not a non-negative safe integer.
   * @throws {Error} When a take is already active.
   */
  takeSession(maxSessionBytes: number = DEFAULT_MAX_SESSION_BYTES): QueueSession {
    return this.#takeSession(maxSessionBytes, false);
  }

  /**
   * {@link takeSession}, but while a take this method started is active, the next session is
   * added to it instead of refused: the rows after the take's end, cut the same way. One Delta's
   * sessions are then ended together by {@link completeSessions}, which removes the rows of all
   * the sessions that went through at once: per session, the removal and its WAL checkpoints
   * cost about a third of a 5.0 Delta's time. A row changed while its session is in the take is
   * not taken again before the take ends (it is requeued then, as by {@link complete}). A take
   * {@link carrySessions} left is extended: this sync's sessions follow the carried ones.
   *
   * @throws {RangeError} As {@link takeSession}.
   * @throws {Error} When a take that this method did not start is active.
   */
  takeNextSession(maxSessionBytes: number = DEFAULT_MAX_SESSION_BYTES): QueueSession {
    const session = this.#takeSession(maxSessionBytes, true);
    this.#waiting = false;
    return session;
  }

  #takeSession(maxSessionBytes: number, extend: boolean): QueueSession {
    if (!Number.isSafeInteger(maxSessionBytes) || maxSessionBytes < 0) {
      throw new RangeError(
        `maxSessionBytes must be a non-negative safe integer, got ${maxSessionBytes}`,
      );
    }
    const o = this.#live('take a session');
    this.#flush(o, 'take a session');
    try {
      if (!extend) this.#settle(o);
      const taken = o.takeSession.immediate(
        sessionBudget(maxSessionBytes),
        extend && this.#sessionEnds.length > 0,
      );
      if (taken.count > 0) this.#sessionEnds.push(taken.through);
      return {
        count: taken.count,
        indices: taken.indices,
        estimatedBytes: taken.estimatedBytes,
        rows: (dataContext?: boolean) => this.#sessionRows(o, taken, dataContext),
      };
    } catch (err) {
      throw this.#wrap('take a session', err);
    }
  }

  /**
   * A taken session's rows, read {@link SESSION_READ_ROWS} at a time. Refused once the queue was
   * written after the take (the rows may no longer be the session's) or closed.
   */
  *#sessionRows(
    o: Connection,
    taken: TakenSession,
    dataContext: boolean | undefined,
  ): Generator<SessionRow, void, undefined> {
    const read =
      dataContext === undefined
        ? o.s.sessionRows
        : dataContext
          ? o.s.sessionContexts
          : o.s.sessionValues;
    let after = taken.after;
    while (after < taken.through) {
      let batch: RawSessionRow[];
      try {
        if (this.#live('read a session') !== o || o.s.changes.get() !== taken.changes) {
          throw new Error(
            'persistent queue: cannot read a session: the queue changed after the session was taken; encode a session before the queue is used again',
          );
        }
        batch = read.all(after, taken.through) as RawSessionRow[];
      } catch (err) {
        throw this.#wrap('read a session', err);
      }
      for (const [ord, id, index, data, operation, version, flag] of batch) {
        after = ord;
        yield {
          id,
          index,
          data,
          operation,
          version: storedVersion(version),
          dataContext: flag === 1,
        };
      }
      if (batch.length < SESSION_READ_ROWS) return;
    }
  }

  /**
   * Ends the session {@link takeSession} started, as {@link complete} ends a take (the same
   * rules: success drops the session's rows and requeues those changed meanwhile, failure
   * requeues them all; see there for `dataSent`). No-op without an active take.
   */
  completeSession(success: boolean, dataSent = false): void {
    this.complete(success, dataSent);
  }

  /**
   * Ends the sessions {@link takeNextSession} took in this sync: the first `succeeded` went
   * through (their rows go, as on {@link complete}'s success, with those of any carried
   * sessions), and, when fewer than all, the next one failed (its rows, and any after it, are
   * requeued as on a failure; see {@link complete} for `dataSent`). No-op without an active take.
   *
   * @throws {RangeError} When `succeeded` is not an integer from 0 to this sync's sessions.
   */
  completeSessions(succeeded: number, dataSent = true): void {
    const ends = this.#sessionEnds;
    const taken = ends.length - this.#carried;
    if (!Number.isSafeInteger(succeeded) || succeeded < 0 || succeeded > taken) {
      throw new RangeError(
        `succeeded must be an integer from 0 to ${taken} (the sessions taken), got ${succeeded}`,
      );
    }
    const through = this.#carried + succeeded;
    if (through === ends.length) this.#complete(true, false, 0);
    else this.#complete(false, dataSent, through === 0 ? 0 : (ends[through - 1] as number));
  }

  /**
   * Leaves the sessions {@link takeNextSession} took, all of them gone through, in the take for
   * the next sync: their rows are neither Pending nor sent again, and the next sync's
   * {@link completeSessions} removes them with its own. Draining a backlog over two syncs then
   * ends by freeing the whole table at once (SQLite drops its pages without rewriting them)
   * instead of each sync deleting its rows (~110 ms for 61,000 rows of 300 bytes, a fifth of a
   * 100,000-item 5.0 Delta). Until the next sync takes them on, anything that changes the queue
   * or needs no active take (a persisted change reaching SQLite, {@link take},
   * {@link takeSession}, {@link clearDataContext}, {@link removeIndices}, {@link close}) first
   * ends the carried take as the success it is, so a change is never held back by it. A crash
   * meanwhile returns the rows to Pending, as for any take: they are sent again, and the manager
   * applies them as the same state.
   *
   * @throws {Error} When this sync took no session.
   */
  carrySessions(): void {
    if (this.#sessionEnds.length === this.#carried) {
      throw new Error('persistent queue: no session to carry; takeNextSession() first');
    }
    this.#carried = this.#sessionEnds.length;
    this.#waiting = true;
  }

  /** Sessions {@link carrySessions} left for the next sync, until it takes them on; else 0. */
  get carriedSessions(): number {
    return this.#waiting ? this.#carried : 0;
  }

  /** Ends a carried take waiting for the next sync as its success (see carrySessions). */
  #settle(o: Connection): void {
    if (!this.#waiting) return;
    o.complete.immediate(true, false, 0);
    this.#ended();
  }

  #ended(): void {
    this.#sessionEnds = [];
    this.#carried = 0;
    this.#waiting = false;
  }

  /**
   * Removes every DataContext row (the reference's clearAllDataContext, once the context is no
   * longer needed) and returns how many. Refused while a take is active, whose rows must stay
   * until it completes.
   *
   * @throws {Error} When a take is active.
   */
  clearDataContext(): number {
    const o = this.#live('clear DataContext rows');
    this.#flush(o, 'clear DataContext rows');
    const { s } = o;
    try {
      this.#settle(o);
      return o.db
        .transaction(() => {
          if ((s.takeEnd.get() as number) > 0) {
            throw new Error(
              'persistent queue: cannot clear DataContext rows while a take is active; complete() it first',
            );
          }
          return s.clearDataContext.run().changes;
        })
        .immediate();
    } catch (err) {
      throw this.#wrap('clear DataContext rows', err);
    }
  }

  /**
   * Marks the rows of `ids` as items the manager may hold (create status Existing), so a later
   * Delete of one is sent instead of dropped with its Create as "never sent". For a Full sync,
   * whose items reach the manager outside the queue. Returns how many rows changed.
   */
  markSeen(ids: Iterable<string>): number {
    const o = this.#live('mark items seen');
    this.#flush(o, 'mark items seen');
    const { s } = o;
    try {
      return o.db
        .transaction(() => {
          let changed = 0;
          for (const id of ids) changed += s.markSeen.run(id).changes;
          return changed;
        })
        .immediate();
    } catch (err) {
      throw this.#wrap('mark items seen', err);
    }
  }

  /**
   * Removes every row of the given indices, DataValue and DataContext alike, whatever their
   * operation (the reference's clearItemsByIndex after a successful notifyDataClean:
   * `DELETE FROM persistent_queue WHERE idx = ?`) and returns how many. One transaction.
   * Refused while a take is active, whose rows must stay until it completes.
   *
   * @throws {Error} When a take is active.
   */
  removeIndices(indices: readonly string[]): number {
    const o = this.#live('remove rows by index');
    this.#flush(o, 'remove rows by index');
    const { s } = o;
    try {
      this.#settle(o);
      return o.db
        .transaction(() => {
          if ((s.takeEnd.get() as number) > 0) {
            throw new Error(
              'persistent queue: cannot remove rows by index while a take is active; complete() it first',
            );
          }
          let removed = 0;
          for (const index of new Set(indices)) removed += s.removeIndex.run(index).changes;
          return removed;
        })
        .immediate();
    } catch (err) {
      throw this.#wrap('remove rows by index', err);
    }
  }

  /**
   * Rows of the active take with fromSeq <= seq <= toSeq, ascending, at most `limit` of them,
   * with their current content (a row changed during the sync shows its new data and operation).
   */
  readSeqs(fromSeq: number, toSeq: number, limit: number): SyncRow[] {
    const o = this.#live('read the active take');
    if (limit <= 0 || toSeq < fromSeq) return [];
    this.#flush(o, 'read the active take');
    const { s } = o;
    try {
      // Raw rows (arrays) cost about half of better-sqlite3's row objects; build ours instead.
      const rows = s.readSeqs.all(fromSeq + 1, toSeq + 1, limit) as RawSyncRow[];
      const out: SyncRow[] = new Array(rows.length);
      for (let i = 0; i < rows.length; i++) {
        const [seq, id, index, data, operation] = rows[i] as RawSyncRow;
        out[i] = { seq, id, index, data, operation };
      }
      return out;
    } catch (err) {
      throw this.#wrap('read the active take', err);
    }
  }

  /**
   * Ends the active take. Success drops the rows the manager now has and requeues those changed
   * meanwhile (as Existing). Failure requeues everything; with `dataSent` (some of the take may
   * have reached the manager, which may have indexed it) the taken rows become Existing, so a
   * later Delete is sent; without it (the sync failed before sending any item) rows created
   * before and deleted during the sync are dropped. No-op without an active take.
   */
  complete(success: boolean, dataSent = false): void {
    this.#complete(success, dataSent, 0);
  }

  #complete(success: boolean, dataSent: boolean, failedAfter: number): void {
    const o = this.#live('complete the take');
    this.#flush(o, 'complete the take');
    try {
      o.complete.immediate(success, dataSent, failedAfter);
      this.#ended();
    } catch (err) {
      throw this.#wrap('complete the take', err);
    }
  }

  /**
   * Rows waiting for the next take; with `limit`, counted no further than that (cheap for a
   * small limit next to a large queue).
   */
  pendingCount(limit?: number): number {
    const o = this.#live('count pending rows');
    this.#flush(o, 'count pending rows');
    const { s } = o;
    try {
      if (limit !== undefined) return s.pendingUpTo.get(limit) as number;
      const changes = s.changes.get() as number;
      if (changes === this.#pending.changes) return this.#pending.count;
      // With no take active every row is pending, and count(*) without a WHERE counts the
      // smallest index (the ids') instead of every page of the table (1M rows: 112 ms instead of
      // 283 ms); the 5.0 wire counts once per Delta call, and 1M items take 17 calls.
      const count =
        (s.takeEnd.get() as number) === 0
          ? (s.size.get() as number)
          : (s.pendingCount.get() as number);
      this.#pending = { changes, count };
      return count;
    } catch (err) {
      throw this.#wrap('count pending rows', err);
    }
  }

  /** All rows, taken or not. */
  size(): number {
    const o = this.#live('count rows');
    this.#flush(o, 'count rows');
    const { s } = o;
    try {
      return s.size.get() as number;
    } catch (err) {
      throw this.#wrap('count rows', err);
    }
  }

  /**
   * Every row with its bookkeeping, in insertion order. For tests and debugging only: it loads
   * the whole queue into memory.
   */
  inspect(): QueueEntry[] {
    const o = this.#live('inspect');
    this.#flush(o, 'inspect');
    const { s } = o;
    let rows: RawEntry[];
    try {
      rows = s.inspect.all() as RawEntry[];
    } catch (err) {
      throw this.#wrap('inspect', err);
    }
    return rows.map(({ version, dataContext, ...entry }) => {
      const out: QueueEntry = entry;
      const stored = storedVersion(version);
      if (stored !== 0n) out.version = stored;
      if (dataContext === 1) out.dataContext = true;
      return out;
    });
  }

  /**
   * Test hook for the disk-full path: caps the database at `pages` pages (SQLite's
   * max_page_count, for this connection only), so that a write needing more fails with
   * SQLITE_FULL ("database or disk is full") exactly as on a full disk. SQLite never sets the cap
   * below the current size; no argument lifts it. Returns the cap in effect.
   */
  setMaxPageCount(pages?: number): number {
    const { db } = this.#live('set the page cap');
    // 0xfffffffe is SQLite's own ceiling (SQLITE_MAX_PAGE_COUNT); larger values are clamped.
    const cap = pages === undefined ? 0xfffffffe : pages;
    if (!Number.isInteger(cap) || cap < 1) {
      throw new RangeError(`pages must be a positive integer, got ${pages}`);
    }
    try {
      return db.pragma(`max_page_count = ${cap}`, { simple: true }) as number;
    } catch (err) {
      throw this.#wrap('set the page cap', err);
    }
  }

  /** Closes the database; idempotent. Later calls throw a StorageError. */
  close(): void {
    const o = this.#conn;
    if (o === undefined) return;
    try {
      this.#flush(o, 'close');
      this.#settle(o);
    } catch {
      // Nothing is lost: the changes stay in the log, and the next open moves them into SQLite
      // (and returns a carried take's rows to Pending, to be sent again).
    }
    this.#conn = undefined;
    this.#logged = [];
    try {
      this.#log?.close();
      o.db.close();
    } catch (err) {
      throw this.#wrap('close', err);
    } finally {
      this.#log = undefined;
      // Last, and even after a failed close: the file is safe for the next owner either way.
      this.#owner?.release();
      this.#owner = undefined;
    }
  }

  /**
   * Moves the logged changes, then `items`, into SQLite in one transaction and empties the log.
   * On failure the changes stay logged (and in memory) and the error names `what`.
   */
  #flush(o: Connection, what: string, items: readonly QueueChange[] = []): void {
    try {
      this.#moveLogged(o, items);
    } catch (err) {
      throw this.#wrap(what, err);
    }
  }

  #moveLogged(o: Connection, items: readonly QueueChange[] = []): void {
    if (this.#logged.length === 0 && items.length === 0) return;
    this.#settle(o);
    o.persistMany.immediate(this.#logged, this.#serial, items);
    if (this.#logged.length === 0) return;
    this.#logged = [];
    this.#loggedBytes = 0;
    try {
      this.#log?.clear();
    } catch {
      // Harmless: SQLite recorded the serial, so a replay skips these records; the next
      // flush tries again.
    }
  }

  #live(what: string): Connection {
    if (this.#conn === undefined) {
      throw new StorageError(`persistent queue: cannot ${what}: the queue is closed`);
    }
    return this.#conn;
  }

  // Only SQLite and file-system failures become StorageErrors; anything else is a bug worth
  // seeing as is.
  #wrap(what: string, err: unknown): unknown {
    const fsError =
      err instanceof Error && typeof (err as NodeJS.ErrnoException).syscall === 'string';
    if (!(err instanceof Database.SqliteError) && !fsError) return err;
    return new StorageError(`persistent queue: cannot ${what}: ${this.#reason(err)}`, {
      cause: err,
    });
  }

  #reason(err: unknown): string {
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof Database.SqliteError && err.code.startsWith('SQLITE_BUSY')) {
      return `${message} (lock held by another connection for more than ${this.busyTimeoutMs} ms)`;
    }
    return message;
  }
}

function busyTimeoutOf(options: PersistentQueueOptions): number {
  const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
    throw new RangeError(`busyTimeoutMs must be a non-negative integer, got ${busyTimeoutMs}`);
  }
  return busyTimeoutMs;
}

/** An open that failed on a lock (another queue, another connection's write): worth retrying. */
function isBusy(err: unknown): boolean {
  const cause = err instanceof StorageError ? err.cause : undefined;
  return cause instanceof Database.SqliteError && cause.code.startsWith('SQLITE_BUSY');
}

// A plain timer (not node:timers/promises): fake timers drive it like any other.
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Takes a file from the schema version it has to {@link SCHEMA_VERSION}, in one transaction. */
function migrate(db: Database.Database): void {
  const from = db.pragma('user_version', { simple: true }) as number;
  if (from > SCHEMA_VERSION) {
    throw new Error(
      `the database has schema version ${from}, newer than this code's ${SCHEMA_VERSION} ` +
        '(written by a later release of the library)',
    );
  }
  db.exec(SCHEMA); // creates the 0.1.x tables of a new file
  for (let v = from; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v] as string);
  if (from !== SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
}

/**
 * A stored version, read as the signed decimal text of its INTEGER (NULL or '0' when
 * unversioned), as the u64 it holds: see the note above MIGRATIONS.
 */
function storedVersion(text: string | null): bigint {
  return text === null || text === '0' ? 0n : BigInt.asUintN(64, BigInt(text));
}

/** `version` as a bigint, checked to be a u64. */
function u64(version: unknown, what: string): bigint {
  if (typeof version === 'bigint') {
    if (version >= 0n && version <= U64_MAX) return version;
  } else if (typeof version === 'number') {
    if (Number.isSafeInteger(version) && version >= 0) return BigInt(version);
  } else {
    throw new TypeError(
      `persistent queue: cannot ${what}: version must be a bigint or a number, got ${typeof version}`,
    );
  }
  throw new RangeError(
    `persistent queue: cannot ${what}: version must be an integer from 0 to 2^64-1 ` +
      `(a number: a safe integer), got ${version}`,
  );
}

function checkFlag(dataContext: unknown, what: string): void {
  if (typeof dataContext !== 'boolean') {
    throw new TypeError(
      `persistent queue: cannot ${what}: dataContext must be a boolean, got ${typeof dataContext}`,
    );
  }
}

// The rules live in SQL; a Delete first tries to drop a New Pending row outright. The change's
// version and flag were checked when it was queued.
function apply(s: Statements, item: QueueChange): void {
  const { id, operation } = item;
  if (operation === Operation.Delete && s.deleteNewPending.run(id).changes > 0) return;
  const createStatus = operation === Operation.Create ? NEW : EXISTING;
  const version = item.version === undefined ? 0n : BigInt.asIntN(64, BigInt(item.version));
  const dataContext = item.dataContext === true ? 1 : 0;
  s.upsert.run(id, item.index, operation, createStatus, item.data, version, dataContext);
}

// Multi-statement work runs in BEGIN IMMEDIATE transactions (`.immediate`): a deferred one that
// reads first and then writes can fail with SQLITE_BUSY without the busy timeout ever applying.
function prepare(db: Database.Database): Connection {
  const s = Object.fromEntries(
    Object.entries(SQL).map(([name, sql]) => [name, db.prepare(sql)]),
  ) as Statements;
  for (const stmt of [
    s.takeEnd,
    s.logApplied,
    s.pendingCount,
    s.size,
    s.allIndices,
    s.takenCount,
    s.takenOrd,
    s.updatedCount,
    s.pendingUpTo,
    s.sessionIndices,
    s.changes,
  ]) {
    stmt.pluck();
  }
  s.readSeqs.raw();
  s.sessionBatch.raw();
  s.sessionCut.raw();
  s.firstPending.raw();
  s.sessionRows.raw();
  s.sessionValues.raw();
  s.sessionContexts.raw();

  const persistMany = db.transaction(
    (logged: readonly QueueChange[], serial: number, items: readonly QueueChange[]) => {
      for (const item of logged) apply(s, item);
      if (logged.length > 0) s.setLogApplied.run(serial);
      for (const item of items) apply(s, item);
    },
  );
  const take = db.transaction((): TakeResult => {
    if ((s.takeEnd.get() as number) > 0) {
      throw new Error('persistent queue: a take is already active; complete() it first');
    }
    const indices = s.allIndices.all() as string[];
    s.clearTake.run();
    const size = s.take.run().changes;
    s.setTakeEnd.run();
    return { size, indices: indices.sort() };
  });
  const takeSession = db.transaction((budget: number, extend: boolean) => {
    const end = s.takeEnd.get() as number;
    if (end > 0 && !extend) {
      throw new Error('persistent queue: a take is already active; complete() it first');
    }
    // Every row after the take's end is Pending: the session is the next run of the table.
    let left = budget === 0 ? Number.MAX_SAFE_INTEGER : budget - SESSION_OVERHEAD_BYTES;
    let last = end;
    let total = 0;
    for (;;) {
      const [batchLast, bytes] = s.sessionBatch.get(last) as [number, number] | [null, null];
      if (batchLast === null) break;
      if (bytes > left) {
        const [cutLast, cutTotal] = s.sessionCut.get(last, left) as [number, number] | [null, null];
        if (cutLast !== null) [last, total] = [cutLast, total + cutTotal];
        break;
      }
      [last, total, left] = [batchLast, total + bytes, left - bytes];
    }
    if (last === end) {
      // The first row goes even when it alone is over the budget (else it would block the queue).
      [last, total] = (s.firstPending.get(end) as [number, number] | undefined) ?? [0, 0];
    }
    const estimated = SESSION_OVERHEAD_BYTES + total;
    if (last === 0) {
      return { after: end, through: 0, count: 0, indices: [], estimatedBytes: 0, changes: 0 };
    }
    if (end === 0) s.clearTake.run();
    const count = s.takeUpTo.run(end, last).changes;
    s.setTakeEndTo.run(last);
    const indices = (s.sessionIndices.all(end, last) as string[]).sort();
    return {
      after: end,
      through: last,
      count,
      indices,
      estimatedBytes: estimated,
      changes: s.changes.get() as number,
    };
  });
  const complete = db.transaction((success: boolean, dataSent: boolean, failedAfter: number) => {
    if ((s.takeEnd.get() as number) === 0) return; // nothing taken: spare the write
    if (!success) {
      // The failed part of the take: the whole take, or the sessions after failedAfter.
      if (dataSent) s.failureSeen.run(failedAfter);
      else s.failureDelete.run(failedAfter);
      s.failureRequeue.run(failedAfter);
      if (failedAfter > 0) {
        // The sessions before went through: the take now ends with them.
        s.dropTakeAfter.run(failedAfter);
        s.setTakeEndTo.run(failedAfter);
      }
    }
    if (success || failedAfter > 0) completeSuccess(s);
    s.clearTake.run();
    s.resetTakeEnd.run();
  });
  return { db, s, persistMany, take, takeSession, complete };
}

// Deleting taken rows one by one rewrites every page they sit on (~4 s for 1,000,000 rows of
// 300 bytes). When the survivors (Pending rows and rows changed during the sync) are few next to
// the rows to drop, copying them aside and emptying the table at once is far cheaper (~0.2 s).
function completeSuccess(s: Statements): void {
  const updated = s.updatedCount.get() as number;
  const taken = s.takenCount.get() as number;
  const dropped = taken - updated;
  // (pending + updated) * 4 <= dropped, counting Pending rows only as far as that needs.
  const room = Math.floor(dropped / 4) - updated;
  if (room >= 0 && (s.pendingUpTo.get(room + 1) as number) <= room) {
    s.keepPending.run();
    s.keepUpdated.run();
    s.deleteAll.run();
    s.restoreKept.run();
    s.clearKept.run();
  } else {
    // Batches from the take's end back to its start: a third less written to the WAL (and
    // checkpointed) than one DELETE of the range (measured 11 vs 17 MB for 61,000 of 100,000
    // rows of 300 bytes). sync_take's pos numbers the take densely: batch bounds by row count.
    let through = s.takeEnd.get() as number;
    for (let pos = taken; pos > 0; pos -= DELETE_BATCH_ROWS) {
      const after =
        pos > DELETE_BATCH_ROWS ? (s.takenOrd.get(pos - DELETE_BATCH_ROWS) as number) : 0;
      s.successDelete.run(after, through);
      through = after;
    }
  }
  s.successRequeue.run();
}
