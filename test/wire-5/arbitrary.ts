// fast-check arbitraries for 5.0 sessions, shared by the round-trip and fuzz tests.
// They generate only sessions the encoder accepts (the reference's kinds), in
// the decoder's form.
import fc from 'fast-check';
import {
  type DecodedDataContext,
  type DecodedDataValue,
  type DecodedFullSession,
  type DecodedPayload,
  Mode,
  Operation,
  Option,
} from '../../src/wire-5/index.js';
import { MAX_U64 } from './support.js';

export const U64S = [0n, 1n, 2n ** 53n + 1n, MAX_U64];
// Includes a leading BOM and an embedded NUL, which naive UTF-8 handling loses.
export const STRINGS = ['', 'plain', 'ñandú 日本語 🦊', '\u{FEFF}bom first', 'nul\u0000inside'];

const u64 = fc.oneof(fc.constantFrom(...U64S), fc.bigInt({ min: 0n, max: MAX_U64 }));
const text = fc.oneof(fc.constantFrom(...STRINGS), fc.string({ unit: 'binary', maxLength: 40 }));
const texts = (maxLength: number) => fc.array(text, { maxLength });

const dataValue: fc.Arbitrary<DecodedDataValue> = fc.record({
  operation: fc.constantFrom(Operation.Upsert, Operation.Delete),
  id: text,
  index: text,
  version: u64,
  data: fc.uint8Array({ maxLength: 300 }),
});
const dataContext: fc.Arbitrary<DecodedDataContext> = fc.record({
  id: text,
  index: text,
  data: fc.uint8Array({ maxLength: 100 }),
});

const syncData: fc.Arbitrary<DecodedPayload> = fc.record({
  type: fc.constant('SyncData' as const),
  values: fc.array(dataValue, { minLength: 1, maxLength: 8 }),
  contexts: fc.array(dataContext, { maxLength: 3 }),
});
const cleans: fc.Arbitrary<DecodedPayload> = fc.record({
  type: fc.constant('Cleans' as const),
  indices: fc.array(text, { minLength: 1, maxLength: 4 }),
});
const checksum: fc.Arbitrary<DecodedPayload> = fc.record({
  type: fc.constant('ChecksumModule' as const),
  index: text,
  checksum: text,
});

/** A mode with a payload it takes, and an option and u64s as the reference pairs them. */
const kind = fc.oneof(
  fc.record({
    mode: fc.constant(Mode.ModuleDelta),
    payload: fc.oneof(syncData, cleans) as fc.Arbitrary<DecodedPayload | null>,
    option: fc.constantFrom(Option.Sync, Option.VDFirst, Option.VDSync),
    globalVersion: fc.constant(0n),
    feedOffset: fc.bigInt({ min: 1n, max: MAX_U64 }),
  }),
  fc.record({
    mode: fc.constant(Mode.ModuleCheck),
    payload: checksum as fc.Arbitrary<DecodedPayload | null>,
    option: fc.constant(Option.Sync),
    globalVersion: fc.constant(0n),
    feedOffset: fc.constant(0n),
  }),
  fc.record({
    mode: fc.constantFrom(Mode.MetadataDelta, Mode.MetadataCheck, Mode.GroupDelta, Mode.GroupCheck),
    payload: fc.constant(null),
    option: fc.constant(Option.Sync),
    globalVersion: u64,
    feedOffset: fc.constant(0n),
  }),
);

export const arbitrarySession: fc.Arbitrary<DecodedFullSession> = fc
  .record({
    kind,
    module: text,
    index: texts(4),
    architecture: text,
    hostname: text,
    osname: text,
    osplatform: text,
    ostype: text,
    osversion: text,
    agentversion: text,
    agentname: text,
    agentid: text,
    groups: texts(3),
    clusterName: text,
  })
  .map(({ kind: k, ...strings }) => ({
    start: {
      ...strings,
      mode: k.mode,
      option: k.option,
      globalVersion: k.globalVersion,
      // Only VD sessions carry a feed offset; the others decode it as 0.
      feedOffset: k.option === Option.Sync ? 0n : k.feedOffset,
    },
    payload: k.payload,
  }));
