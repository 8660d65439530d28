import fc from 'fast-check';
import { Builder } from 'flatbuffers';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type DataValueInput,
  type DecodedFullSession,
  decodeFullSession,
  FullSessionEncoder,
  MessageType,
  Mode,
  Operation,
  Option,
  type PayloadInput,
  type StartFields,
  verifyMessage,
} from '../../src/wire-5/index.js';
import { arbitrarySession, STRINGS, U64S } from './arbitrary.js';
import { MAX_U64, session, toEncoderInput } from './support.js';

/** Encodes `s`, then verifies and decodes it back to `s`. */
function roundTrip(encoder: FullSessionEncoder, s: DecodedFullSession): Uint8Array {
  const bytes = encoder.encode(...toEncoderInput(s));
  expect(verifyMessage(bytes)).toBe(MessageType.FullSession);
  expect(decodeFullSession(bytes)).toEqual({ ok: true, session: s });
  return bytes;
}

const value = (i: number, data: Uint8Array, version = 0n) => ({
  operation: i % 2 === 0 ? Operation.Upsert : Operation.Delete,
  id: `id-${i}`,
  index: `index-${i % 3}`,
  version,
  data,
});

describe('round trip of every payload kind', () => {
  const encoder = new FullSessionEncoder();

  it('SyncData with u64 edges, odd strings, empty and binary data, with and without contexts', () => {
    for (const version of U64S) {
      for (const s of STRINGS) {
        for (const operation of [Operation.Upsert, Operation.Delete]) {
          const values = [
            { operation, id: s, index: `i${s}`, version, data: Uint8Array.of(0, 255, 128) },
            { operation, id: '', index: s, version, data: new Uint8Array(0) },
          ];
          roundTrip(encoder, session({ index: [s] }, { type: 'SyncData', values, contexts: [] }));
          const contexts = [{ id: s, index: 'ctx', data: Uint8Array.of(1) }];
          roundTrip(encoder, session({}, { type: 'SyncData', values, contexts }));
        }
      }
    }
  });

  it('VD SyncData with feed_offset edges, for VDFirst and VDSync', () => {
    for (const option of [Option.VDFirst, Option.VDSync]) {
      for (const feedOffset of [1n, 2n ** 32n, 2n ** 53n + 1n, MAX_U64]) {
        roundTrip(
          encoder,
          session(
            { option, feedOffset },
            {
              type: 'SyncData',
              values: [value(0, Uint8Array.of(1), MAX_U64)],
              contexts: [{ id: 'os', index: 'vd', data: Uint8Array.of(2) }],
            },
          ),
        );
      }
    }
  });

  it('Cleans with one index and several, odd strings included, in order', () => {
    roundTrip(encoder, session({ index: ['a'] }, { type: 'Cleans', indices: ['a'] }));
    roundTrip(encoder, session({ index: STRINGS }, { type: 'Cleans', indices: STRINGS }));
    // The reference sends a VD option on cleans too (notifyDataClean takes one).
    roundTrip(
      encoder,
      session({ option: Option.VDSync, feedOffset: 5n }, { type: 'Cleans', indices: ['x', 'x'] }),
    );
  });

  it('ChecksumModule with odd strings', () => {
    for (const s of STRINGS) {
      roundTrip(
        encoder,
        session(
          { mode: Mode.ModuleCheck, index: [s] },
          { type: 'ChecksumModule', index: s, checksum: `${s}!` },
        ),
      );
    }
  });

  it('no payload, for every metadata and group mode and global_version edge', () => {
    for (const mode of [Mode.MetadataDelta, Mode.MetadataCheck, Mode.GroupDelta, Mode.GroupCheck]) {
      for (const globalVersion of U64S) {
        roundTrip(encoder, session({ mode, globalVersion, index: ['a', 'b'] }, null));
      }
    }
  });

  it('every Start string empty, unicode, with a BOM or a NUL, and empty or long lists', () => {
    for (const s of STRINGS) {
      roundTrip(
        encoder,
        session(
          {
            module: s,
            index: [],
            architecture: s,
            hostname: s,
            osname: s,
            osplatform: s,
            ostype: s,
            osversion: s,
            agentversion: s,
            agentname: s,
            agentid: s,
            groups: [],
            clusterName: s,
          },
          { type: 'Cleans', indices: [s] },
        ),
      );
    }
    const many = Array.from({ length: 500 }, (_, i) => `wazuh-states-${i}-ñ`);
    roundTrip(encoder, session({ index: many, groups: many }, { type: 'Cleans', indices: many }));
  });

  it('writes string data as its UTF-8 bytes, without a terminator', () => {
    const doc = '{"name":"ñandú","v":"🦊"}';
    const [start] = toEncoderInput(session({}, null));
    const decoded = decodeFullSession(
      encoder.encode(start, {
        type: 'SyncData',
        values: [{ operation: Operation.Upsert, id: 'a', index: 'b', data: doc }],
        contexts: [{ id: 'c', index: 'd', data: doc }],
      }),
    );
    expect(decoded.ok).toBe(true);
    const payload = decoded.ok ? decoded.session.payload : null;
    expect(payload?.type).toBe('SyncData');
    if (payload?.type !== 'SyncData') return;
    expect(payload.values[0]?.data).toEqual(new TextEncoder().encode(doc));
    expect(payload.contexts[0]?.data).toEqual(new TextEncoder().encode(doc));
    // Version absent from the input is 0, unversioned.
    expect(payload.values[0]?.version).toBe(0n);
    // A long string document (past the scratch buffer) is written the same way.
    const long = `"${'ß'.repeat(100_000)}"`;
    const big = decodeFullSession(
      encoder.encode(start, {
        type: 'SyncData',
        values: [{ operation: Operation.Upsert, id: 'a', index: 'b', data: long }],
      }),
    );
    const bigPayload = big.ok ? big.session.payload : null;
    expect(
      bigPayload?.type === 'SyncData' && new TextDecoder().decode(bigPayload.values[0]?.data),
    ).toBe(long);
  });

  it('decodes a session inside a larger buffer at any byte offset', () => {
    const s = session(
      {},
      { type: 'SyncData', values: [value(1, Uint8Array.of(9), 3n)], contexts: [] },
    );
    const bytes = encoder.encode(...toEncoderInput(s)).slice();
    for (let offset = 0; offset < 9; offset++) {
      const host = new Uint8Array(offset + bytes.length + 5).fill(0xee);
      host.set(bytes, offset);
      expect(decodeFullSession(host.subarray(offset, offset + bytes.length))).toEqual({
        ok: true,
        session: s,
      });
    }
  });
});

describe('a multi-MB session', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  const COUNT = 20_000;
  const SIZE = 256;
  const dataOf = (i: number) => Uint8Array.from({ length: SIZE }, (_, j) => (i * 31 + j) & 0xff);

  it('is built item by item from a generator, without quadratic copying, and decodes exactly', () => {
    const grow = vi.spyOn(Builder, 'growByteBuffer');
    const encoder = new FullSessionEncoder();
    let pulled = 0;
    function* values(): Generator<DataValueInput> {
      for (let i = 0; i < COUNT; i++) {
        pulled++;
        yield value(i, dataOf(i), BigInt(i));
      }
    }
    const [start] = toEncoderInput(session({ index: ['index-0', 'index-1', 'index-2'] }, null));
    const bytes = encoder.encode(start, { type: 'SyncData', values: values() });
    expect(pulled).toBe(COUNT);
    expect(bytes.length).toBeGreaterThan(COUNT * SIZE);
    expect(bytes.length).toBeLessThan(COUNT * (SIZE + 64));
    // The builder doubles from 1 KiB: one growth per power of two, each a
    // copy of what is there, so all copies add up to less than the final size.
    const doublings = Math.ceil(Math.log2(bytes.length / 1024));
    expect(grow.mock.calls.length).toBeLessThanOrEqual(doublings + 1);

    const decoded = decodeFullSession(bytes);
    expect(decoded.ok).toBe(true);
    const payload = decoded.ok ? decoded.session.payload : null;
    if (payload?.type !== 'SyncData') throw new Error('not SyncData');
    expect(payload.values.length).toBe(COUNT);
    // One expect for the lot: 20k x 5 expects would take most of the test's time.
    const wrong: number[] = [];
    for (let i = 0; i < COUNT; i++) {
      const v = payload.values[i];
      const ok =
        v !== undefined &&
        v.id === `id-${i}` &&
        v.index === `index-${i % 3}` &&
        v.version === BigInt(i) &&
        v.operation === (i % 2 === 0 ? Operation.Upsert : Operation.Delete) &&
        // Views into the encoded buffer, not copies.
        v.data.buffer === bytes.buffer &&
        Buffer.compare(v.data, dataOf(i)) === 0;
      if (!ok) wrong.push(i);
    }
    expect(wrong).toEqual([]);

    // A second session of the same size reuses the grown buffer.
    grow.mockClear();
    const again = encoder.encode(start, {
      type: 'SyncData',
      values: Array.from({ length: COUNT }, (_, i) => value(i, dataOf(i))),
    });
    expect(again.length).toBeGreaterThan(COUNT * SIZE);
    expect(grow).not.toHaveBeenCalled();
  });
});

describe('encoder output and state', () => {
  const [start] = toEncoderInput(session({ mode: Mode.GroupDelta, globalVersion: 1n }, null));

  it('returns a view that the next encode on the same encoder overwrites', () => {
    const encoder = new FullSessionEncoder();
    const first = encoder.encode({ ...start, globalVersion: 1n }, null);
    const kept = first.slice();
    encoder.encode({ ...start, globalVersion: 2n }, null);
    const keptDecoded = decodeFullSession(kept);
    expect(keptDecoded.ok && keptDecoded.session.start.globalVersion).toBe(1n);
    const reread = decodeFullSession(first);
    expect(reread.ok && reread.session.start.globalVersion).toBe(2n);
  });

  it('keeps working after an iterator throws or an item is refused mid-session', () => {
    const encoder = new FullSessionEncoder(16);
    const [deltaStart] = toEncoderInput(session({}, null));
    function* failing(): Generator<DataValueInput> {
      yield value(0, new Uint8Array(5000));
      throw new Error('cursor lost');
    }
    expect(() => encoder.encode(deltaStart, { type: 'SyncData', values: failing() })).toThrow(
      'cursor lost',
    );
    const bad = [value(0, Uint8Array.of(1)), { ...value(1, Uint8Array.of(1)), version: -1n }];
    expect(() => encoder.encode(deltaStart, { type: 'SyncData', values: bad })).toThrow(RangeError);
    const s = session({}, { type: 'SyncData', values: [value(2, Uint8Array.of(7))], contexts: [] });
    roundTrip(encoder, s);
  });
});

describe('encoder argument checks', () => {
  const encoder = new FullSessionEncoder();
  const [delta] = toEncoderInput(session({}, null));
  const values: PayloadInput = { type: 'SyncData', values: [value(0, Uint8Array.of(1))] };
  const meta: StartFields = { ...delta, mode: Mode.MetadataDelta, globalVersion: 1n };

  it('refuses u64 values outside 0..2^64-1 and non-bigints', () => {
    for (const bad of [-1n, 2n ** 64n, 1 as unknown as bigint]) {
      expect(() => encoder.encode({ ...meta, globalVersion: bad }, null)).toThrow(RangeError);
      expect(() =>
        encoder.encode({ ...delta, option: Option.VDSync, feedOffset: bad }, values),
      ).toThrow(RangeError);
      const item = { ...value(0, Uint8Array.of(1)), version: bad };
      expect(() => encoder.encode(delta, { type: 'SyncData', values: [item] })).toThrow(RangeError);
    }
  });

  it('refuses enum values outside their declared range', () => {
    for (const mode of [-1, 6, 1.5]) {
      expect(() => encoder.encode({ ...delta, mode: mode as Mode }, values)).toThrow(RangeError);
    }
    for (const option of [-1, 3]) {
      expect(() => encoder.encode({ ...delta, option: option as Option }, values)).toThrow(
        RangeError,
      );
    }
    const item = { ...value(0, Uint8Array.of(1)), operation: 2 as Operation };
    expect(() => encoder.encode(delta, { type: 'SyncData', values: [item] })).toThrow(RangeError);
  });

  it("refuses payloads the mode does not take (the manager's matrix)", () => {
    const check: PayloadInput = { type: 'ChecksumModule', index: 'i', checksum: 'c' };
    const cleans: PayloadInput = { type: 'Cleans', indices: ['i'] };
    expect(() => encoder.encode(delta, null)).toThrow(RangeError);
    expect(() => encoder.encode(delta, check)).toThrow(RangeError);
    expect(() => encoder.encode({ ...delta, mode: Mode.ModuleCheck }, values)).toThrow(RangeError);
    expect(() => encoder.encode({ ...delta, mode: Mode.ModuleCheck }, cleans)).toThrow(RangeError);
    expect(() => encoder.encode({ ...delta, mode: Mode.ModuleCheck }, null)).toThrow(RangeError);
    for (const payload of [values, cleans, check]) {
      expect(() => encoder.encode(meta, payload)).toThrow(RangeError);
    }
  });

  it('refuses SyncData without values and Cleans without indices', () => {
    const contextsOnly: PayloadInput = {
      type: 'SyncData',
      values: [],
      contexts: [{ id: 'a', index: 'b', data: '' }],
    };
    expect(() => encoder.encode(delta, contextsOnly)).toThrow(/at least one value/);
    expect(() => encoder.encode(delta, { type: 'Cleans', indices: [] })).toThrow(
      /at least one index/,
    );
  });

  it('sets global_version exactly for metadata and group modes', () => {
    expect(() => encoder.encode({ ...meta, globalVersion: undefined }, null)).toThrow(RangeError);
    expect(() => encoder.encode({ ...delta, globalVersion: 1n }, values)).toThrow(RangeError);
    const check = { ...delta, mode: Mode.ModuleCheck, globalVersion: 0n };
    expect(() =>
      encoder.encode(check, { type: 'ChecksumModule', index: 'i', checksum: 'c' }),
    ).toThrow(RangeError);
  });

  it('sets feed_offset (> 0) exactly for VD options, which only ModuleDelta carries', () => {
    expect(() => encoder.encode({ ...delta, option: Option.VDFirst }, values)).toThrow(RangeError);
    expect(() =>
      encoder.encode({ ...delta, option: Option.VDFirst, feedOffset: 0n }, values),
    ).toThrow(RangeError);
    expect(() => encoder.encode({ ...delta, feedOffset: 1n }, values)).toThrow(RangeError);
    expect(() => encoder.encode({ ...meta, option: Option.VDSync, feedOffset: 1n }, null)).toThrow(
      RangeError,
    );
  });
});

describe('round trip property', () => {
  it('any session the reference builds encodes, verifies and decodes to itself', () => {
    const encoder = new FullSessionEncoder(64);
    let tried = 0;
    fc.assert(
      fc.property(arbitrarySession, (s) => {
        tried++;
        roundTrip(encoder, s);
      }),
      { numRuns: 2000 },
    );
    console.log(`round trip: ${tried} random sessions`);
  });
});
