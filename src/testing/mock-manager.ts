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
import { mulberry32 } from './prng.js';
import { SeedFront } from './seed-front.js';

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

export interface MockManagerOptions {
  /** A session with no message for this long is dropped without an answer. Default 30000. */
  sessionTimeoutMs?: number;
  /** Largest Start `size` accepted; above it the Start is refused with Error. Default 10,000,000. */
  maxSessionSize?: number;
  /**
   * 'sync' answers inside the sender's `send()` call, 'microtask' on the next
   * microtask, 'macrotask' (default) on the next `setImmediate` turn.
   */
  responseDelivery?: ResponseDelivery;
  /** Default: silent. */
  logger?: Logger;
  /** Seed of the PRNG behind fault probabilities. Default: random (see {@link MockManager.seed}). */
  seed?: number;
}

export interface MockManagerStats {
  /** Messages that reached the manager (after faults: a dropped one does not count, a duplicated one counts twice). */
  messagesReceived: number;
  /** Undecodable buffers and messages only the manager may send. */
  invalidMessages: number;
  sessionsStarted: number;
  /** Sessions answered EndAck Ok. */
  sessionsCompleted: number;
  /**
   * Sessions answered EndAck Error (a document that is not valid JSON or that the real manager
   * would corrupt, indexer failure, checksum mismatch...).
   */
  sessionsFailed: number;
  sessionsTimedOut: number;
  reqRetsSent: number;
  /** Every DataValue that reached the manager, including ignored ones. */
  dataValuesReceived: number;
  /** DataValues whose seq was already stored in their session. */
  duplicatesReceived: number;
  faults: FaultStats;
}

/**
 * An in-memory stand-in for the manager's inventory-sync module and its
 * indexer, for tests. Feed it agent messages through {@link receive} (or a
 * {@link transport}); it answers like the real server, stores documents in a
 * fake index, and lets a test script faults and failures.
 */
export class MockManager {
  /** Seed of the fault PRNG, so a run that used a random one can be replayed. */
  readonly seed: number;

  readonly #index: DocumentIndex;
  readonly #faults: FaultInjector;
  readonly #front: SeedFront;

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
    const log = toLogFunction(options.logger, 'mock-manager: ');
    this.seed = (options.seed ?? randomBytes(4).readUInt32LE(0)) >>> 0;
    this.#index = new DocumentIndex(log);
    this.#faults = new FaultInjector(log, mulberry32(this.seed), delivery);
    this.#front = new SeedFront({
      sessionTimeoutMs: timeout,
      maxSessionSize: maxSize,
      log,
      index: this.#index,
      faults: this.#faults,
    });
  }

  /**
   * A transport whose messages the manager handles as coming from `moduleName`
   * (whatever name `send` is given) and which receives that module's answers.
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

  /** Copies of the stored documents, of one index or of all. */
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

  clearDocuments(): void {
    this.#index.clear();
  }

  /** While false, Starts are answered Offline and indexing fails. */
  setIndexerAvailable(available: boolean): void {
    this.#index.available = available;
  }

  /** The next `times` Full/Delta indexings fail: EndAck Error and nothing applied. */
  failIndexing(times = 1): void {
    this.#index.failNext(times);
  }

  inject(rule: FaultRule): void {
    this.#faults.inject(rule);
  }

  /** Remove every fault rule. Messages already held or delayed are still delivered. */
  clearFaults(): void {
    this.#faults.clear();
  }

  /** Answer the next `times` StartAcks (or EndAcks) with `status` instead of the real one. */
  forceStatus(response: AckType, status: Status, times = 1): void {
    this.#faults.forceStatus(response, status, times);
  }

  /** While silent the manager handles everything and answers nothing. */
  setSilent(silent: boolean): void {
    this.#faults.setSilent(silent);
  }

  get stats(): MockManagerStats {
    return { ...this.#front.counters, faults: this.#faults.stats };
  }

  /** Live sessions. */
  get sessionCount(): number {
    return this.#front.sessionCount;
  }

  /** Clear every timer and drop sessions and held messages; later messages are ignored. */
  async close(): Promise<void> {
    this.#front.close();
    this.#faults.close();
  }
}
