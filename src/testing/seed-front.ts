// The seed protocol's front: what the manager's inventory-sync module does with each agent
// message (Start, DataValue, DataClean, ChecksumModule, End) and what it answers (StartAck,
// ReqRet, EndAck). Sessions live here; documents go to a DocumentIndex and answers through a
// FaultInjector.
import { randomBytes } from 'node:crypto';
import type { LogFunction } from '../interfaces/logger.js';
import { errorMessage } from '../session/sync-error.js';
import {
  decodeMessage,
  MessageEncoder,
  MessageType,
  Status,
  verifyMessage,
  WireMode,
  WireOperation,
} from '../wire/index.js';
import type {
  ChecksumModuleMessage,
  DataCleanMessage,
  DataValueMessage,
  DecodedMessage,
  EndMessage,
  StartMessage,
} from '../wire/types.js';
import type { DocumentIndex } from './document-index.js';
import type { FaultInjector, ReplyFunction } from './faults.js';
import { CLEAN, SessionItems } from './session-items.js';
import { Timers } from './timers.js';
import {
  contentTable,
  DC_INDEX,
  DV_DATA,
  DV_ID,
  DV_INDEX,
  DV_OPERATION,
  DV_SEQ,
  DV_SESSION,
  fieldAt,
  readU8,
  readU64,
  toBigInt,
  u32,
  vectorAt,
} from './wire-reader.js';

/** What the front counts; see MockManagerStats for each field. */
export interface FrontCounters {
  messagesReceived: number;
  invalidMessages: number;
  sessionsStarted: number;
  sessionsCompleted: number;
  sessionsFailed: number;
  sessionsTimedOut: number;
  reqRetsSent: number;
  dataValuesReceived: number;
  duplicatesReceived: number;
  endAcksRepeated: number;
}

/**
 * What the manager does with a size-0 Start in the modes without data: 'accept' like the 5.0
 * betas, 'refuse' like build ad9475fb35 (see `MockManagerOptions.emptySessions`).
 */
export type EmptySessions = 'accept' | 'refuse';

export interface SeedFrontOptions {
  sessionTimeoutMs: number;
  emptySessions: EmptySessions;
  endAckDelayMs: number;
  workers: number;
  /** Draws the order in which the simulated workers handle messages. */
  random: () => number;
  maxSessionSize: number;
  log: LogFunction;
  index: DocumentIndex;
  faults: FaultInjector;
}

interface Session {
  id: bigint;
  /** The two u32 halves of `id`, to find a DataValue's session without making a bigint. */
  idLow: number;
  idHigh: number;
  module: string;
  agentId: string;
  mode: WireMode;
  items: SessionItems;
  /** ChecksumModule checksums by index. */
  checksums: Map<string, string>;
  endReceived: boolean;
  /**
   * Indexed, its EndAck waiting for the bulk flush (endAckDelayMs > 0): an End is ignored, and
   * a retransmitted item indexes it again, with another EndAck.
   */
  flushing: boolean;
  /** Whether an EndAck Ok went out already (the stats count a session once). */
  acknowledged: boolean;
  /** Where the Start came from: every answer of the session goes there. */
  reply: ReplyFunction;
  timer: NodeJS.Timeout;
}

type OtherMessage = Exclude<DecodedMessage, DataValueMessage>;

interface Queued {
  bytes: Uint8Array;
  module: string;
  reply: ReplyFunction;
}

/** With several workers, how long a message waits for others to overtake it when none arrive. */
const WORKER_IDLE_MS = 5;

export class SeedFront {
  readonly #sessionTimeoutMs: number;
  readonly #emptySessions: EmptySessions;
  readonly #endAckDelayMs: number;
  readonly #workers: number;
  readonly #random: () => number;
  /** Flushes waiting to send their EndAck. */
  readonly #timers = new Timers();
  /** Messages received and not yet handled by a simulated worker, oldest first. */
  #queued: Queued[] = [];
  /** Hands the queued messages to workers once no new message pushes them out. */
  #idle: NodeJS.Timeout | undefined;
  readonly #maxSessionSize: bigint;
  readonly #log: LogFunction;
  readonly #index: DocumentIndex;
  readonly #faults: FaultInjector;
  readonly #encoder = new MessageEncoder();
  readonly #sessions = new Map<bigint, Session>();
  /** The session of the last DataValue, tried first for the next one. */
  #lastSession: Session | undefined;
  #closed = false;
  readonly #counters: FrontCounters = {
    messagesReceived: 0,
    invalidMessages: 0,
    sessionsStarted: 0,
    sessionsCompleted: 0,
    sessionsFailed: 0,
    sessionsTimedOut: 0,
    reqRetsSent: 0,
    dataValuesReceived: 0,
    duplicatesReceived: 0,
    endAcksRepeated: 0,
  };
  /** Handles bytes a fault held back, delayed or duplicated; faults do not apply twice. */
  readonly #redeliver = (bytes: Uint8Array, module: string, reply: ReplyFunction): void => {
    if (this.#closed) return;
    try {
      this.#handle(bytes, module, reply, false);
    } catch (error) {
      this.#log('error', `failed to handle a message from '${module}': ${errorMessage(error)}`);
    }
  };

  constructor(options: SeedFrontOptions) {
    this.#sessionTimeoutMs = options.sessionTimeoutMs;
    this.#emptySessions = options.emptySessions;
    this.#endAckDelayMs = options.endAckDelayMs;
    this.#workers = options.workers;
    this.#random = options.random;
    this.#maxSessionSize = BigInt(options.maxSessionSize);
    this.#log = options.log;
    this.#index = options.index;
    this.#faults = options.faults;
  }

  get counters(): FrontCounters {
    return { ...this.#counters };
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  resetCounters(): void {
    for (const key of Object.keys(this.#counters) as Array<keyof FrontCounters>) {
      this.#counters[key] = 0;
    }
  }

  /** See MockManager.receive. Never throws. */
  receive(message: Uint8Array, module: string, reply: ReplyFunction): void {
    if (this.#closed) return;
    try {
      // Messages held by 'reorder' go right after this one, whatever happens to it.
      const held = this.#faults.takeHeldToManager();
      this.#handle(message, module, reply, this.#faults.active);
      if (held !== undefined) for (const h of held) this.#redeliver(h.bytes, h.module, h.reply);
    } catch (error) {
      this.#log('error', `failed to handle a message from '${module}': ${errorMessage(error)}`);
    }
  }

  close(): void {
    this.#closed = true;
    this.#timers.clear();
    clearTimeout(this.#idle);
    this.#queued = [];
    for (const session of this.#sessions.values()) clearTimeout(session.timer);
    this.#sessions.clear();
    this.#lastSession = undefined;
  }

  // ---- incoming -------------------------------------------------------------

  /**
   * Verify, then handle; `faults`: whether the to-manager fault rules apply; `worker`: a
   * simulated worker took it from the queue (with one worker, every message is handled at once).
   */
  #handle(
    bytes: Uint8Array,
    module: string,
    reply: ReplyFunction,
    faults: boolean,
    worker = this.#workers === 1,
  ): void {
    if (!worker && !faults) {
      this.#enqueue(bytes, module, reply);
      return;
    }
    const type = verifyMessage(bytes);
    if (type === MessageType.DataValue) {
      // Most messages: read only what is needed now straight from the verified buffer.
      const table = contentTable(bytes);
      const op = readU8(bytes, table, DV_OPERATION);
      if (op !== WireOperation.Upsert && op !== WireOperation.Delete) {
        // Out of range: decodeMessage would refuse it.
        this.#counters.messagesReceived++;
        this.#rejectInvalid('undecodable buffer', module);
      } else if (!faults) {
        this.#counters.messagesReceived++;
        this.#onDataValue(bytes, table, op);
      } else {
        const seq = readU64(bytes, table, DV_SEQ);
        const deliver = worker
          ? () => {
              this.#counters.messagesReceived++;
              this.#onDataValue(bytes, table, op);
            }
          : () => this.#enqueue(bytes, module, reply);
        this.#faults.toManager(bytes, 'DataValue', seq, module, reply, deliver, this.#redeliver);
      }
      return;
    }
    const decoded = type === null ? null : (decodeMessage(bytes) as OtherMessage | null);
    if (decoded === null) {
      this.#counters.messagesReceived++;
      this.#rejectInvalid('undecodable buffer', module);
    } else if (!faults) {
      this.#process(decoded, bytes, module, reply);
    } else {
      const deliver = worker
        ? () => this.#process(decoded, bytes, module, reply)
        : () => this.#enqueue(bytes, module, reply);
      this.#faults.toManager(
        bytes,
        decoded.type,
        undefined,
        module,
        reply,
        deliver,
        this.#redeliver,
      );
    }
  }

  /**
   * Queue a message for the simulated workers. The real manager hands messages to a pool of
   * threads (one per core) that take them in order but finish in any order, so a message may be
   * handled before a few received earlier: an End before the last DataValues (the manager then
   * asks for them with a ReqRet, and their retransmission arrives after they did).
   */
  #enqueue(bytes: Uint8Array, module: string, reply: ReplyFunction): void {
    // The sender reuses its buffer once receive() returns.
    this.#queued.push({ bytes: bytes.slice(), module, reply });
    // One message per worker is in flight; one more makes a worker finish one of them.
    if (this.#queued.length > this.#workers) this.#work();
    if (this.#idle === undefined) {
      this.#idle = setTimeout(() => {
        this.#idle = undefined;
        while (this.#queued.length > 0 && !this.#closed) this.#work();
      }, WORKER_IDLE_MS);
    } else {
      this.#idle.refresh();
    }
  }

  /** A worker finishes one of the oldest `workers` queued messages, drawn from the seeded PRNG. */
  #work(): void {
    const window = Math.min(this.#workers, this.#queued.length);
    const [next] = this.#queued.splice(Math.floor(this.#random() * window), 1);
    if (next === undefined) return;
    try {
      this.#handle(next.bytes, next.module, next.reply, false, true);
    } catch (error) {
      this.#log(
        'error',
        `failed to handle a message from '${next.module}': ${errorMessage(error)}`,
      );
    }
  }

  /** `bytes`: the verified message `message` was decoded from. */
  #process(message: OtherMessage, bytes: Uint8Array, module: string, reply: ReplyFunction): void {
    this.#counters.messagesReceived++;
    switch (message.type) {
      case 'Start':
        this.#onStart(message, module, reply);
        return;
      case 'End':
        this.#onEnd(message);
        return;
      case 'ChecksumModule':
        // The older build's worker throws 'Invalid message type' on it, logs it and goes on.
        if (this.#emptySessions === 'refuse') {
          this.#rejectInvalid('ChecksumModule, which this manager build does not handle', module);
        } else {
          this.#onChecksumModule(message);
        }
        return;
      case 'DataClean':
        this.#onDataClean(message, bytes);
        return;
      default:
        this.#rejectInvalid(`unexpected ${message.type}, which only the manager sends`, module);
    }
  }

  #rejectInvalid(reason: string, module: string): void {
    this.#counters.invalidMessages++;
    this.#log('warn', `invalid message from '${module}': ${reason}`);
  }

  #onStart(message: StartMessage, module: string, reply: ReplyFunction): void {
    let status: Status = Status.Ok;
    if (!this.#index.available) {
      status = Status.Offline;
      this.#log('info', `Start from '${module}' refused: indexer unavailable`);
    } else if (WireMode[message.mode] === undefined) {
      status = Status.Error;
      this.#log('warn', `Start from '${module}' refused: unknown mode ${message.mode}`);
    } else if (
      message.size === 0n &&
      (this.#emptySessions === 'refuse' ||
        message.mode === WireMode.ModuleFull ||
        message.mode === WireMode.ModuleDelta)
    ) {
      status = Status.Error;
      this.#log('warn', `Start from '${module}' refused: size 0 in ${WireMode[message.mode]}`);
    } else if (message.size > this.#maxSessionSize) {
      status = Status.Error;
      this.#log('warn', `Start from '${module}' refused: size ${message.size} above the cap`);
    }

    const answered = this.#faults.ackStatus('StartAck', status);
    if (status !== Status.Ok || (answered !== Status.Ok && answered !== Status.PartialOk)) {
      // No session behind a refusal, real or forced; a forced Ok on a refused Start carries id 0.
      this.#faults.toAgent('StartAck', this.#encoder.startAck(answered, 0n), module, reply);
      return;
    }

    const id = this.#newSessionId();
    const session: Session = {
      id,
      idLow: Number(id & 0xffff_ffffn),
      idHigh: Number(id >> 32n),
      module,
      agentId: message.agentid ?? '',
      mode: message.mode,
      items: new SessionItems(Number(message.size)),
      checksums: new Map(),
      endReceived: false,
      flushing: false,
      acknowledged: false,
      reply,
      timer: setTimeout(() => this.#expire(session), this.#sessionTimeoutMs),
    };
    // A forgotten session must not keep the test process alive.
    session.timer.unref();
    this.#sessions.set(id, session);
    this.#counters.sessionsStarted++;
    if (session.agentId === '') this.#log('warn', `session ${id} from '${module}' has no agent id`);
    this.#log(
      'debug',
      `session ${id} started: ${WireMode[message.mode]}, size ${session.items.size}`,
    );
    this.#faults.toAgent('StartAck', this.#encoder.startAck(answered, id), module, reply);
  }

  /** `table`: the DataValue table of the verified `bytes`; `op`: its operation, a valid one. */
  #onDataValue(bytes: Uint8Array, table: number, op: WireOperation): void {
    this.#counters.dataValuesReceived++;
    const session = this.#dataValueSession(bytes, table);
    if (session === undefined) {
      const seq = readU64(bytes, table, DV_SEQ);
      const id = readU64(bytes, table, DV_SESSION);
      this.#log('warn', `DataValue seq ${seq} for unknown session ${id}`);
      return;
    }
    const seqAt = fieldAt(bytes, table, DV_SEQ);
    const seqLow = seqAt === 0 ? 0 : u32(bytes, table + seqAt);
    const seqHigh = seqAt === 0 ? 0 : u32(bytes, table + seqAt + 4);
    // Absent strings and data read as empty, as decodeMessage gives them.
    const data = op === WireOperation.Upsert ? vectorAt(bytes, table, DV_DATA) : -1;
    const id = vectorAt(bytes, table, DV_ID);
    const index = vectorAt(bytes, table, DV_INDEX);
    this.#store(session, seqLow, seqHigh, op, bytes, data, id, index);
  }

  #dataValueSession(bytes: Uint8Array, table: number): Session | undefined {
    const at = fieldAt(bytes, table, DV_SESSION);
    const low = at === 0 ? 0 : u32(bytes, table + at);
    const high = at === 0 ? 0 : u32(bytes, table + at + 4);
    const last = this.#lastSession;
    if (last !== undefined && last.idLow === low && last.idHigh === high) return last;
    const session = this.#sessions.get(toBigInt(low, high));
    if (session !== undefined) this.#lastSession = session;
    return session;
  }

  #onDataClean(message: DataCleanMessage, bytes: Uint8Array): void {
    const session = this.#sessions.get(message.session);
    if (session === undefined) {
      this.#log('warn', `DataClean seq ${message.seq} for unknown session ${message.session}`);
      return;
    }
    const low = Number(BigInt.asUintN(32, message.seq));
    const index = vectorAt(bytes, contentTable(bytes), DC_INDEX);
    this.#store(session, low, Number(message.seq >> 32n), CLEAN, bytes, -1, -1, index);
  }

  /**
   * Store the item of `seq` (in u32 halves) in `session`; `data`, `id` and
   * `index` are the positions of vectors in the verified `bytes`, -1 for none.
   */
  #store(
    session: Session,
    seqLow: number,
    seqHigh: number,
    kind: number,
    bytes: Uint8Array,
    data: number,
    id: number,
    index: number,
  ): void {
    const { items } = session;
    // Inexact only far above every allowed size.
    const n = seqHigh * 2 ** 32 + seqLow;
    if (n >= items.size) {
      const seq = toBigInt(seqLow, seqHigh);
      this.#log('warn', `seq ${seq} ignored: session ${session.id} has size ${items.size}`);
      return;
    }
    session.timer.refresh();
    if (items.store(n, seqLow, seqHigh, kind, bytes, data, id, index)) {
      this.#counters.duplicatesReceived++;
      const seq = toBigInt(seqLow, seqHigh);
      this.#log('debug', `seq ${seq} of session ${session.id} received again, overwritten`);
      // The real session queues itself for indexing again on any item after a complete End
      // (agentSession.hpp handleData), so the flush sends one more EndAck.
      if (session.flushing) this.#finish(session);
    } else if (session.endReceived && items.complete) {
      // The last retransmission completes the session without another End.
      this.#finish(session);
    }
  }

  #onChecksumModule(message: ChecksumModuleMessage): void {
    const session = this.#sessions.get(message.session);
    if (session === undefined) {
      this.#log('warn', `ChecksumModule for unknown session ${message.session}`);
      return;
    }
    session.timer.refresh();
    session.checksums.set(message.index, message.checksum);
  }

  #onEnd(message: EndMessage): void {
    const session = this.#sessions.get(message.session);
    if (session === undefined) {
      this.#log('warn', `End for unknown session ${message.session}`);
      return;
    }
    if (session.flushing) {
      // agentSession.hpp handleEnd: 'End already enqueued', no answer.
      this.#log('debug', `End for session ${session.id}, already being indexed: ignored`);
      return;
    }
    session.timer.refresh();
    session.endReceived = true;
    if (session.items.complete) {
      this.#finish(session);
      return;
    }
    const ranges = session.items.missingRanges();
    this.#counters.reqRetsSent++;
    this.#log('debug', `session ${session.id}: asking for ${ranges.length} missing range(s)`);
    this.#faults.toAgent(
      'ReqRet',
      this.#encoder.reqRet(session.id, ranges),
      session.module,
      session.reply,
    );
  }

  #expire(session: Session): void {
    if (this.#sessions.get(session.id) !== session) return;
    this.#forget(session);
    this.#counters.sessionsTimedOut++;
    this.#log('warn', `session ${session.id} of '${session.module}' timed out, dropped`);
  }

  // ---- completion -----------------------------------------------------------

  #forget(session: Session): void {
    this.#sessions.delete(session.id);
    if (this.#lastSession === session) this.#lastSession = undefined;
  }

  #finish(session: Session): void {
    clearTimeout(session.timer);
    const { id, mode, agentId, module } = session;
    if (mode !== WireMode.ModuleFull && mode !== WireMode.ModuleDelta) {
      // Check compares at once; metadata and group sessions are Ok (the mock keeps no metadata).
      this.#forget(session);
      this.#answerEnd(session, mode === WireMode.ModuleCheck ? this.#check(session) : true);
      return;
    }
    const batch = { session: id, mode, agentId, module, items: session.items.records() };
    if (!this.#index.accepts(batch)) {
      // The real one answers a failed indexing at once, without waiting for a flush.
      this.#forget(session);
      this.#answerEnd(session, false);
      return;
    }
    if (this.#endAckDelayMs === 0) {
      this.#forget(session);
      this.#index.add(batch);
      this.#answerEnd(session, true);
      return;
    }
    // The real indexer queues the documents into its bulk and answers after the next flush;
    // until then the session stays, and its documents are not visible.
    session.flushing = true;
    this.#timers.schedule(this.#endAckDelayMs, () => {
      this.#forget(session);
      this.#index.add(batch);
      this.#answerEnd(session, true);
    });
  }

  /** Send the EndAck of `session`: Ok when `ok`, else Error. */
  #answerEnd(session: Session, ok: boolean): void {
    if (!ok) this.#counters.sessionsFailed++;
    else if (!session.acknowledged) this.#counters.sessionsCompleted++;
    else this.#counters.endAcksRepeated++;
    if (ok) session.acknowledged = true;
    const status = this.#faults.ackStatus('EndAck', ok ? Status.Ok : Status.Error);
    this.#faults.toAgent(
      'EndAck',
      this.#encoder.endAck(status, session.id),
      session.module,
      session.reply,
    );
  }

  #check(session: Session): boolean {
    const { id } = session;
    if (!this.#index.available) {
      this.#log('error', `session ${id}: indexer unavailable, cannot check`);
      return false;
    }
    if (session.checksums.size === 0) {
      this.#log('warn', `session ${id}: Check session without a ChecksumModule`);
      return false;
    }
    for (const [index, checksum] of session.checksums) {
      const actual = this.#index.checksum(session.agentId, index);
      if (actual !== checksum.toLowerCase()) {
        this.#log('info', `session ${id}: checksum mismatch on '${index}'`);
        return false;
      }
    }
    return true;
  }

  #newSessionId(): bigint {
    for (;;) {
      const id = randomBytes(8).readBigUInt64LE(0);
      // 0 is what Offline/Error answers carry, so a live session never gets it.
      if (id !== 0n && !this.#sessions.has(id)) return id;
    }
  }
}
