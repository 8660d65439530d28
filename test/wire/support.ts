// Test support for the wire codec, also loaded by scripts/wire-fixtures.mjs:
// re-encoding decoded messages, and mapping between our message objects and
// the JSON that flatc reads and prints (snake_case names, enum names, u64
// values as exact integer literals).
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type DecodedMessage,
  type MessageEncoder,
  Status,
  WireMode,
  WireOperation,
} from '../../src/wire/index.js';

export const FIXTURE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'wire');

/** Encodes a decoded message again; the result is the encoder's reused buffer. */
export function encodeDecoded(encoder: MessageEncoder, m: DecodedMessage): Uint8Array {
  switch (m.type) {
    case 'Start':
      return encoder.start(m);
    case 'DataValue':
      return encoder.dataValue(m.seq, m.session, m.operation, m.id, m.index, m.data, m.version);
    case 'DataClean':
      return encoder.dataClean(m.seq, m.session, m.index);
    case 'ChecksumModule':
      return encoder.checksumModule(m.session, m.index, m.checksum);
    case 'End':
      return encoder.end(m.session);
    case 'StartAck':
      return encoder.startAck(m.status, m.session);
    case 'EndAck':
      return encoder.endAck(m.status, m.session);
    case 'ReqRet':
      return encoder.reqRet(m.session, m.ranges);
  }
}

const MARK = '~bigint~';

/** JSON.parse that keeps every integer exact, as a bigint (flatc prints u64 as plain numbers). */
export function parseJsonBigInt(text: string): unknown {
  // Quote numbers outside strings; string literals are matched first and kept.
  const marked = text.replace(/"(?:[^"\\]|\\.)*"|-?\d+/g, (m) =>
    m.startsWith('"') ? m : `"${MARK}${m}"`,
  );
  return JSON.parse(marked, (_key, value) =>
    typeof value === 'string' && value.startsWith(MARK) ? BigInt(value.slice(MARK.length)) : value,
  );
}

/** JSON.stringify that writes bigints as exact integer literals. */
export function stringifyJsonBigInt(value: unknown): string {
  const text = JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? `${MARK}${v}` : v), 2);
  return text.replace(new RegExp(`"${MARK}(-?\\d+)"`, 'g'), '$1');
}

/** Our message as flatc's JSON (fields in declaration order, so flatc lays them out like our encoder). */
export function toFlatcJson(m: DecodedMessage): Record<string, unknown> {
  const { type } = m;
  let content: Record<string, unknown>;
  switch (m.type) {
    case 'Start': {
      content = {
        mode: WireMode[m.mode],
        size: m.size,
        index: m.index,
        first: m.first,
        architecture: m.architecture,
        hostname: m.hostname,
        osname: m.osname,
        ostype: m.ostype,
        osversion: m.osversion,
        agentversion: m.agentversion,
        agentname: m.agentname,
        agentid: m.agentid,
        groups: m.groups,
        checksum_metadata: m.checksumMetadata,
        global_version: m.globalVersion,
      };
      break;
    }
    case 'DataValue':
      content = {
        seq: m.seq,
        session: m.session,
        operation: WireOperation[m.operation],
        id: m.id,
        index: m.index,
        version: m.version,
        // [byte] is signed.
        data: Array.from(m.data, (b) => (b << 24) >> 24),
      };
      break;
    case 'DataClean':
      content = { seq: m.seq, session: m.session, index: m.index };
      break;
    case 'ChecksumModule':
      content = { session: m.session, index: m.index, checksum: m.checksum };
      break;
    case 'End':
      content = { session: m.session };
      break;
    case 'StartAck':
    case 'EndAck':
      content = { status: Status[m.status], session: m.session };
      break;
    case 'ReqRet':
      content = { seq: m.ranges.map((r) => ({ begin: r.begin, end: r.end })), session: m.session };
      break;
  }
  // JSON.stringify drops undefined: absent optional strings stay absent.
  return { content_type: type, content };
}

type Json = Record<string, unknown>;

const big = (v: unknown): bigint => (v === undefined ? 0n : (v as bigint));
const str = (v: unknown): string => (v === undefined ? '' : (v as string));
const enumValue = <T>(names: Record<string, T | string>, v: unknown, fallback: T): T =>
  v === undefined ? fallback : typeof v === 'bigint' ? (Number(v) as T) : (names[v as string] as T);

/** flatc's JSON (parsed with parseJsonBigInt) as our decoded message; absent fields take schema defaults. */
export function fromFlatcJson(json: Json): DecodedMessage {
  const c = (json.content ?? {}) as Json;
  const type = json.content_type as DecodedMessage['type'];
  switch (type) {
    case 'Start': {
      const m: DecodedMessage = {
        type,
        mode: enumValue(WireMode, c.mode, WireMode.ModuleFull),
        size: big(c.size),
        index: (c.index ?? []) as string[],
        first: c.first === true,
        groups: (c.groups ?? []) as string[],
      };
      const optional = [
        ['architecture', 'architecture'],
        ['hostname', 'hostname'],
        ['osname', 'osname'],
        ['ostype', 'ostype'],
        ['osversion', 'osversion'],
        ['agentversion', 'agentversion'],
        ['agentname', 'agentname'],
        ['agentid', 'agentid'],
        ['checksumMetadata', 'checksum_metadata'],
        ['globalVersion', 'global_version'],
      ] as const;
      for (const [key, name] of optional) {
        if (c[name] !== undefined) m[key] = c[name] as string;
      }
      return m;
    }
    case 'DataValue': {
      const m: DecodedMessage = {
        type,
        seq: big(c.seq),
        session: big(c.session),
        operation: enumValue(WireOperation, c.operation, WireOperation.Upsert),
        id: str(c.id),
        index: str(c.index),
        data: Uint8Array.from((c.data ?? []) as bigint[], (b) => Number(b) & 0xff),
      };
      if (c.version !== undefined) m.version = c.version as string;
      return m;
    }
    case 'DataClean':
      return { type, seq: big(c.seq), session: big(c.session), index: str(c.index) };
    case 'ChecksumModule':
      return { type, session: big(c.session), index: str(c.index), checksum: str(c.checksum) };
    case 'End':
      return { type, session: big(c.session) };
    case 'StartAck':
    case 'EndAck':
      return { type, status: enumValue(Status, c.status, Status.Ok), session: big(c.session) };
    case 'ReqRet':
      return {
        type,
        session: big(c.session),
        ranges: ((c.seq ?? []) as Json[]).map((p) => ({ begin: big(p.begin), end: big(p.end) })),
      };
    default:
      throw new Error(`unknown content_type ${String(type)}`);
  }
}

/** One committed fixture: flatc's binary and the JSON it was built from. */
export interface Fixture {
  name: string;
  bytes: Uint8Array;
  expected: DecodedMessage;
}

export interface EncoderCheck {
  name: string;
  /** Our encoder's bytes for the fixture's values, base64. */
  ours: string;
  /** What `flatc --json --raw-binary` printed for those bytes. */
  flatcJson: string;
  sameJsonAsFlatcBinary: boolean;
  sameBytesAsFlatcBinary: boolean;
}

export function fixtureNames(): string[] {
  return readdirSync(FIXTURE_DIR)
    .filter((file) => file.endsWith('.bin'))
    .map((file) => file.slice(0, -'.bin'.length))
    .sort();
}

export function loadFixture(name: string): Fixture {
  const bytes = new Uint8Array(readFileSync(join(FIXTURE_DIR, `${name}.bin`)));
  const json = parseJsonBigInt(readFileSync(join(FIXTURE_DIR, `${name}.json`), 'utf8')) as Json;
  return { name, bytes, expected: fromFlatcJson(json) };
}

export function loadEncoderChecks(): EncoderCheck[] {
  return JSON.parse(
    readFileSync(join(FIXTURE_DIR, 'encoder-check.json'), 'utf8'),
  ) as EncoderCheck[];
}
