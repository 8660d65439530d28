import fc from 'fast-check';
import { ByteBuffer } from 'flatbuffers';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DataValue,
  Message,
  Start,
  StartAck,
} from '../../src/wire/generated/inventorySync_generated.js';
import {
  type DecodedMessage,
  decodeAgentMessage,
  decodeManagerResponse,
  decodeMessage,
  MessageEncoder,
  MessageType,
  verifyMessage,
} from '../../src/wire/index.js';
import { arbitraryMessage, withoutUndefined } from './arbitrary.js';
import { encodeDecoded, fixtureNames, loadFixture } from './support.js';

const MAX_U64 = 2n ** 64n - 1n;
const MANAGER = new Set(['StartAck', 'EndAck', 'ReqRet']);
const encoder = new MessageEncoder();

const isU64 = (v: unknown) => typeof v === 'bigint' && v >= 0n && v <= MAX_U64;
const isEnum = (v: unknown, max: number) =>
  Number.isInteger(v) && (v as number) >= 0 && (v as number) <= max;
const isText = (v: unknown) => typeof v === 'string';
const isTextList = (v: unknown) => Array.isArray(v) && v.every(isText);

/** The shape types.ts promises, checked at run time. */
function wellFormed(m: DecodedMessage): boolean {
  switch (m.type) {
    case 'Start':
      return (
        isEnum(m.mode, 6) &&
        isU64(m.size) &&
        isTextList(m.index) &&
        isTextList(m.groups) &&
        typeof m.first === 'boolean' &&
        [m.architecture, m.hostname, m.osname, m.ostype, m.osversion, m.agentversion]
          .concat([m.agentname, m.agentid, m.checksumMetadata, m.globalVersion])
          .every((v) => v === undefined || isText(v))
      );
    case 'DataValue':
      return (
        isU64(m.seq) &&
        isU64(m.session) &&
        isEnum(m.operation, 1) &&
        isText(m.id) &&
        isText(m.index) &&
        (m.version === undefined || isText(m.version)) &&
        m.data instanceof Uint8Array
      );
    case 'DataClean':
      return isU64(m.seq) && isU64(m.session) && isText(m.index);
    case 'ChecksumModule':
      return isU64(m.session) && isText(m.index) && isText(m.checksum);
    case 'End':
      return isU64(m.session);
    case 'StartAck':
    case 'EndAck':
      return isEnum(m.status, 3) && isU64(m.session);
    case 'ReqRet':
      return isU64(m.session) && m.ranges.every((r) => isU64(r.begin) && isU64(r.end));
    default:
      return false;
  }
}

const stats = { inputs: 0, verified: 0, decoded: 0 };

/** Reads the enum field of a verified buffer with the generated classes. */
function hasBadEnum(bytes: Uint8Array, tag: MessageType): boolean {
  const message = Message.getRootAsMessage(new ByteBuffer(bytes));
  switch (tag) {
    case MessageType.StartAck:
    case MessageType.EndAck: {
      const status = (message.content(new StartAck()) as StartAck).status();
      return status < 0 || status > 3;
    }
    case MessageType.DataValue: {
      const operation = (message.content(new DataValue()) as DataValue).operation();
      return operation < 0 || operation > 1;
    }
    case MessageType.Start: {
      const mode = (message.content(new Start()) as Start).mode();
      return mode < 0 || mode > 6;
    }
    default:
      return false;
  }
}

/**
 * `bytes` behind a Proxy that counts reads outside the view (which a typed
 * array would silently turn into undefined), so a verifier gap that lets the
 * generated readers stray shows up even when it yields plausible values.
 */
function guarded(bytes: Uint8Array): { view: Uint8Array; strayReads: () => number } {
  let stray = 0;
  const view = new Proxy(bytes, {
    get(target, key) {
      if (typeof key === 'string' && /^-?\d+$/.test(key)) {
        const i = Number(key);
        if (i < 0 || i >= target.length) stray++;
        return target[i];
      }
      if (key === 'subarray') {
        return (begin: number, end: number) => {
          if (begin < 0 || end > target.length || begin > end) stray++;
          return target.subarray(begin, end);
        };
      }
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { view, strayReads: () => stray };
}

/**
 * Runs every entry point on `bytes`. None may throw (an exception fails the
 * property); results must be null or well-formed, agree with each other, and
 * re-encode to something that decodes equal.
 */
function check(bytes: Uint8Array): void {
  stats.inputs++;
  const guard = guarded(bytes);
  expect(decodeMessage(guard.view)).toEqual(decodeMessage(bytes));
  expect(guard.strayReads()).toBe(0);
  const tag = verifyMessage(bytes);
  const any = decodeMessage(bytes);
  const manager = decodeManagerResponse(bytes);
  const agent = decodeAgentMessage(bytes);
  if (tag !== null) stats.verified++;
  if (any === null) {
    expect(manager).toBeNull();
    expect(agent).toBeNull();
    // Verified but not decoded: only an out-of-range enum may explain it.
    if (tag !== null) expect(hasBadEnum(bytes, tag)).toBe(true);
    return;
  }
  stats.decoded++;
  expect(tag).not.toBeNull();
  expect(wellFormed(any)).toBe(true);
  if (any.type === 'DataValue') {
    // The data view must lie inside the input, not just inside its ArrayBuffer.
    expect(any.data.buffer).toBe(bytes.buffer);
    expect(any.data.byteOffset).toBeGreaterThanOrEqual(bytes.byteOffset);
    expect(any.data.byteOffset + any.data.length).toBeLessThanOrEqual(
      bytes.byteOffset + bytes.length,
    );
  }
  expect(manager).toEqual(MANAGER.has(any.type) ? any : null);
  expect(agent).toEqual(MANAGER.has(any.type) ? null : any);
  const again = encodeDecoded(encoder, any);
  expect(decodeMessage(again)).toEqual(any);
}

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'word'; at: number; value: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'remove'; at: number; count: number }
  | { kind: 'truncate'; at: number };

// Offsets and lengths that hit boundaries: 0, tiny, around the buffer size, sign bit, max.
const interestingWord = fc.oneof(
  fc.constantFrom(0, 1, 2, 3, 4, 8, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff),
  fc.integer({ min: -64, max: 256 }),
  fc.nat({ max: 0xffffffff }),
);

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat({ max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.nat({ max: 255 }) }),
  fc.record({ kind: fc.constant('word' as const), at: fc.nat(), value: interestingWord }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
  }),
  fc.record({
    kind: fc.constant('remove' as const),
    at: fc.nat(),
    count: fc.integer({ min: 1, max: 16 }),
  }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);

function mutate(input: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let b = input.slice();
  for (const m of mutations) {
    const at = b.length === 0 ? 0 : m.at % b.length;
    switch (m.kind) {
      case 'flip':
        if (b.length > 0) b[at] = (b[at] as number) ^ (1 << m.bit);
        break;
      case 'set':
        if (b.length > 0) b[at] = m.value;
        break;
      case 'word': {
        // 4-aligned most of the time, since that is where offsets live.
        const pos = at & ~3;
        if (pos + 4 <= b.length) new DataView(b.buffer).setUint32(pos, m.value >>> 0, true);
        break;
      }
      case 'insert': {
        const next = new Uint8Array(b.length + m.bytes.length);
        next.set(b.subarray(0, at));
        next.set(m.bytes, at);
        next.set(b.subarray(at), at + m.bytes.length);
        b = next;
        break;
      }
      case 'remove': {
        const end = Math.min(b.length, at + m.count);
        const next = new Uint8Array(b.length - (end - at));
        next.set(b.subarray(0, at));
        next.set(b.subarray(end), at);
        b = next;
        break;
      }
      case 'truncate':
        b = b.slice(0, at);
        break;
    }
  }
  return b;
}

// Tens of thousands of inputs: CPU-bound, so seconds longer when other processes share the
// cores. Only the outcome is tested; the time limit is there to catch a hang.
describe('fuzzing the verifier and decoders', { timeout: 120_000 }, () => {
  afterAll(() => {
    console.log(
      `fuzz total: ${stats.inputs} inputs, ${stats.verified} verified, ${stats.decoded} decoded`,
    );
  });

  it('random bytes of many lengths', () => {
    const before = stats.inputs;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), (bytes) => check(bytes)),
      { numRuns: 5000 },
    );
    // Random bytes preceded by a plausible root offset, to get past the first check.
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 64 }),
        fc.uint8Array({ minLength: 8, maxLength: 512 }),
        (root, bytes) => {
          new DataView(bytes.buffer).setUint32(0, root * 4, true);
          check(bytes);
        },
      ),
      { numRuns: 5000 },
    );
    console.log(`random bytes: ${stats.inputs - before} inputs`);
  });

  it('every fixture, mutated', () => {
    const before = stats.inputs;
    const fixtures = fixtureNames().map((name) => loadFixture(name).bytes);
    fc.assert(
      fc.property(
        fc.constantFrom(...fixtures),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        (bytes, mutations) => check(mutate(bytes, mutations)),
      ),
      { numRuns: 10_000 },
    );
    // And every single-byte change to every fixture, exhaustively for a few values.
    for (const bytes of fixtures) {
      for (let at = 0; at < bytes.length; at++) {
        for (const value of [0x00, 0x01, 0x7f, 0x80, 0xff, (bytes[at] as number) ^ 0x04]) {
          const b = bytes.slice();
          b[at] = value;
          check(b);
        }
      }
    }
    console.log(`mutated fixtures: ${stats.inputs - before} inputs`);
  });

  it('random valid messages, mutated', () => {
    const before = stats.inputs;
    fc.assert(
      fc.property(arbitraryMessage, fc.array(mutation, { maxLength: 3 }), (m, mutations) => {
        const bytes = encodeDecoded(new MessageEncoder(64), withoutUndefined(m)).slice();
        check(mutate(bytes, mutations));
      }),
      { numRuns: 5000 },
    );
    console.log(`mutated random messages: ${stats.inputs - before} inputs`);
  });

  it('mutations keep most buffers structurally valid often enough to matter', () => {
    // Guards against a fuzz harness that only ever feeds garbage to the first check.
    expect(stats.verified).toBeGreaterThan(1000);
    expect(stats.decoded).toBeGreaterThan(1000);
  });
});
