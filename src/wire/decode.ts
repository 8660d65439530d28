import { ByteBuffer, Encoding } from 'flatbuffers';
import { ChecksumModule } from './generated/wazuh/sync-schema/checksum-module.js';
import { DataClean } from './generated/wazuh/sync-schema/data-clean.js';
import { DataValue } from './generated/wazuh/sync-schema/data-value.js';
import { End } from './generated/wazuh/sync-schema/end.js';
import { EndAck } from './generated/wazuh/sync-schema/end-ack.js';
import { Message } from './generated/wazuh/sync-schema/message.js';
import { MessageType } from './generated/wazuh/sync-schema/message-type.js';
import type { Mode as WireMode } from './generated/wazuh/sync-schema/mode.js';
import type { Operation as WireOperation } from './generated/wazuh/sync-schema/operation.js';
import { Pair } from './generated/wazuh/sync-schema/pair.js';
import { ReqRet } from './generated/wazuh/sync-schema/req-ret.js';
import { Start } from './generated/wazuh/sync-schema/start.js';
import { StartAck } from './generated/wazuh/sync-schema/start-ack.js';
import type { Status } from './generated/wazuh/sync-schema/status.js';
import type {
  AgentMessage,
  DecodedMessage,
  ManagerResponse,
  SeqRange,
  StartMessage,
} from './types.js';
import { verifyMessage } from './verify.js';

// Highest declared value of each wire enum; anything else is rejected.
const MAX_MODE = 6;
const MAX_OPERATION = 1;
const MAX_STATUS = 3;

// ignoreBOM keeps a leading U+FEFF in the string, so text round-trips exactly
// (the runtime's own decoder would strip it). Invalid UTF-8 becomes U+FFFD,
// as the schema's strings are not validated by FlatBuffers either.
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

/** Thrown inside a read when a value is outside its declared range; caught below. */
class Invalid extends Error {}

function inRange(value: number, max: number): number {
  if (value < 0 || value > max) throw new Invalid();
  return value;
}

function text(bytes: string | Uint8Array | null): string | undefined {
  if (bytes === null) return undefined;
  return typeof bytes === 'string' ? bytes : utf8.decode(bytes);
}

/**
 * Reads a vector of strings. Several elements may legally point at the same
 * string; decoding each once keeps the output proportional to the input
 * (otherwise a 64 KB datagram could expand into gigabytes of JS strings).
 */
function textList(length: number, get: (i: number) => string | Uint8Array): string[] {
  const out: string[] = new Array(length);
  const seen = new Map<number, string>();
  for (let i = 0; i < length; i++) {
    const raw = get(i);
    if (typeof raw === 'string') {
      out[i] = raw;
      continue;
    }
    let value = seen.get(raw.byteOffset);
    if (value === undefined) {
      value = utf8.decode(raw);
      seen.set(raw.byteOffset, value);
    }
    out[i] = value;
  }
  return out;
}

function readStart(t: Start): StartMessage {
  const message: StartMessage = {
    type: 'Start',
    mode: inRange(t.mode(), MAX_MODE) as WireMode,
    size: t.size(),
    index: textList(t.indexLength(), (i) => t.index(i, Encoding.UTF8_BYTES)),
    first: t.first(),
    groups: textList(t.groupsLength(), (i) => t.groups(i, Encoding.UTF8_BYTES)),
  };
  // Absent optional strings stay absent (no key), mirroring the encoder.
  const optional = [
    ['architecture', t.architecture(Encoding.UTF8_BYTES)],
    ['hostname', t.hostname(Encoding.UTF8_BYTES)],
    ['osname', t.osname(Encoding.UTF8_BYTES)],
    ['ostype', t.ostype(Encoding.UTF8_BYTES)],
    ['osversion', t.osversion(Encoding.UTF8_BYTES)],
    ['agentversion', t.agentversion(Encoding.UTF8_BYTES)],
    ['agentname', t.agentname(Encoding.UTF8_BYTES)],
    ['agentid', t.agentid(Encoding.UTF8_BYTES)],
    ['checksumMetadata', t.checksumMetadata(Encoding.UTF8_BYTES)],
    ['globalVersion', t.globalVersion(Encoding.UTF8_BYTES)],
  ] as const;
  for (const [key, raw] of optional) {
    const value = text(raw);
    if (value !== undefined) message[key] = value;
  }
  return message;
}

function readRanges(t: ReqRet): SeqRange[] {
  const length = t.seqLength();
  const ranges: SeqRange[] = new Array(length);
  // Slots may share one Pair table (legal FlatBuffers): a hostile ReqRet of a few MB can hold a
  // million slots. Reading each table's two u64s once keeps that to a lookup per slot; the
  // runtime's u64 read builds each bigint from parts and dominated the cost.
  const read = new Map<number, SeqRange>();
  const pair = new Pair();
  for (let i = 0; i < length; i++) {
    if (t.seq(i, pair) === null) throw new Invalid();
    let range = read.get(pair.bb_pos);
    if (range === undefined) {
      range = { begin: pair.begin(), end: pair.end() };
      read.set(pair.bb_pos, range);
    }
    ranges[i] = { begin: range.begin, end: range.end };
  }
  return ranges;
}

/** Reads a verified buffer. Strings the schema does not mark optional read as '' when absent. */
function read(bytes: Uint8Array, type: MessageType): DecodedMessage {
  const message = Message.getRootAsMessage(new ByteBuffer(bytes));
  switch (type) {
    case MessageType.DataValue: {
      const t: DataValue = message.content(new DataValue());
      const data = t.dataArray();
      const value: DecodedMessage = {
        type: 'DataValue',
        seq: t.seq(),
        session: t.session(),
        operation: inRange(t.operation(), MAX_OPERATION) as WireOperation,
        id: text(t.id(Encoding.UTF8_BYTES)) ?? '',
        index: text(t.index(Encoding.UTF8_BYTES)) ?? '',
        // A view, not a copy: the generated accessor gives Int8Array over the
        // same memory. Absent data is an empty view, so data is always a view.
        data:
          data === null
            ? bytes.subarray(0, 0)
            : new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      };
      const version = text(t.version(Encoding.UTF8_BYTES));
      if (version !== undefined) value.version = version;
      return value;
    }
    case MessageType.DataClean: {
      const t: DataClean = message.content(new DataClean());
      return {
        type: 'DataClean',
        seq: t.seq(),
        session: t.session(),
        index: text(t.index(Encoding.UTF8_BYTES)) ?? '',
      };
    }
    case MessageType.ChecksumModule: {
      const t: ChecksumModule = message.content(new ChecksumModule());
      return {
        type: 'ChecksumModule',
        session: t.session(),
        index: text(t.index(Encoding.UTF8_BYTES)) ?? '',
        checksum: text(t.checksum(Encoding.UTF8_BYTES)) ?? '',
      };
    }
    case MessageType.Start:
      return readStart(message.content(new Start()));
    case MessageType.End: {
      const t: End = message.content(new End());
      return { type: 'End', session: t.session() };
    }
    case MessageType.StartAck: {
      const t: StartAck = message.content(new StartAck());
      return {
        type: 'StartAck',
        status: inRange(t.status(), MAX_STATUS) as Status,
        session: t.session(),
      };
    }
    case MessageType.EndAck: {
      const t: EndAck = message.content(new EndAck());
      return {
        type: 'EndAck',
        status: inRange(t.status(), MAX_STATUS) as Status,
        session: t.session(),
      };
    }
    case MessageType.ReqRet: {
      const t: ReqRet = message.content(new ReqRet());
      return { type: 'ReqRet', session: t.session(), ranges: readRanges(t) };
    }
    default:
      throw new Invalid();
  }
}

function decodeAs(
  bytes: Uint8Array,
  accept: (type: MessageType) => boolean,
): DecodedMessage | null {
  const type = verifyMessage(bytes);
  if (type === null || !accept(type)) return null;
  try {
    return read(bytes, type);
  } catch {
    // Out-of-range enums land here; anything else would be a verifier gap,
    // and null is still the right answer for the caller.
    return null;
  }
}

const anyType = (): boolean => true;
const isManagerResponse = (type: MessageType): boolean =>
  type === MessageType.StartAck || type === MessageType.EndAck || type === MessageType.ReqRet;
const isAgentMessage = (type: MessageType): boolean =>
  type === MessageType.Start ||
  type === MessageType.DataValue ||
  type === MessageType.DataClean ||
  type === MessageType.ChecksumModule ||
  type === MessageType.End;

/**
 * Verifies and decodes any Message. Returns null for anything that is not a
 * well-formed message with in-range enum values; never throws. u64 fields are
 * bigints, and DataValue.data is a view into `bytes` (no copy).
 */
export function decodeMessage(bytes: Uint8Array): DecodedMessage | null {
  return decodeAs(bytes, anyType);
}

/** Like decodeMessage, but only accepts what the manager sends: StartAck, EndAck, ReqRet. */
export function decodeManagerResponse(bytes: Uint8Array): ManagerResponse | null {
  return decodeAs(bytes, isManagerResponse) as ManagerResponse | null;
}

/** Like decodeMessage, but only accepts what an agent sends: Start, DataValue, DataClean, ChecksumModule, End. */
export function decodeAgentMessage(bytes: Uint8Array): AgentMessage | null {
  return decodeAs(bytes, isAgentMessage) as AgentMessage | null;
}
