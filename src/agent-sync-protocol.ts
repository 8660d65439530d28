import { ChangeValidator } from './agent/change-validator.js';
import { hostAgentInfo } from './agent/host-info.js';
import { Mode } from './enums/mode.js';
import type { Operation } from './enums/operation.js';
import type { AgentInfo } from './interfaces/agent-info.js';
import type { Change } from './interfaces/change.js';
import type { LogFunction } from './interfaces/logger.js';
import type { AgentSyncProtocolOptions, SyncOptions } from './interfaces/options.js';
import type { IntegrityCheckResult, SyncFailureReason, SyncResult } from './interfaces/results.js';
import type { SyncStats } from './interfaces/stats.js';
import { toLogFunction } from './logging.js';
import { PersistentQueue, RecoveryBuffer, type SyncRow } from './queue/index.js';
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
];

const DEFAULTS = {
  timeoutMs: 30_000,
  retries: 3,
  maxEps: 0,
  maxReqRetRounds: 16,
} as const;

const METADATA_MODES: ReadonlySet<Mode> = new Set([
  Mode.MetadataDelta,
  Mode.MetadataCheck,
  Mode.GroupDelta,
  Mode.GroupCheck,
]);

function fail(reason: SyncFailureReason, message: string): SyncResult {
  return { ok: false, reason, message };
}

/**
 * One module's side of the inventory sync protocol: a persistent queue of
 * changes, an in-memory buffer for full resyncs, and the session that brings
 * the manager in step with them.
 */
export class AgentSyncProtocol {
  readonly moduleName: string;
  private readonly queue: PersistentQueue;
  private readonly recovery = new RecoveryBuffer();
  private readonly validator: ChangeValidator;
  private readonly driver: SessionDriver;
  private readonly link: TransportLink;
  private readonly outcomes = {
    ok: 0,
    retransmitted: 0,
    failed: Object.fromEntries(FAILURE_REASONS.map((r) => [r, 0])) as Record<
      SyncFailureReason,
      number
    >,
  };
  private readonly log: LogFunction;
  private readonly syncDefaults: Omit<SyncOptions, 'signal' | 'onProgress'>;
  private readonly metadata: StartMetadata;
  /** Aborts the running sync when the instance closes. */
  private running: { controller: AbortController; done: Promise<unknown> } | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  /**
   * Reliability fix: recording a sync's end failed (the database was locked or full just then;
   * the sync resolved 'storage'), so its take is still active and take() would refuse every
   * later sync of this instance. The next sync finishes it first. (A reopen does it too.)
   */
  private unfinishedTake = false;

  constructor(options: AgentSyncProtocolOptions) {
    if (options === null || typeof options !== 'object') {
      throw new TypeError('AgentSyncProtocol needs an options object');
    }
    const { moduleName, dbPath, transport } = options;
    if (typeof moduleName !== 'string' || moduleName.length === 0) {
      throw new TypeError('options.moduleName must be a non-empty string');
    }
    if (typeof dbPath !== 'string' || dbPath.length === 0) {
      throw new TypeError("options.dbPath must be a file path or ':memory:'");
    }
    if (
      transport === null ||
      typeof transport !== 'object' ||
      typeof transport.start !== 'function' ||
      typeof transport.send !== 'function'
    ) {
      throw new TypeError('options.transport must implement start() and send()');
    }
    this.moduleName = moduleName;
    this.log = toLogFunction(options.logger, `[${moduleName}] `);
    this.syncDefaults = { ...options.syncDefaults };
    this.metadata = toStartMetadata({ ...hostAgentInfo(), ...definedFields(options.agentInfo) });
    this.validator = new ChangeValidator(moduleName);
    this.queue = new PersistentQueue(dbPath, { busyTimeoutMs: options.busyTimeoutMs ?? 5000 });
    try {
      this.link = new TransportLink(transport, moduleName, this.log);
      this.driver = new SessionDriver(this.link, () => this.metadata, this.log);
      transport.onResponse?.((message) => {
        this.parseResponseBuffer(message);
      });
    } catch (err) {
      // A transport that throws here must not leave the database owned by a dead instance.
      this.queue.close();
      throw err;
    }
  }

  /**
   * Queue a change for the next Delta sync, coalesced with earlier changes of
   * the same id. Throws TypeError/RangeError on bad input and StorageError
   * when the database fails; either way the queue is left as it was.
   */
  persistDifference(id: string, operation: Operation, index: string, data: string): void {
    this.assertOpen();
    this.validator.validate(id, operation, index, data);
    this.queue.persist(id, operation, index, data);
  }

  /**
   * Queue many changes in one transaction, with the same checks and coalescing
   * as `persistDifference` applied in order. All or nothing: when any item is
   * rejected (the error names its position) or SQLite fails, nothing is stored.
   */
  persistDifferences(changes: readonly Change[]): void {
    this.assertOpen();
    if (!Array.isArray(changes))
      throw new TypeError('changes must be an array of { id, operation, index, data }');
    for (let i = 0; i < changes.length; i++) {
      const change = changes[i];
      try {
        if (change === null || typeof change !== 'object') {
          throw new TypeError('must be an object { id, operation, index, data }');
        }
        this.validator.validate(change.id, change.operation, change.index, change.data);
      } catch (error) {
        const Type = error instanceof RangeError ? RangeError : TypeError;
        throw new Type(`changes[${i}]: ${(error as Error).message}`);
      }
    }
    this.queue.persistMany(changes);
  }

  /** Keep a change in memory for the next Full sync (a recovery); coalesced by id. */
  persistDifferenceInMemory(id: string, operation: Operation, index: string, data: string): void {
    this.assertOpen();
    this.validator.validate(id, operation, index, data);
    this.recovery.add(id, operation, index, data);
  }

  /** Drop what `persistDifferenceInMemory` kept. */
  clearInMemoryData(): void {
    this.recovery.clear();
  }

  /**
   * Full: send the in-memory buffer, replacing the module's inventory on the
   * manager; the buffer is cleared after the attempt, whatever its outcome
   * (as the reference does: a module re-scans before the next Full sync).
   * Delta: send the persistent queue; success removes what was sent,
   * failure keeps it for the next sync.
   */
  async synchronizeModule(mode: Mode, options: SyncOptions = {}): Promise<SyncResult> {
    if (mode !== Mode.Full && mode !== Mode.Delta) {
      return this.record(
        fail(
          'invalid-mode',
          `synchronizeModule takes Mode.Full or Mode.Delta, got ${Mode[mode] ?? mode}`,
        ),
      );
    }
    return this.exclusive(options, async (session) => {
      if (mode === Mode.Full) {
        const items = this.recovery.snapshot();
        try {
          if (items.length === 0) return { ok: true, sent: 0, retransmitted: 0 };
          const outcome = await this.driver.run(
            {
              mode: WireMode.ModuleFull,
              size: items.length,
              indices: this.recovery.indices(),
              items: arraySource(items),
            },
            session,
          );
          return toSyncResult(outcome);
        } finally {
          this.recovery.clear();
        }
      }
      if (this.unfinishedTake) {
        // The last sync could not record its end: finish its take now, as a failure that may
        // have reached the manager (its rows are sent again).
        this.queue.complete(false, true);
        this.unfinishedTake = false;
      }
      const taken = this.queue.take();
      if (taken.size === 0) {
        this.queue.complete(true);
        return { ok: true, sent: 0, retransmitted: 0 };
      }
      let outcome: SessionOutcome | undefined;
      try {
        outcome = await this.driver.run(
          {
            mode: WireMode.ModuleDelta,
            size: taken.size,
            indices: taken.indices,
            items: this.queueSource(),
          },
          session,
        );
      } finally {
        // Even when the run threw (it should not), rows go back to Pending.
        this.completeTake(outcome);
      }
      return toSyncResult(outcome);
    });
  }

  /**
   * Check mode: ask the manager whether its checksum of `index` equals ours.
   * Returns true only for a proven mismatch (EndAck Error); a timeout, an
   * Offline manager or a transport failure return false.
   */
  async requiresFullSync(
    index: string,
    checksum: string,
    options: SyncOptions = {},
  ): Promise<boolean> {
    const result = await this.checkIntegrity(index, checksum, options);
    return result.outcome === 'mismatch';
  }

  /** The three-way outcome behind `requiresFullSync`: match, mismatch, or inconclusive with a reason. */
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
    let outcome: SessionOutcome | undefined;
    const result = await this.exclusive(options, async (session) => {
      outcome = await this.driver.run(
        { mode: WireMode.ModuleCheck, size: 0, indices: [index], checksum: { index, checksum } },
        session,
      );
      return toSyncResult(outcome);
    });
    if (result.ok && outcome?.ok) return { outcome: 'match', session: outcome.session };
    if (outcome && !outcome.ok && outcome.stage === 'end' && outcome.status === Status.Error) {
      return { outcome: 'mismatch', session: outcome.session as bigint };
    }
    const failure = result as Extract<SyncResult, { ok: false }>;
    return { outcome: 'inconclusive', reason: failure.reason, message: failure.message };
  }

  /** MetadataDelta, MetadataCheck, GroupDelta or GroupCheck: Start, StartAck, End, EndAck; no data. */
  async synchronizeMetadataOrGroups(mode: Mode, options: SyncOptions = {}): Promise<SyncResult> {
    if (!METADATA_MODES.has(mode)) {
      return this.record(
        fail(
          'invalid-mode',
          `synchronizeMetadataOrGroups takes MetadataDelta, MetadataCheck, GroupDelta or GroupCheck, got ${Mode[mode] ?? mode}`,
        ),
      );
    }
    return this.exclusive(options, async (session) =>
      toSyncResult(
        await this.driver.run({ mode: mode as number as WireMode, size: 0, indices: [] }, session),
      ),
    );
  }

  /**
   * Feed a response from the manager (the bytes after `<module>_sync `).
   * Returns false when the bytes are not a valid protocol message; true
   * otherwise, whether or not the running sync was waiting for it. Never throws.
   */
  parseResponseBuffer(message: Uint8Array): boolean {
    if (this.closed || !(message instanceof Uint8Array)) return false;
    const response = decodeManagerResponse(message);
    if (response === null) {
      this.log(
        'debug',
        `rejected a response of ${message.length} bytes: not a valid manager message`,
      );
      return false;
    }
    this.driver.deliver(response);
    return true;
  }

  /** Counters since this instance was created; `queueDepth` is read from the queue now. */
  get stats(): SyncStats {
    this.assertOpen();
    return {
      syncsOk: this.outcomes.ok,
      syncsFailed: { ...this.outcomes.failed },
      messagesSent: this.link.counters.messages,
      bytesSent: this.link.counters.bytes,
      retransmitted: this.outcomes.retransmitted,
      queueDepth: this.queue.pendingCount(),
    };
  }

  /** Number of changes waiting in the persistent queue. */
  get pendingCount(): number {
    this.assertOpen();
    return this.queue.pendingCount();
  }

  /**
   * Abort a running sync (it resolves with reason 'closed' and its rows go
   * back to Pending), then close the database. Idempotent. The transport
   * belongs to the caller and is not closed.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    if (this.running) {
      this.running.controller.abort(
        new SyncError('closed', 'the instance was closed during the sync'),
      );
      await this.running.done.catch(() => {});
    }
    this.queue.close();
    this.recovery.clear();
  }

  private assertOpen(): void {
    if (this.closed) throw new Error(`AgentSyncProtocol '${this.moduleName}' is closed`);
  }

  private queueSource(): ItemSource {
    return { read: (from, to, limit) => this.queue.readSeqs(from, to, limit) };
  }

  /** Run `body` as the only sync of this instance, with resolved options; storage errors become results. */
  private async exclusive(
    options: SyncOptions,
    body: (session: SessionOptions) => Promise<SyncResult>,
  ): Promise<SyncResult> {
    if (this.closed) return fail('closed', `AgentSyncProtocol '${this.moduleName}' is closed`);
    if (this.running) return this.record(fail('busy', 'another sync of this module is running'));
    let resolved: SessionOptions;
    const controller = new AbortController();
    try {
      resolved = this.resolveOptions(options, controller.signal);
    } catch (error) {
      return Promise.reject(error);
    }
    const done = (async (): Promise<SyncResult> => {
      try {
        return await body(resolved);
      } catch (error) {
        if (error instanceof SyncError) return fail(error.reason, error.message);
        return fail('storage', errorMessage(error));
      }
    })();
    this.running = { controller, done };
    try {
      const result = this.record(await done);
      if (result.ok)
        this.log('info', `sync ok: ${result.sent} sent, ${result.retransmitted} retransmitted`);
      else if (result.reason !== 'closed')
        this.log('warn', `sync failed (${result.reason}): ${result.message}`);
      return result;
    } finally {
      this.running = undefined;
    }
  }

  /**
   * End the queue's take after a Delta session. A failure after the start stage may follow an
   * indexing (lost or forced EndAck, close while waiting), so the queue must not treat the
   * taken rows as unseen creations. When the queue cannot record the end (disk full, I/O
   * error), the next sync finishes the take first.
   */
  private completeTake(outcome: SessionOutcome | undefined): void {
    const dataSent = outcome === undefined || outcome.ok || outcome.stage !== 'start';
    try {
      this.queue.complete(outcome?.ok === true, dataSent);
    } catch (error) {
      this.unfinishedTake = true;
      throw error;
    }
  }

  /** Count a sync's outcome in `stats`. */
  private record(result: SyncResult): SyncResult {
    if (result.ok) {
      this.outcomes.ok++;
      this.outcomes.retransmitted += result.retransmitted;
    } else {
      this.outcomes.failed[result.reason]++;
    }
    return result;
  }

  private resolveOptions(options: SyncOptions, closeSignal: AbortSignal): SessionOptions {
    const merged = { ...DEFAULTS, ...this.syncDefaults, ...definedFields(options) };
    const { timeoutMs, retries, maxEps, maxReqRetRounds } = merged;
    checkNumber('timeoutMs', timeoutMs, 1);
    checkNumber('retries', retries, 0);
    checkNumber('maxEps', maxEps, 0);
    checkNumber('maxReqRetRounds', maxReqRetRounds, 1);
    const backoff = {
      minMs: 0,
      maxMs: Number.POSITIVE_INFINITY,
      factor: 2,
      ...definedFields(merged.backoff),
    };
    checkNumber('backoff.minMs', backoff.minMs, 0);
    const signal = options.signal ? AbortSignal.any([options.signal, closeSignal]) : closeSignal;
    return {
      timeoutMs,
      retries,
      maxEps,
      maxReqRetRounds,
      backoff,
      signal,
      onProgress: options.onProgress,
    };
  }
}

function checkNumber(name: string, value: unknown, min: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new RangeError(`${name} must be an integer >= ${min}, got ${String(value)}`);
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
  if (outcome.ok) {
    return {
      ok: true,
      session: outcome.session,
      sent: outcome.sent,
      retransmitted: outcome.retransmitted,
    };
  }
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
