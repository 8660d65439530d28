import { Builder } from 'flatbuffers';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  ChecksumModule,
  DataClean,
  DataContext,
  DataValue,
  FullSession,
  Message,
  Start,
  SyncData,
} from '../../src/wire-5/generated/fullSession_generated.js';
import {
  type DecodeResult,
  decodeFullSession,
  MessageType,
  Mode,
  Operation,
  Option,
  SessionPayload,
  verifyMessage,
} from '../../src/wire-5/index.js';
import { fixtureNames, loadFixture, session, unionSpots } from './support.js';

// Little-endian accessors and a minimal layout inspector, to corrupt exactly
// one thing in an otherwise valid buffer.
const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
const u16 = (b: Uint8Array, at: number) => view(b).getUint16(at, true);
const u32 = (b: Uint8Array, at: number) => view(b).getUint32(at, true);
const i32 = (b: Uint8Array, at: number) => view(b).getInt32(at, true);
const setU16 = (b: Uint8Array, at: number, v: number) => view(b).setUint16(at, v, true);
const setU32 = (b: Uint8Array, at: number, v: number) => view(b).setUint32(at, v >>> 0, true);

const vtableOf = (b: Uint8Array, table: number) => table - i32(b, table);
/** Absolute position of a present field, or 0. */
function fieldPos(b: Uint8Array, table: number, slot: number): number {
  const vt = vtableOf(b, table);
  const off = slot < u16(b, vt) ? u16(b, vt + slot) : 0;
  return off === 0 ? 0 : table + off;
}
const deref = (b: Uint8Array, at: number) => at + u32(b, at);
const rootOf = (b: Uint8Array) => u32(b, 0);
const sessionOf = (b: Uint8Array) => deref(b, fieldPos(b, rootOf(b), 6));
const startOf = (b: Uint8Array) => deref(b, fieldPos(b, sessionOf(b), 4));
const payloadOf = (b: Uint8Array) => deref(b, fieldPos(b, sessionOf(b), 8));

const MALFORMED = { ok: false, error: 'malformed' };

function rejected(bytes: Uint8Array): void {
  expect(verifyMessage(bytes)).toBeNull();
  expect(decodeFullSession(bytes)).toEqual(MALFORMED);
}

const fixtures = () =>
  fixtureNames().flatMap((n) => [loadFixture(n).agentBytes, loadFixture(n).flatcBytes]);
const agent = (name: string) => loadFixture(name).agentBytes.slice();

/** Builds a Message around a content table made by `content`, with the builder's own calls. */
function handBuilt(type: MessageType, content: (b: Builder) => number): Uint8Array {
  const b = new Builder(64);
  const offset = content(b);
  Message.startMessage(b);
  Message.addContent(b, offset);
  Message.addContentType(b, type);
  b.finish(Message.endMessage(b));
  return b.asUint8Array().slice();
}

/** A minimal Start (module, agent id, cluster name). */
function minimalStart(b: Builder): number {
  const module = b.createString('fim');
  const agentid = b.createString('001');
  const cluster = b.createString('wazuh');
  Start.startStart(b);
  Start.addModule(b, module);
  Start.addAgentid(b, agentid);
  Start.addClusterName(b, cluster);
  return Start.endStart(b);
}

/** A FullSession with a minimal Start whose payload is a SyncData of `values`. */
function syncDataOf(values: (b: Builder) => number[]): Uint8Array {
  return handBuilt(MessageType.FullSession, (b) => {
    const start = minimalStart(b);
    const offsets = values(b);
    b.startVector(4, offsets.length, 4);
    for (let i = offsets.length - 1; i >= 0; i--) b.addOffset(offsets[i] as number);
    const vector = b.endVector();
    SyncData.startSyncData(b);
    SyncData.addValues(b, vector);
    const payload = SyncData.endSyncData(b);
    FullSession.startFullSession(b);
    FullSession.addStart(b, start);
    FullSession.addPayloadType(b, SessionPayload.SyncData);
    FullSession.addPayload(b, payload);
    return FullSession.endFullSession(b);
  });
}

describe('verifyMessage and decodeFullSession accept valid input', () => {
  it('accepts every fixture, from flatc and from the agent builder', () => {
    for (const b of fixtures()) {
      expect(verifyMessage(b)).toBe(MessageType.FullSession);
      expect(decodeFullSession(b).ok).toBe(true);
    }
  });

  it('reads absent Start fields as the manager does: empty, zero', () => {
    const b = handBuilt(MessageType.FullSession, (builder) => {
      const start = minimalStart(builder);
      FullSession.startFullSession(builder);
      FullSession.addStart(builder, start);
      return FullSession.endFullSession(builder);
    });
    expect(decodeFullSession(b)).toEqual({
      ok: true,
      session: {
        start: {
          ...session({}, null).start,
          module: 'fim',
          architecture: '',
          hostname: '',
          osname: '',
          osplatform: '',
          ostype: '',
          osversion: '',
          agentversion: '',
          agentname: '',
          agentid: '001',
          groups: [],
          clusterName: 'wazuh',
        },
        payload: null,
      },
    });
  });

  it('reads an absent SyncData.contexts as empty, as a QA-built session has it', () => {
    const b = syncDataOf((builder) => {
      DataValue.startDataValue(builder);
      return [DataValue.endDataValue(builder)];
    });
    const decoded = decodeFullSession(b);
    expect(decoded.ok && decoded.session.payload).toEqual({
      type: 'SyncData',
      values: [
        { operation: Operation.Upsert, id: '', index: '', version: 0n, data: new Uint8Array(0) },
      ],
      contexts: [],
    });
  });
});

describe('rejects targeted corruptions', () => {
  it('rejects every truncation of every fixture, except of trailing padding', () => {
    let count = 0;
    for (const b of fixtures()) {
      const whole = decodeFullSession(b);
      for (let n = 0; n < b.length; n++) {
        count++;
        if (n >= b.length - 3 && verifyMessage(b.subarray(0, n)) !== null) {
          expect(decodeFullSession(b.subarray(0, n))).toEqual(whole);
          expect(b.subarray(n).every((x) => x === 0)).toBe(true);
          continue;
        }
        rejected(b.subarray(0, n));
      }
    }
    expect(count).toBeGreaterThan(5000);
  });

  it('rejects tiny and empty buffers, and a root offset out of bounds, misaligned or zero', () => {
    for (let n = 0; n < 16; n++) rejected(new Uint8Array(n));
    const good = agent('check');
    for (const root of [
      0,
      1,
      2,
      good.length,
      good.length - 4,
      0x7fffffff,
      0x80000000,
      0xfffffffc,
    ]) {
      const b = good.slice();
      setU32(b, 0, root);
      rejected(b);
    }
  });

  it('rejects broken vtables of the root, the session, the Start and the payload', () => {
    for (const table of [rootOf, sessionOf, startOf, payloadOf]) {
      const good = agent('delta');
      const t = table(good);
      const vt = vtableOf(good, t);
      for (const soffset of [t + 2, t + 4, t - good.length, 1, -1, 0]) {
        const b = good.slice();
        setU32(b, t, soffset);
        rejected(b);
      }
      for (const size of [0, 2, 3, 5, good.length, 0x8000, 0xfffe]) {
        const b = good.slice();
        setU16(b, vt, size);
        rejected(b);
      }
      for (const tableSize of [0, 2, good.length, 0x8000]) {
        const b = good.slice();
        setU16(b, vt + 2, tableSize);
        rejected(b);
      }
    }
  });

  it('rejects a u64 field that is misaligned or past its table', () => {
    const good = agent('metadata_check'); // global_version present, slot 32
    const start = startOf(good);
    const vt = vtableOf(good, start);
    const off = u16(good, vt + 32);
    const tableSize = u16(good, vt + 2);
    for (const bad of [1, 2, off + 4, off + 12, tableSize - 4, tableSize, 0x7ff8]) {
      const b = good.slice();
      setU16(b, vt + 32, bad);
      rejected(b);
    }
  });

  it('rejects strings without a terminator or with lengths past the end', () => {
    const good = agent('check');
    const checksum = deref(good, fieldPos(good, payloadOf(good), 6));
    const missing = good.slice();
    missing[checksum + 4 + u32(good, checksum)] = 0x41;
    rejected(missing);
    for (const n of [good.length - checksum - 4, good.length, 0x7fffffff, 0xffffffff]) {
      const b = good.slice();
      setU32(b, checksum, n);
      rejected(b);
    }
  });

  it('rejects impossible lengths of every vector kind', () => {
    const cases: [string, (b: Uint8Array) => number][] = [
      ['delta', (b) => deref(b, fieldPos(b, payloadOf(b), 4))], // [DataValue]
      ['delta_vd_first', (b) => deref(b, fieldPos(b, payloadOf(b), 6))], // [DataContext]
      ['cleans', (b) => deref(b, fieldPos(b, payloadOf(b), 4))], // [DataClean]
      ['delta', (b) => deref(b, fieldPos(b, startOf(b), 8))], // Start.index
      ['delta', (b) => deref(b, fieldPos(b, startOf(b), 30))], // Start.groups
      [
        'delta',
        (b) => {
          const values = deref(b, fieldPos(b, payloadOf(b), 4));
          return deref(b, fieldPos(b, deref(b, values + 4), 12)); // DataValue.data
        },
      ],
    ];
    for (const [name, vectorAt] of cases) {
      const good = agent(name);
      const at = vectorAt(good);
      for (const n of [0x7fffffff, 0x3fffffff, 0x40000000, 0xffffffff, good.length]) {
        const b = good.slice();
        setU32(b, at, n);
        rejected(b);
      }
    }
  });

  it('rejects vector elements pointing outside the buffer, at 0 or backwards', () => {
    const good = agent('delta');
    const values = deref(good, fieldPos(good, payloadOf(good), 4));
    for (let i = 0; i < 3; i++) {
      const elem = values + 4 + 4 * i;
      for (const o of [0, 2, good.length, 0x7fffffff, 0x80000000, -4, -elem]) {
        const b = good.slice();
        setU32(b, elem, o);
        rejected(b);
      }
    }
  });
});

describe('unions', () => {
  it('rejects Message tag NONE and unknown tags 7..255', () => {
    const good = agent('delta');
    const { contentType } = unionSpots(good);
    for (const tag of [0, ...Array.from({ length: 249 }, (_, i) => 7 + i)]) {
      const b = good.slice();
      b[contentType] = tag;
      rejected(b);
    }
  });

  it('verifies the legacy members but does not decode them as sessions', () => {
    const messages: [MessageType, (b: Builder) => number][] = [
      [
        MessageType.DataValue,
        (b) => DataValue.createDataValue(b, 1, b.createString('i'), 0, 3n, 0),
      ],
      [MessageType.DataClean, (b) => DataClean.createDataClean(b, b.createString('i'))],
      [
        MessageType.ChecksumModule,
        (b) => ChecksumModule.createChecksumModule(b, b.createString('i'), b.createString('c')),
      ],
      [MessageType.Start, minimalStart],
      [MessageType.DataContext, (b) => DataContext.createDataContext(b, b.createString('i'), 0, 0)],
    ];
    for (const [type, content] of messages) {
      const b = handBuilt(type, content);
      expect(verifyMessage(b)).toBe(type);
      expect(decodeFullSession(b)).toEqual({ ok: false, error: 'not-full-session', type });
    }
  });

  it('rejects payload tags 4..255, NONE with a value, and a tag without its value', () => {
    for (const name of ['delta', 'cleans', 'check']) {
      const good = agent(name);
      const { payloadType, payloadSlot } = unionSpots(good);
      for (let tag = 4; tag < 256; tag++) {
        const b = good.slice();
        b[payloadType as number] = tag;
        rejected(b);
      }
      const none = good.slice();
      none[payloadType as number] = SessionPayload.NONE;
      rejected(none);
      const valueless = good.slice();
      setU16(valueless, payloadSlot as number, 0);
      rejected(valueless);
    }
  });

  it('rejects a payload tag that does not match the table it points at', () => {
    // A ChecksumModule read as Cleans: its index string would be the items vector.
    const b = agent('check');
    b[unionSpots(b).payloadType as number] = SessionPayload.Cleans;
    rejected(b);
  });

  it('answers missing-start for a FullSession without its Start', () => {
    const b = handBuilt(MessageType.FullSession, (builder) => {
      FullSession.startFullSession(builder);
      return FullSession.endFullSession(builder);
    });
    expect(verifyMessage(b)).toBe(MessageType.FullSession);
    expect(decodeFullSession(b)).toEqual({ ok: false, error: 'missing-start' });
  });
});

describe('enums out of range', () => {
  /** Every value of the byte at `at`: in range decodes, out of range is enum-out-of-range. */
  function sweep(good: Uint8Array, at: number, max: number, field: string): void {
    for (let v = 0; v < 256; v++) {
      const b = good.slice();
      b[at] = v;
      expect(verifyMessage(b)).toBe(MessageType.FullSession); // the structure is still fine
      const result: DecodeResult = decodeFullSession(b);
      // Enums are signed bytes: 0x80..0xff are negative.
      if (v <= max) expect(result.ok).toBe(true);
      else expect(result).toEqual({ ok: false, error: 'enum-out-of-range', field });
    }
  }

  it('mode 6..255, option 3..255 and operation 2..255 give enum-out-of-range', () => {
    const meta = agent('metadata_delta');
    sweep(meta, fieldPos(meta, startOf(meta), 6), Mode.GroupCheck, 'mode');
    const vd = agent('delta_vd_first');
    sweep(vd, fieldPos(vd, startOf(vd), 10), Option.VDSync, 'option');
    const delta = agent('delta');
    const values = deref(delta, fieldPos(delta, payloadOf(delta), 4));
    const deleted = deref(delta, values + 8); // the second value is a Delete
    sweep(delta, fieldPos(delta, deleted, 4), Operation.Delete, 'operation');
  });
});

describe('work and output limits', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  /** A SyncData whose `count` slots all point at one DataValue with a long id. */
  const shared = (count: number, id = 'x'.repeat(1000)) =>
    syncDataOf((b) => {
      const idOff = b.createString(id);
      const data = b.createByteVector(Uint8Array.of(1, 2, 3));
      DataValue.startDataValue(b);
      DataValue.addId(b, idOff);
      DataValue.addVersion(b, 9n);
      DataValue.addData(b, data);
      return new Array<number>(count).fill(DataValue.endDataValue(b));
    });

  it('decodes slots that share a table once, as one shared object', () => {
    const decoded = decodeFullSession(shared(1000));
    const payload = decoded.ok ? decoded.session.payload : null;
    expect(payload?.type).toBe('SyncData');
    if (payload?.type !== 'SyncData') return;
    expect(payload.values.length).toBe(1000);
    expect(new Set(payload.values).size).toBe(1);
    expect(payload.values[999]).toMatchObject({ id: 'x'.repeat(1000), version: 9n });
  });

  it('decodes a long string shared by many tables once', () => {
    const decode = vi.spyOn(TextDecoder.prototype, 'decode');
    const count = 5000;
    const b = syncDataOf((builder) => {
      const id = builder.createString('y'.repeat(20_000));
      return Array.from({ length: count }, (_, i) => {
        DataValue.startDataValue(builder);
        DataValue.addId(builder, id);
        DataValue.addVersion(builder, BigInt(i));
        return DataValue.endDataValue(builder);
      });
    });
    const decoded = decodeFullSession(b);
    const payload = decoded.ok ? decoded.session.payload : null;
    if (payload?.type !== 'SyncData') throw new Error('not SyncData');
    expect(payload.values.length).toBe(count);
    expect(payload.values.every((v, i) => v.id.length === 20_000 && v.version === BigInt(i))).toBe(
      true,
    );
    // The Start's three short strings, and the long id once.
    expect(decode.mock.calls.length).toBeLessThanOrEqual(4);
  });

  it('stops after 1,000,000 tables, as the C++ verifier does', () => {
    // Message + FullSession + Start + SyncData + one per slot.
    const limit = 1_000_000 - 4;
    expect(verifyMessage(shared(limit, 'z'))).toBe(MessageType.FullSession);
    expect(verifyMessage(shared(limit + 1, 'z'))).toBeNull();
  });

  it('returns a failure for non-Uint8Array input instead of throwing', () => {
    expect(verifyMessage(undefined as unknown as Uint8Array)).toBeNull();
    expect(decodeFullSession(null as unknown as Uint8Array)).toEqual(MALFORMED);
  });
});
