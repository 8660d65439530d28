/** Why a sync did not succeed. See docs/troubleshooting.md for what to do about each. */
export type SyncFailureReason =
  /** The method does not take that mode; nothing was sent. */
  | 'invalid-mode'
  /** The transport could not be opened (`start()` threw). */
  | 'queue-unavailable'
  /** A send failed, and failed again after re-opening the transport. */
  | 'send-failed'
  /** No StartAck or EndAck within `timeoutMs`, after `retries` extra sends. */
  | 'timeout'
  /** The manager answered with status Error (or PartialOk). */
  | 'manager-error'
  /** The manager answered with status Offline (its indexer is unavailable). */
  | 'manager-offline'
  /** A ReqRet was empty, inverted, selected no item, or came more than `maxReqRetRounds` times. */
  | 'retransmit-invalid'
  /** The caller's `AbortSignal` fired. */
  | 'aborted'
  /** Another sync of this instance is running; nothing was sent. */
  | 'busy'
  /** The instance is closed, or was closed during the sync. */
  | 'closed'
  /** The SQLite queue failed (disk full, I/O error, ...). */
  | 'storage'
  /**
   * The chosen wire cannot express the call (e.g. `indices` for a metadata sync on the seed
   * wire, a `globalVersion` out of u64 range); nothing was sent.
   */
  | 'unsupported'
  /** `'fullSession'` wire: the manager refused the session as invalid (HTTP 400); not retried. */
  | 'invalid-session'
  /** `'fullSession'` wire: the manager refused the request's authentication (HTTP 401); not retried. */
  | 'unauthorized'
  /**
   * `'fullSession'` wire: the manager refused the session's identity (HTTP 403: the agent id or
   * `clusterName` is not the manager's); not retried.
   */
  | 'forbidden'
  /**
   * `'fullSession'` wire: the session is over the manager's byte budget (HTTP 413); not retried.
   * Lower `maxSessionBytes`.
   */
  | 'too-large';

/**
 * A sync that the manager acknowledged (EndAck Ok), or that had nothing to send.
 *
 * JSON-safe: objects the library returns carry a non-enumerable `toJSON()`, so
 * `JSON.stringify(result)` writes `session` as a decimal string (a bigint would throw). A copy
 * made by spreading (`{ ...result }`) loses it.
 */
export interface SyncSuccess {
  /** Always true: tells a success from a {@link SyncFailure}. */
  ok: true;
  /** The manager's session id (a u64); absent when there was nothing to send. */
  session?: bigint;
  /** Items (DataValue messages) sent once each. */
  sent: number;
  /** Items sent again because a ReqRet asked for them. */
  retransmitted: number;
}

/** A sync that did not succeed; nothing about it throws. JSON-safe like {@link SyncSuccess}. */
export interface SyncFailure {
  /** Always false: tells a failure from a {@link SyncSuccess}. */
  ok: false;
  /** Why, as a stable code to branch on. */
  reason: SyncFailureReason;
  /** Why, in words for a log: the stage, the manager's status, the error. */
  message: string;
}

/**
 * What `synchronizeModule` and `synchronizeMetadataOrGroups` resolve with; they never reject for
 * a failed sync (only for invalid options). Branch on `ok`, then on `reason`.
 */
export type SyncResult = SyncSuccess | SyncFailure;

/**
 * The three-way outcome of an integrity check (Check mode), as `checkIntegrity` resolves it.
 * JSON-safe like {@link SyncSuccess}: `JSON.stringify` writes `session` as a decimal string.
 */
export type IntegrityCheckResult =
  /** EndAck Ok: the manager's index checksum equals ours. */
  | {
      /** The manager's checksum equals ours. */
      outcome: 'match';
      /** The Check session's id (a u64). */
      session: bigint;
    }
  /** EndAck Error: proven mismatch, a Full sync is due. */
  | {
      /** The manager's checksum differs from ours. */
      outcome: 'mismatch';
      /** The Check session's id (a u64). */
      session: bigint;
    }
  /** Anything else (timeout, Offline, transport down, ...): not a proven mismatch. */
  | {
      /** No answer that proves either. */
      outcome: 'inconclusive';
      /** Why, as for a failed sync. */
      reason: SyncFailureReason;
      /** Why, in words. */
      message: string;
    };
