import { ChangeValidator, validateModuleName } from './agent/change-validator.js';
import { hostAgentInfo } from './agent/host-info.js';
import { type MetadataMode, Mode, type SyncModuleMode } from './enums/mode.js';
import { type ChangeOperation, Operation } from './enums/operation.js';
import { Option } from './enums/option.js';
import type { AgentInfo } from './interfaces/agent-info.js';
import type { Change } from './interfaces/change.js';
import type { LogFields, LogFunction } from './interfaces/logger.js';
import type {
  AgentSyncProtocolOptions,
  MetadataSyncOptions,
  ModuleSyncOptions,
  SyncOptions,
  SyncProgress,
  Wire,
} from './interfaces/options.js';
import type {
  IntegrityCheckResult,
  SyncFailure,
  SyncFailureReason,
  SyncResult,
  SyncSuccess,
} from './interfaces/results.js';
import type { SessionResultReceiver, SessionTransport } from './interfaces/session-transport.js';
import type { SyncStats } from './interfaces/stats.js';
import type { MQueueTransport } from './interfaces/transport.js';
import { toLogFunction } from './logging.js';
import { PersistentQueue, type QueueChange, RecoveryBuffer, type SyncRow } from './queue/index.js';
import { ClosedError } from './session/closed-error.js';
import {
  FullSessionDriver,
  type FullSessionOutcome,
  SESSION_ID_CHARSET,
  type StartOption,
} from './session/full-session-driver.js';
import {
  type ItemSource,
  SessionDriver,
  type SessionOptions,
  type SessionOutcome,
  type StartMetadata,
} from './session/session-driver.js';
import { errorMessage, SyncError } from './session/sync-error.js';
import { TransportLink } from './transports/transport-link.js';
import { decodeManagerResponse } from './wire/decode.js';
import { Status, WireMode } from './wire/index.js';
import { isHcResult, parseHcResult } from './wire-5/hc-result.js';

const FAILURE_REASONS: readonly SyncFailureReason[] = [
  'invalid-mode',
  'queue-unavailable',
  'send-failed',
  'timeout',
  'manager-error',
  'manager-offline',
  'retransmit-invalid',
  'aborted',
  'busy',
  'closed',
  'storage',
  'unsupported',
  'invalid-session',
  'unauthorized',
  'forbidden',
  'too-large',
];

const DEFAULTS = {
  timeoutMs: 30_000,
  retries: 3,
  maxEps: 0,
  maxReqRetRounds: 16,
  maxSessionBytes: 5 * 1024 * 1024,
  maxSessions: 10,
  checkAttempts: 5,
  checkRetryDelayMs: 10_000,
} as const;

/** The 5.0 wire's default backoff between attempts of a session: full jitter up to 1 s, 2 s, 4 s ... 60 s. */
const FULL_SESSION_BACKOFF = { minMs: 1000, maxMs: 60_000, factor: 2 } as const;

const U64_MAX = 2n ** 64n - 1n;

const METADATA_MODES: ReadonlySet<Mode> = new Set([
  Mode.MetadataDelta,
  Mode.MetadataCheck,
  Mode.GroupDelta,
  Mode.GroupCheck,
]);

/** In Check mode, the manager's proven mismatch (EndAck Error): an answer, not a failure. */
interface CheckMismatch {
  mismatch: true;
  session: bigint;
}

/**
 * Makes `JSON.stringify(result)` work: a non-enumerable `toJSON` gives a copy whose `session`
 * (a bigint, which JSON.stringify refuses, and a u64 a JSON number would round) is a decimal
 * string. Non-enumerable, so the result still equals a plain object of its fields.
 */
function jsonSafe<T extends object>(result: T): T {
  Object.defineProperty(result, 'toJSON', {
    value(this: object) {
      const copy: Record<string, unknown> = { ...this };
      if (typeof copy.session === 'bigint') copy.session = copy.session.toString();
      return copy;
    },
    enumerable: false,
  });
  return result;
}

function fail(reason: SyncFailureReason, message: string): SyncFailure {
  return jsonSafe({ ok: false, reason, message });
}

function succeed(session: bigint | undefined, sent: number, retransmitted: number): SyncSuccess {
  return jsonSafe(
    session === undefined
      ? { ok: true, sent, retransmitted }
      : { ok: true, session, sent, retransmitted },
  );
}

/** The queue of an instance, for tests that need its hooks; set by the class's static block. */
let queueOfAgent: (agent: AgentSyncProtocol) => PersistentQueue;

/**
 * The persistent queue of `agent`, for tests that drive the queue's own hooks (e.g. a page cap
 * to simulate a full disk). Not exported from the package: not part of the API.
 * @internal
 */
export function internalQueueOf(agent: AgentSyncProtocol): PersistentQueue {
  return queueOfAgent(agent);
}

/**
 * One module's side of the Wazuh inventory sync protocol: a persistent queue of changes
 * (SQLite), an in-memory buffer for full resyncs, and the sessions that bring the manager in
 * step with them over an `MQueueTransport`. One instance per module and database file.
 *
 * Changes go in with `persistDifference` (Delta) or `persistDifferenceInMemory` (Full), at any
 * time, and leave with `synchronizeModule`; only one sync runs at a time. Syncs never reject for
 * a failed sync: they resolve a {@link SyncResult} to branch on.
 *
 * @example
 * import { AgentSyncProtocol, Mode, Operation, WazuhQueueTransport } from 'agent-sync-protocol';
 *
 * const sync = new AgentSyncProtocol({
 *   moduleName: 'fim',
 *   dbPath: '/var/ossec/queue/fim/db/fim_sync.db',
 *   transport: new WazuhQueueTransport(),
 * });
 * sync.persistDifference('/etc/hosts', Operation.Modify, 'wazuh-states-fim-files', JSON.stringify(document));
 * const result = await sync.synchronizeModule(Mode.Delta);
 * if (!result.ok) console.warn(`sync failed (${result.reason}): ${result.message}`);
 * await sync.close();
 */
export class AgentSyncProtocol {
  /** The module name given to the constructor; the `s:<module>:` header of every message. */
  readonly moduleName: string;
  readonly #queue: PersistentQueue;
  readonly #recovery = new RecoveryBuffer();
  readonly #validator: ChangeValidator;
  /** The wire this instance speaks (`options.wire`). */
  readonly #wire: Wire;
  /** Seed wire only. */
  readonly #driver: SessionDriver | undefined;
  /** Seed wire only. */
  readonly #link: TransportLink | undefined;
  /** 5.0 wire only. */
  readonly #driver5: FullSessionDriver | undefined;
  /** 5.0 wire only: the transport, when agentd's HCRESULT reports are its answers. */
  readonly #resultReceiver: SessionResultReceiver | undefined;
  readonly #outcomes = {
    ok: 0,
    retransmitted: 0,
    mismatched: 0,
    failed: Object.fromEntries(FAILURE_REASONS.map((r) => [r, 0])) as Record<
      SyncFailureReason,
      number
    >,
  };
  readonly #log: LogFunction;
  readonly #syncDefaults: Omit<SyncOptions, 'signal' | 'onProgress'>;
  readonly #metadata: StartMetadata;
  /** Aborts the running sync when the instance closes. */
  #running: { controller: AbortController; done: Promise<unknown> } | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  /**
   * Reliability fix: recording a sync's end failed (the database was locked or full just then;
   * the sync resolved 'storage'), so its take is still active and take() would refuse every
   * later sync of this instance. The next sync finishes it first. (A reopen does it too.)
   */
  #unfinishedTake = false;

  /** The queue {@link AgentSyncProtocol.open} opened for the constructor it is calling. */
  static #openedQueue: PersistentQueue | undefined;

  static {
    queueOfAgent = (agent) => agent.#queue;
  }

  /**
   * Open (or create) the queue at `options.dbPath` and wire the transport's responses, if it
   * has `onResponse`, to `parseResponseBuffer`. Rows a crashed sync left as syncing go back to
   * pending.
   *
   * While another instance (in this process or another) has the same `dbPath` open, this blocks
   * the thread until it closes, up to `busyTimeoutMs` (default 5 s): no timer, I/O callback or
   * other sync of the process runs meanwhile. Where another instance may still hold the file
   * (a restart overlapping a shutdown), use {@link AgentSyncProtocol.open}, which waits without
   * blocking.
   *
   * @param options See {@link AgentSyncProtocolOptions}; only `moduleName`, `dbPath` and
   *   `transport` are required.
   * @throws {TypeError} When an option is missing or of the wrong type, or `moduleName` holds
   *   control characters.
   * @throws {RangeError} When `moduleName` is longer than 64 bytes in UTF-8 (the agent daemon
   *   drops such messages).
   * @throws {StorageError} When the database cannot be opened (locked by another instance for
   *   longer than `busyTimeoutMs`, unreadable, corrupt).
   * @example
   * const sync = new AgentSyncProtocol({ moduleName: 'sca', dbPath: 'sca_sync.db', transport });
   */
  constructor(options: AgentSyncProtocolOptions) {
    const opened = AgentSyncProtocol.#openedQueue;
    AgentSyncProtocol.#openedQueue = undefined;
    checkOptions(options);
    const { moduleName, dbPath, transport } = options;
    this.moduleName = moduleName;
    this.#log = toLogFunction(options.logger, `[${moduleName}] `, { module: moduleName });
    this.#syncDefaults = { ...options.syncDefaults };
    const info = { ...hostAgentInfo(), ...definedFields(options.agentInfo) };
    this.#metadata = toStartMetadata(info);
    this.#wire = options.wire ?? 'seed';
    if (this.#wire === 'fullSession') checkAgentId(info.id);
    this.#validator = new ChangeValidator(moduleName, this.#wire);
    this.#queue = opened ?? new PersistentQueue(dbPath, queueOptions(options));
    try {
      if (this.#wire === 'fullSession') {
        const metadata = { ...this.#metadata, osplatform: info.osPlatform };
        const receiver = transport as Partial<SessionResultReceiver>;
        if (typeof receiver.receiveResult === 'function') {
          this.#resultReceiver = receiver as SessionResultReceiver;
        }
        this.#driver5 = new FullSessionDriver(
          transport as SessionTransport,
          { moduleName, clusterName: options.clusterName as string, metadata: () => metadata },
          this.#log,
        );
      } else {
        const seed = transport as MQueueTransport;
        this.#link = new TransportLink(seed, moduleName, this.#log);
        this.#driver = new SessionDriver(this.#link, () => this.#metadata, this.#log);
        seed.onResponse?.((message) => {
          this.parseResponseBuffer(message);
        });
      }
    } catch (err) {
      // A transport that throws here must not leave the database owned by a dead instance.
      this.#queue.close();
      throw err;
    }
  }

  /**
   * The constructor's instance, but waiting for another instance on the same `dbPath` without
   * blocking the thread: each attempt to take the database fails at once while it is held, and
   * the next comes on a timer at most 50 ms later, until `busyTimeoutMs` has passed. Timers,
   * I/O and other syncs of the process run meanwhile. The instance it resolves is the same as a
   * constructed one (its later writes wait for a lock up to `busyTimeoutMs`, as the
   * constructor's do).
   *
   * @param options As the constructor's; see {@link AgentSyncProtocolOptions}.
   * @throws {TypeError} (as a rejected promise, at once: before any wait) As the constructor.
   * @throws {RangeError} (as a rejected promise, at once) As the constructor, or when
   *   `busyTimeoutMs` is not a non-negative integer.
   * @throws {StorageError} (as a rejected promise) The constructor's error: the database is still
   *   held by another instance after `busyTimeoutMs` (nothing is left open or locked; a later
   *   open can succeed), or cannot be opened at all (unreadable, corrupt; at once).
   * @example
   * const sync = await AgentSyncProtocol.open({
   *   moduleName: 'fim',
   *   dbPath: '/var/ossec/queue/fim/db/fim_sync.db',
   *   transport: new WazuhQueueTransport(),
   * });
   */
  static async open(options: AgentSyncProtocolOptions): Promise<AgentSyncProtocol> {
    checkOptions(options);
    const queue = await PersistentQueue.open(options.dbPath, queueOptions(options));
    AgentSyncProtocol.#openedQueue = queue;
    try {
      return new AgentSyncProtocol(options);
    } catch (err) {
      // The constructor throws only before it owns the queue or after closing it (a throwing
      // transport); either way the queue is this method's to close (close() is idempotent).
      queue.close();
      throw err;
    } finally {
      AgentSyncProtocol.#openedQueue = undefined;
    }
  }

  /**
   * Queue a change for the next Delta sync, coalesced with earlier changes of the same id
   * (PROTOCOL.md section 5). May be called at any time, during a sync too. Whatever it
   * throws, the queue is left exactly as it was.
   *
   * @param id The item's id: not blank, no control characters.
   * @param operation Create, Modify or Delete.
   * @param index The index the manager stores the item in; not empty.
   * @param data For Create and Modify, the JSON document: an object with at least one member
   *   whose first byte is `{` (the manager stores it after that byte). Any string for a Delete.
   * @param version The item's version, a u64 (bigint, or a safe integer >= 0); 0 (the default)
   *   = unversioned. On the 5.0 wire a version > 0 asks the manager for external versioning; the
   *   seed wire ignores it. A TypeError/RangeError when it is not a u64.
   * @throws {TypeError} For input of the wrong type, a blank id or one with control characters,
   *   data that is not JSON, or a document the manager would corrupt (`{}`, leading whitespace,
   *   an array or a scalar); the message says which.
   * @throws {RangeError} For an unknown operation (NoOp included), or a change whose message would
   *   not fit in one 65536-byte datagram.
   * @throws {StorageError} When the database fails (disk full, I/O error).
   * @throws {ClosedError} After `close()`.
   * @example
   * sync.persistDifference(
   *   'pkg-openssl',
   *   Operation.Modify,
   *   'wazuh-states-inventory-packages',
   *   JSON.stringify({ package: { name: 'openssl', version: '3.0.13' } }),
   * );
   */
  persistDifference(
    id: string,
    operation: ChangeOperation,
    index: string,
    data: string,
    version: bigint | number = 0n,
  ): void {
    this.#assertOpen();
    this.#validator.validate(id, operation, index, data);
    this.#queue.persist(id, operation, index, data, checkVersion(version));
  }

  /**
   * Queue many changes in one transaction, with the same checks and coalescing
   * as `persistDifference` applied in order. All or nothing: when any item is
   * rejected (the error names its position) or SQLite fails, nothing is stored.
   *
   * @throws {TypeError} When `changes` is not an array, or for a change `persistDifference`
   *   would refuse with a TypeError; the message starts with `changes[i]: `.
   * @throws {RangeError} For a change `persistDifference` would refuse with a RangeError.
   * @throws {StorageError} When the database fails.
   * @throws {ClosedError} After `close()`.
   * @example
   * sync.persistDifferences(scan.map((file) => ({
   *   id: file.path,
   *   operation: Operation.Modify,
   *   index: 'wazuh-states-fim-files',
   *   data: JSON.stringify(file),
   * })));
   */
  persistDifferences(changes: readonly Change[]): void {
    this.#assertOpen();
    if (!Array.isArray(changes))
      throw new TypeError('changes must be an array of { id, operation, index, data }');
    // The queue gets copies of the four fields, read once: what was validated is what is stored,
    // and other properties of the caller's objects (the queue knows `version`, `dataContext`)
    // are not taken for fields of the change.
    const items: QueueChange[] = new Array(changes.length);
    for (let i = 0; i < changes.length; i++) {
      const change = changes[i];
      try {
        if (change === null || typeof change !== 'object') {
          throw new TypeError('must be an object { id, operation, index, data }');
        }
        const { id, operation, index, data, version } = change;
        this.#validator.validate(id, operation, index, data);
        items[i] =
          version === undefined
            ? { id, operation, index, data }
            : { id, operation, index, data, version: checkVersion(version) };
      } catch (error) {
        const Type = error instanceof RangeError ? RangeError : TypeError;
        throw new Type(`changes[${i}]: ${(error as Error).message}`);
      }
    }
    this.#queue.persistMany(items);
  }

  /**
   * Keep a change in memory for the next Full sync (a recovery: the module's whole inventory),
   * coalesced by id. Same checks as `persistDifference`.
   *
   * @throws {TypeError} As `persistDifference`; the buffer is left as it was.
   * @throws {RangeError} As `persistDifference`; the buffer is left as it was.
   * @throws {ClosedError} After `close()`.
   * @example
   * for (const pkg of await listPackages()) {
   *   sync.persistDifferenceInMemory(pkg.id, Operation.Create, 'wazuh-states-inventory-packages', JSON.stringify(pkg));
   * }
   * await sync.synchronizeModule(Mode.Full);
   */
  persistDifferenceInMemory(
    id: string,
    operation: ChangeOperation,
    index: string,
    data: string,
  ): void {
    this.#assertOpen();
    this.#validator.validate(id, operation, index, data);
    this.#recovery.add(id, operation, index, data);
  }

  /**
   * Drop what `persistDifferenceInMemory` kept.
   * @throws {ClosedError} After `close()`.
   */
  clearInMemoryData(): void {
    this.#assertOpen();
    this.#recovery.clear();
  }

  /**
   * `'fullSession'` wire (Wazuh 5.0): queue a DataContext item, the context a vulnerability
   * detection scan needs besides the values (e.g. the OS or a package's hotfixes). It goes with
   * the queue's values in the next Delta's sessions, as a DataContext: the manager reads it
   * during the session and never indexes it. The reference's `persistDifference(..., version,
   * isDataContext = true)`. Contexts are the module's to rebuild: {@link clearDataContext}
   * drops them all before a new set is queued. A context shares the queue's ids with the values
   * (one row per id): a later change of the same id replaces it, and the other way round.
   * The manager refuses a session of contexts only (400): queue them with at least one value.
   *
   * @param id The context's id: not blank, no control characters.
   * @param index The index it is about; not empty.
   * @param data The JSON document, checked as a Modify's data.
   * @throws {TypeError} On the seed wire, which cannot carry a DataContext (nothing is queued);
   *   and as `persistDifference` for bad input.
   * @throws {RangeError} As `persistDifference`.
   * @throws {StorageError} When the database fails.
   * @throws {ClosedError} After `close()`.
   * @example
   * sync.clearDataContext();
   * sync.persistDataContext('os', 'wazuh-states-inventory-system', JSON.stringify({ os: { name: 'Ubuntu' } }));
   */
  persistDataContext(id: string, index: string, data: string): void {
    this.#assertOpen();
    if (this.#wire !== 'fullSession') {
      throw new TypeError(
        "persistDataContext needs the 'fullSession' wire: the seed wire cannot carry a DataContext; nothing was queued",
      );
    }
    this.#validator.validate(id, Operation.Modify, index, data);
    this.#queue.persist(id, Operation.Modify, index, data, 0n, true);
  }

  /**
   * Drop every queued DataContext item (the reference's `clearAllDataContext`), before the
   * module queues a new set, so that no stale context goes with the next Delta. Returns how
   * many were dropped (always 0 on the seed wire, which never queues one).
   *
   * @throws {Error} While a sync of this instance runs (its rows must stay until it ends).
   * @throws {StorageError} When the database fails.
   * @throws {ClosedError} After `close()`.
   * @example
   * sync.clearDataContext();
   */
  clearDataContext(): number {
    this.#assertOpen();
    if (this.#running) {
      throw new Error('clearDataContext: a sync of this module is running; call it after the sync');
    }
    if (this.#unfinishedTake) {
      this.#queue.complete(false, true);
      this.#unfinishedTake = false;
    }
    return this.#queue.clearDataContext();
  }

  /**
   * `'fullSession'` wire (Wazuh 5.0): tell the manager to delete this agent's documents of
   * `indices` (one Cleans session; the reference's `notifyDataClean`), e.g. when a module is
   * disabled. On success the queue drops every row of those indices, values and contexts alike,
   * as the reference does; on failure the queue is left as it was. `options.option` and
   * `options.feedOffset` go in the Start (VD cleans). The seed wire cannot express it: resolves
   * `'unsupported'`, sends nothing and leaves the queue as it was.
   *
   * @param indices The indices to clean, at least one, each a non-empty string; sent as given.
   * @param options As `synchronizeModule`'s.
   * @returns As `synchronizeModule` (`sent` is 0).
   * @throws {TypeError} (as a rejected promise) When `indices` is not a non-empty array of
   *   non-empty strings, or an option has the wrong type.
   * @throws {RangeError} (as a rejected promise) When an option is out of range.
   * @example
   * const result = await sync.notifyDataClean(['wazuh-states-inventory-packages']);
   */
  async notifyDataClean(
    indices: readonly string[],
    options: ModuleSyncOptions = {},
  ): Promise<SyncResult> {
    if (
      !Array.isArray(indices) ||
      indices.length === 0 ||
      !indices.every((i) => typeof i === 'string' && i.length > 0)
    ) {
      throw new TypeError('indices must be a non-empty array of non-empty strings');
    }
    const list = [...indices] as string[];
    const split = splitStartOption(options);
    const driver5 = this.#driver5;
    if (!driver5) {
      return this.#record(
        fail(
          'unsupported',
          'the seed wire cannot express notifyDataClean (a Cleans session); nothing was sent',
        ),
      );
    }
    return this.#exclusive(
      Mode.Delta,
      split.rest,
      async (session) => {
        if (this.#unfinishedTake) {
          this.#queue.complete(false, true);
          this.#unfinishedTake = false;
        }
        const outcome = await driver5.cleans(list, session, split.start);
        if (!('mismatch' in outcome) && outcome.ok) {
          const removed = this.#queue.removeIndices(list);
          this.#log(
            'debug',
            `notifyDataClean: ${removed} queued row(s) of the cleaned indices dropped`,
            {
              indices: list.join(','),
            },
          );
        }
        return toSyncResult5(outcome);
      },
      { indices: list.join(',') },
    );
  }

  /**
   * Full: send the in-memory buffer, replacing the module's inventory on the
   * manager; the buffer is cleared after the attempt, whatever its outcome
   * (as the reference does: a module re-scans before the next Full sync).
   * Delta: send the persistent queue; success removes what was sent,
   * failure keeps it for the next sync. Nothing to send: resolves ok at once, without a session.
   *
   * On the `'fullSession'` wire (Wazuh 5.0), Delta cuts the queue into sessions of at most
   * `maxSessionBytes` and sends at most `maxSessions` of them; each applied session's rows leave
   * the queue (when the call stopped at `maxSessions` with no more queued than it sent, with the
   * next Delta's: they are not pending meanwhile), and the first failure stops the rest, which
   * stay queued. Full sends a Cleans session for the buffer's indices (the manager deletes this
   * agent's documents there), then the buffer as Delta sessions. `session` is the last
   * session's number, `retransmitted` 0.
   *
   * @param mode `Mode.Full` or `Mode.Delta`; any other resolves `reason: 'invalid-mode'`.
   * @param options Per-call options over the instance's `syncDefaults`.
   * @returns The outcome; never rejects for a failed sync. Resolves `reason: 'busy'` when another
   *   sync of this instance runs, and `reason: 'closed'` after (or during) `close()`.
   * @throws {TypeError} (as a rejected promise) When an option has the wrong type, e.g.
   *   `timeoutMs must be an integer >= 1, got string '100'`; nothing is sent.
   * @throws {RangeError} (as a rejected promise) When an option is out of range, e.g.
   *   `retries must be an integer >= 0, got -1`; nothing is sent.
   * @example
   * const result = await sync.synchronizeModule(Mode.Delta, { timeoutMs: 60_000 });
   * if (result.ok) log.info(`synced ${result.sent} changes`);
   * else if (result.reason !== 'busy') log.warn(`sync failed (${result.reason}): ${result.message}`);
   */
  async synchronizeModule(
    mode: SyncModuleMode,
    options: ModuleSyncOptions = {},
  ): Promise<SyncResult> {
    if (mode !== Mode.Full && mode !== Mode.Delta) {
      return this.#record(
        fail(
          'invalid-mode',
          `synchronizeModule takes Mode.Full or Mode.Delta, got ${Mode[mode] ?? mode}`,
        ),
      );
    }
    const split = splitStartOption(options);
    if (split.start.option !== Option.Sync && (mode === Mode.Full || !this.#driver5)) {
      return this.#record(
        fail(
          'unsupported',
          this.#driver5
            ? `option ${Option[split.start.option]} is for Delta syncs only; nothing was sent`
            : 'the seed wire cannot carry an option other than Option.Sync; nothing was sent',
        ),
      );
    }
    if (this.#driver5) {
      return this.#synchronizeModule5(this.#driver5, mode, split.rest, split.start);
    }
    return this.#exclusive(mode, split.rest, async (session) => {
      if (mode === Mode.Full) {
        const items = this.#recovery.snapshot();
        try {
          if (items.length === 0) return succeed(undefined, 0, 0);
          const unmarked = this.#fullStarting(items);
          if (unmarked) return unmarked;
          const outcome = await (this.#driver as SessionDriver).run(
            {
              mode: WireMode.ModuleFull,
              size: items.length,
              indices: this.#recovery.indices(),
              items: arraySource(items),
            },
            session,
          );
          return toSyncResult(outcome);
        } finally {
          // Cleared after the attempt, whatever its outcome, as the reference does.
          this.#recovery.clear();
        }
      }
      if (this.#unfinishedTake) {
        // The last sync could not record its end: finish its take now, as a failure that may
        // have reached the manager (its rows are sent again).
        this.#queue.complete(false, true);
        this.#unfinishedTake = false;
      }
      const taken = this.#queue.take();
      if (taken.size === 0) {
        this.#queue.complete(true);
        return succeed(undefined, 0, 0);
      }
      let outcome: SessionOutcome | undefined;
      try {
        outcome = await (this.#driver as SessionDriver).run(
          {
            mode: WireMode.ModuleDelta,
            size: taken.size,
            indices: taken.indices,
            items: this.#queueSource(),
          },
          session,
        );
      } finally {
        // Even when the run threw (it should not), rows go back to Pending.
        this.#completeTake(outcome);
      }
      return toSyncResult(outcome);
    });
  }

  /**
   * Check mode: ask the manager whether its checksum of `index` equals ours.
   * Returns true only for a proven mismatch (EndAck Error); a timeout, an
   * Offline manager or a transport failure return false. See `checkIntegrity` for why.
   * On the `'fullSession'` wire: a ModuleCheck session with a ChecksumModule; 200 is a match,
   * 409 a mismatch, trusted only after `checkAttempts` 409s `checkRetryDelayMs` apart.
   *
   * @param index The index to check, e.g. 'wazuh-states-fim-files'.
   * @param checksum Our checksum of that index (see `computeIndexChecksum`).
   * @throws {TypeError} (as a rejected promise) When `index` or `checksum` is not a non-empty
   *   string, or an option has the wrong type.
   * @throws {RangeError} (as a rejected promise) When an option is out of range.
   * @example
   * if (await sync.requiresFullSync(INDEX, computeIndexChecksum(documents))) {
   *   rescanInto(sync); // persistDifferenceInMemory for every item
   *   await sync.synchronizeModule(Mode.Full);
   * }
   */
  async requiresFullSync(
    index: string,
    checksum: string,
    options: SyncOptions = {},
  ): Promise<boolean> {
    const result = await this.checkIntegrity(index, checksum, options);
    return result.outcome === 'mismatch';
  }

  /**
   * The three-way outcome behind `requiresFullSync`: match, mismatch, or inconclusive with a
   * reason. A mismatch is the manager's answer, not a failure: it is logged at info and counted
   * in `stats.checksMismatched`, not in `stats.syncsFailed`.
   *
   * @throws {TypeError} (as a rejected promise) As `requiresFullSync`.
   * @throws {RangeError} (as a rejected promise) As `requiresFullSync`.
   * @example
   * const check = await sync.checkIntegrity(INDEX, checksum);
   * if (check.outcome === 'inconclusive') log.warn(`check skipped (${check.reason})`);
   */
  async checkIntegrity(
    index: string,
    checksum: string,
    options: SyncOptions = {},
  ): Promise<IntegrityCheckResult> {
    if (typeof index !== 'string' || index.length === 0)
      throw new TypeError('index must be a non-empty string');
    if (typeof checksum !== 'string' || checksum.length === 0) {
      throw new TypeError('checksum must be a non-empty string');
    }
    const driver5 = this.#driver5;
    const ending = await this.#exclusive(
      Mode.Check,
      options,
      async (session) => {
        if (driver5) return toEnding(await driver5.check(index, checksum, session));
        const outcome = await (this.#driver as SessionDriver).run(
          { mode: WireMode.ModuleCheck, size: 0, indices: [index], checksum: { index, checksum } },
          session,
        );
        if (!outcome.ok && outcome.stage === 'end' && outcome.status === Status.Error) {
          return { mismatch: true, session: outcome.session as bigint } satisfies CheckMismatch;
        }
        return toSyncResult(outcome);
      },
      { index },
    );
    if ('mismatch' in ending) return jsonSafe({ outcome: 'mismatch', session: ending.session });
    if (ending.ok) return jsonSafe({ outcome: 'match', session: ending.session as bigint });
    return jsonSafe({ outcome: 'inconclusive', reason: ending.reason, message: ending.message });
  }

  /**
   * MetadataDelta, MetadataCheck, GroupDelta or GroupCheck: Start (with the agent metadata),
   * StartAck, End, EndAck; no data. On the 5.0 wire: one session without payload whose Start
   * carries `options.indices` and `options.globalVersion` (see {@link MetadataSyncOptions});
   * the seed wire cannot carry them, and resolves `'unsupported'` when they are given.
   *
   * @param mode One of the four metadata/group modes; any other resolves `reason: 'invalid-mode'`.
   * @param options The sync's options, with `indices` and `globalVersion` for the 5.0 wire.
   * @returns As `synchronizeModule`.
   * @throws {TypeError} (as a rejected promise) When an option is invalid.
   * @throws {RangeError} (as a rejected promise) When an option is invalid.
   * @example
   * const result = await sync.synchronizeMetadataOrGroups(Mode.GroupDelta);
   */
  async synchronizeMetadataOrGroups(
    mode: MetadataMode,
    options: MetadataSyncOptions = {},
  ): Promise<SyncResult> {
    if (!METADATA_MODES.has(mode)) {
      return this.#record(
        fail(
          'invalid-mode',
          `synchronizeMetadataOrGroups takes MetadataDelta, MetadataCheck, GroupDelta or GroupCheck, got ${Mode[mode] ?? mode}`,
        ),
      );
    }
    const isObject = options !== null && typeof options === 'object';
    const { indices, globalVersion, ...rest } = isObject ? options : ({} as MetadataSyncOptions);
    // A non-object goes on to the option checks, which reject it.
    const syncOptions: SyncOptions = isObject ? rest : options;
    const driver5 = this.#driver5;
    if (driver5) {
      const checked = checkMetadataFields(indices, globalVersion);
      if (typeof checked === 'string') return this.#record(fail('unsupported', checked));
      return this.#exclusive(mode, syncOptions, async (session) =>
        toSyncResult5(
          await driver5.metadata(mode, checked.indices, checked.globalVersion, session),
        ),
      );
    }
    if (indices !== undefined || globalVersion !== undefined) {
      return this.#record(
        fail(
          'unsupported',
          'the seed wire cannot carry indices or globalVersion in a metadata/group sync; nothing was sent',
        ),
      );
    }
    return this.#exclusive(mode, syncOptions, async (session) =>
      toSyncResult(
        await (this.#driver as SessionDriver).run(
          { mode: mode as number as WireMode, size: 0, indices: [] },
          session,
        ),
      ),
    );
  }

  /**
   * Feed a response from the manager (the bytes after `<module>_sync `). Not needed for a
   * transport with `onResponse`, whose responses come here by themselves.
   *
   * On the `'fullSession'` wire the only responses are the agent daemon's reports of a
   * session's HTTP outcome, `HCRESULT:<session number>:<status>:<body>`: a well-formed one is
   * handed to the transport when it is a `SessionResultReceiver` (as `QueueSyncTransport` is),
   * with this instance's `moduleName`; anything else is logged and refused.
   *
   * @returns false when the bytes are not a valid protocol message or the instance is closed.
   *   On the seed wire true otherwise, whether or not the running sync was waiting for it; on
   *   the `'fullSession'` wire true only when the result matched a session the transport
   *   waits for (a stale one is false). Never throws.
   * @example
   * listener.on('message', (bytes) => sync.parseResponseBuffer(bytes));
   */
  parseResponseBuffer(message: Uint8Array): boolean {
    if (this.#closed || !(message instanceof Uint8Array)) return false;
    if (this.#wire === 'fullSession') return this.#parseHcResult(message);
    const response = decodeManagerResponse(message);
    if (response === null) {
      this.#log(
        'debug',
        `rejected a response of ${message.length} bytes: not a valid manager message`,
        { bytes: message.length },
      );
      return false;
    }
    this.#driver?.deliver(response);
    return true;
  }

  /** parseResponseBuffer on the 5.0 wire: an HCRESULT report, handed to the transport. */
  #parseHcResult(message: Uint8Array): boolean {
    const receiver = this.#resultReceiver;
    if (!isHcResult(message) || receiver === undefined) {
      this.#log(
        'warn',
        receiver === undefined
          ? "parseResponseBuffer is for the seed wire and agentd's HCRESULT reports; on the 'fullSession' wire answers come back from the SessionTransport, and this one takes no HCRESULT reports"
          : "parseResponseBuffer on the 'fullSession' wire takes only agentd's HCRESULT reports, not bytes of the seed wire",
        { bytes: message.length },
      );
      return false;
    }
    const result = parseHcResult(message);
    if (result === null) {
      this.#log('debug', `rejected a malformed HCRESULT report of ${message.length} bytes`, {
        bytes: message.length,
      });
      return false;
    }
    try {
      return receiver.receiveResult({ moduleName: this.moduleName, ...result }) === true;
    } catch (error) {
      this.#log('error', `the transport threw on an HCRESULT report: ${errorMessage(error)}`, {
        session: result.sessionNumber,
      });
      return false;
    }
  }

  /**
   * Counters since this instance was created; `queueDepth` is read from the queue now.
   * @throws {ClosedError} After `close()`.
   * @throws {StorageError} When the database cannot be read.
   */
  get stats(): SyncStats {
    this.#assertOpen();
    return {
      syncsOk: this.#outcomes.ok,
      syncsFailed: { ...this.#outcomes.failed },
      checksMismatched: this.#outcomes.mismatched,
      messagesSent: (this.#link ?? this.#driver5)?.counters.messages ?? 0,
      bytesSent: (this.#link ?? this.#driver5)?.counters.bytes ?? 0,
      retransmitted: this.#outcomes.retransmitted,
      queueDepth: this.#queue.pendingCount(),
    };
  }

  /**
   * Number of changes waiting in the persistent queue.
   * @throws {ClosedError} After `close()`.
   * @throws {StorageError} When the database cannot be read.
   */
  get pendingCount(): number {
    this.#assertOpen();
    return this.#queue.pendingCount();
  }

  /**
   * Abort a running sync (it resolves with reason 'closed' and its rows go
   * back to Pending), then close the database. Idempotent: every call returns the same promise.
   * The transport belongs to the caller and is not closed. Afterwards every method throws
   * {@link ClosedError}, except the syncs (they resolve `reason: 'closed'`) and
   * `parseResponseBuffer` (it returns false).
   * @example
   * process.once('SIGTERM', () => void sync.close());
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#closed = true;
    if (this.#running) {
      this.#running.controller.abort(
        new SyncError('closed', 'the instance was closed during the sync'),
      );
      await this.#running.done.catch(() => {});
    }
    this.#queue.close();
    this.#recovery.clear();
  }

  /**
   * Before a Full sends anything: its items may reach the manager at any point of the sync
   * (whatever its outcome: data may be indexed before a failure), so queued Creates of the same
   * ids are no longer creations the manager never saw, and a Delete of one, even one persisted
   * while the Full is in flight, must be sent, not dropped with the Create. Marked before the
   * first message: marked after it, a Delete landing mid-Full dropped the Create the Full then
   * sent, and the document came back (test/reliability/full-session-model.test.ts, seed
   * 3888027734). Returns a failure, and nothing is sent, when the queue cannot be written.
   */
  #fullStarting(items: readonly { id: string }[]): SyncFailure | undefined {
    try {
      this.#queue.markSeen(items.map((item) => item.id));
      return undefined;
    } catch (error) {
      return fail(
        'storage',
        `could not mark the Full sync's items as sent, so nothing was sent: ${errorMessage(error)}`,
      );
    }
  }

  /**
   * synchronizeModule on the 5.0 wire. Delta: the queue in byte-cut sessions (see
   * FullSessionDriver.delta). Full: Cleans for the buffer's indices, then the buffer; the buffer
   * is cleared after the attempt, whatever its outcome, as on the seed wire.
   */
  async #synchronizeModule5(
    driver: FullSessionDriver,
    mode: SyncModuleMode,
    options: SyncOptions,
    startOption: StartOption,
  ): Promise<SyncResult> {
    return this.#exclusive(mode, options, async (session) => {
      const report = (phase: SyncProgress['phase'], sent: number, total: number) => {
        try {
          session.onProgress?.({ phase, sent, total, retransmitted: 0 });
        } catch (error) {
          this.#log('warn', `onProgress threw: ${errorMessage(error)}`, { phase });
        }
      };
      if (mode === Mode.Full) {
        const items = this.#recovery.snapshot();
        try {
          if (items.length === 0) return succeed(undefined, 0, 0);
          const unmarked = this.#fullStarting(items);
          if (unmarked) return unmarked;
          return toSyncResult5(await driver.full(items, session, report));
        } finally {
          // Cleared after the attempt, whatever its outcome, as the reference does.
          this.#recovery.clear();
        }
      }
      if (this.#unfinishedTake) {
        this.#queue.complete(false, true);
        this.#unfinishedTake = false;
      }
      try {
        return toSyncResult5(await driver.delta(this.#queue, session, report, startOption));
      } catch (error) {
        // A session's end could not be recorded: its take is still active (see #completeTake).
        this.#unfinishedTake = true;
        throw error;
      }
    });
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError(this.moduleName);
  }

  #queueSource(): ItemSource {
    return { read: (from, to, limit) => this.#queue.readSeqs(from, to, limit) };
  }

  /**
   * Run `body` as the only sync of this instance, with resolved options; storage errors become
   * results. Counts and logs how it ended.
   */
  async #exclusive<E extends SyncResult | CheckMismatch>(
    mode: Mode,
    options: SyncOptions,
    body: (session: SessionOptions) => Promise<E>,
    context: LogFields = {},
  ): Promise<E | SyncFailure> {
    if (this.#closed) return fail('closed', `AgentSyncProtocol '${this.moduleName}' is closed`);
    if (this.#running) return this.#record(fail('busy', 'another sync of this module is running'));
    const controller = new AbortController();
    // Invalid options reject the promise (a caller's bug, not a sync outcome); nothing is sent.
    const resolved = this.#resolveOptions(options, controller.signal);
    const done = (async (): Promise<E | SyncFailure> => {
      try {
        return await body(resolved);
      } catch (error) {
        if (error instanceof SyncError) return fail(error.reason, error.message);
        return fail('storage', errorMessage(error));
      }
    })();
    this.#running = { controller, done };
    try {
      const ending = await done;
      this.#settle(mode, ending, context);
      return ending;
    } finally {
      this.#running = undefined;
    }
  }

  /** Count and log how a sync ended; `context` adds fields (a Check's index). */
  #settle(mode: Mode, ending: SyncResult | CheckMismatch, context: LogFields): void {
    const fields = { mode: Mode[mode], ...context };
    if ('mismatch' in ending) {
      this.#outcomes.mismatched++;
      this.#log(
        'info',
        `check: mismatch, the manager's checksum of ${context.index} differs; a Full sync is due`,
        { ...fields, session: String(ending.session), outcome: 'mismatch' },
      );
      return;
    }
    this.#record(ending);
    if (ending.ok && mode === Mode.Check) {
      this.#log('info', `check: match, the manager's checksum of ${context.index} is ours`, {
        ...fields,
        session: String(ending.session),
        outcome: 'match',
      });
    } else if (ending.ok) {
      this.#log('info', `sync ok: ${ending.sent} sent, ${ending.retransmitted} retransmitted`, {
        ...fields,
        ...(ending.session === undefined ? {} : { session: String(ending.session) }),
        sent: ending.sent,
        retransmitted: ending.retransmitted,
      });
    } else if (ending.reason !== 'closed') {
      this.#log('warn', `sync failed (${ending.reason}): ${ending.message}`, {
        ...fields,
        reason: ending.reason,
      });
    }
  }

  /**
   * End the queue's take after a Delta session. A failure after the start stage may follow an
   * indexing (lost or forced EndAck, close while waiting), so the queue must not treat the
   * taken rows as unseen creations. When the queue cannot record the end (disk full, I/O
   * error), the next sync finishes the take first.
   */
  #completeTake(outcome: SessionOutcome | undefined): void {
    const dataSent = outcome === undefined || outcome.ok || outcome.stage !== 'start';
    try {
      this.#queue.complete(outcome?.ok === true, dataSent);
    } catch (error) {
      this.#unfinishedTake = true;
      throw error;
    }
  }

  /** Count a sync's outcome in `stats`. */
  #record<R extends SyncResult>(result: R): R {
    if (result.ok) {
      this.#outcomes.ok++;
      this.#outcomes.retransmitted += result.retransmitted;
    } else {
      this.#outcomes.failed[result.reason]++;
    }
    return result;
  }

  /** Every option resolved to a value; throws TypeError (wrong type) or RangeError (out of range). */
  #resolveOptions(options: SyncOptions, closeSignal: AbortSignal): SessionOptions {
    if (options === null || typeof options !== 'object') {
      throw new TypeError(`options must be an object, got ${describeValue(options)}`);
    }
    const merged = { ...DEFAULTS, ...this.#syncDefaults, ...definedFields(options) };
    const { timeoutMs, retries, maxEps, maxReqRetRounds } = merged;
    const { maxSessionBytes, maxSessions, checkAttempts, checkRetryDelayMs } = merged;
    checkInteger('maxSessionBytes', maxSessionBytes, 1);
    checkInteger('maxSessions', maxSessions, 1);
    checkInteger('checkAttempts', checkAttempts, 1);
    checkInteger('checkRetryDelayMs', checkRetryDelayMs, 0);
    checkInteger('timeoutMs', timeoutMs, 1);
    checkInteger('retries', retries, 0);
    checkInteger('maxEps', maxEps, 0);
    checkInteger('maxReqRetRounds', maxReqRetRounds, 1);
    if (
      merged.backoff !== undefined &&
      (merged.backoff === null || typeof merged.backoff !== 'object')
    ) {
      throw new TypeError(`backoff must be an object, got ${describeValue(merged.backoff)}`);
    }
    const backoff = {
      ...(this.#wire === 'fullSession'
        ? FULL_SESSION_BACKOFF
        : { minMs: 0, maxMs: Number.POSITIVE_INFINITY, factor: 2 }),
      ...definedFields(merged.backoff),
    };
    checkInteger('backoff.minMs', backoff.minMs, 0);
    checkNumber('backoff.maxMs', backoff.maxMs, backoff.minMs);
    checkNumber('backoff.factor', backoff.factor, 1);
    if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
      throw new TypeError(`signal must be an AbortSignal, got ${describeValue(options.signal)}`);
    }
    if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
      throw new TypeError(
        `onProgress must be a function, got ${describeValue(options.onProgress)}`,
      );
    }
    const signal = options.signal ? AbortSignal.any([options.signal, closeSignal]) : closeSignal;
    return {
      timeoutMs,
      retries,
      maxEps,
      maxReqRetRounds,
      backoff,
      signal,
      onProgress: options.onProgress,
      maxSessionBytes,
      maxSessions,
      checkAttempts,
      checkRetryDelayMs,
    };
  }
}

/** The constructor's checks of its options, which open() also makes before any wait. */
function checkOptions(options: AgentSyncProtocolOptions): void {
  if (options === null || typeof options !== 'object') {
    throw new TypeError('AgentSyncProtocol needs an options object');
  }
  const { moduleName, dbPath, transport, wire = 'seed' } = options;
  validateModuleName(moduleName);
  if (typeof dbPath !== 'string' || dbPath.length === 0) {
    throw new TypeError("options.dbPath must be a file path or ':memory:'");
  }
  if (wire === 'fullSession') {
    // A session id is `<module>-<u64>` of [0-9A-Za-z._-], at most 256 bytes (agentd refuses others).
    if (!SESSION_ID_CHARSET.test(moduleName)) {
      throw new RangeError(
        `options.moduleName must be of [0-9A-Za-z._-] only on the 'fullSession' wire (it starts every session id), got ${JSON.stringify(moduleName)}`,
      );
    }
    if (typeof options.clusterName !== 'string' || options.clusterName.length === 0) {
      throw new TypeError(
        `options.clusterName is required on the 'fullSession' wire: the manager's cluster name (e.g. 'wazuh'), got ${describeValue(options.clusterName)}`,
      );
    }
    if (
      transport === null ||
      typeof transport !== 'object' ||
      typeof transport.send !== 'function'
    ) {
      throw new TypeError(
        "options.transport must be a SessionTransport (send()) on the 'fullSession' wire",
      );
    }
    return;
  }
  if (wire !== 'seed') {
    throw new TypeError(`options.wire must be 'seed' or 'fullSession', got ${describeValue(wire)}`);
  }
  if (
    transport === null ||
    typeof transport !== 'object' ||
    typeof (transport as MQueueTransport).start !== 'function' ||
    typeof transport.send !== 'function'
  ) {
    throw new TypeError('options.transport must implement start() and send()');
  }
}

function queueOptions(options: AgentSyncProtocolOptions): { busyTimeoutMs: number } {
  return { busyTimeoutMs: options.busyTimeoutMs ?? 5000 };
}

/** A value as an error message shows it: its type, and the value itself when short. */
function describeValue(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'number':
      return String(value);
    case 'string':
      return `string '${value.length > 32 ? `${value.slice(0, 32)}...` : value}'`;
    case 'bigint':
      return `bigint ${value}n`;
    case 'boolean':
      return `boolean ${value}`;
    default:
      return typeof value;
  }
}

/** An integer >= min: TypeError for another type, RangeError for another number. */
function checkInteger(name: string, value: unknown, min: number): void {
  if (typeof value !== 'number') {
    throw new TypeError(`${name} must be an integer >= ${min}, got ${describeValue(value)}`);
  }
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(`${name} must be an integer >= ${min}, got ${value}`);
  }
}

/** A number >= min (Infinity allowed): TypeError for another type, RangeError for another number. */
function checkNumber(name: string, value: unknown, min: number): void {
  if (typeof value !== 'number') {
    throw new TypeError(`${name} must be a number >= ${min}, got ${describeValue(value)}`);
  }
  if (Number.isNaN(value) || value < min) {
    throw new RangeError(`${name} must be a number >= ${min}, got ${value}`);
  }
}

function definedFields<T extends object>(value: T | undefined): Partial<T> {
  if (!value) return {};
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function arraySource(items: readonly SyncRow[]): ItemSource {
  return { read: (from, to, limit) => items.slice(from, Math.min(to + 1, from + limit)) };
}

function toSyncResult(outcome: SessionOutcome | undefined): SyncResult {
  if (!outcome) return fail('storage', 'the sync ended without an outcome');
  if (outcome.ok) return succeed(outcome.session, outcome.sent, outcome.retransmitted);
  return fail(outcome.reason, outcome.message);
}

function toStartMetadata(info: AgentInfo): StartMetadata {
  return {
    architecture: info.architecture,
    hostname: info.hostname,
    osname: info.osName,
    ostype: info.osType,
    osversion: info.osVersion,
    agentversion: info.version,
    agentname: info.name,
    agentid: info.id,
    groups: info.groups,
    checksumMetadata: info.checksumMetadata,
    globalVersion: info.globalVersion,
  };
}

/** A version for the queue: a u64 as a bigint, or a safe integer >= 0. */
function checkVersion(version: unknown): bigint | number {
  if (typeof version === 'bigint') {
    if (version < 0n || version > U64_MAX) {
      throw new RangeError(`version must be in 0..2^64-1, got ${version}`);
    }
    return version;
  }
  if (typeof version === 'number') {
    if (!Number.isSafeInteger(version) || version < 0) {
      throw new RangeError(`version must be a safe integer >= 0 or a bigint, got ${version}`);
    }
    return version;
  }
  throw new TypeError(`version must be a bigint or a number, got ${describeValue(version)}`);
}

/** The 5.0 manager compares Start.agentid, as an integer, with the authenticated agent's id. */
function checkAgentId(id: string): void {
  if (!/^[0-9]+$/.test(id)) {
    throw new TypeError(
      `agentInfo.id must be the agent's numeric id (e.g. '001') on the 'fullSession' wire, got ${JSON.stringify(id)}`,
    );
  }
}

/** A metadata sync's 5.0 fields, or why the wire cannot carry them. */
function checkMetadataFields(
  indices: unknown,
  globalVersion: unknown,
): { indices: string[]; globalVersion: bigint } | string {
  const list = indices ?? [];
  if (!Array.isArray(list) || !list.every((i) => typeof i === 'string' && i.length > 0)) {
    return 'indices must be an array of non-empty strings; nothing was sent';
  }
  let version: bigint;
  try {
    version = BigInt(checkVersion(globalVersion ?? 0n));
  } catch (error) {
    return `globalVersion: ${errorMessage(error)}; nothing was sent`;
  }
  return { indices: list as string[], globalVersion: version };
}

/** A 5.0 outcome as the class's results (a Check mismatch stays a mismatch). */
function toEnding(outcome: FullSessionOutcome): SyncResult | CheckMismatch {
  if ('mismatch' in outcome) return { mismatch: true, session: outcome.session };
  return toSyncResult5(outcome);
}

function toSyncResult5(outcome: FullSessionOutcome): SyncResult {
  if ('mismatch' in outcome) {
    return fail('manager-error', 'the manager answered 409 (checksum mismatch)');
  }
  if (outcome.ok) return succeed(outcome.session, outcome.sent, 0);
  return fail(outcome.reason, outcome.message);
}

/**
 * `option` and `feedOffset` of a sync's options, checked, apart from the rest. Throws TypeError
 * (wrong type) or RangeError (out of range, a VD option without a feedOffset > 0, a feedOffset
 * without a VD option), as the other options.
 */
function splitStartOption(options: ModuleSyncOptions): { start: StartOption; rest: SyncOptions } {
  if (options === null || typeof options !== 'object')
    return { start: { option: Option.Sync }, rest: options };
  const { option = Option.Sync, feedOffset, ...rest } = options;
  if (typeof option !== 'number') {
    throw new TypeError(`option must be an Option (0..2), got ${describeValue(option)}`);
  }
  if (option !== Option.Sync && option !== Option.VDFirst && option !== Option.VDSync) {
    throw new RangeError(
      `option must be Option.Sync, Option.VDFirst or Option.VDSync, got ${option}`,
    );
  }
  if (option === Option.Sync) {
    if (feedOffset !== undefined) {
      throw new RangeError('feedOffset is for Option.VDFirst and Option.VDSync only');
    }
    return { start: { option }, rest };
  }
  if (feedOffset === undefined) {
    throw new RangeError(
      `option ${Option[option]} needs feedOffset, the manager's feed offset (> 0)`,
    );
  }
  let offset: bigint;
  try {
    offset = BigInt(checkVersion(feedOffset));
  } catch (error) {
    const Type = error instanceof RangeError ? RangeError : TypeError;
    throw new Type(`feedOffset: ${errorMessage(error)}`);
  }
  if (offset === 0n) {
    throw new RangeError(`feedOffset must be > 0 with option ${Option[option]}, got 0`);
  }
  return { start: { option, feedOffset: offset }, rest };
}
