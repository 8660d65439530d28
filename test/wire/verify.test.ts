import { describe, expect, it } from 'vitest';
import {
  decodeAgentMessage,
  decodeManagerResponse,
  decodeMessage,
  MessageEncoder,
  MessageType,
  Status,
  verifyMessage,
  WireOperation,
} from '../../src/wire/index.js';
import { fixtureNames, loadFixture } from './support.js';

// Little-endian accessors and a minimal layout inspector, to corrupt exactly
// one thing in an otherwise valid buffer.
const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
const u16 = (b: Uint8Array, at: number) => view(b).getUint16(at, true);
const u32 = (b: Uint8Array, at: number) => view(b).getUint32(at, true);
const i32 = (b: Uint8Array, at: number) => view(b).getInt32(at, true);
const setU8 = (b: Uint8Array, at: number, v: number) => view(b).setUint8(at, v);
const setU16 = (b: Uint8Array, at: number, v: number) => view(b).setUint16(at, v, true);
const setU16s = (b: Uint8Array, at: number, values: number[]) => {
  for (const [i, v] of values.entries()) setU16(b, at + 2 * i, v);
};
const setU32 = (b: Uint8Array, at: number, v: number) => view(b).setUint32(at, v >>> 0, true);

const vtableOf = (b: Uint8Array, table: number) => table - i32(b, table);
/** Position of the vtable entry for `slot` (the entry must exist). */
const slotPos = (b: Uint8Array, table: number, slot: number) => vtableOf(b, table) + slot;
/** Absolute position of a present field, or 0. */
function fieldPos(b: Uint8Array, table: number, slot: number): number {
  const vt = vtableOf(b, table);
  const off = slot < u16(b, vt) ? u16(b, vt + slot) : 0;
  return off === 0 ? 0 : table + off;
}
const deref = (b: Uint8Array, at: number) => at + u32(b, at);
const rootOf = (b: Uint8Array) => u32(b, 0);
const contentOf = (b: Uint8Array) => deref(b, fieldPos(b, rootOf(b), 6));

/** Checks that every entry point rejects `bytes`. */
function rejected(bytes: Uint8Array): void {
  expect(verifyMessage(bytes)).toBeNull();
  expect(decodeMessage(bytes)).toBeNull();
  expect(decodeManagerResponse(bytes)).toBeNull();
  expect(decodeAgentMessage(bytes)).toBeNull();
}

const encoder = new MessageEncoder();
const MAX_U64 = 2n ** 64n - 1n;
const samples = (): Uint8Array[] => [
  ...fixtureNames().map((n) => loadFixture(n).bytes),
  encoder.dataValue(1n, 2n, WireOperation.Delete, 'id', 'index', 'data', 'v').slice(),
  encoder.dataValue(0n, 0n, WireOperation.Upsert, '', '', new Uint8Array(0)).slice(),
  encoder.start({ mode: 0, size: 0n, index: [] }).slice(),
  encoder.reqRet(0n, []).slice(),
];
const endMessage = () => encoder.end(MAX_U64).slice();
const checksumMessage = () => encoder.checksumModule(1n, 'index', 'checksum').slice();
const reqRetMessage = () =>
  encoder
    .reqRet(7n, [
      { begin: 1n, end: 2n },
      { begin: 3n, end: MAX_U64 },
    ])
    .slice();

/**
 * A hand-laid End message (56 bytes) whose End table position and session
 * offset we choose, so one rule can be broken without breaking the others.
 */
function craftedEnd({ endAt = 40, sessionOffset = 8 } = {}): Uint8Array {
  const b = new Uint8Array(56);
  setU32(b, 0, 24); // root -> Message table at 24
  setU16s(b, 4, [8, 12, 4, 8]); // Message vtable: content_type at 4, content at 8
  setU16s(b, 12, [6, sessionOffset + 8, sessionOffset]); // End vtable
  setU32(b, 24, 24 - 4); // soffset -> Message vtable
  setU8(b, 28, MessageType.End);
  setU32(b, 32, endAt - 32); // content -> End table
  setU32(b, endAt, endAt - 12); // soffset -> End vtable
  view(b).setBigUint64(endAt + sessionOffset, 0x0102030405060708n, true);
  return b;
}

describe('verifyMessage accepts valid input', () => {
  it('accepts every fixture and encoder sample', () => {
    for (const b of samples()) expect(verifyMessage(b)).not.toBeNull();
  });

  it('accepts the hand-laid End messages', () => {
    for (const layout of [{}, { endAt: 44, sessionOffset: 4 }]) {
      expect(verifyMessage(craftedEnd(layout))).toBe(MessageType.End);
      expect(decodeMessage(craftedEnd(layout))).toEqual({
        type: 'End',
        session: 0x0102030405060708n,
      });
    }
  });
});

describe('verifyMessage rejects targeted corruptions', () => {
  it('rejects every truncation of every sample, except of trailing padding', () => {
    let count = 0;
    for (const b of samples()) {
      const whole = decodeMessage(b);
      for (let n = 0; n < b.length; n++) {
        count++;
        // The builder may leave padding after the last string's terminator
        // (as the C++ one does); cutting only that leaves a valid message.
        if (n >= b.length - 3 && verifyMessage(b.subarray(0, n)) !== null) {
          expect(decodeMessage(b.subarray(0, n))).toEqual(whole);
          expect(b.subarray(n).every((x) => x === 0)).toBe(true);
          continue;
        }
        rejected(b.subarray(0, n));
        rejected(b.slice(0, n));
      }
    }
    expect(count).toBeGreaterThan(1000);
  });

  it('rejects tiny and empty buffers', () => {
    for (let n = 0; n < 16; n++) rejected(new Uint8Array(n));
    rejected(Uint8Array.of(4, 0, 0, 0, 0xfc, 0xff, 0xff, 0xff));
  });

  it('rejects a root offset out of bounds, misaligned, zero or negative', () => {
    const good = endMessage();
    for (const root of [0, 1, 2, good.length, good.length - 1, good.length + 4, 0x7fffffff]) {
      const b = good.slice();
      setU32(b, 0, root);
      rejected(b);
    }
    for (const root of [0x80000000, 0xfffffffc, 0xffffffff]) {
      const b = good.slice();
      setU32(b, 0, root);
      rejected(b);
    }
  });

  it('rejects vtables out of bounds or misaligned, for the root and the content table', () => {
    for (const table of [rootOf, contentOf]) {
      const good = endMessage();
      const t = table(good);
      // vtable = table - soffset: before the start, past the end, straddling the end, odd.
      for (const soffset of [
        t + 2,
        t + 4,
        0x7ffffffe,
        t - good.length,
        t - good.length + 2,
        1,
        -1,
      ]) {
        const b = good.slice();
        setU32(b, t, soffset);
        rejected(b);
      }
    }
  });

  it('rejects vtable sizes that are odd, too small or past the end, and bad table sizes', () => {
    const good = endMessage();
    for (const table of [rootOf, contentOf]) {
      const vt = vtableOf(good, table(good));
      for (const size of [0, 2, 3, 5, 7, good.length, 0xfffe, 0x8000]) {
        const b = good.slice();
        setU16(b, vt, size);
        rejected(b);
      }
      for (const tableSize of [0, 2, good.length, 0xffff, 0x8000]) {
        const b = good.slice();
        setU16(b, vt + 2, tableSize);
        rejected(b);
      }
    }
  });

  it('rejects a soffset of 0 (table used as its own vtable)', () => {
    const b = endMessage();
    setU32(b, contentOf(b), 0);
    rejected(b);
  });

  it('rejects a field outside its table or overlapping the soffset', () => {
    const good = endMessage();
    const content = contentOf(good);
    const tableSize = u16(good, vtableOf(good, content) + 2);
    for (const off of [1, 2, 3, tableSize - 4, tableSize, 0x7ffc, 0xfff8]) {
      const b = good.slice();
      setU16(b, slotPos(b, content, 4), off);
      rejected(b);
    }
  });

  it('rejects a misaligned u64', () => {
    rejected(craftedEnd({ sessionOffset: 4 })); // in bounds and inside the table, but 4 mod 8
    // Alignment counts from the start of the view, not of the ArrayBuffer.
    const host = new Uint8Array(60);
    host.set(craftedEnd(), 4);
    expect(verifyMessage(host.subarray(4, 60))).toBe(MessageType.End);
    expect(decodeMessage(host.subarray(4, 60))).toEqual({
      type: 'End',
      session: 0x0102030405060708n,
    });
  });

  it('rejects a table that is not 4-aligned', () => {
    // Table at 42; its u64 at 42 + 6 = 48 is still aligned and in bounds.
    rejected(craftedEnd({ endAt: 42, sessionOffset: 6 }));
  });

  it('rejects a string without its terminating 0', () => {
    const b = checksumMessage();
    const s = deref(b, fieldPos(b, contentOf(b), 8));
    expect(b[s + 4 + u32(b, s)]).toBe(0);
    b[s + 4 + u32(b, s)] = 0x41;
    rejected(b);
  });

  it('rejects string lengths past the end, off by one, or huge', () => {
    const good = checksumMessage();
    for (const slot of [6, 8]) {
      const s = deref(good, fieldPos(good, contentOf(good), slot));
      // good.length - s - 4 would place the terminator one past the end.
      for (const n of [good.length - s - 4, good.length, 0x7ffffffe, 0x7fffffff, 0xffffffff]) {
        const b = good.slice();
        setU32(b, s, n);
        rejected(b);
      }
    }
  });

  it('rejects a vector offset of 0, which would make its own offset word an empty vector', () => {
    const b = encoder.dataValue(1n, 1n, 0, 'a', 'b', 'data').slice();
    setU32(b, fieldPos(b, contentOf(b), 16), 0);
    rejected(b);
  });

  it('rejects a string or vector offset that is 0, misaligned or out of bounds', () => {
    const good = checksumMessage();
    const at = fieldPos(good, contentOf(good), 8);
    for (const o of [0, 1, 2, 3, good.length, 0x7fffffff, 0x80000000, 0xffffffff]) {
      const b = good.slice();
      setU32(b, at, o);
      rejected(b);
    }
  });

  it('rejects vector lengths of 0x7fffffff and other impossible lengths', () => {
    const messages = [
      // [byte] data
      () => [encoder.dataValue(1n, 1n, 0, 'a', 'b', 'data').slice(), 16] as const,
      // [string] index and groups
      () => [encoder.start({ mode: 1, size: 1n, index: ['x'] }).slice(), 8] as const,
      () => [encoder.start({ mode: 1, size: 1n, index: [], groups: ['g'] }).slice(), 28] as const,
      // [Pair] seq
      () => [reqRetMessage(), 4] as const,
    ];
    for (const make of messages) {
      const [good, slot] = make();
      const vec = deref(good, fieldPos(good, contentOf(good), slot));
      for (const n of [0x7fffffff, 0x3fffffff, 0x40000000, 0xffffffff, good.length]) {
        const b = good.slice();
        setU32(b, vec, n);
        rejected(b);
      }
    }
  });

  it('rejects ReqRet pairs pointing outside the buffer, at themselves or backwards', () => {
    const good = reqRetMessage();
    const vec = deref(good, fieldPos(good, contentOf(good), 4));
    for (let i = 0; i < 2; i++) {
      const elem = vec + 4 + 4 * i;
      for (const o of [0, 2, good.length, good.length - elem, 0x7fffffff, 0x80000000, -4, -elem]) {
        const b = good.slice();
        setU32(b, elem, o);
        rejected(b);
      }
    }
  });

  it('rejects a Pair whose vtable or fields are broken', () => {
    const good = reqRetMessage();
    const vec = deref(good, fieldPos(good, contentOf(good), 4));
    const pair = deref(good, vec + 8);
    const b = good.slice();
    setU32(b, pair, 0x7ffffff0);
    rejected(b);
    const c = good.slice();
    setU16(c, slotPos(c, pair, 6), 1);
    rejected(c);
  });

  it('rejects union tag NONE and unknown tags 9..255, with a value present', () => {
    const good = endMessage();
    const tagAt = fieldPos(good, rootOf(good), 4);
    expect(good[tagAt]).toBe(MessageType.End);
    for (const tag of [0, ...Array.from({ length: 247 }, (_, i) => 9 + i)]) {
      const b = good.slice();
      b[tagAt] = tag;
      rejected(b);
    }
  });

  it('rejects a union tag whose value is missing', () => {
    // Laid out so that reading the absent content slot as offset 0 would land
    // on a valid End table (root + the root's soffset).
    const trap = craftedEnd({ endAt: 44, sessionOffset: 4 });
    setU16(trap, 10, 0);
    rejected(trap);
    const good = endMessage();
    const b = good.slice();
    setU16(b, slotPos(b, rootOf(b), 6), 0); // content absent
    rejected(b);
    const c = good.slice();
    setU16(c, vtableOf(c, rootOf(c)), 6); // vtable too short to hold the content slot
    rejected(c);
    const d = good.slice();
    setU16(d, slotPos(d, rootOf(d), 4), 0); // tag absent (NONE) with a value
    rejected(d);
  });

  it('rejects a tag that does not match the table it points at, when the layout disagrees', () => {
    // An End table read as a ReqRet: its u64 session sits where ReqRet's vector offset is.
    const b = endMessage();
    b[fieldPos(b, rootOf(b), 4)] = MessageType.ReqRet;
    rejected(b);
  });

  it('rejects offsets to the table itself and cyclic-looking offsets', () => {
    const good = endMessage();
    const contentAt = fieldPos(good, rootOf(good), 6);
    // Content offset 0 (points at itself), and "backwards" to the root table or offset 0,
    // which as unsigned offsets are >= 2^31.
    for (const o of [0, rootOf(good) - contentAt, -contentAt, -4]) {
      const b = good.slice();
      setU32(b, contentAt, o);
      rejected(b);
    }
    // Root offset 0: the buffer's first word as the table.
    const b = good.slice();
    setU32(b, 0, 0);
    rejected(b);
  });

  it('returns null for non-Uint8Array input instead of throwing', () => {
    expect(verifyMessage(undefined as unknown as Uint8Array)).toBeNull();
    expect(decodeMessage(null as unknown as Uint8Array)).toBeNull();
  });
});

describe('decoders reject out-of-range enums and wrong directions', () => {
  it('rejects Status 9, Operation 5, Mode 12 and negative enum bytes', () => {
    const cases: [Uint8Array, number, number][] = [
      [encoder.startAck(Status.Error, 1n).slice(), 4, 3],
      [encoder.endAck(Status.Offline, 1n).slice(), 4, 3],
      [encoder.dataValue(1n, 1n, WireOperation.Delete, 'a', 'b', 'c').slice(), 8, 1],
      [encoder.start({ mode: 2, size: 1n, index: [] }).slice(), 4, 6],
    ];
    for (const [good, slot, max] of cases) {
      const at = fieldPos(good, contentOf(good), slot);
      for (let v = 0; v < 256; v++) {
        const b = good.slice();
        b[at] = v;
        expect(verifyMessage(b)).not.toBeNull(); // the structure is still fine
        const inRange = v <= max; // enums are signed bytes: 0x80..0xff are negative
        expect(decodeMessage(b) !== null).toBe(inRange);
      }
    }
  });

  it('decodeManagerResponse takes only StartAck/EndAck/ReqRet, decodeAgentMessage the rest', () => {
    for (const b of samples()) {
      const m = decodeMessage(b);
      const manager = m !== null && ['StartAck', 'EndAck', 'ReqRet'].includes(m.type);
      expect(decodeManagerResponse(b)).toEqual(manager ? m : null);
      expect(decodeAgentMessage(b)).toEqual(manager ? null : m);
    }
  });
});

describe('work limits', () => {
  /** A ReqRet whose `count` vector elements all point at one shared Pair table. */
  function sharedPairs(count: number): Uint8Array {
    const vec = 56;
    let pair = vec + 4 + 4 * count;
    if ((pair + 4) % 8 !== 0) pair += 4; // Pair.begin must be 8-aligned
    const b = new Uint8Array(pair + 20);
    setU32(b, 0, 32); // root -> Message table at 32
    setU16s(b, 4, [8, 12, 4, 8]); // Message vtable at 4
    setU16s(b, 12, [6, 8, 4]); // ReqRet vtable at 12
    setU16s(b, 20, [8, 20, 4, 12]); // Pair vtable at 20
    setU32(b, 32, 32 - 4);
    setU8(b, 36, MessageType.ReqRet);
    setU32(b, 40, 48 - 40); // content -> ReqRet table at 48
    setU32(b, 48, 48 - 12);
    setU32(b, 52, vec - 52); // seq -> vector
    setU32(b, vec, count);
    for (let i = 0, at = vec + 4; i < count; i++, at += 4) setU32(b, at, pair - at);
    setU32(b, pair, pair - 20);
    view(b).setBigUint64(pair + 4, 5n, true);
    view(b).setBigUint64(pair + 12, 6n, true);
    return b;
  }

  it('decodes elements that share one table', () => {
    const b = sharedPairs(3);
    expect(decodeManagerResponse(b)).toEqual({
      type: 'ReqRet',
      session: 0n,
      ranges: [
        { begin: 5n, end: 6n },
        { begin: 5n, end: 6n },
        { begin: 5n, end: 6n },
      ],
    });
  });

  it('stops after 1,000,000 tables', () => {
    // Message + ReqRet + one table per element.
    expect(verifyMessage(sharedPairs(1_000_000 - 2))).toBe(MessageType.ReqRet);
    expect(verifyMessage(sharedPairs(1_000_000 - 1))).toBeNull();
  });

  it('decodes a vector of strings that all share one long string', () => {
    // Built by hand: Start { index: [s, s, ..., s] } with one 20 KB string.
    const count = 5000;
    const good = encoder.start({ mode: 1, size: 1n, index: ['a'.repeat(20_000)] }).slice();
    const vec = deref(good, fieldPos(good, contentOf(good), 8));
    const str = deref(good, vec + 4);
    // Rebuild: everything before the vector, the new vector, then the string.
    const b = new Uint8Array(vec + 4 + 4 * count + (good.length - str));
    b.set(good.subarray(0, vec));
    const newStr = vec + 4 + 4 * count;
    b.set(good.subarray(str), newStr);
    setU32(b, vec, count);
    for (let i = 0; i < count; i++) setU32(b, vec + 4 + 4 * i, newStr - (vec + 4 + 4 * i));
    const m = decodeAgentMessage(b);
    expect(m?.type === 'Start' && m.index.length).toBe(count);
    expect(m?.type === 'Start' && m.index.every((s) => s.length === 20_000)).toBe(true);
  });
});
