import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { computeIndexChecksum } from '../checksum.js';
import type { LogFunction, Logger, LogLevel } from '../interfaces/logger.js';
import { isJsonBytes } from '../json-bytes.js';
import { toLogFunction } from '../logging.js';
import { InProcessTransport } from '../transports/in-process.js';
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
  SeqRange,
  StartMessage,
} from '../wire/types.js';
import { mulberry32 } from './prng.js';

/** How the manager hands its answers back to the sender. */
export type ResponseDelivery = 'sync' | 'microtask' | 'macrotask';

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

/** Receives one manager response; the bytes are the receiver's to keep. */
export type ReplyFunction = (response: Uint8Array) => void;

export type FaultDirection = 'to-manager' | 'to-agent';

export type FaultMessageType =
  | 'Start'
  | 'DataValue'
  | 'DataClean'
  | 'ChecksumModule'
  | 'End'
  | 'StartAck'
  | 'EndAck'
  | 'ReqRet';

/**
 * - drop: the message is lost.
 * - duplicate: it is delivered twice in a row.
 * - delay: it is delivered `delayMs` later.
 * - reorder: it is held and delivered right after the next message in the same direction.
 */
export type FaultAction = 'drop' | 'duplicate' | 'delay' | 'reorder';

/**
 * A scripted network fault. A message matches when every filter given matches;
 * the first `skip` matches pass untouched, then each match is affected (with
 * `probability`, drawn from the seeded PRNG) until `times` messages were
 * affected. When several rules fire on one message, the earliest injected wins.
 */
export interface FaultRule {
  /** Default 'to-manager'. */
  direction?: FaultDirection;
  type?: FaultMessageType;
  /** DataValue only: a rule with `seq` never matches other messages. */
  seq?: number | bigint | ((seq: bigint) => boolean);
  /** Module that sent the message (to-manager) or whose session it answers (to-agent). */
  module?: string;
  action: FaultAction;
  /** For 'delay'. Default 10. */
  delayMs?: number;
  /** Let this many matches pass first. Default 0. */
  skip?: number;
  /** How many matches it affects. Default 1; Infinity allowed. */
  times?: number;
  /** 0..1. Default 1. */
  probability?: number;
}

export interface FaultStats {
  dropped: number;
  duplicated: number;
  delayed: number;
  reordered: number;
  forcedStatus: number;
}

export interface MockManagerStats {
  /** Messages that reached the manager (after faults: a dropped one does not count, a duplicated one counts twice). */
  messagesReceived: number;
  /** Undecodable buffers and messages only the manager may send. */
  invalidMessages: number;
  sessionsStarted: number;
  /** Sessions answered EndAck Ok. */
  sessionsCompleted: number;
  /** Sessions answered EndAck Error (bad document, indexer failure, checksum mismatch...). */
  sessionsFailed: number;
  sessionsTimedOut: number;
  reqRetsSent: number;
  /** Every DataValue that reached the manager, including ignored ones. */
  dataValuesReceived: number;
  /** DataValues whose seq was already stored in their session. */
  duplicatesReceived: number;
  faults: FaultStats;
}

/** A document in the mock indexer. */
export interface StoredDocument {
  index: string;
  /** `<agentId>_<itemId>`. */
  id: string;
  itemId: string;
  agentId: string;
  /** Module whose session wrote it. */
  module: string;
  /** The parsed JSON document. */
  data: unknown;
}

/**
 * A document as indexed. Its JSON was validated when its session ended; it is
 * parsed on first read (`raw[start, end)` until then), which keeps that cost
 * out of the session.
 */
interface IndexedDocument extends StoredDocument {
  raw: Buffer | undefined;
  start: number;
  end: number;
}

/** Marks a stored DataClean among the items of a session (others hold a WireOperation). */
const CLEAN = 0xff;

// A session keeps what it stores of each DataValue/DataClean as a record in
// its arena (the sender reuses its buffer, and packing copies into shared
// chunks costs far less than one small buffer each): a header of RECORD_HEADER
// bytes (u32 LE: seq low, seq high, kind, data length, id length, index
// length), then the data (Upsert only), id and index bytes. Records are
// appended in arrival order, so a later arrival of a seq overwrites an
// earlier one. Strings are decoded and documents parsed only when the index
// is read, and nothing of this is for the GC to trace.
const RECORD_HEADER = 24;

/** Arena chunks start small (most sessions are small) and double up to this. */
const MIN_CHUNK = 4096;
const MAX_CHUNK = 1 << 20;

interface Session {
  id: bigint;
  /** The two u32 halves of `id`, to find a DataValue's session without making a bigint. */
  idLow: number;
  idHigh: number;
  module: string;
  agentId: string;
  mode: WireMode;
  size: number;
  /** Every seq below this was received (most arrive in order). */
  contiguous: number;
  /** Received seqs above `contiguous`. */
  scattered: Set<number>;
  /** Arena chunks of records; the last one is being filled. */
  chunks: Buffer[];
  /** Bytes used in each chunk. */
  filled: number[];
  /** ChecksumModule checksums by index. */
  checksums: Map<string, string>;
  endReceived: boolean;
  /** Where the Start came from: every answer of the session goes there. */
  reply: ReplyFunction;
  timer: NodeJS.Timeout;
}

/** Where the record of each seq of a complete session is. */
interface Records {
  chunk: Int32Array;
  offset: Int32Array;
}

/** A session validated at End and not yet written to the index. */
interface PendingSession {
  session: Session;
  records: Records;
}

/** Above this many pending items, End writes them at once instead of waiting for a read. */
const MAX_PENDING_ITEMS = 1_000_000;

interface RuleState {
  rule: FaultRule;
  direction: FaultDirection;
  seq: bigint | ((seq: bigint) => boolean) | undefined;
  skip: number;
  times: number;
  probability: number;
  matched: number;
  applied: number;
}

interface Held {
  bytes: Uint8Array;
  module: string;
  reply: ReplyFunction;
}

export type AckType = 'StartAck' | 'EndAck';
type ResponseType = AckType | 'ReqRet';

const DEFAULT_DELAY_MS = 10;

/**
 * An in-memory stand-in for the manager's inventory-sync module and its
 * indexer, for tests. Feed it agent messages through {@link receive} (or a
 * {@link transport}); it answers like the real server, stores documents in a
 * fake index, and lets a test script faults and failures.
 */
export class MockManager {
  /** Seed of the fault PRNG, so a run that used a random one can be replayed. */
  readonly seed: number;

  private readonly sessionTimeoutMs: number;
  private readonly maxSessionSize: bigint;
  private readonly delivery: ResponseDelivery;
  private readonly log: LogFunction;
  private readonly random: () => number;
  private readonly encoder = new MessageEncoder();

  private readonly sessions = new Map<bigint, Session>();
  /** The session of the last DataValue, tried first for the next one. */
  private lastSession: Session | undefined;
  private readonly indices = new Map<string, Map<string, IndexedDocument>>();
  /**
   * Sessions that ended Ok but are not written to `indices` yet, oldest first:
   * every read of the index writes them first, so nobody can tell.
   */
  private pending: PendingSession[] = [];
  private pendingItems = 0;
  private readonly timers = new Set<NodeJS.Timeout>();

  private rules: RuleState[] = [];
  private heldToManager: Held[] = [];
  private heldToAgent: Held[] = [];
  private readonly forced: Record<AckType, { status: Status; times: number }> = {
    StartAck: { status: Status.Ok, times: 0 },
    EndAck: { status: Status.Ok, times: 0 },
  };

  private indexerAvailable = true;
  private indexingFailures = 0;
  private silent = false;
  private closed = false;

  private readonly counters = {
    messagesReceived: 0,
    invalidMessages: 0,
    sessionsStarted: 0,
    sessionsCompleted: 0,
    sessionsFailed: 0,
    sessionsTimedOut: 0,
    reqRetsSent: 0,
    dataValuesReceived: 0,
    duplicatesReceived: 0,
  };
  private readonly faultCounters: FaultStats = {
    dropped: 0,
    duplicated: 0,
    delayed: 0,
    reordered: 0,
    forcedStatus: 0,
  };

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
    this.sessionTimeoutMs = timeout;
    this.maxSessionSize = BigInt(maxSize);
    this.delivery = delivery;
    this.log = toLogFunction(options.logger, 'mock-manager: ');
    this.seed = (options.seed ?? randomBytes(4).readUInt32LE(0)) >>> 0;
    this.random = mulberry32(this.seed);
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
    if (this.closed) return;
    try {
      // Messages held by 'reorder' go right after this one, whatever happens to it.
      const held = this.heldToManager.length > 0 ? this.takeHeld('to-manager') : undefined;
      this.handle(message, moduleName, reply, this.rules.length > 0);
      if (held !== undefined) {
        for (const h of held) this.receiveBytes(h.bytes, h.module, h.reply);
      }
    } catch (error) {
      this.report('error', `failed to handle a message from '${moduleName}': ${describe(error)}`);
    }
  }

  /** Copies of the stored documents, of one index or of all. */
  documents(index?: string): StoredDocument[] {
    this.flush();
    const out: StoredDocument[] = [];
    const maps = index === undefined ? this.indices.values() : [this.indices.get(index)];
    for (const docs of maps) {
      if (docs === undefined) continue;
      for (const doc of docs.values()) {
        const { id, itemId, agentId, module } = doc;
        out.push({ index: doc.index, id, itemId, agentId, module, data: documentData(doc) });
      }
    }
    return out;
  }

  /** How many documents are stored, in one index or in all; cheaper than documents().length. */
  documentCount(index?: string): number {
    this.flush();
    if (index !== undefined) return this.indices.get(index)?.size ?? 0;
    let count = 0;
    for (const docs of this.indices.values()) count += docs.size;
    return count;
  }

  /** The checksum Check mode compares for this agent and index (see computeIndexChecksum). */
  indexChecksum(agentId: string, index: string): string {
    return computeIndexChecksum(this.agentDocuments(agentId, index));
  }

  clearDocuments(): void {
    this.pending = [];
    this.pendingItems = 0;
    this.indices.clear();
  }

  /** While false, Starts are answered Offline and indexing fails. */
  setIndexerAvailable(available: boolean): void {
    this.indexerAvailable = available;
  }

  /** The next `times` Full/Delta indexings fail: EndAck Error and nothing applied. */
  failIndexing(times = 1): void {
    this.indexingFailures = Math.max(0, times);
  }

  inject(rule: FaultRule): void {
    const { action } = rule;
    if (action !== 'drop' && action !== 'duplicate' && action !== 'delay' && action !== 'reorder') {
      throw new RangeError(`unknown fault action '${String(action)}'`);
    }
    const probability = rule.probability ?? 1;
    if (!(probability >= 0 && probability <= 1)) {
      throw new RangeError('probability must be between 0 and 1');
    }
    const seq =
      rule.seq === undefined || typeof rule.seq === 'function' ? rule.seq : BigInt(rule.seq);
    this.rules.push({
      rule: { ...rule },
      direction: rule.direction ?? 'to-manager',
      seq,
      skip: rule.skip ?? 0,
      times: rule.times ?? 1,
      probability,
      matched: 0,
      applied: 0,
    });
  }

  /** Remove every fault rule. Messages already held or delayed are still delivered. */
  clearFaults(): void {
    this.rules = [];
  }

  /** Answer the next `times` StartAcks (or EndAcks) with `status` instead of the real one. */
  forceStatus(response: AckType, status: Status, times = 1): void {
    this.forced[response] = { status, times: Math.max(0, times) };
  }

  /** While silent the manager handles everything and answers nothing. */
  setSilent(silent: boolean): void {
    this.silent = silent;
  }

  get stats(): MockManagerStats {
    return { ...this.counters, faults: { ...this.faultCounters } };
  }

  /** Live sessions. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Clear every timer and drop sessions and held messages; later messages are ignored. */
  async close(): Promise<void> {
    this.closed = true;
    for (const session of this.sessions.values()) clearTimeout(session.timer);
    this.sessions.clear();
    this.lastSession = undefined;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.heldToManager = [];
    this.heldToAgent = [];
  }

  // ---- incoming -------------------------------------------------------------

  /** Verify, then handle; `faults`: whether the to-manager fault rules apply. */
  private handle(bytes: Uint8Array, module: string, reply: ReplyFunction, faults: boolean): void {
    const type = verifyMessage(bytes);
    if (type === MessageType.DataValue) {
      // Most messages: read only what is needed now straight from the verified buffer.
      const table = contentTable(bytes);
      const op = readU8(bytes, table, DV_OPERATION);
      if (op !== WireOperation.Upsert && op !== WireOperation.Delete) {
        // Out of range: decodeMessage would refuse it.
        this.counters.messagesReceived++;
        this.rejectInvalid('undecodable buffer', module);
      } else if (!faults) {
        this.counters.messagesReceived++;
        this.onDataValue(bytes, table, op);
      } else {
        const seq = readU64(bytes, table, DV_SEQ);
        this.receiveWithFaults(bytes, 'DataValue', seq, module, reply, () => {
          this.counters.messagesReceived++;
          this.onDataValue(bytes, table, op);
        });
      }
      return;
    }
    const decoded = type === null ? null : (decodeMessage(bytes) as OtherMessage | null);
    if (decoded === null) {
      this.counters.messagesReceived++;
      this.rejectInvalid('undecodable buffer', module);
    } else if (!faults) {
      this.process(decoded, bytes, module, reply);
    } else {
      this.receiveWithFaults(bytes, decoded.type, undefined, module, reply, () =>
        this.process(decoded, bytes, module, reply),
      );
    }
  }

  private receiveWithFaults(
    message: Uint8Array,
    type: string,
    seq: bigint | undefined,
    module: string,
    reply: ReplyFunction,
    deliver: () => void,
  ): void {
    const rule = this.pickFault('to-manager', type, seq, module);
    if (rule === undefined) {
      deliver();
      return;
    }
    switch (rule.action) {
      case 'drop':
        this.faultCounters.dropped++;
        this.report('debug', `fault: dropped ${type} from '${module}'`);
        return;
      case 'duplicate': {
        this.faultCounters.duplicated++;
        // Handling the first copy may answer a sender that then reuses its buffer.
        const again = message.slice();
        deliver();
        this.handle(again, module, reply, false);
        return;
      }
      case 'delay': {
        this.faultCounters.delayed++;
        // The sender reuses its buffer once receive() returns.
        const bytes = message.slice();
        this.schedule(rule.delayMs ?? DEFAULT_DELAY_MS, () =>
          this.receiveBytes(bytes, module, reply),
        );
        return;
      }
      case 'reorder':
        this.faultCounters.reordered++;
        this.heldToManager.push({ bytes: message.slice(), module, reply });
        return;
    }
  }

  /** Handle bytes a fault held back; faults do not apply twice. */
  private receiveBytes(bytes: Uint8Array, module: string, reply: ReplyFunction): void {
    if (this.closed) return;
    try {
      this.handle(bytes, module, reply, false);
    } catch (error) {
      this.report('error', `failed to handle a message from '${module}': ${describe(error)}`);
    }
  }

  /** `bytes`: the verified message `message` was decoded from. */
  private process(
    message: OtherMessage,
    bytes: Uint8Array,
    module: string,
    reply: ReplyFunction,
  ): void {
    this.counters.messagesReceived++;
    switch (message.type) {
      case 'Start':
        this.onStart(message, module, reply);
        return;
      case 'End':
        this.onEnd(message);
        return;
      case 'ChecksumModule':
        this.onChecksumModule(message);
        return;
      case 'DataClean':
        this.onDataClean(message, bytes);
        return;
      default:
        this.rejectInvalid(`unexpected ${message.type}, which only the manager sends`, module);
    }
  }

  private rejectInvalid(reason: string, module: string): void {
    this.counters.invalidMessages++;
    this.report('warn', `invalid message from '${module}': ${reason}`);
  }

  private onStart(message: StartMessage, module: string, reply: ReplyFunction): void {
    let status: Status = Status.Ok;
    if (!this.indexerAvailable) {
      status = Status.Offline;
      this.report('info', `Start from '${module}' refused: indexer unavailable`);
    } else if (WireMode[message.mode] === undefined) {
      status = Status.Error;
      this.report('warn', `Start from '${module}' refused: unknown mode ${message.mode}`);
    } else if (
      message.size === 0n &&
      (message.mode === WireMode.ModuleFull || message.mode === WireMode.ModuleDelta)
    ) {
      status = Status.Error;
      this.report('warn', `Start from '${module}' refused: size 0 in ${WireMode[message.mode]}`);
    } else if (message.size > this.maxSessionSize) {
      status = Status.Error;
      this.report('warn', `Start from '${module}' refused: size ${message.size} above the cap`);
    }

    const answered = this.ackStatus('StartAck', status);
    if (status !== Status.Ok || (answered !== Status.Ok && answered !== Status.PartialOk)) {
      // No session behind a refusal, real or forced; a forced Ok on a refused Start carries id 0.
      this.sendResponse('StartAck', this.encoder.startAck(answered, 0n), module, reply);
      return;
    }

    const id = this.newSessionId();
    const size = Number(message.size);
    const session: Session = {
      id,
      idLow: Number(id & 0xffff_ffffn),
      idHigh: Number(id >> 32n),
      module,
      agentId: message.agentid ?? '',
      mode: message.mode,
      size,
      contiguous: 0,
      scattered: new Set(),
      chunks: [],
      filled: [],
      checksums: new Map(),
      endReceived: false,
      reply,
      timer: setTimeout(() => this.expire(session), this.sessionTimeoutMs),
    };
    // A forgotten session must not keep the test process alive.
    session.timer.unref();
    this.sessions.set(id, session);
    this.counters.sessionsStarted++;
    if (session.agentId === '')
      this.report('warn', `session ${id} from '${module}' has no agent id`);
    this.report('debug', `session ${id} started: ${WireMode[message.mode]}, size ${session.size}`);
    this.sendResponse('StartAck', this.encoder.startAck(answered, id), module, reply);
  }

  /** `table`: the DataValue table of the verified `bytes`; `op`: its operation, a valid one. */
  private onDataValue(bytes: Uint8Array, table: number, op: WireOperation): void {
    this.counters.dataValuesReceived++;
    const session = this.dataValueSession(bytes, table);
    if (session === undefined) {
      const seq = readU64(bytes, table, DV_SEQ);
      const id = readU64(bytes, table, DV_SESSION);
      this.report('warn', `DataValue seq ${seq} for unknown session ${id}`);
      return;
    }
    const seqAt = fieldAt(bytes, table, DV_SEQ);
    const seqLow = seqAt === 0 ? 0 : u32(bytes, table + seqAt);
    const seqHigh = seqAt === 0 ? 0 : u32(bytes, table + seqAt + 4);
    // Absent strings and data read as empty, as decodeMessage gives them.
    const data = op === WireOperation.Upsert ? vectorAt(bytes, table, DV_DATA) : -1;
    const id = vectorAt(bytes, table, DV_ID);
    const index = vectorAt(bytes, table, DV_INDEX);
    this.store(session, seqLow, seqHigh, op, bytes, data, id, index);
  }

  private dataValueSession(bytes: Uint8Array, table: number): Session | undefined {
    const at = fieldAt(bytes, table, DV_SESSION);
    const low = at === 0 ? 0 : u32(bytes, table + at);
    const high = at === 0 ? 0 : u32(bytes, table + at + 4);
    const last = this.lastSession;
    if (last !== undefined && last.idLow === low && last.idHigh === high) return last;
    const session = this.sessions.get(toBigInt(low, high));
    if (session !== undefined) this.lastSession = session;
    return session;
  }

  private onDataClean(message: DataCleanMessage, bytes: Uint8Array): void {
    const session = this.sessions.get(message.session);
    if (session === undefined) {
      this.report('warn', `DataClean seq ${message.seq} for unknown session ${message.session}`);
      return;
    }
    const low = Number(BigInt.asUintN(32, message.seq));
    const index = vectorAt(bytes, contentTable(bytes), DC_INDEX);
    this.store(session, low, Number(message.seq >> 32n), CLEAN, bytes, -1, -1, index);
  }

  /**
   * Store the item of `seq` (in u32 halves) in `session`; `data`, `id` and
   * `index` are the positions of vectors in the verified `bytes`, -1 for none.
   */
  private store(
    session: Session,
    seqLow: number,
    seqHigh: number,
    kind: number,
    bytes: Uint8Array,
    data: number,
    id: number,
    index: number,
  ): void {
    // Inexact only far above every allowed size.
    const n = seqHigh * 2 ** 32 + seqLow;
    if (n >= session.size) {
      const seq = toBigInt(seqLow, seqHigh);
      this.report('warn', `seq ${seq} ignored: session ${session.id} has size ${session.size}`);
      return;
    }
    session.timer.refresh();
    let duplicate = false;
    if (n === session.contiguous) {
      let next = n + 1;
      const { scattered } = session;
      while (scattered.size > 0 && scattered.delete(next)) next++;
      session.contiguous = next;
    } else if (n < session.contiguous || session.scattered.has(n)) {
      duplicate = true;
    } else {
      session.scattered.add(n);
    }

    const dataLength = data < 0 ? 0 : u32(bytes, data);
    const idLength = id < 0 ? 0 : u32(bytes, id);
    const indexLength = index < 0 ? 0 : u32(bytes, index);
    const length = RECORD_HEADER + dataLength + idLength + indexLength;
    const { chunks, filled } = session;
    const last = chunks.length - 1;
    let chunk = chunks[last];
    let at = filled[last] as number;
    if (chunk === undefined || chunk.length - at < length) {
      const grown = chunk === undefined ? MIN_CHUNK : Math.min(chunk.length * 2, MAX_CHUNK);
      chunk = Buffer.allocUnsafe(Math.max(grown, length));
      chunks.push(chunk);
      filled.push(0);
      at = 0;
    }
    putU32(chunk, at, seqLow);
    putU32(chunk, at + 4, seqHigh);
    putU32(chunk, at + 8, kind);
    putU32(chunk, at + 12, dataLength);
    putU32(chunk, at + 16, idLength);
    putU32(chunk, at + 20, indexLength);
    let end = at + RECORD_HEADER;
    if (dataLength > 0) chunk.set(bytes.subarray(data + 4, data + 4 + dataLength), end);
    end += dataLength;
    for (let i = id + 4, stop = i + idLength; i < stop; i++) chunk[end++] = bytes[i] as number;
    for (let i = index + 4, stop = i + indexLength; i < stop; i++) {
      chunk[end++] = bytes[i] as number;
    }
    filled[filled.length - 1] = end;

    if (duplicate) {
      this.counters.duplicatesReceived++;
      const seq = toBigInt(seqLow, seqHigh);
      this.report('debug', `seq ${seq} of session ${session.id} received again, overwritten`);
    } else if (session.endReceived && received(session) === session.size) {
      // The last retransmission completes the session without another End.
      this.finish(session);
    }
  }

  private onChecksumModule(message: ChecksumModuleMessage): void {
    const session = this.sessions.get(message.session);
    if (session === undefined) {
      this.report('warn', `ChecksumModule for unknown session ${message.session}`);
      return;
    }
    session.timer.refresh();
    session.checksums.set(message.index, message.checksum);
  }

  private onEnd(message: EndMessage): void {
    const session = this.sessions.get(message.session);
    if (session === undefined) {
      this.report('warn', `End for unknown session ${message.session}`);
      return;
    }
    session.timer.refresh();
    session.endReceived = true;
    if (received(session) === session.size) {
      this.finish(session);
      return;
    }
    const ranges = missingRanges(session);
    this.counters.reqRetsSent++;
    this.report('debug', `session ${session.id}: asking for ${ranges.length} missing range(s)`);
    this.sendResponse(
      'ReqRet',
      this.encoder.reqRet(session.id, ranges),
      session.module,
      session.reply,
    );
  }

  private expire(session: Session): void {
    if (this.sessions.get(session.id) !== session) return;
    this.forget(session);
    this.counters.sessionsTimedOut++;
    this.report('warn', `session ${session.id} of '${session.module}' timed out, dropped`);
  }

  // ---- indexing -------------------------------------------------------------

  private forget(session: Session): void {
    this.sessions.delete(session.id);
    if (this.lastSession === session) this.lastSession = undefined;
  }

  private finish(session: Session): void {
    clearTimeout(session.timer);
    this.forget(session);
    const ok = this.complete(session);
    if (ok) this.counters.sessionsCompleted++;
    else this.counters.sessionsFailed++;
    const status = this.ackStatus('EndAck', ok ? Status.Ok : Status.Error);
    this.sendResponse(
      'EndAck',
      this.encoder.endAck(status, session.id),
      session.module,
      session.reply,
    );
  }

  private complete(session: Session): boolean {
    switch (session.mode) {
      case WireMode.ModuleFull:
      case WireMode.ModuleDelta:
        return this.index(session);
      case WireMode.ModuleCheck:
        return this.check(session);
      default:
        // Metadata and group sessions: the mock indexer keeps no agent metadata.
        return true;
    }
  }

  /**
   * Validate a Full/Delta session; when all is valid it is written (atomically)
   * before the index is next read, see {@link flush}.
   */
  private index(session: Session): boolean {
    const { id } = session;
    if (!this.indexerAvailable) {
      this.report('error', `session ${id}: indexer unavailable, nothing indexed`);
      return false;
    }
    if (this.indexingFailures > 0) {
      this.indexingFailures--;
      this.report('error', `session ${id}: indexer failure (scripted), nothing indexed`);
      return false;
    }
    const records = recordsOf(session);
    for (let seq = 0; seq < session.size; seq++) {
      const chunk = session.chunks[records.chunk[seq] as number] as Buffer;
      const at = records.offset[seq] as number;
      const kind = u32(chunk, at + 8);
      if (kind === WireOperation.Upsert) {
        const start = at + RECORD_HEADER;
        const end = start + u32(chunk, at + 12);
        if (isJsonBytes(chunk, start, end)) continue;
        // Refused: the real decoding and parse give the reason for the log.
        try {
          // Buffer's own decoding is much faster than TextDecoder for small documents; isUtf8
          // keeps the strictness (invalid UTF-8 fails the session, as a real parser would).
          if (!isUtf8(chunk.subarray(start, end))) throw new Error('invalid UTF-8');
          JSON.parse(chunk.toString('utf8', start, end));
        } catch (error) {
          this.report('error', `session ${id}: seq ${seq} is not valid JSON (${describe(error)})`);
          return false;
        }
      } else if (kind !== WireOperation.Delete && kind !== CLEAN) {
        this.report('error', `session ${id}: seq ${seq} has invalid operation ${kind}`);
        return false;
      }
    }
    this.pending.push({ session, records });
    this.pendingItems += session.size;
    // Bounds what a manager whose index nobody reads keeps pending.
    if (this.pendingItems > MAX_PENDING_ITEMS) this.flush();
    this.report('debug', `session ${id}: indexed ${session.size} item(s)`);
    return true;
  }

  /** Write the pending sessions to the index, in the order they ended. */
  private flush(): void {
    if (this.pending.length === 0) return;
    const pending = this.pending;
    this.pending = [];
    this.pendingItems = 0;
    for (const { session, records } of pending) this.write(session, records);
  }

  private write(session: Session, records: Records): void {
    const { agentId, module } = session;
    if (session.mode === WireMode.ModuleFull) {
      // Delete-by-query of everything this agent's module had before.
      for (const docs of this.indices.values()) {
        for (const [key, doc] of docs) {
          if (doc.agentId === agentId && doc.module === module) docs.delete(key);
        }
      }
    }
    for (let seq = 0; seq < session.size; seq++) {
      const chunk = session.chunks[records.chunk[seq] as number] as Buffer;
      const at = records.offset[seq] as number;
      const kind = u32(chunk, at + 8);
      const dataStart = at + RECORD_HEADER;
      const idStart = dataStart + u32(chunk, at + 12);
      const indexStart = idStart + u32(chunk, at + 16);
      const index = utf8.decode(chunk.subarray(indexStart, indexStart + u32(chunk, at + 20)));
      if (kind === CLEAN) {
        const docs = this.indices.get(index);
        if (docs === undefined) continue;
        for (const [key, doc] of docs) if (doc.agentId === agentId) docs.delete(key);
        continue;
      }
      const itemId = utf8.decode(chunk.subarray(idStart, indexStart));
      const docId = `${agentId}_${itemId}`;
      if (kind === WireOperation.Delete) {
        this.indices.get(index)?.delete(docId);
        continue;
      }
      let docs = this.indices.get(index);
      if (docs === undefined) {
        docs = new Map();
        this.indices.set(index, docs);
      }
      docs.set(docId, {
        index,
        id: docId,
        itemId,
        agentId,
        module,
        data: undefined,
        raw: chunk,
        start: dataStart,
        end: idStart,
      });
    }
  }

  private check(session: Session): boolean {
    const { id } = session;
    if (!this.indexerAvailable) {
      this.report('error', `session ${id}: indexer unavailable, cannot check`);
      return false;
    }
    if (session.checksums.size === 0) {
      this.report('warn', `session ${id}: Check session without a ChecksumModule`);
      return false;
    }
    for (const [index, checksum] of session.checksums) {
      const actual = this.indexChecksum(session.agentId, index);
      if (actual !== checksum.toLowerCase()) {
        this.report('info', `session ${id}: checksum mismatch on '${index}'`);
        return false;
      }
    }
    return true;
  }

  private *agentDocuments(agentId: string, index: string): Generator<unknown> {
    this.flush();
    const docs = this.indices.get(index);
    if (docs === undefined) return;
    for (const doc of docs.values()) if (doc.agentId === agentId) yield documentData(doc);
  }

  // ---- outgoing -------------------------------------------------------------

  private ackStatus(type: AckType, status: Status): Status {
    const forced = this.forced[type];
    if (this.silent || forced.times <= 0) return status;
    forced.times--;
    this.faultCounters.forcedStatus++;
    return forced.status;
  }

  /** `view` is the encoder's buffer, valid until its next call. */
  private sendResponse(
    type: ResponseType,
    view: Uint8Array,
    module: string,
    reply: ReplyFunction,
  ): void {
    if (this.silent) return;
    const bytes = view.slice();
    const held = this.heldToAgent.length > 0 ? this.takeHeld('to-agent') : undefined;
    const rule =
      this.rules.length > 0 ? this.pickFault('to-agent', type, undefined, module) : undefined;
    switch (rule?.action) {
      case undefined:
        this.deliver(bytes, reply);
        break;
      case 'drop':
        this.faultCounters.dropped++;
        this.report('debug', `fault: dropped ${type} to '${module}'`);
        break;
      case 'duplicate':
        this.faultCounters.duplicated++;
        this.deliver(bytes, reply);
        this.deliver(bytes.slice(), reply);
        break;
      case 'delay':
        this.faultCounters.delayed++;
        this.schedule(rule.delayMs ?? DEFAULT_DELAY_MS, () => this.invokeReply(bytes, reply));
        break;
      case 'reorder':
        this.faultCounters.reordered++;
        this.heldToAgent.push({ bytes, module, reply });
        break;
    }
    if (held !== undefined) for (const h of held) this.deliver(h.bytes, h.reply);
  }

  private deliver(bytes: Uint8Array, reply: ReplyFunction): void {
    switch (this.delivery) {
      case 'sync':
        this.invokeReply(bytes, reply);
        return;
      case 'microtask':
        queueMicrotask(() => this.invokeReply(bytes, reply));
        return;
      case 'macrotask':
        setImmediate(() => this.invokeReply(bytes, reply));
        return;
    }
  }

  private invokeReply(bytes: Uint8Array, reply: ReplyFunction): void {
    if (this.closed) return;
    try {
      reply(bytes);
    } catch (error) {
      // In 'sync' mode this would otherwise surface inside the agent's send().
      this.report('error', `response listener threw: ${describe(error)}`);
    }
  }

  // ---- faults ---------------------------------------------------------------

  private pickFault(
    direction: FaultDirection,
    type: string,
    seq: bigint | undefined,
    module: string,
  ): FaultRule | undefined {
    let chosen: RuleState | undefined;
    for (const state of this.rules) {
      if (!this.matches(state, direction, type, seq, module)) continue;
      // Every matching rule counts the match, so `skip` means the same whichever rule fires.
      state.matched++;
      if (chosen !== undefined || state.matched <= state.skip || state.applied >= state.times) {
        continue;
      }
      if (state.probability < 1 && this.random() >= state.probability) continue;
      chosen = state;
    }
    if (chosen === undefined) return undefined;
    chosen.applied++;
    if (chosen.applied >= chosen.times) this.rules = this.rules.filter((s) => s !== chosen);
    return chosen.rule;
  }

  private matches(
    state: RuleState,
    direction: FaultDirection,
    type: string,
    seq: bigint | undefined,
    module: string,
  ): boolean {
    const { rule } = state;
    if (state.direction !== direction) return false;
    if (rule.type !== undefined && rule.type !== type) return false;
    if (rule.module !== undefined && rule.module !== module) return false;
    if (state.seq === undefined) return true;
    if (seq === undefined) return false;
    return typeof state.seq === 'function' ? state.seq(seq) : state.seq === seq;
  }

  private takeHeld(direction: FaultDirection): Held[] {
    if (direction === 'to-manager') {
      const held = this.heldToManager;
      this.heldToManager = [];
      return held;
    }
    const held = this.heldToAgent;
    this.heldToAgent = [];
    return held;
  }

  private schedule(delayMs: number, task: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (!this.closed) task();
    }, delayMs);
    this.timers.add(timer);
  }

  // ---- helpers --------------------------------------------------------------

  private newSessionId(): bigint {
    for (;;) {
      const id = randomBytes(8).readBigUInt64LE(0);
      // 0 is what Offline/Error answers carry, so a live session never gets it.
      if (id !== 0n && !this.sessions.has(id)) return id;
    }
  }

  private report(level: LogLevel, message: string): void {
    this.log(level, message);
  }
}

/** Missing seqs of a session as sorted, merged inclusive ranges. */
function missingRanges(session: Session): SeqRange[] {
  // Sorting the scattered seqs costs O(received), not O(size), for sparse sessions.
  const seen = Float64Array.from(session.scattered).sort();
  const ranges: SeqRange[] = [];
  let next = session.contiguous;
  for (const seq of seen) {
    if (seq > next) ranges.push({ begin: BigInt(next), end: BigInt(seq - 1) });
    next = seq + 1;
  }
  if (next < session.size) ranges.push({ begin: BigInt(next), end: BigInt(session.size - 1) });
  return ranges;
}

function received(session: Session): number {
  return session.contiguous + session.scattered.size;
}

/** The last record of each seq of a session that has them all. */
function recordsOf(session: Session): Records {
  const records: Records = {
    chunk: new Int32Array(session.size),
    offset: new Int32Array(session.size),
  };
  const { chunks, filled } = session;
  for (let c = 0; c < chunks.length; c++) {
    const chunk = chunks[c] as Buffer;
    for (let at = 0, end = filled[c] as number; at < end; ) {
      const seq = u32(chunk, at) + u32(chunk, at + 4) * 2 ** 32;
      records.chunk[seq] = c;
      records.offset[seq] = at;
      at += RECORD_HEADER + u32(chunk, at + 12) + u32(chunk, at + 16) + u32(chunk, at + 20);
    }
  }
  return records;
}

/** The decoder of src/wire/decode.ts: keeps a leading BOM, replaces invalid UTF-8. */
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

/** The parsed JSON of a document, parsed on first use. */
function documentData(doc: IndexedDocument): unknown {
  if (doc.raw !== undefined) {
    // Validated when its session ended, so this does not throw.
    doc.data = JSON.parse(doc.raw.toString('utf8', doc.start, doc.end));
    doc.raw = undefined;
  }
  return doc.data;
}

function toBigInt(low: number, high: number): bigint {
  return (BigInt(high) << 32n) | BigInt(low);
}

// ---- reading a verified message ------------------------------------------------
// verifyMessage checked every offset these follow, so they stay in bounds.

type OtherMessage = Exclude<DecodedMessage, DataValueMessage>;

// vtable slots of DataValue's and DataClean's fields.
const DV_SEQ = 4;
const DV_SESSION = 6;
const DV_OPERATION = 8;
const DV_ID = 10;
const DV_INDEX = 12;
const DV_DATA = 16;
const DC_INDEX = 8;

function u16(bytes: Uint8Array, at: number): number {
  return (bytes[at] as number) | ((bytes[at + 1] as number) << 8);
}

function u32(bytes: Uint8Array, at: number): number {
  return (
    ((bytes[at] as number) |
      ((bytes[at + 1] as number) << 8) |
      ((bytes[at + 2] as number) << 16) |
      ((bytes[at + 3] as number) << 24)) >>>
    0
  );
}

/** Offset of a field in the table at `table`; 0 when absent. */
function fieldAt(bytes: Uint8Array, table: number, slot: number): number {
  const vtable = table - (u32(bytes, table) | 0);
  return slot < u16(bytes, vtable) ? u16(bytes, vtable + slot) : 0;
}

/** Position of the Message's content table (the verifier requires one). */
function contentTable(bytes: Uint8Array): number {
  const root = u32(bytes, 0);
  const at = root + fieldAt(bytes, root, 6);
  return at + u32(bytes, at);
}

function readU8(bytes: Uint8Array, table: number, slot: number): number {
  const at = fieldAt(bytes, table, slot);
  return at === 0 ? 0 : (bytes[table + at] as number);
}

/** Position of the length word of a string or vector field; -1 when absent. */
function vectorAt(bytes: Uint8Array, table: number, slot: number): number {
  const at = fieldAt(bytes, table, slot);
  return at === 0 ? -1 : table + at + u32(bytes, table + at);
}

function putU32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value;
  bytes[at + 1] = value >>> 8;
  bytes[at + 2] = value >>> 16;
  bytes[at + 3] = value >>> 24;
}

function readU64(bytes: Uint8Array, table: number, slot: number): bigint {
  const at = fieldAt(bytes, table, slot);
  return at === 0 ? 0n : toBigInt(u32(bytes, table + at), u32(bytes, table + at + 4));
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
