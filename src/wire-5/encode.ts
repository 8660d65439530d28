import { Builder } from 'flatbuffers';
import { ChecksumModule } from './generated/wazuh/sync-schema/checksum-module.js';
import { Cleans } from './generated/wazuh/sync-schema/cleans.js';
import { DataClean } from './generated/wazuh/sync-schema/data-clean.js';
import { DataContext } from './generated/wazuh/sync-schema/data-context.js';
import { DataValue } from './generated/wazuh/sync-schema/data-value.js';
import { FullSession } from './generated/wazuh/sync-schema/full-session.js';
import { Message } from './generated/wazuh/sync-schema/message.js';
import { MessageType } from './generated/wazuh/sync-schema/message-type.js';
import { Mode } from './generated/wazuh/sync-schema/mode.js';
import { Option } from './generated/wazuh/sync-schema/option.js';
import { SessionPayload } from './generated/wazuh/sync-schema/session-payload.js';
import { Start } from './generated/wazuh/sync-schema/start.js';
import { SyncData } from './generated/wazuh/sync-schema/sync-data.js';
import type { DataContextInput, DataValueInput, PayloadInput, StartFields } from './types.js';

const MAX_U64 = 0xffff_ffff_ffff_ffffn;
const utf8 = new TextEncoder();

/** Highest declared value of each wire enum (all start at 0). */
const MAX_MODE = Mode.GroupCheck;
const MAX_OPERATION = 1;
const MAX_OPTION = Option.VDSync;

/**
 * Strings up to this many UTF-16 code units go through the reused scratch
 * buffer; longer ones (documents, mostly) are encoded on their own, so one
 * huge document does not leave a scratch buffer of three times its size
 * behind for the encoder's lifetime.
 */
const SCRATCH_MAX_UNITS = 64 * 1024;

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

const isVD = (option: Option): boolean => option === Option.VDFirst || option === Option.VDSync;
const isMetadataOrGroup = (mode: Mode): boolean => mode >= Mode.MetadataDelta;

/** The manager's mode x payload matrix (fullSessionValidator.cpp, modeAcceptsPayload). */
function modeAccepts(mode: Mode, payload: PayloadInput | null): boolean {
  switch (mode) {
    case Mode.ModuleDelta:
      return payload?.type === 'SyncData' || payload?.type === 'Cleans';
    case Mode.ModuleCheck:
      return payload?.type === 'ChecksumModule';
    default:
      return payload === null;
  }
}

/**
 * Throws RangeError unless `start` and the payload kind form a session the
 * reference agent builds: only those fields set that it sets for the kind.
 */
function checkStart(start: StartFields, payload: PayloadInput | null): void {
  const mode = checkEnum('mode', start.mode, MAX_MODE) as Mode;
  const option = checkEnum('option', start.option, MAX_OPTION) as Option;
  if (!modeAccepts(mode, payload)) {
    const kind = payload === null ? 'no payload' : payload.type;
    throw new RangeError(`mode ${Mode[mode]} does not take ${kind} (the manager answers 400)`);
  }
  // The reference adds global_version only when its caller passes one, and
  // only synchronizeMetadataOrGroups does (always).
  if (isMetadataOrGroup(mode)) {
    if (start.globalVersion === undefined) {
      throw new RangeError(`globalVersion is required for mode ${Mode[mode]}`);
    }
    checkU64('globalVersion', start.globalVersion);
  } else if (start.globalVersion !== undefined) {
    throw new RangeError(`globalVersion is for metadata and group syncs, not ${Mode[mode]}`);
  }
  // The reference adds feed_offset exactly when the option is a VD one, and
  // refuses to build such a session before the manager has reported a
  // non-zero offset (0 would be elided as the default anyway). Only Deltas
  // and Cleans carry an option other than Sync.
  if (isVD(option)) {
    if (mode !== Mode.ModuleDelta) {
      throw new RangeError(`option ${Option[option]} is for ModuleDelta sessions only`);
    }
    if (start.feedOffset === undefined || checkU64('feedOffset', start.feedOffset) === 0n) {
      throw new RangeError(`option ${Option[option]} needs a feedOffset > 0`);
    }
  } else if (start.feedOffset !== undefined) {
    throw new RangeError(`feedOffset is for VDFirst/VDSync sessions, not ${Option[option]}`);
  }
}

/**
 * Builds Wazuh 5.0 FullSession messages (schemas/fullSession.fbs) with one
 * reused FlatBuffers builder, so encoding does not allocate a new backing
 * buffer per session once the builder has grown to the largest one seen. The
 * builder grows by doubling and each item is written into it once, so a
 * session of n bytes costs O(n) copying; items are pulled from iterables one
 * at a time, so no array of the whole session is ever needed. The flip side
 * of the reuse: the encoder keeps the largest buffer it has needed (the next
 * power of two above the largest session) until it is dropped.
 *
 * `encode` returns a view into the builder's buffer, valid only until the
 * next `encode` on the same encoder (a failed one included). Copy it
 * (`slice()`) to keep it.
 *
 * Objects are created and fields added in exactly the order of the reference
 * agent (`waitMetadataAndBuildStart` and `buildFullSessionMessage` in wazuh/
 * wazuh agent_sync_protocol.cpp), so for the same session the bytes are the
 * agent's: test/fixtures/wire-5 holds the bytes of scripts/wire-5-reference.cpp,
 * which drives the C++ builder the same way, and the tests compare.
 *
 * Throws RangeError for a u64 outside 0..2^64-1, an enum value outside its
 * declared range, or a session the reference never builds and the manager
 * refuses (see `encode`); Start problems are found before the builder is
 * touched, item problems when the item is reached.
 */
export class FullSessionEncoder {
  readonly #builder: Builder;
  /** Reused offsets of the Start string vectors and of the payload's items. */
  readonly #strings: number[] = [];
  readonly #values: number[] = [];
  readonly #contexts: number[] = [];
  readonly #cleans: number[] = [];
  /** Reused UTF-8 staging area for short strings. */
  #scratch = new Uint8Array(1024);

  constructor(initialSize = 1024) {
    this.#builder = new Builder(initialSize);
  }

  /**
   * Encodes `Message{FullSession{start, payload}}`; `payload` null is no
   * payload (metadata and group syncs).
   *
   * Which Start fields are written follows the reference: all strings and
   * both lists always; `globalVersion` exactly for Metadata and Group modes;
   * `feedOffset` (> 0) exactly for the VDFirst/VDSync options, which only
   * ModuleDelta sessions carry. The mode must take the payload as the manager's
   * matrix says: ModuleDelta SyncData or Cleans, ModuleCheck ChecksumModule,
   * the others none; SyncData needs a value and Cleans an index. Scalars
   * equal to their default (mode ModuleDelta, option Sync, operation Upsert,
   * version 0) are left out of the buffer, as every FlatBuffers builder does.
   */
  encode(start: StartFields, payload: PayloadInput | null): Uint8Array {
    checkStart(start, payload);
    const b = this.#builder;
    b.clear();
    this.#values.length = 0;
    this.#contexts.length = 0;
    this.#cleans.length = 0;
    const startOff = this.#start(start);

    // Every child before its parent, as the reference builds them: items,
    // then the payload's vectors and table, then FullSession and Message.
    let payloadType = SessionPayload.NONE;
    let payloadOff = 0;
    if (payload !== null) {
      switch (payload.type) {
        case 'SyncData': {
          for (const value of payload.values) this.#values.push(this.#dataValue(value));
          if (this.#values.length === 0) {
            throw new RangeError('SyncData needs at least one value (the manager answers 400)');
          }
          for (const context of payload.contexts ?? []) {
            this.#contexts.push(this.#dataContext(context));
          }
          // The reference always writes both vectors, contexts even when empty.
          const values = this.#offsetVector(this.#values);
          const contexts = this.#offsetVector(this.#contexts);
          SyncData.startSyncData(b);
          SyncData.addValues(b, values);
          SyncData.addContexts(b, contexts);
          payloadType = SessionPayload.SyncData;
          payloadOff = SyncData.endSyncData(b);
          break;
        }
        case 'Cleans': {
          for (const index of payload.indices) {
            const indexOff = this.#string(index);
            DataClean.startDataClean(b);
            DataClean.addIndex(b, indexOff);
            this.#cleans.push(DataClean.endDataClean(b));
          }
          if (this.#cleans.length === 0) {
            throw new RangeError('Cleans needs at least one index (the manager answers 400)');
          }
          const items = this.#offsetVector(this.#cleans);
          Cleans.startCleans(b);
          Cleans.addItems(b, items);
          payloadType = SessionPayload.Cleans;
          payloadOff = Cleans.endCleans(b);
          break;
        }
        case 'ChecksumModule': {
          const indexOff = this.#string(payload.index);
          const checksumOff = this.#string(payload.checksum);
          ChecksumModule.startChecksumModule(b);
          ChecksumModule.addIndex(b, indexOff);
          ChecksumModule.addChecksum(b, checksumOff);
          payloadType = SessionPayload.ChecksumModule;
          payloadOff = ChecksumModule.endChecksumModule(b);
          break;
        }
      }
    }

    FullSession.startFullSession(b);
    FullSession.addStart(b, startOff);
    if (payloadType !== SessionPayload.NONE) {
      FullSession.addPayloadType(b, payloadType);
      FullSession.addPayload(b, payloadOff);
    }
    const session = FullSession.endFullSession(b);
    // CreateMessage (C++) adds the offset before the tag: largest field first.
    Message.startMessage(b);
    Message.addContent(b, session);
    Message.addContentType(b, MessageType.FullSession);
    b.finish(Message.endMessage(b));
    return b.asUint8Array();
  }

  /** The Start table; its children in the reference's creation order, which is not the field order. */
  #start(s: StartFields): number {
    const b = this.#builder;
    const module = this.#string(s.module);
    const groupStrings = this.#strings;
    groupStrings.length = 0;
    for (const group of s.groups) groupStrings.push(this.#string(group));
    const architecture = this.#string(s.architecture);
    const hostname = this.#string(s.hostname);
    const osname = this.#string(s.osname);
    const ostype = this.#string(s.ostype);
    const osplatform = this.#string(s.osplatform);
    const osversion = this.#string(s.osversion);
    const agentversion = this.#string(s.agentversion);
    const agentname = this.#string(s.agentname);
    const agentid = this.#string(s.agentid);
    const clusterName = this.#string(s.clusterName);
    const groups = this.#offsetVector(groupStrings);
    const indexStrings = this.#strings;
    indexStrings.length = 0;
    for (const index of s.index) indexStrings.push(this.#string(index));
    const index = this.#offsetVector(indexStrings);

    Start.startStart(b);
    Start.addModule(b, module);
    Start.addMode(b, s.mode);
    Start.addIndex(b, index);
    Start.addOption(b, s.option);
    Start.addArchitecture(b, architecture);
    Start.addHostname(b, hostname);
    Start.addOsname(b, osname);
    Start.addOsplatform(b, osplatform);
    Start.addOstype(b, ostype);
    Start.addOsversion(b, osversion);
    Start.addAgentversion(b, agentversion);
    Start.addAgentname(b, agentname);
    Start.addAgentid(b, agentid);
    Start.addGroups(b, groups);
    Start.addClusterName(b, clusterName);
    // checkStart has made these defined exactly when the reference adds them.
    if (s.globalVersion !== undefined) Start.addGlobalVersion(b, s.globalVersion);
    if (s.feedOffset !== undefined) Start.addFeedOffset(b, s.feedOffset);
    return Start.endStart(b);
  }

  #dataValue(value: DataValueInput): number {
    const operation = checkEnum('operation', value.operation, MAX_OPERATION);
    const version = value.version === undefined ? 0n : checkU64('version', value.version);
    const b = this.#builder;
    const id = this.#string(value.id);
    const index = this.#string(value.index);
    const data = this.#bytes(value.data);
    DataValue.startDataValue(b);
    DataValue.addId(b, id);
    DataValue.addIndex(b, index);
    DataValue.addVersion(b, version);
    DataValue.addOperation(b, operation);
    DataValue.addData(b, data);
    return DataValue.endDataValue(b);
  }

  #dataContext(context: DataContextInput): number {
    const b = this.#builder;
    const id = this.#string(context.id);
    const index = this.#string(context.index);
    const data = this.#bytes(context.data);
    DataContext.startDataContext(b);
    DataContext.addId(b, id);
    DataContext.addIndex(b, index);
    DataContext.addData(b, data);
    return DataContext.endDataContext(b);
  }

  /**
   * builder.createString(string) calls TextEncoder.encode, which allocates a
   * new buffer per string; encodeInto a reused buffer is several times
   * faster. The builder copies the bytes and adds the terminating 0.
   */
  #string(value: string): number {
    return this.#builder.createString(this.#utf8(value));
  }

  /** A `[byte]` vector: no terminator, unlike a string (the reference uses CreateVector). */
  #bytes(data: Uint8Array | string): number {
    return this.#builder.createByteVector(typeof data === 'string' ? this.#utf8(data) : data);
  }

  /** UTF-8 of `value`; short strings as a view of the scratch buffer, valid until the next call. */
  #utf8(value: string): Uint8Array {
    if (value.length > SCRATCH_MAX_UNITS) return utf8.encode(value);
    // UTF-8 needs at most 3 bytes per UTF-16 code unit.
    const max = value.length * 3;
    if (this.#scratch.length < max) {
      this.#scratch = new Uint8Array(Math.max(max, 2 * this.#scratch.length));
    }
    const { written } = utf8.encodeInto(value, this.#scratch);
    return this.#scratch.subarray(0, written);
  }

  /** A vector of offsets; elements are written back to front, as the builder grows downwards. */
  #offsetVector(offsets: readonly number[]): number {
    const b = this.#builder;
    b.startVector(4, offsets.length, 4);
    for (let i = offsets.length - 1; i >= 0; i--) b.addOffset(offsets[i] as number);
    return b.endVector();
  }
}
