// fast-check arbitraries for wire messages, shared by the round-trip and fuzz tests.
import fc from 'fast-check';
import {
  type DecodedMessage,
  type Status,
  type WireMode,
  WireOperation,
} from '../../src/wire/index.js';

const MAX_U64 = 2n ** 64n - 1n;
export const U64S = [0n, 1n, 2n ** 53n + 1n, MAX_U64];
// Includes a leading BOM and an embedded NUL, which naive UTF-8 handling loses.
export const STRINGS = ['', 'plain', 'ñandú 日本語 🦊', '\u{FEFF}bom first', 'nul\u0000inside'];

const u64 = fc.oneof(fc.constantFrom(...U64S), fc.bigInt({ min: 0n, max: MAX_U64 }));
const text = fc.oneof(fc.constantFrom(...STRINGS), fc.string({ unit: 'binary', maxLength: 40 }));
const optionalText = fc.option(text, { nil: undefined });

export const arbitraryMessage: fc.Arbitrary<DecodedMessage> = fc.oneof(
  fc.record({
    type: fc.constant('Start' as const),
    mode: fc.integer({ min: 0, max: 6 }) as fc.Arbitrary<WireMode>,
    size: u64,
    index: fc.array(text, { maxLength: 5 }),
    first: fc.boolean(),
    groups: fc.array(text, { maxLength: 3 }),
    architecture: optionalText,
    hostname: optionalText,
    agentid: optionalText,
    checksumMetadata: optionalText,
    globalVersion: optionalText,
  }),
  fc.record(
    {
      type: fc.constant('DataValue' as const),
      seq: u64,
      session: u64,
      operation: fc.constantFrom(WireOperation.Upsert, WireOperation.Delete),
      id: text,
      index: text,
      version: text,
      data: fc.uint8Array({ maxLength: 300 }),
    },
    { requiredKeys: ['type', 'seq', 'session', 'operation', 'id', 'index', 'data'] },
  ),
  fc.record({ type: fc.constant('DataClean' as const), seq: u64, session: u64, index: text }),
  fc.record({
    type: fc.constant('ChecksumModule' as const),
    session: u64,
    index: text,
    checksum: text,
  }),
  fc.record({ type: fc.constant('End' as const), session: u64 }),
  fc.record({
    type: fc.constantFrom('StartAck' as const, 'EndAck' as const),
    status: fc.integer({ min: 0, max: 3 }) as fc.Arbitrary<Status>,
    session: u64,
  }),
  fc.record({
    type: fc.constant('ReqRet' as const),
    session: u64,
    ranges: fc.array(fc.record({ begin: u64, end: u64 }), { maxLength: 20 }),
  }),
);

/** fc.option gives explicit undefined keys; decoded messages omit them. */
export function withoutUndefined(m: DecodedMessage): DecodedMessage {
  return Object.fromEntries(
    Object.entries(m).filter(([, v]) => v !== undefined),
  ) as unknown as DecodedMessage;
}
