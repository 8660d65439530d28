import { Builder } from 'flatbuffers';
import { ChecksumModule } from './generated/wazuh/sync-schema/checksum-module.js';
import { DataClean } from './generated/wazuh/sync-schema/data-clean.js';
import { DataValue } from './generated/wazuh/sync-schema/data-value.js';
import { End } from './generated/wazuh/sync-schema/end.js';
import { EndAck } from './generated/wazuh/sync-schema/end-ack.js';
import { Message } from './generated/wazuh/sync-schema/message.js';
import { MessageType } from './generated/wazuh/sync-schema/message-type.js';
import type { Operation as WireOperation } from './generated/wazuh/sync-schema/operation.js';
import { Pair } from './generated/wazuh/sync-schema/pair.js';
import { ReqRet } from './generated/wazuh/sync-schema/req-ret.js';
import { Start } from './generated/wazuh/sync-schema/start.js';
import { StartAck } from './generated/wazuh/sync-schema/start-ack.js';
import type { Status } from './generated/wazuh/sync-schema/status.js';
import type { SeqRange, StartFields } from './types.js';

const MAX_U64 = 0xffff_ffff_ffff_ffffn;
const utf8 = new TextEncoder();

/** Highest declared value of each wire enum (all start at 0). */
const MAX_MODE = 6;
const MAX_OPERATION = 1;
const MAX_STATUS = 3;

function checkU64(name: string, value: bigint): bigint {
  // typeof guards against plain numbers slipping in from untyped callers: the
  // builder would silently mangle them.
  if (typeof value !== 'bigint' || value < 0n || value > MAX_U64) {
    throw new RangeError(`${name} must be a bigint in 0..2^64-1, got ${String(value)}`);
  }
  return value;
}

function checkEnum(name: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${name} must be an integer in 0..${max}, got ${String(value)}`);
  }
  return value;
}

/**
 * Builds wire messages with one reused FlatBuffers builder, so encoding does
 * not allocate a new backing buffer per message once it has grown to the
 * largest message seen.
 *
 * Every method returns a view into the builder's internal buffer: it is only
 * valid until the next call on the same encoder. Copy it (`slice()`) to keep it.
 *
 * Children are created in declaration order and table fields added the way
 * flatc's C++ code does (largest scalars first, then offsets in reverse
 * declaration order, then bytes): that minimizes padding and gives the same
 * bytes as `flatc -b` for every fixture (scripts/wire-fixtures.mjs checks it).
 * Throws RangeError for a u64 outside 0..2^64-1 or an enum value outside its
 * declared range, before touching the builder.
 */
export class MessageEncoder {
  readonly #builder: Builder;
  /** Reused offsets of ReqRet pairs and Start string vectors. */
  readonly #offsets: number[] = [];
  /** Reused UTF-8 staging area for strings. */
  #scratch = new Uint8Array(1024);

  constructor(initialSize = 1024) {
    this.#builder = new Builder(initialSize);
  }

  start(fields: StartFields): Uint8Array {
    const mode = checkEnum('mode', fields.mode, MAX_MODE);
    const size = checkU64('size', fields.size);
    const b = this.#builder;
    b.clear();
    // Children first, in declaration order, as flatc does when parsing JSON.
    const index = this.#stringVector(fields.index);
    const architecture = this.#optionalString(fields.architecture);
    const hostname = this.#optionalString(fields.hostname);
    const osname = this.#optionalString(fields.osname);
    const ostype = this.#optionalString(fields.ostype);
    const osversion = this.#optionalString(fields.osversion);
    const agentversion = this.#optionalString(fields.agentversion);
    const agentname = this.#optionalString(fields.agentname);
    const agentid = this.#optionalString(fields.agentid);
    const groups = fields.groups === undefined ? 0 : this.#stringVector(fields.groups);
    const checksumMetadata = this.#optionalString(fields.checksumMetadata);
    const globalVersion = this.#optionalString(fields.globalVersion);

    Start.startStart(b);
    Start.addSize(b, size);
    // addFieldOffset skips offset 0, so absent optional strings stay absent.
    Start.addGlobalVersion(b, globalVersion);
    Start.addChecksumMetadata(b, checksumMetadata);
    Start.addGroups(b, groups);
    Start.addAgentid(b, agentid);
    Start.addAgentname(b, agentname);
    Start.addAgentversion(b, agentversion);
    Start.addOsversion(b, osversion);
    Start.addOstype(b, ostype);
    Start.addOsname(b, osname);
    Start.addHostname(b, hostname);
    Start.addArchitecture(b, architecture);
    Start.addIndex(b, index);
    Start.addFirst(b, fields.first === true);
    Start.addMode(b, mode);
    return this.#finish(MessageType.Start, Start.endStart(b));
  }

  /**
   * `data` is the document; a string is written as its UTF-8 bytes (plus a
   * trailing 0 that readers of `[byte]` treat as padding), which saves the
   * caller a separate encode step.
   */
  dataValue(
    seq: bigint,
    session: bigint,
    operation: WireOperation,
    id: string,
    index: string,
    data: string | Uint8Array,
    version?: string,
  ): Uint8Array {
    checkU64('seq', seq);
    checkU64('session', session);
    checkEnum('operation', operation, MAX_OPERATION);
    const b = this.#builder;
    b.clear();
    const idOff = this.#string(id);
    const indexOff = this.#string(index);
    const versionOff = version === undefined ? 0 : this.#string(version);
    const dataOff = typeof data === 'string' ? this.#string(data) : b.createByteVector(data);

    DataValue.startDataValue(b);
    DataValue.addSession(b, session);
    DataValue.addSeq(b, seq);
    DataValue.addData(b, dataOff);
    DataValue.addVersion(b, versionOff);
    DataValue.addIndex(b, indexOff);
    DataValue.addId(b, idOff);
    DataValue.addOperation(b, operation);
    return this.#finish(MessageType.DataValue, DataValue.endDataValue(b));
  }

  dataClean(seq: bigint, session: bigint, index: string): Uint8Array {
    checkU64('seq', seq);
    checkU64('session', session);
    const b = this.#builder;
    b.clear();
    const indexOff = this.#string(index);
    DataClean.startDataClean(b);
    DataClean.addSession(b, session);
    DataClean.addSeq(b, seq);
    DataClean.addIndex(b, indexOff);
    return this.#finish(MessageType.DataClean, DataClean.endDataClean(b));
  }

  checksumModule(session: bigint, index: string, checksum: string): Uint8Array {
    checkU64('session', session);
    const b = this.#builder;
    b.clear();
    const indexOff = this.#string(index);
    const checksumOff = this.#string(checksum);
    ChecksumModule.startChecksumModule(b);
    ChecksumModule.addSession(b, session);
    ChecksumModule.addChecksum(b, checksumOff);
    ChecksumModule.addIndex(b, indexOff);
    return this.#finish(MessageType.ChecksumModule, ChecksumModule.endChecksumModule(b));
  }

  end(session: bigint): Uint8Array {
    checkU64('session', session);
    const b = this.#builder;
    b.clear();
    End.startEnd(b);
    End.addSession(b, session);
    return this.#finish(MessageType.End, End.endEnd(b));
  }

  startAck(status: Status, session: bigint): Uint8Array {
    checkEnum('status', status, MAX_STATUS);
    checkU64('session', session);
    const b = this.#builder;
    b.clear();
    StartAck.startStartAck(b);
    StartAck.addSession(b, session);
    StartAck.addStatus(b, status);
    return this.#finish(MessageType.StartAck, StartAck.endStartAck(b));
  }

  endAck(status: Status, session: bigint): Uint8Array {
    checkEnum('status', status, MAX_STATUS);
    checkU64('session', session);
    const b = this.#builder;
    b.clear();
    EndAck.startEndAck(b);
    EndAck.addSession(b, session);
    EndAck.addStatus(b, status);
    return this.#finish(MessageType.EndAck, EndAck.endEndAck(b));
  }

  reqRet(session: bigint, ranges: readonly SeqRange[]): Uint8Array {
    checkU64('session', session);
    for (const range of ranges) {
      checkU64('range.begin', range.begin);
      checkU64('range.end', range.end);
    }
    const b = this.#builder;
    b.clear();
    const pairs = this.#offsets;
    pairs.length = 0;
    for (const range of ranges) {
      Pair.startPair(b);
      Pair.addEnd(b, range.end);
      Pair.addBegin(b, range.begin);
      pairs.push(Pair.endPair(b));
    }
    const seq = this.#offsetVector(pairs);
    ReqRet.startReqRet(b);
    ReqRet.addSession(b, session);
    ReqRet.addSeq(b, seq);
    return this.#finish(MessageType.ReqRet, ReqRet.endReqRet(b));
  }

  /**
   * builder.createString(string) calls TextEncoder.encode, which allocates a
   * new buffer per string and was most of the encode time; encodeInto a
   * reused buffer is several times faster. The builder copies the bytes and
   * adds the terminating 0.
   */
  #string(value: string): number {
    // UTF-8 needs at most 3 bytes per UTF-16 code unit.
    const max = value.length * 3;
    if (this.#scratch.length < max)
      this.#scratch = new Uint8Array(Math.max(max, 2 * this.#scratch.length));
    const { written } = utf8.encodeInto(value, this.#scratch);
    return this.#builder.createString(this.#scratch.subarray(0, written));
  }

  #optionalString(value: string | undefined): number {
    return value === undefined ? 0 : this.#string(value);
  }

  #stringVector(values: readonly string[]): number {
    const offsets = this.#offsets;
    offsets.length = 0;
    for (const value of values) offsets.push(this.#string(value));
    return this.#offsetVector(offsets);
  }

  /** A vector of offsets; elements are written back to front, as the builder grows downwards. */
  #offsetVector(offsets: readonly number[]): number {
    const b = this.#builder;
    b.startVector(4, offsets.length, 4);
    for (let i = offsets.length - 1; i >= 0; i--) b.addOffset(offsets[i] as number);
    return b.endVector();
  }

  #finish(type: MessageType, content: number): Uint8Array {
    const b = this.#builder;
    Message.startMessage(b);
    Message.addContent(b, content);
    Message.addContentType(b, type);
    b.finish(Message.endMessage(b));
    return b.asUint8Array();
  }
}
