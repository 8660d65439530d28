// MockManager: the public face of the mock. The work is split by concern: DocumentIndex
// (documents, Check checksum, indexer availability), FaultInjector (the network and what a test
// breaks on it), SeedFront (the seed protocol's sessions), and for the Wazuh 5.0 wire
// FullSessionFront (`POST /stateful` bodies) with StatefulFaults.

import { randomBytes } from 'node:crypto';
import type { Logger } from '../interfaces/logger.js';
import type { SessionTransport } from '../interfaces/session-transport.js';
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
import {
  DEFAULT_MAX_INFLIGHT_BYTES,
  FullSessionFront,
  isAgentScopedStateIndex,
  type StatefulAnswer,
  type StatefulRequest,
  type StatefulStats,
} from './full-session-front.js';
import type { MockManagerServer } from './mock-manager-server.js';
import { mulberry32 } from './prng.js';
import { type EmptySessions, SeedFront } from './seed-front.js';
import { type StatefulFault, StatefulFaults } from './stateful-faults.js';

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
export type { StatefulAnswer, StatefulRequest, StatefulStats } from './full-session-front.js';
export type { EmptySessions } from './seed-front.js';
export type { StatefulFault, StatefulFaultAction } from './stateful-faults.js';

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
  /**
   * The manager's cluster name, for 5.0 sessions ({@link MockManager.stateful}): a session's
   * `Start.cluster_name` must equal it byte for byte (else 403), and every document is keyed
   * (`<cluster>_<agent>_<id>`) and stamped (`wazuh.cluster.name`) with it. Default 'wazuh', the
   * `<cluster><name>` of the manager's shipped configuration (a manager whose configuration
   * names none uses 'undefined').
   */
  clusterName?: string;
  /**
   * The 5.0 manager's in-flight byte budget (`max_inflight_bytes`), in bytes. With no body cap
   * of its own, as by default, the manager answers 413 to a body larger than the budget minus
   * one request's overhead (282,624 bytes with the default header limits); a budget below
   * 1 MiB plus that overhead is raised to it, as the real one does. Default 268,435,456
   * (256 MiB, the real default): bodies up to 268,152,832 bytes. Infinity: no limit.
   */
  maxInflightBytes?: number;
  /**
   * The feed offset the 5.0 manager's vulnerability scanner reports: a VDFirst/VDSync data
   * session whose `Start.feed_offset` differs is answered 409
   * `{"current_version":N,"error":"version_mismatch"}`. Default 0n, what a manager whose
   * scanner is not running reports.
   */
  vdFeedOffset?: bigint;
  /**
   * Which indices a 5.0 session may touch. Documents of other indices are skipped, Cleans and
   * metadata/group syncs ignore them, a Check of one is refused 400. Default
   * {@link isAgentScopedStateIndex}, the real manager's rule, which it does not let anyone
   * configure: change it only to model another manager build.
   */
  indexAllowlist?: (index: string) => boolean;
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
 * It speaks both wires: the seed protocol's messages ({@link receive},
 * {@link transport}) and Wazuh 5.0's one-body sessions ({@link stateful}).
 * Their documents share one index, which {@link documents} shows.
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
  readonly #statefulFaults: StatefulFaults;
  readonly #front5: FullSessionFront;

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
    const clusterName = options.clusterName ?? 'wazuh';
    if (typeof clusterName !== 'string') throw new RangeError('clusterName must be a string');
    const maxInflightBytes = options.maxInflightBytes ?? DEFAULT_MAX_INFLIGHT_BYTES;
    if (
      maxInflightBytes !== Number.POSITIVE_INFINITY &&
      (!Number.isSafeInteger(maxInflightBytes) || maxInflightBytes <= 0)
    ) {
      throw new RangeError('maxInflightBytes must be a positive safe integer or Infinity');
    }
    const vdFeedOffset = options.vdFeedOffset ?? 0n;
    if (typeof vdFeedOffset !== 'bigint' || vdFeedOffset < 0n || vdFeedOffset >= 1n << 64n) {
      throw new RangeError('vdFeedOffset must be a bigint in 0..2^64-1');
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
    this.#statefulFaults = new StatefulFaults(mulberry32(this.seed ^ 0x5bd1e995));
    const faults = this.#faults;
    this.#front5 = new FullSessionFront({
      clusterName,
      maxInflightBytes,
      vdFeedOffset,
      indexAllowlist: options.indexAllowlist ?? isAgentScopedStateIndex,
      log,
      index: this.#index,
      faults: this.#statefulFaults,
      silent: () => faults.silent,
    });
  }

  /**
   * Handle one Wazuh 5.0 session: the body of a `POST /stateful` (one FlatBuffers
   * `Message{FullSession}`), sent by the agent `request.agentId`. Resolves with the answer the
   * real manager (`inventory_sync_server`, wazuh/wazuh f838614611) gives, in its order of
   * checks. Every refusal's body is `{"error":"<reason>","code":<status>}`:
   *
   * - 413 `Request body is too large`: the body is larger than the budget allows (see
   *   {@link MockManagerOptions.maxInflightBytes}).
   * - 400 `Missing agent id header` (`agentId` is ''), then 400 `Empty body`.
   * - 400 `Body is not a valid inventory sync message` (not a well-formed FlatBuffer: random
   *   bytes, a truncated or corrupt body), `Unsupported message type: expected FullSession`,
   *   `FullSession is missing its start table`, `Start is missing the module name`.
   * - 400 `Agent id must be numeric`: `Start.agentid` or `agentId` is not all ASCII digits.
   * - 403 `identity mismatch`: `Start.agentid` is not `agentId` as an integer (C `atoi`, so
   *   `1` = `001`), or `Start.cluster_name` is not {@link MockManagerOptions.clusterName}; an
   *   empty cluster name is 400 `Start is missing the cluster name` instead.
   * - 400 `Invalid mode/payload combination`: ModuleDelta takes SyncData or Cleans,
   *   ModuleCheck a ChecksumModule, the metadata and group modes no payload.
   * - 400 `SyncData must carry at least one value`, `Cleans must carry at least one item`,
   *   `ChecksumModule index must be an agent-scoped state index`, `ChecksumModule is missing
   *   the checksum`.
   * - 503 `Service unavailable`: the indexer is down ({@link setIndexerAvailable}).
   * - 409 `{"current_version":N,"error":"version_mismatch"}`: a VDFirst/VDSync data session
   *   whose feed offset is not {@link MockManagerOptions.vdFeedOffset}.
   * - 400 `Invalid operation`: a data session with an operation outside Upsert/Delete.
   * - 500 `Internal error`: the indexer failed ({@link failIndexing}), a document index has a
   *   character the connector refuses (outside `[A-Za-z0-9._*-]`; what the session wrote
   *   before that document stays), a document's `wazuh` (or `wazuh.agent`, ...) is not an
   *   object, or a Check finds one of the agent's documents without a string
   *   `checksum.hash.sha1`.
   *
   * Otherwise the session is applied and answered:
   *
   * - ModuleDelta + SyncData: 200 `{"status":"ok"}`. Each value is stored as
   *   `<cluster>_<agent id padded to 3 digits>_<id>` in its index, with the manager's
   *   `wazuh.agent.*` (id, name, version, groups, host) and `wazuh.cluster.name` written over
   *   the document's. Values of indices outside the allowlist, of
   *   `wazuh-states-vulnerabilities`, without an id, or (Upserts) whose data is not a JSON
   *   object are skipped; when all are, 200 `{"status":"ok","noop":true}`. A value with a
   *   version > 0 replaces the stored document only when that one's `state.document_version`
   *   is absent or at most the version (equal replaces). Delete ignores versions.
   * - ModuleDelta + Cleans: the agent's documents of each allowlisted index are deleted
   *   (other agents' stay); 200 ok, or noop when no index is allowlisted.
   * - ModuleCheck: 200 ok when the SHA-1 of the agent's `checksum.hash.sha1` values, sorted,
   *   concatenated, equals the checksum; else 409 `{"status":"checksum_mismatch"}`.
   * - Metadata/Group Delta: on the agent's documents of the Start's allowlisted indices whose
   *   `state.document_version` is absent or at most `global_version`, writes the Start's
   *   metadata (or groups) and `state.document_version` = global_version, `state.modified_at`
   *   = now; Metadata/Group Check writes them only where they differ, without the version.
   *   200 ok, or noop when no index is allowlisted.
   *
   * Faults ({@link injectStateful}) act first. Documents appear in {@link documents} when the
   * promise resolves. The promise never rejects; it never settles for a dropped request or
   * while {@link setSilent} is on. `body` is only read during the call.
   *
   * @example
   * ```ts
   * const body = encoder.encode(start, { type: 'SyncData', values: [doc] }); // wire-5 encoder
   * const answer = await manager.stateful(body, { agentId: '001' });
   * // { status: 200, body: '{"status":"ok"}' }
   * ```
   */
  stateful(body: Uint8Array, request: StatefulRequest): Promise<StatefulAnswer> {
    return this.#front5.stateful(body, request);
  }

  /**
   * A {@link SessionTransport} that hands each session to {@link stateful} as sent by
   * `agentId` (the session id as `X-Session-Id`): the in-process transport of an
   * `AgentSyncProtocol` on the `'fullSession'` wire. A dropped request's promise never settles;
   * the protocol's `timeoutMs` ends the wait.
   *
   * @example
   * ```ts
   * const agent = new AgentSyncProtocol({
   *   moduleName: 'fim', dbPath, wire: 'fullSession', clusterName: 'wazuh',
   *   agentInfo: { id: '001' }, transport: manager.sessionTransport('001'),
   * });
   * ```
   */
  sessionTransport(agentId: string | number): SessionTransport {
    return {
      send: (session) => this.stateful(session.body, { agentId, sessionId: session.id }),
    };
  }

  /**
   * Add a scripted fault on `/stateful` requests; rules apply in the order injected (see
   * {@link StatefulFault}): answer 503 with Retry-After, 500, answer late, or never answer.
   *
   * @throws RangeError for an unknown `action` or an option out of its range.
   * @example
   * ```ts
   * manager.injectStateful({ action: 'unavailable', retryAfterSeconds: 1 }); // next session: 503
   * manager.injectStateful({ action: 'drop', applied: true }); // then one applied, never answered
   * ```
   */
  injectStateful(fault: StatefulFault): void {
    this.#statefulFaults.inject(fault);
  }

  /**
   * The largest `/stateful` body this manager reads, in bytes: a longer one is answered 413
   * without being read (see {@link MockManagerOptions.maxInflightBytes}). Infinity: no limit.
   * {@link MockManagerServer} bounds what it reads of a request by it.
   */
  get statefulMaxBodyBytes(): number {
    return this.#front5.maxBody;
  }

  /** A snapshot of the `/stateful` counters (see {@link StatefulStats}). */
  get statefulStats(): StatefulStats {
    return this.#front5.stats;
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
   * Copies of the stored documents, of one index or of all, with their JSON parsed, from both
   * wires: a seed session's appear when its EndAck Ok goes out (see `endAckDelayMs`), a 5.0
   * session's when {@link stateful} answers (with the manager's `wazuh.*` fields in `data`).
   */
  documents(index?: string): StoredDocument[] {
    return this.#index.documents(index);
  }

  /** How many documents are stored, in one index or in all; cheaper than documents().length. */
  documentCount(index?: string): number {
    return this.#index.count(index);
  }

  /**
   * The checksum a seed Check compares for this agent and index (see computeIndexChecksum). For
   * a 5.0 session, pass the padded agent id (`'001'`); its Check also needs every document to
   * have a `checksum.hash.sha1` (see {@link stateful}).
   */
  indexChecksum(agentId: string, index: string): string {
    return this.#index.checksum(agentId, index);
  }

  /** Empty the index (every agent, every index); sessions in progress are not affected. */
  clearDocuments(): void {
    this.#index.clear();
  }

  /**
   * While false, Starts are answered Offline and indexing fails (sessions already started end
   * with EndAck Error), and valid 5.0 sessions are answered 503 `Service unavailable` with
   * nothing applied, as when the real manager's indexer is unreachable. Default true.
   */
  setIndexerAvailable(available: boolean): void {
    this.#index.available = available;
  }

  /**
   * The next `times` indexings fail with nothing applied: a seed Full/Delta session ends with
   * EndAck Error; a 5.0 session that reaches the indexer (a data session with something to
   * write, Cleans, Check, metadata/groups; not a no-op) is answered 500 `Internal error`.
   * Both wires use up the same count.
   */
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

  /**
   * Remove every fault rule, of both wires. Messages already held or delayed are still
   * delivered.
   */
  clearFaults(): void {
    this.#faults.clear();
    this.#statefulFaults.clear();
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
   * when its answers are lost on the way back; a {@link stateful} promise then never settles.
   * Default false.
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
   * counter of {@link stats} and {@link statefulStats} at 0. Live sessions, and messages
   * already held or delayed, are left to finish (their documents then land in the cleared
   * index).
   */
  reset(): void {
    this.#index.clear();
    this.#index.available = true;
    this.#index.failNext(0);
    this.#faults.reset();
    this.#statefulFaults.clear();
    this.#front.resetCounters();
    this.#front5.resetStats();
  }

  /**
   * Clear every timer and drop sessions, held messages and pending EndAcks; later messages are
   * ignored and nothing more is answered. Delayed and later {@link stateful} requests are
   * answered 503 `Service unavailable`, as a stopping manager answers. The documents stay
   * readable.
   */
  async close(): Promise<void> {
    this.#front.close();
    this.#front5.close();
    this.#faults.close();
  }
}
