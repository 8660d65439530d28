import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type DecodedMessage,
  decodeAgentMessage,
  decodeManagerResponse,
  decodeMessage,
  MessageEncoder,
  MessageType,
  type StartFields,
  Status,
  verifyMessage,
  WireMode,
  WireOperation,
} from '../../src/wire/index.js';
import { arbitraryMessage, STRINGS, U64S, withoutUndefined } from './arbitrary.js';
import { encodeDecoded } from './support.js';

const MAX_U64 = 2n ** 64n - 1n;

const TYPE_TAG: Record<DecodedMessage['type'], MessageType> = {
  DataValue: MessageType.DataValue,
  DataClean: MessageType.DataClean,
  ChecksumModule: MessageType.ChecksumModule,
  Start: MessageType.Start,
  StartAck: MessageType.StartAck,
  End: MessageType.End,
  EndAck: MessageType.EndAck,
  ReqRet: MessageType.ReqRet,
};
const MANAGER_TYPES = new Set(['StartAck', 'EndAck', 'ReqRet']);

/** Encodes, verifies and decodes `m` with every decoder, checking they agree with `m`. */
function roundTrip(encoder: MessageEncoder, m: DecodedMessage): void {
  const bytes = encodeDecoded(encoder, m);
  expect(verifyMessage(bytes)).toBe(TYPE_TAG[m.type]);
  expect(decodeMessage(bytes)).toEqual(m);
  if (MANAGER_TYPES.has(m.type)) {
    expect(decodeManagerResponse(bytes)).toEqual(m);
    expect(decodeAgentMessage(bytes)).toBeNull();
  } else {
    expect(decodeAgentMessage(bytes)).toEqual(m);
    expect(decodeManagerResponse(bytes)).toBeNull();
  }
}

describe('round trip of every message type', () => {
  const encoder = new MessageEncoder();

  it('StartAck and EndAck, every status and u64 edge', () => {
    for (const status of [Status.Ok, Status.PartialOk, Status.Error, Status.Offline]) {
      for (const session of U64S) {
        roundTrip(encoder, { type: 'StartAck', status, session });
        roundTrip(encoder, { type: 'EndAck', status, session });
      }
    }
  });

  it('End, DataClean and ChecksumModule with u64 edges and odd strings', () => {
    for (const a of U64S) {
      roundTrip(encoder, { type: 'End', session: a });
      for (const b of U64S) {
        for (const s of STRINGS) {
          roundTrip(encoder, { type: 'DataClean', seq: a, session: b, index: s });
          roundTrip(encoder, { type: 'ChecksumModule', session: a, index: s, checksum: `${s}!` });
        }
      }
    }
  });

  it('ReqRet with no ranges, one range and many', () => {
    roundTrip(encoder, { type: 'ReqRet', session: 5n, ranges: [] });
    roundTrip(encoder, { type: 'ReqRet', session: 0n, ranges: [{ begin: 0n, end: 0n }] });
    const ranges = U64S.flatMap((begin) => U64S.map((end) => ({ begin, end })));
    roundTrip(encoder, { type: 'ReqRet', session: MAX_U64, ranges });
    const many = Array.from({ length: 1000 }, (_, i) => ({ begin: BigInt(i), end: BigInt(i * 2) }));
    roundTrip(encoder, { type: 'ReqRet', session: 2n ** 53n + 1n, ranges: many });
  });

  it('DataValue with u64 edges, odd strings, absent/empty version, string and byte data', () => {
    for (const seq of U64S) {
      for (const session of U64S) {
        for (const s of STRINGS) {
          for (const operation of [WireOperation.Upsert, WireOperation.Delete]) {
            const base = { type: 'DataValue', seq, session, operation, id: s, index: `i${s}` };
            roundTrip(encoder, { ...base, type: 'DataValue', data: Uint8Array.of(0, 255, 128) });
            roundTrip(encoder, {
              ...base,
              type: 'DataValue',
              data: new Uint8Array(0),
              version: '',
            });
            roundTrip(encoder, { ...base, type: 'DataValue', data: new Uint8Array(0), version: s });
          }
        }
      }
    }
  });

  it('DataValue data given as a string is its UTF-8 bytes', () => {
    const doc = '{"name":"ñandú","v":"🦊"}';
    const decoded = decodeMessage(
      encoder.dataValue(1n, 2n, WireOperation.Upsert, 'id', 'idx', doc, 'v1'),
    );
    expect(decoded).toEqual({
      type: 'DataValue',
      seq: 1n,
      session: 2n,
      operation: WireOperation.Upsert,
      id: 'id',
      index: 'idx',
      version: 'v1',
      data: new TextEncoder().encode(doc),
    });
  });

  it('DataValue with 60 KB of data, as bytes and as a string; data is a view of the input', () => {
    const big = Uint8Array.from({ length: 60 * 1024 }, (_, i) => (i * 31) & 0xff);
    const bytes = encoder.dataValue(MAX_U64, 1n, WireOperation.Delete, 'id', 'idx', big);
    expect(bytes.length).toBeLessThan(65536);
    const decoded = decodeMessage(bytes);
    expect(decoded?.type).toBe('DataValue');
    if (decoded?.type !== 'DataValue') return;
    expect(decoded.data).toEqual(big);
    expect(decoded.data.buffer).toBe(bytes.buffer);

    const text = 'x'.repeat(60 * 1024);
    const fromString = decodeMessage(
      encoder.dataValue(1n, 1n, WireOperation.Upsert, 'id', 'idx', text),
    );
    expect(fromString?.type === 'DataValue' && new TextDecoder().decode(fromString.data)).toBe(
      text,
    );
  });

  it('Start with every field, with only the required ones, and with an empty index list', () => {
    const full: DecodedMessage = {
      type: 'Start',
      mode: WireMode.GroupCheck,
      size: MAX_U64,
      index: ['a', '', 'ñ日🦊'],
      first: true,
      architecture: 'x86_64',
      hostname: '',
      osname: 'Ubuntu',
      ostype: 'linux',
      osversion: '24.04',
      agentversion: 'v4.14.0',
      agentname: 'name ñ',
      agentid: '001',
      groups: ['g1', 'g2'],
      checksumMetadata: 'abc',
      globalVersion: '7',
    };
    roundTrip(encoder, full);
    for (const mode of [0, 1, 2, 3, 4, 5, 6] as WireMode[]) {
      for (const size of U64S) {
        roundTrip(encoder, { type: 'Start', mode, size, index: [], first: false, groups: [] });
      }
    }
    roundTrip(encoder, {
      type: 'Start',
      mode: 1,
      size: 1n,
      index: ['x'],
      first: false,
      groups: [],
    });
  });

  it('leaves undefined optional Start strings out of the buffer', () => {
    const fields: StartFields = { mode: WireMode.ModuleFull, size: 0n, index: [] };
    const small = encoder.start(fields).length;
    const withHost = encoder.start({ ...fields, hostname: '' }).length;
    // An empty string still costs its length word, terminator and offset.
    expect(withHost).toBeGreaterThan(small);
    const decoded = decodeMessage(encoder.start(fields));
    expect(decoded).toEqual({
      type: 'Start',
      mode: 0,
      size: 0n,
      index: [],
      first: false,
      groups: [],
    });
    expect(Object.keys(decoded ?? {})).not.toContain('hostname');
  });

  it('decodes a message inside a larger buffer at any byte offset', () => {
    const bytes = encoder.reqRet(9n, [{ begin: 1n, end: MAX_U64 }]).slice();
    for (let offset = 0; offset < 9; offset++) {
      const host = new Uint8Array(offset + bytes.length + 5).fill(0xee);
      host.set(bytes, offset);
      const view = host.subarray(offset, offset + bytes.length);
      expect(decodeManagerResponse(view)).toEqual({
        type: 'ReqRet',
        session: 9n,
        ranges: [{ begin: 1n, end: MAX_U64 }],
      });
    }
  });

  it('returns a view that the next call on the same encoder overwrites', () => {
    const first = encoder.end(1n);
    const kept = first.slice();
    encoder.end(2n);
    expect(decodeMessage(kept)).toEqual({ type: 'End', session: 1n });
    expect(decodeMessage(first)).toEqual({ type: 'End', session: 2n });
  });

  it('keeps working when the builder has to grow, and after a rejected call', () => {
    const small = new MessageEncoder(16);
    const data = new Uint8Array(100_000).fill(7);
    const bytes = small.dataValue(1n, 1n, WireOperation.Upsert, 'id', 'idx', data);
    const decoded = decodeMessage(bytes);
    expect(decoded?.type === 'DataValue' && Buffer.from(decoded.data).equals(data)).toBe(true);
    expect(() => small.end(-1n)).toThrow(RangeError);
    expect(decodeMessage(small.end(3n))).toEqual({ type: 'End', session: 3n });
  });
});

describe('encoder argument checks', () => {
  const encoder = new MessageEncoder();

  it('rejects u64 values outside 0..2^64-1 and non-bigints', () => {
    for (const bad of [-1n, 2n ** 64n, -(2n ** 63n)]) {
      expect(() => encoder.end(bad)).toThrow(RangeError);
      expect(() => encoder.dataClean(bad, 1n, 'i')).toThrow(RangeError);
      expect(() => encoder.reqRet(1n, [{ begin: 0n, end: bad }])).toThrow(RangeError);
      expect(() => encoder.start({ mode: 0, size: bad, index: [] })).toThrow(RangeError);
    }
    expect(() => encoder.end(1 as unknown as bigint)).toThrow(RangeError);
  });

  it('rejects enum values outside their declared range', () => {
    expect(() => encoder.startAck(4 as Status, 1n)).toThrow(RangeError);
    expect(() => encoder.endAck(-1 as Status, 1n)).toThrow(RangeError);
    expect(() => encoder.dataValue(1n, 1n, 2 as WireOperation, 'a', 'b', '')).toThrow(RangeError);
    expect(() => encoder.start({ mode: 7 as WireMode, size: 0n, index: [] })).toThrow(RangeError);
    expect(() => encoder.start({ mode: 1.5 as WireMode, size: 0n, index: [] })).toThrow(RangeError);
  });
});

describe('round trip property', () => {
  it('any message encodes, verifies and decodes to itself', () => {
    const encoder = new MessageEncoder();
    let tried = 0;
    fc.assert(
      fc.property(arbitraryMessage, (m) => {
        tried++;
        roundTrip(encoder, withoutUndefined(m));
      }),
      { numRuns: 3000 },
    );
    console.log(`round trip: ${tried} random messages`);
  });
});
