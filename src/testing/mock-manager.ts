// MockManager: the public face of the mock. The work is split by concern so that a second wire
// front can be added next to the seed one: DocumentIndex (documents, Check checksum, indexer
// availability), FaultInjector (the network and what a test breaks on it) and SeedFront (the
// seed protocol's sessions).
import { randomBytes } from 'node:crypto';
import type { Logger } from '../interfaces/logger.js';
import { toLogFunction } from '../logging.js';
import { InProcessTransport } from '../transports/in-process.js';
import type { Status } from '../wire/index.js';
import { DocumentIndex, type StoredDocument } from './document-index.js';
import {
  type AckType,
  FaultInjector,
  type FaultRule,
  type FaultStats,
  type ReplyFunction,
  type ResponseDelivery,
} from './faults.js';
import type { MockManagerServer } from './mock-manager-server.js';
import { mulberry32 } from './prng.js';
import { type EmptySessions, SeedFront } from './seed-front.js';

export type { StoredDocument } from './document-index.js';
export type {
  AckType,
  FaultAction,
  FaultDirection,
  FaultMessageType,
  FaultRule,
  FaultStats,
  ReplyFunction,
  ResponseDelivery,
} from './faults.js';
export type { EmptySessions } from './seed-front.js';

/** Options of {@link MockManager}; every one is optional. */
export interface MockManagerOptions {
  /**
   * A session with no message for this long, in ms, is dropped without an answer (the real
   * manager drops one 20 to 30 minutes after its last message). Default 30000.
   */
  sessionTimeoutMs?: number;
  /**
   * What the manager does with a Start of size 0 in the modes that carry no data (ModuleCheck,
   * MetadataDelta/Check, GroupDelta/Check); Full and Delta refuse size 0 either way.
   * - 'accept' (default): a session as usual, like the 5.0 betas after ad9475fb35.
   * - 'refuse': StartAck Error, and ChecksumModule is ignored as an invalid message, like the
   *   manager build ad9475fb35, whose session refuses every size 0 and whose worker does not
   *   know ChecksumModule. There Check, metadata and group syncs always fail with
   *   'manager-error' (`requiresFullSync` returns false); use it to test a module's handling
   *   of such managers.
   */
  emptySessions?: EmptySessions;
  /**
   * How long after a Full/Delta session is complete its documents become visible and its
   * EndAck Ok goes out, in ms. Default 0: at once. The real manager answers only after the
   * indexer's next bulk flush, which runs every ~20 s, plus the HTTP round trip; meanwhile it
   * ignores an End for that session, and a retransmitted item of it indexes it again and sends
   * one more EndAck. A sync's `timeoutMs` must stay above this delay, or its End retries go
   * unanswered and it fails with 'timeout' (the data still lands; the next sync resends it).
   */
  endAckDelayMs?: number;
  /**
   * How many simulated worker threads handle the messages. Default 1: in the order received.
   * The real manager runs one per core, so a message may be handled before up to `workers - 1`
   * messages received just before it (the order is drawn from the seeded PRNG): an End may be
   * handled before the last DataValues, which gives a ReqRet for items that are already on
   * their way. Above 1, every message waits up to a few ms for others to overtake it.
   */
  workers?: number;
  /** Largest Start `size` accepted; above it the Start is refused with Error. Default 10,000,000. */
  maxSessionSize?: number;
  /**
   * When answers reach the sender (see {@link ResponseDelivery}). Default 'macrotask', like a
   * socket; 'sync' makes a test that drives {@link MockManager.receive} by hand read answers
   * right after the call.
   */
  responseDelivery?: ResponseDelivery;
  /**
   * Where the manager says what it does: sessions, refusals and every error path (bad buffer,
   * unknown session, refused document...), each message prefixed `mock-manager: `. A function
   * `(level, message)` or a pino-like object. Default: silent.
   */
  logger?: Logger;
  /**
   * Seed of the PRNG behind fault probabilities and the workers' order. Default: random (see
   * {@link MockManager.seed}).
   */
  seed?: number;
}

/** What {@link MockManager.stats} counts since the manager was created (or reset). */
export interface MockManagerStats {
  /** Messages that reached the manager (after faults: a dropped one does not count, a duplicated one counts twice). */
  messagesReceived: number;
  /** Undecodable buffers and messages only the manager may send. */
  invalidMessages: number;
  /** Starts answered StartAck Ok (a session was opened). */
  sessionsStarted: number;
  /** Sessions answered EndAck Ok (each counted once; see `endAcksRepeated`). */
  sessionsCompleted: number;
  /**
   * Sessions answered EndAck Error (a document that is not valid JSON or that the real manager
   * would corrupt, indexer failure, checksum mismatch...).
   */
  sessionsFailed: number;
  /** Sessions dropped after `sessionTimeoutMs` without a message. */
  sessionsTimedOut: number;
  /** ReqRets sent: one per End that found seqs missing (with the library, one per probe too). */
  reqRetsSent: number;
  /** Every DataValue that reached the manager, including ignored ones. */
  dataValuesReceived: number;
  /** DataValues whose seq was already stored in their session. */
  duplicatesReceived: number;
  /**
   * EndAck Ok answers beyond the first of a session: items retransmitted while its flush was
   * pending (see `endAckDelayMs`) indexed it again, as on the real manager.
   */
  endAcksRepeated: number;
  /** What the injected faults and forced statuses did. */
  faults: FaultStats;
}

/**
 * An in-memory stand-in for the manager's inventory-sync module and its
 * indexer, for tests. Feed it agent messages through {@link receive} (or a
 * {@link transport}); it answers like the real server, stores documents in a
 * fake index, and lets a test script faults and failures. Its options make
 * it as strict and as slow as a given manager build (see
 * {@link MockManagerOptions}); {@link MockManagerServer} serves it over TCP.
 *
 * @example
 * ```ts
 * import { AgentSyncProtocol, Mode, Operation } from 'agent-sync-protocol';
 * import { MockManager } from 'agent-sync-protocol/testing';
 *
 * const manager = new MockManager({ endAckDelayMs: 50 });
 * const agent = new AgentSyncProtocol({
 *   moduleName: 'sca',
 *   dbPath: ':memory:',
 *   transport: manager.transport('sca'),
 *   agentInfo: { id: '001' },
 * });
 * agent.persistDifference('check-1', Operation.Create, 'sca', '{"result":"passed"}');
 * manager.inject({ type: 'DataValue', seq: 0, action: 'drop' }); // resent after a ReqRet
 * await agent.synchronizeModule(Mode.Delta);
 * manager.documents('sca'); // [{ id: '001_check-1', data: { result: 'passed' }, ... }]
 * ```
 */
export class MockManager {
  /**
   * Seed of the PRNG behind fault probabilities and the workers' order, so a run that used a
   * random one can be replayed: pass it back as {@link MockManagerOptions.seed}.
   */
  readonly seed: number;

  readonly #index: DocumentIndex;
  readonly #faults: FaultInjector;
  readonly #front: SeedFront;

  /**
   * @param options - see {@link MockManagerOptions}; all optional.
   * @throws RangeError for an option out of its range (each message names the option).
   */
  constructor(options: MockManagerOptions = {}) {
    const timeout = options.sessionTimeoutMs ?? 30_000;
    if (!(timeout > 0) || !Number.isFinite(timeout)) {
      throw new RangeError('sessionTimeoutMs must be a positive finite number');
    }
    const maxSize = options.maxSessionSize ?? 10_000_000;
    // Sizes become Map keys and loop bounds as numbers, so they must stay exact.
    if (!Number.isSafeInteger(maxSize) || maxSize < 0) {
      throw new RangeError('maxSessionSize must be a non-negative safe integer');
    }
    const delivery = options.responseDelivery ?? 'macrotask';
    if (delivery !== 'sync' && delivery !== 'microtask' && delivery !== 'macrotask') {
      throw new RangeError(`unknown responseDelivery '${String(delivery)}'`);
    }
    const emptySessions = options.emptySessions ?? 'accept';
    if (emptySessions !== 'accept' && emptySessions !== 'refuse') {
      throw new RangeError(
        `emptySessions must be 'accept' or 'refuse', got '${String(emptySessions)}'`,
      );
    }
    const endAckDelayMs = options.endAckDelayMs ?? 0;
    if (!(endAckDelayMs >= 0) || !Number.isFinite(endAckDelayMs)) {
      throw new RangeError('endAckDelayMs must be a non-negative finite number');
    }
    const workers = options.workers ?? 1;
    if (!Number.isSafeInteger(workers) || workers < 1) {
      throw new RangeError('workers must be a positive integer');
    }
    const log = toLogFunction(options.logger, 'mock-manager: ', { component: 'mock-manager' });
    this.seed = (options.seed ?? randomBytes(4).readUInt32LE(0)) >>> 0;
    this.#index = new DocumentIndex(log);
    this.#faults = new FaultInjector(log, mulberry32(this.seed), delivery);
    this.#front = new SeedFront({
      sessionTimeoutMs: timeout,
      emptySessions,
      endAckDelayMs,
      workers,
      // Its own stream: adding workers does not change which messages the faults hit.
      random: mulberry32(this.seed ^ 0x9e3779b9),
      maxSessionSize: maxSize,
      log,
      index: this.#index,
      faults: this.#faults,
    });
  }

  /**
   * A transport whose messages the manager handles as coming from `moduleName`
   * (whatever name `send` is given) and which receives that module's answers.
   * One per AgentSyncProtocol instance.
   *
   * @example
   * ```ts
   * const agent = new AgentSyncProtocol({ moduleName: 'fim', dbPath, transport: manager.transport('fim') });
   * ```
   */
  transport(moduleName: string): InProcessTransport {
    const transport: InProcessTransport = new InProcessTransport((message) =>
      this.receive(message, moduleName, reply),
    );
    const reply: ReplyFunction = (response) => transport.respond(response);
    return transport;
  }

  /**
   * Handle one agent message sent by `moduleName`. Answers to a Start go to
   * `reply`; later answers of that session go to the `reply` of its Start.
   * `message` is only read during the call. Never throws.
   */
  receive(message: Uint8Array, moduleName: string, reply: ReplyFunction): void {
    this.#front.receive(message, moduleName, reply);
  }

  /**
   * Copies of the stored documents, of one index or of all, with their JSON parsed. Documents
   * of a session appear when its EndAck Ok goes out (see `endAckDelayMs`).
   */
  documents(index?: string): StoredDocument[] {
    return this.#index.documents(index);
  }

  /** How many documents are stored, in one index or in all; cheaper than documents().length. */
  documentCount(index?: string): number {
    return this.#index.count(index);
  }

  /** The checksum Check mode compares for this agent and index (see computeIndexChecksum). */
  indexChecksum(agentId: string, index: string): string {
    return this.#index.checksum(agentId, index);
  }

  /** Empty the index (every agent, every index); sessions in progress are not affected. */
  clearDocuments(): void {
    this.#index.clear();
  }

  /**
   * While false, Starts are answered Offline and indexing fails (sessions already started end
   * with EndAck Error), as when the real manager's indexer is unreachable. Default true.
   */
  setIndexerAvailable(available: boolean): void {
    this.#index.available = available;
  }

  /** The next `times` Full/Delta indexings fail: EndAck Error and nothing applied. */
  failIndexing(times = 1): void {
    this.#index.failNext(times);
  }

  /**
   * Add a scripted network fault; rules apply in the order injected (see {@link FaultRule}).
   *
   * @throws RangeError for an unknown `action` or a `probability` outside 0..1.
   * @example
   * ```ts
   * // Lose every EndAck to 'sca' once, and delay each third Start by 50 ms, twice.
   * manager.inject({ direction: 'to-agent', type: 'EndAck', module: 'sca', action: 'drop' });
   * manager.inject({ type: 'Start', action: 'delay', delayMs: 50, skip: 2, times: 2 });
   * ```
   */
  inject(rule: FaultRule): void {
    this.#faults.inject(rule);
  }

  /** Remove every fault rule. Messages already held or delayed are still delivered. */
  clearFaults(): void {
    this.#faults.clear();
  }

  /**
   * Answer the next `times` StartAcks (or EndAcks) with `status` instead of the real one. A
   * StartAck forced to Error or Offline opens no session; an EndAck forced to Ok does not undo
   * a refused session's failure in the index.
   *
   * @example
   * ```ts
   * manager.forceStatus('EndAck', Status.Error); // the next sync fails with 'manager-error'
   * ```
   */
  forceStatus(response: AckType, status: Status, times = 1): void {
    this.#faults.forceStatus(response, status, times);
  }

  /**
   * While silent the manager handles everything (sessions, documents) and answers nothing, as
   * when its answers are lost on the way back. Default false.
   */
  setSilent(silent: boolean): void {
    this.#faults.setSilent(silent);
  }

  /** A snapshot of the counters (see {@link MockManagerStats}). */
  get stats(): MockManagerStats {
    return { ...this.#front.counters, faults: this.#faults.stats };
  }

  /** Sessions started and not yet answered with their EndAck, failed or timed out. */
  get sessionCount(): number {
    return this.#front.sessionCount;
  }

  /**
   * Back to how a new manager starts, for the next test: no documents, no fault rules or
   * forced statuses, not silent, the indexer available with no failure scripted, and every
   * counter of {@link stats} at 0. Live sessions, and messages already held or delayed, are
   * left to finish (their documents then land in the cleared index).
   */
  reset(): void {
    this.#index.clear();
    this.#index.available = true;
    this.#index.failNext(0);
    this.#faults.reset();
    this.#front.resetCounters();
  }

  /**
   * Clear every timer and drop sessions, held messages and pending EndAcks; later messages are
   * ignored and nothing more is answered. The documents stay readable.
   */
  async close(): Promise<void> {
    this.#front.close();
    this.#faults.close();
  }
}
