import { ByteBuffer, Encoding } from 'flatbuffers';
import { ChecksumModule } from './generated/wazuh/sync-schema/checksum-module.js';
import { Cleans } from './generated/wazuh/sync-schema/cleans.js';
import { DataClean } from './generated/wazuh/sync-schema/data-clean.js';
import { DataContext } from './generated/wazuh/sync-schema/data-context.js';
import { DataValue } from './generated/wazuh/sync-schema/data-value.js';
import { FullSession } from './generated/wazuh/sync-schema/full-session.js';
import { Message } from './generated/wazuh/sync-schema/message.js';
import { MessageType } from './generated/wazuh/sync-schema/message-type.js';
import { Mode } from './generated/wazuh/sync-schema/mode.js';
import { Operation } from './generated/wazuh/sync-schema/operation.js';
import { Option } from './generated/wazuh/sync-schema/option.js';
import { SessionPayload } from './generated/wazuh/sync-schema/session-payload.js';
import type { Start } from './generated/wazuh/sync-schema/start.js';
import { SyncData } from './generated/wazuh/sync-schema/sync-data.js';
import type {
  DecodedDataContext,
  DecodedDataValue,
  DecodedPayload,
  DecodedStart,
  DecodeFailure,
  DecodeResult,
} from './types.js';
import { verifyMessage } from './verify.js';

// ignoreBOM keeps a leading U+FEFF in the string, so text round-trips exactly
// (the runtime's own decoder would strip it). Invalid UTF-8 becomes U+FFFD,
// as the schema's strings are not validated by FlatBuffers either.
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

/**
 * Strings longer than this are decoded once per position in the buffer.
 * Shorter ones cost about as much to decode again as to look up, and each
 * use of one costs the buffer at least its 4-byte offset, so decoding them
 * at every use keeps the output proportional to the input anyway.
 */
const SHARED_STRING_MIN = 64;

/** Thrown inside a read when an enum is outside its declared range; caught below. */
class OutOfRange extends Error {
  constructor(readonly field: 'mode' | 'option' | 'operation') {
    super(field);
  }
}

const MALFORMED: DecodeFailure = Object.freeze({ ok: false, error: 'malformed' });
const MISSING_START: DecodeFailure = Object.freeze({ ok: false, error: 'missing-start' });

function inRange<T extends number>(
  value: number,
  max: number,
  field: 'mode' | 'option' | 'operation',
): T {
  if (value < 0 || value > max) throw new OutOfRange(field);
  return value as T;
}

/**
 * Reads one verified buffer. Legal FlatBuffers may point many offsets at one
 * string or table (the reference never does); decoding each of those once
 * keeps the output proportional to the input, where decoding at every use
 * would let a few MB expand into gigabytes of JS strings and objects.
 */
class Reader {
  readonly #strings = new Map<number, string>();
  readonly #values = new Map<number, DecodedDataValue>();
  readonly #contexts = new Map<number, DecodedDataContext>();
  readonly #bytes: Uint8Array;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  /** A string field; absent reads as '', as the manager's accessors give it. */
  text(raw: string | Uint8Array | null): string {
    if (raw === null) return '';
    if (typeof raw === 'string') return raw;
    if (raw.length <= SHARED_STRING_MIN) return utf8.decode(raw);
    let value = this.#strings.get(raw.byteOffset);
    if (value === undefined) {
      value = utf8.decode(raw);
      this.#strings.set(raw.byteOffset, value);
    }
    return value;
  }

  textList(length: number, get: (i: number) => string | Uint8Array): string[] {
    const out: string[] = new Array(length);
    for (let i = 0; i < length; i++) out[i] = this.text(get(i));
    return out;
  }

  /** A `[byte]` field as a view (no copy); absent reads as an empty view. */
  view(data: Int8Array | null): Uint8Array {
    return data === null
      ? this.#bytes.subarray(0, 0)
      : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }

  start(t: Start): DecodedStart {
    return {
      module: this.text(t.module(Encoding.UTF8_BYTES)),
      mode: inRange<Mode>(t.mode(), Mode.GroupCheck, 'mode'),
      index: this.textList(t.indexLength(), (i) => t.index(i, Encoding.UTF8_BYTES)),
      option: inRange<Option>(t.option(), Option.VDSync, 'option'),
      architecture: this.text(t.architecture(Encoding.UTF8_BYTES)),
      hostname: this.text(t.hostname(Encoding.UTF8_BYTES)),
      osname: this.text(t.osname(Encoding.UTF8_BYTES)),
      osplatform: this.text(t.osplatform(Encoding.UTF8_BYTES)),
      ostype: this.text(t.ostype(Encoding.UTF8_BYTES)),
      osversion: this.text(t.osversion(Encoding.UTF8_BYTES)),
      agentversion: this.text(t.agentversion(Encoding.UTF8_BYTES)),
      agentname: this.text(t.agentname(Encoding.UTF8_BYTES)),
      agentid: this.text(t.agentid(Encoding.UTF8_BYTES)),
      groups: this.textList(t.groupsLength(), (i) => t.groups(i, Encoding.UTF8_BYTES)),
      globalVersion: t.globalVersion(),
      clusterName: this.text(t.clusterName(Encoding.UTF8_BYTES)),
      feedOffset: t.feedOffset(),
    };
  }

  syncData(t: SyncData): DecodedPayload {
    const values: DecodedDataValue[] = new Array(t.valuesLength());
    const value = new DataValue();
    for (let i = 0; i < values.length; i++) {
      if (t.values(i, value) === null) throw new Error('verified vector has a hole');
      let decoded = this.#values.get(value.bb_pos);
      if (decoded === undefined) {
        decoded = {
          operation: inRange<Operation>(value.operation(), Operation.Delete, 'operation'),
          id: this.text(value.id(Encoding.UTF8_BYTES)),
          index: this.text(value.index(Encoding.UTF8_BYTES)),
          version: value.version(),
          data: this.view(value.dataArray()),
        };
        this.#values.set(value.bb_pos, decoded);
      }
      values[i] = decoded;
    }
    const contexts: DecodedDataContext[] = new Array(t.contextsLength());
    const context = new DataContext();
    for (let i = 0; i < contexts.length; i++) {
      if (t.contexts(i, context) === null) throw new Error('verified vector has a hole');
      let decoded = this.#contexts.get(context.bb_pos);
      if (decoded === undefined) {
        decoded = {
          id: this.text(context.id(Encoding.UTF8_BYTES)),
          index: this.text(context.index(Encoding.UTF8_BYTES)),
          data: this.view(context.dataArray()),
        };
        this.#contexts.set(context.bb_pos, decoded);
      }
      contexts[i] = decoded;
    }
    return { type: 'SyncData', values, contexts };
  }

  cleans(t: Cleans): DecodedPayload {
    const indices: string[] = new Array(t.itemsLength());
    const item = new DataClean();
    for (let i = 0; i < indices.length; i++) {
      if (t.items(i, item) === null) throw new Error('verified vector has a hole');
      indices[i] = this.text(item.index(Encoding.UTF8_BYTES));
    }
    return { type: 'Cleans', indices };
  }

  checksum(t: ChecksumModule): DecodedPayload {
    return {
      type: 'ChecksumModule',
      index: this.text(t.index(Encoding.UTF8_BYTES)),
      checksum: this.text(t.checksum(Encoding.UTF8_BYTES)),
    };
  }

  /** The FullSession of a buffer verified as one. */
  read(): DecodeResult {
    const message = Message.getRootAsMessage(new ByteBuffer(this.#bytes));
    const session: FullSession = message.content(new FullSession());
    const start = session.start();
    if (start === null) return MISSING_START;
    const decodedStart = this.start(start);
    let payload: DecodedPayload | null;
    switch (session.payloadType()) {
      case SessionPayload.NONE:
        payload = null;
        break;
      case SessionPayload.SyncData:
        payload = this.syncData(session.payload(new SyncData()));
        break;
      case SessionPayload.Cleans:
        payload = this.cleans(session.payload(new Cleans()));
        break;
      case SessionPayload.ChecksumModule:
        payload = this.checksum(session.payload(new ChecksumModule()));
        break;
      default:
        // The verifier refuses unknown tags; reaching this is a verifier gap.
        return MALFORMED;
    }
    return { ok: true, session: { start: decodedStart, payload } };
  }
}

/**
 * Verifies and decodes a Message{FullSession}, such as a /stateful request
 * body. Never throws, whatever the input: a buffer that is not a well-formed
 * FullSession with in-range enums gives a DecodeFailure saying why. u64
 * fields are bigints; document data are views into `bytes` (no copy), so
 * they are valid as long as `bytes` is unchanged.
 *
 * Work and output are bounded by the input's size (see verify.ts and
 * Reader). The decoder is stricter than the manager in places (see
 * verify.ts for unions; the manager does not range-check Option, nor
 * Operation before its per-document processing), so a mock that must answer
 * as the manager does should look at why a body failed.
 */
export function decodeFullSession(bytes: Uint8Array): DecodeResult {
  const type = verifyMessage(bytes);
  if (type === null) return MALFORMED;
  if (type !== MessageType.FullSession) return { ok: false, error: 'not-full-session', type };
  try {
    return new Reader(bytes).read();
  } catch (error) {
    if (error instanceof OutOfRange) {
      return { ok: false, error: 'enum-out-of-range', field: error.field };
    }
    // Anything else would be a verifier gap, and 'malformed' is still the
    // right answer for the caller.
    return MALFORMED;
  }
}
