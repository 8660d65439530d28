import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type DecodedFullSession,
  decodeFullSession,
  FullSessionEncoder,
  MessageType,
  Mode,
  Option,
  verifyMessage,
} from '../../src/wire-5/index.js';
import { arbitrarySession } from './arbitrary.js';
import { fixtureNames, loadFixture, MAX_U64, mutate, prng, toEncoderInput } from './support.js';

const isU64 = (v: unknown) => typeof v === 'bigint' && v >= 0n && v <= MAX_U64;
const isEnum = (v: unknown, max: number) =>
  Number.isInteger(v) && (v as number) >= 0 && (v as number) <= max;
const isText = (v: unknown) => typeof v === 'string';
const isTextList = (v: unknown) => Array.isArray(v) && v.every(isText);

/** The shape types.ts promises, checked at run time; data views must lie inside `bytes`. */
function wellFormed(s: DecodedFullSession, bytes: Uint8Array): boolean {
  const st = s.start;
  const inside = (data: Uint8Array) =>
    data instanceof Uint8Array &&
    data.buffer === bytes.buffer &&
    data.byteOffset >= bytes.byteOffset &&
    data.byteOffset + data.length <= bytes.byteOffset + bytes.length;
  const startOk =
    isEnum(st.mode, 5) &&
    isEnum(st.option, 2) &&
    isU64(st.globalVersion) &&
    isU64(st.feedOffset) &&
    isTextList(st.index) &&
    isTextList(st.groups) &&
    [st.module, st.architecture, st.hostname, st.osname, st.osplatform, st.ostype]
      .concat([st.osversion, st.agentversion, st.agentname, st.agentid, st.clusterName])
      .every(isText);
  if (!startOk) return false;
  const p = s.payload;
  if (p === null) return true;
  switch (p.type) {
    case 'SyncData':
      return (
        p.values.every(
          (v) =>
            isEnum(v.operation, 1) &&
            isText(v.id) &&
            isText(v.index) &&
            isU64(v.version) &&
            inside(v.data),
        ) && p.contexts.every((c) => isText(c.id) && isText(c.index) && inside(c.data))
      );
    case 'Cleans':
      return isTextList(p.indices);
    case 'ChecksumModule':
      return isText(p.index) && isText(p.checksum);
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
      // Index keys are canonical numeric strings (no regex: this runs per byte read).
      const i = typeof key === 'string' ? Number(key) : Number.NaN;
      if (Number.isInteger(i) && key !== '') {
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
 * A decode result as text (bigints and bytes spelled out): comparing these is
 * much cheaper than a deep toEqual over tens of thousands of inputs.
 */
const canon = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) =>
    typeof v === 'bigint'
      ? `${v}n`
      : v instanceof Uint8Array
        ? `bytes:${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}`
        : v,
  );

const stats = { inputs: 0, verified: 0, decoded: 0, guarded: 0, reencoded: 0 };
const reencoder = new FullSessionEncoder(64);

/**
 * Runs both entry points on `bytes`. Neither may throw (an exception fails
 * the property); the verdicts must agree, a decoded session must be well
 * formed, and when it is a session the encoder accepts, it must re-encode
 * to something that decodes equal (but for u64s its kind does not carry).
 */
function check(bytes: Uint8Array): void {
  stats.inputs++;
  const type = verifyMessage(bytes);
  const result = decodeFullSession(bytes);
  if (type !== null) stats.verified++;
  if (!result.ok) {
    if (result.error === 'malformed') expect(type).toBeNull();
    else if (result.error === 'not-full-session') expect(type).toBe(result.type);
    else expect(type).toBe(MessageType.FullSession);
    return;
  }
  stats.decoded++;
  expect(type).toBe(MessageType.FullSession);
  expect(wellFormed(result.session, bytes)).toBe(true);
  // The decoder's reads stay inside the view. The Proxy makes each byte read
  // slow, so every 4th decoded input is enough (some 4000 per run).
  if (stats.decoded % 4 === 0) {
    const guard = guarded(bytes);
    expect(canon(decodeFullSession(guard.view))).toBe(canon(result));
    expect(guard.strayReads()).toBe(0);
    stats.guarded++;
  }
  let again: Uint8Array;
  try {
    again = reencoder.encode(...toEncoderInput(result.session));
  } catch (error) {
    // Well-formed but not a session the reference builds (a mutated mode, say).
    expect(error).toBeInstanceOf(RangeError);
    return;
  }
  stats.reencoded++;
  // A mutation can give a session a u64 its kind never carries (a Delta with
  // a global_version, say): the encoder leaves it out, and it reads as 0.
  const { start } = result.session;
  const kept = {
    globalVersion: start.mode >= Mode.MetadataDelta ? start.globalVersion : 0n,
    feedOffset: start.option === Option.Sync ? 0n : start.feedOffset,
  };
  expect(canon(decodeFullSession(again))).toBe(
    canon({ ok: true, session: { ...result.session, start: { ...start, ...kept } } }),
  );
}

const fixtures = () => fixtureNames().map((name) => loadFixture(name).agentBytes);

describe('fuzzing the verifier and decoder', () => {
  afterAll(() => {
    console.log(
      `fuzz total: ${stats.inputs} inputs, ${stats.verified} verified, ` +
        `${stats.decoded} decoded (${stats.guarded} behind the guard), ${stats.reencoded} re-encoded`,
    );
  });

  it('random bytes of many lengths', () => {
    const before = stats.inputs;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), (bytes) => check(bytes)),
      { numRuns: 3000 },
    );
    // Random bytes behind a plausible root offset, to get past the first check.
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 64 }),
        fc.uint8Array({ minLength: 8, maxLength: 512 }),
        (root, bytes) => {
          new DataView(bytes.buffer).setUint32(0, root * 4, true);
          check(bytes);
        },
      ),
      { numRuns: 3000 },
    );
    console.log(`random bytes: ${stats.inputs - before} inputs`);
  });

  it('every fixture, mutated at random and byte by byte', () => {
    const before = stats.inputs;
    const all = fixtures();
    // A different seed from the cross-check corpus, so the two cover different inputs.
    const random = prng(0xf00d);
    for (let i = 0; i < 10_000; i++) check(mutate(all[i % all.length] as Uint8Array, random));
    // Every single-byte change to every fixture, for a few values.
    for (const bytes of all) {
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

  it('random valid sessions, mutated', () => {
    const before = stats.inputs;
    const encoder = new FullSessionEncoder(64);
    fc.assert(
      fc.property(arbitrarySession, fc.integer(), fc.nat({ max: 3 }), (s, seed, times) => {
        let bytes: Uint8Array = encoder.encode(...toEncoderInput(s)).slice();
        const random = prng(seed);
        for (let i = 0; i < times; i++) bytes = mutate(bytes, random);
        check(bytes);
      }),
      { numRuns: 3000 },
    );
    console.log(`mutated random sessions: ${stats.inputs - before} inputs`);
  });

  it('mutations keep buffers structurally valid often enough to matter', () => {
    // Guards against a fuzz harness that only ever feeds garbage to the first check.
    expect(stats.inputs).toBeGreaterThan(40_000);
    expect(stats.verified).toBeGreaterThan(5000);
    expect(stats.decoded).toBeGreaterThan(3000);
    expect(stats.guarded).toBeGreaterThan(1000);
    expect(stats.reencoded).toBeGreaterThan(2000);
  });
});
