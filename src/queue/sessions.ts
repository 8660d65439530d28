// Cutting the queue into FullSession messages (Wazuh 5.0), as the reference agent does:
// wazuh/wazuh f838614611, src/shared_modules/sync_protocol/src/persistent_queue_storage.cpp
// (fetchAndMarkForSync, estimateSerializedItemBytes) and src/agent_sync_protocol.cpp
// (synchronizeDeltaByBlocks), constants in include/agent_sync_protocol.hpp.
import type { Operation } from '../enums/operation.js';
import type { PersistentQueue } from './persistent-queue.js';

/** Default cap on one session's bytes: the reference's FULLSESSION_MAX_BYTES, 5 MiB. */
export const DEFAULT_MAX_SESSION_BYTES = 5 * 1024 * 1024;

/** Sessions one sync runs at most: the reference's FULLSESSION_MAX_BLOCKS_PER_SYNC. */
export const MAX_SESSIONS_PER_SYNC = 10;

/**
 * Taken off the cap before cutting (FULLSESSION_PREFILTER_GRACE_BYTES, 64 KiB): the estimate
 * below is not the encoded size, and the grace keeps the real message under the cap.
 */
export const SESSION_GRACE_BYTES = 64 * 1024;

/** Estimated bytes of a session besides its items (Start, framing): 8 KiB, as the reference. */
export const SESSION_OVERHEAD_BYTES = 8 * 1024;

/** Estimated bytes of one item besides its id, index and data: 512, as the reference. */
export const ITEM_OVERHEAD_BYTES = 512;

/**
 * One item's estimated bytes in a session, the reference's estimateSerializedItemBytes: the
 * UTF-8 bytes of its id, index and data plus {@link ITEM_OVERHEAD_BYTES}. The version and the
 * DataContext flag are not counted (the overhead covers them).
 */
export function estimateItemBytes(id: string, index: string, data: string): number {
  return (
    Buffer.byteLength(id, 'utf8') +
    Buffer.byteLength(index, 'utf8') +
    Buffer.byteLength(data, 'utf8') +
    ITEM_OVERHEAD_BYTES
  );
}

/**
 * The estimate a session's items are cut against, for a cap of `maxSessionBytes`: the cap less
 * {@link SESSION_GRACE_BYTES} when the cap is larger than the grace, else the cap itself (the
 * reference's fetchMaxBytes). 0 means no cap (the reference's VDFirst/VDSync options), and
 * stays 0.
 */
export function sessionBudget(maxSessionBytes: number): number {
  return maxSessionBytes > SESSION_GRACE_BYTES
    ? maxSessionBytes - SESSION_GRACE_BYTES
    : maxSessionBytes;
}

/** One item of a session, as {@link QueueSession.rows} reads it. */
export interface SessionRow {
  id: string;
  index: string;
  data: string;
  /** Create, Modify or Delete: Create and Modify go as an Upsert. */
  operation: Operation;
  /** u64; 0 = unversioned. */
  version: bigint;
  /** A DataContext item (session context, never indexed), else a DataValue. */
  dataContext: boolean;
}

/** One session, as {@link PersistentQueue.takeSession} marks it. */
export interface QueueSession {
  /** Its rows (DataValue and DataContext); 0 when the queue had none to take. */
  count: number;
  /** Sorted unique index names of the DataValue rows (DataContext rows are not indexed). */
  indices: string[];
  /**
   * The session's estimate: {@link SESSION_OVERHEAD_BYTES} plus each row's
   * {@link estimateItemBytes}; 0 when there is no row.
   */
  estimatedBytes: number;
  /**
   * Reads the session's rows from the queue, in queue order, a few hundred at a time, so that a
   * session of megabytes is encoded without its rows ever being in memory together: all of
   * them, or only the DataContext rows (`dataContext` true) or the DataValue rows (false). Read
   * a session before the queue is used again: once the queue was written after the take (the
   * next session taken, the take completed, a change applied), reading throws an Error.
   */
  rows(dataContext?: boolean): IterableIterator<SessionRow>;
}

/** What sending one session came to; `true`/`false` stand for success / failure. */
export type SessionOutcome = boolean | { success: boolean; dataSent?: boolean };

export interface RunSessionsOptions {
  /** Cap on one session (see {@link sessionBudget}). Default {@link DEFAULT_MAX_SESSION_BYTES}. */
  maxSessionBytes?: number;
  /** Sessions to run at most. Default {@link MAX_SESSIONS_PER_SYNC}. */
  maxSessions?: number;
  /** Checked before each session: once aborted, no further session starts. */
  signal?: AbortSignal;
}

export interface RunSessionsResult {
  /** Sessions of this run the manager took (their rows are no longer Pending). */
  succeeded: number;
  /**
   * False when a session failed (it and everything after it stay queued), or when `signal` was
   * aborted before any session ran (as the reference: a stop after a sent session is a success).
   */
  success: boolean;
  /** `signal` was aborted before a session could start. */
  stopped: boolean;
}

/**
 * Runs a Delta sync as the reference's synchronizeDeltaByBlocks does: takes the next session
 * ({@link PersistentQueue.takeNextSession}), hands it to `send`, and goes on, up to
 * `maxSessions` sessions or until the queue is empty; the first failure stops, returning that
 * session's rows to Pending and leaving the rest queued. `send` reads the session's rows
 * ({@link QueueSession.rows}) before it awaits anything.
 *
 * Unlike the reference, which removes each session's rows as soon as the manager took it, the
 * rows of the sessions that went through are removed together when the run ends
 * ({@link PersistentQueue.completeSessions}): per session, the removal and its WAL checkpoints
 * cost about a third of the run. A run that stops at `maxSessions` with no more rows queued than
 * it took leaves them to the next run instead ({@link PersistentQueue.carrySessions}), once:
 * that run removes both runs' rows when it ends. A process that dies before the rows are
 * removed sends those sessions again after a restart, which the manager applies as the same
 * state (re-applying a session is idempotent).
 *
 * A failure given as `false` (or without `dataSent`) counts as possibly sent: the session may
 * have reached the manager (the hand-off was accepted, the answer was lost), so its created rows
 * become Existing and a later Delete of them is sent (see {@link PersistentQueue.complete}). The
 * reference drops such a Delete instead; pass `{ success: false, dataSent: false }` when nothing
 * can have left. A `send` that throws fails its session the same way and the error propagates.
 */
export async function runSessions(
  queue: PersistentQueue,
  send: (session: QueueSession) => SessionOutcome | Promise<SessionOutcome>,
  options: RunSessionsOptions = {},
): Promise<RunSessionsResult> {
  const maxSessions = options.maxSessions ?? MAX_SESSIONS_PER_SYNC;
  if (!Number.isSafeInteger(maxSessions) || maxSessions < 1) {
    throw new RangeError(`maxSessions must be a positive integer, got ${maxSessions}`);
  }
  // A take an earlier run carried: this run's end removes its rows too, and carries no further.
  const extendsCarried = queue.carriedSessions > 0;
  let succeeded = 0;
  let rows = 0;
  let stopped = false;
  while (succeeded < maxSessions) {
    if (options.signal?.aborted) {
      stopped = true;
      break;
    }
    const session = queue.takeNextSession(options.maxSessionBytes);
    if (session.count === 0) break;
    let outcome: SessionOutcome;
    try {
      outcome = await send(session);
    } catch (err) {
      queue.completeSessions(succeeded, true);
      throw err;
    }
    const success = typeof outcome === 'boolean' ? outcome : outcome.success;
    if (!success) {
      const dataSent = typeof outcome === 'boolean' ? true : (outcome.dataSent ?? true);
      queue.completeSessions(succeeded, dataSent);
      return { succeeded, success: false, stopped: false };
    }
    succeeded++;
    rows += session.count;
  }
  // Stopped by the limit with no more queued than this run took: the next run can likely send
  // the rest, and its end then frees the whole table at once. Carried once: with more queued,
  // carrying would only make one larger removal of two.
  const rest = succeeded === maxSessions && !extendsCarried ? queue.pendingCount(rows + 1) : 0;
  if (rest > 0 && rest <= rows) queue.carrySessions();
  else queue.completeSessions(succeeded);
  return { succeeded, success: !stopped || succeeded > 0, stopped };
}
