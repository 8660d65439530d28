// Test support for the 5.0 wire codec, also loaded by scripts/wire-5-fixtures.mjs:
// turning decoded sessions back into encoder input, and mapping them to the
// JSON that flatc reads and prints and to the reference builder's input.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ByteBuffer } from 'flatbuffers';
import { FullSession, Message } from '../../src/wire-5/generated/fullSession_generated.js';
import {
  type DecodedFullSession,
  type DecodedPayload,
  type DecodedStart,
  Mode,
  Operation,
  Option,
  type PayloadInput,
  type StartFields,
} from '../../src/wire-5/index.js';

import { parseJsonBigInt } from '../wire/support.js';

export { parseJsonBigInt, stringifyJsonBigInt } from '../wire/support.js';

export const FIXTURE_DIR = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  'fixtures',
  'wire-5',
);

export const MAX_U64 = 2n ** 64n - 1n;

const isVD = (option: Option) => option === Option.VDFirst || option === Option.VDSync;
const hasGlobalVersion = (mode: Mode) => mode >= Mode.MetadataDelta;

/**
 * The encoder input that decodes to `session`: globalVersion and feedOffset
 * only where the reference sets them (the decoder reads them as 0 elsewhere).
 */
export function toEncoderInput(session: DecodedFullSession): [StartFields, PayloadInput | null] {
  const { globalVersion, feedOffset, ...rest } = session.start;
  const start: StartFields = { ...rest };
  if (hasGlobalVersion(rest.mode)) start.globalVersion = globalVersion;
  if (isVD(rest.option)) start.feedOffset = feedOffset;
  return [start, session.payload];
}

/** A session with the Start every test shares; `start` overrides. */
export function session(
  start: Partial<DecodedStart>,
  payload: DecodedPayload | null,
): DecodedFullSession {
  return {
    start: {
      module: 'syscollector',
      mode: Mode.ModuleDelta,
      index: [],
      option: Option.Sync,
      architecture: 'x86_64',
      hostname: 'test-host',
      osname: 'Ubuntu',
      osplatform: 'ubuntu',
      ostype: 'linux',
      osversion: '22.04',
      agentversion: 'v5.0.0',
      agentname: 'agent-001',
      agentid: '001',
      groups: ['default'],
      globalVersion: 0n,
      clusterName: 'wazuh',
      feedOffset: 0n,
      ...start,
    },
    payload,
  };
}

const utf8 = new TextEncoder();
const signed = (data: Uint8Array) => Array.from(data, (b) => (b << 24) >> 24);

/** The session as flatc's JSON, with the fields the reference writes (flatc elides defaults). */
export function toFlatcJson(s: DecodedFullSession): Record<string, unknown> {
  const st = s.start;
  const start: Record<string, unknown> = {
    module: st.module,
    mode: Mode[st.mode],
    index: st.index,
    option: Option[st.option],
    architecture: st.architecture,
    hostname: st.hostname,
    osname: st.osname,
    osplatform: st.osplatform,
    ostype: st.ostype,
    osversion: st.osversion,
    agentversion: st.agentversion,
    agentname: st.agentname,
    agentid: st.agentid,
    groups: st.groups,
    global_version: hasGlobalVersion(st.mode) ? st.globalVersion : undefined,
    cluster_name: st.clusterName,
    feed_offset: isVD(st.option) ? st.feedOffset : undefined,
  };
  const content: Record<string, unknown> = { start };
  const p = s.payload;
  if (p !== null) {
    content.payload_type = p.type;
    switch (p.type) {
      case 'SyncData':
        content.payload = {
          values: p.values.map((v) => ({
            operation: Operation[v.operation],
            id: v.id,
            index: v.index,
            version: v.version,
            data: signed(v.data),
          })),
          contexts: p.contexts.map((c) => ({ id: c.id, index: c.index, data: signed(c.data) })),
        };
        break;
      case 'Cleans':
        content.payload = { items: p.indices.map((index) => ({ index })) };
        break;
      case 'ChecksumModule':
        content.payload = { index: p.index, checksum: p.checksum };
        break;
    }
  }
  // JSON.stringify drops undefined: fields the reference leaves out stay out.
  return { content_type: 'FullSession', content };
}

type Json = Record<string, unknown>;

const big = (v: unknown): bigint => (v === undefined ? 0n : (v as bigint));
const str = (v: unknown): string => (v === undefined ? '' : (v as string));
const strs = (v: unknown): string[] => (v === undefined ? [] : (v as string[]));
const bytes = (v: unknown): Uint8Array =>
  Uint8Array.from((v ?? []) as bigint[], (b) => Number(b) & 0xff);
function enumValue<T extends number>(names: Record<string, string | number>, v: unknown): T {
  if (v === undefined) return 0 as T;
  return (typeof v === 'bigint' ? Number(v) : names[v as string]) as T;
}

/** flatc's JSON (parsed with parseJsonBigInt) as the decoder's output; absent fields take defaults. */
export function fromFlatcJson(json: Json): DecodedFullSession {
  if (json.content_type !== 'FullSession') throw new Error('not a FullSession');
  const c = (json.content ?? {}) as Json;
  const st = (c.start ?? {}) as Json;
  const start: DecodedStart = {
    module: str(st.module),
    mode: enumValue<Mode>(Mode, st.mode),
    index: strs(st.index),
    option: enumValue<Option>(Option, st.option),
    architecture: str(st.architecture),
    hostname: str(st.hostname),
    osname: str(st.osname),
    osplatform: str(st.osplatform),
    ostype: str(st.ostype),
    osversion: str(st.osversion),
    agentversion: str(st.agentversion),
    agentname: str(st.agentname),
    agentid: str(st.agentid),
    groups: strs(st.groups),
    globalVersion: big(st.global_version),
    clusterName: str(st.cluster_name),
    feedOffset: big(st.feed_offset),
  };
  const p = (c.payload ?? {}) as Json;
  let payload: DecodedPayload | null = null;
  switch (c.payload_type) {
    case 'SyncData':
      payload = {
        type: 'SyncData',
        values: ((p.values ?? []) as Json[]).map((v) => ({
          operation: enumValue<Operation>(Operation, v.operation),
          id: str(v.id),
          index: str(v.index),
          version: big(v.version),
          data: bytes(v.data),
        })),
        contexts: ((p.contexts ?? []) as Json[]).map((v) => ({
          id: str(v.id),
          index: str(v.index),
          data: bytes(v.data),
        })),
      };
      break;
    case 'Cleans':
      payload = {
        type: 'Cleans',
        indices: ((p.items ?? []) as Json[]).map((i) => str(i.index)),
      };
      break;
    case 'ChecksumModule':
      payload = { type: 'ChecksumModule', index: str(p.index), checksum: str(p.checksum) };
      break;
  }
  return { start, payload };
}

const hex = (value: string | Uint8Array) =>
  Buffer.from(typeof value === 'string' ? utf8.encode(value) : value).toString('hex');

/** The session in the line format of scripts/wire-5-reference.cpp (`build`). */
export function toReferenceInput(s: DecodedFullSession): string {
  const st = s.start;
  const lines: string[] = [];
  const strings = [
    ['module', st.module],
    ['architecture', st.architecture],
    ['hostname', st.hostname],
    ['osname', st.osname],
    ['osplatform', st.osplatform],
    ['ostype', st.ostype],
    ['osversion', st.osversion],
    ['agentversion', st.agentversion],
    ['agentname', st.agentname],
    ['agentid', st.agentid],
    ['cluster_name', st.clusterName],
  ] as const;
  for (const [name, value] of strings) lines.push(`S\t${name}\t${hex(value)}`);
  lines.push(`N\tmode\t${st.mode}`, `N\toption\t${st.option}`);
  for (const i of st.index) lines.push(`L\tindex\t${hex(i)}`);
  for (const g of st.groups) lines.push(`L\tgroups\t${hex(g)}`);
  if (hasGlobalVersion(st.mode)) lines.push(`U\tglobal_version\t${st.globalVersion}`);
  if (isVD(st.option)) lines.push(`U\tfeed_offset\t${st.feedOffset}`);
  const p = s.payload;
  if (p?.type === 'SyncData') {
    for (const v of p.values) {
      lines.push(`V\t${v.operation}\t${hex(v.id)}\t${hex(v.index)}\t${v.version}\t${hex(v.data)}`);
    }
    for (const c of p.contexts) lines.push(`C\t${hex(c.id)}\t${hex(c.index)}\t${hex(c.data)}`);
  } else if (p?.type === 'Cleans') {
    for (const i of p.indices) lines.push(`D\t${hex(i)}`);
  } else if (p?.type === 'ChecksumModule') {
    lines.push(`K\t${hex(p.index)}\t${hex(p.checksum)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** One committed fixture: the JSON given to flatc and the two reference binaries. */
export interface Fixture {
  name: string;
  expected: DecodedFullSession;
  /** Built by `flatc -b` from the JSON (flatc's own field order). */
  flatcBytes: Uint8Array;
  /** Built by scripts/wire-5-reference.cpp: the reference agent's calls and order. */
  agentBytes: Uint8Array;
}

export interface EncoderCheck {
  name: string;
  /** What `flatc --json --raw-binary` printed for our encoder's bytes. */
  flatcJson: string;
  sameJsonAsFlatcBinary: boolean;
  sameBytesAsAgent: boolean;
  /** The C++ verifier (as the manager runs it) accepted ours, the agent's and flatc's bytes. */
  cppVerifierAccepts: boolean;
}

export function fixtureNames(): string[] {
  return readdirSync(FIXTURE_DIR)
    .filter((file) => file.endsWith('.json') && file !== 'encoder-check.json')
    .filter((file) => !file.startsWith('cross-check'))
    .map((file) => file.slice(0, -'.json'.length))
    .sort();
}

export function loadFixture(name: string): Fixture {
  const read = (file: string) => new Uint8Array(readFileSync(join(FIXTURE_DIR, file)));
  const json = parseJsonBigInt(readFileSync(join(FIXTURE_DIR, `${name}.json`), 'utf8')) as Json;
  return {
    name,
    expected: fromFlatcJson(json),
    flatcBytes: read(`${name}.bin`),
    agentBytes: read(`${name}.agent.bin`),
  };
}

export function loadEncoderChecks(): EncoderCheck[] {
  return JSON.parse(
    readFileSync(join(FIXTURE_DIR, 'encoder-check.json'), 'utf8'),
  ) as EncoderCheck[];
}

/** Deterministic PRNG (mulberry32), so a corpus can be rebuilt exactly. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Offsets and lengths that hit boundaries: 0, tiny, the sign bits, max.
const WORDS = [0, 1, 2, 3, 4, 8, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff];

/** 1 to 3 random byte, bit, 32-bit word, insert, remove or truncate mutations of `input`. */
export function mutate(input: Uint8Array, random: () => number): Uint8Array {
  const pick = (n: number) => Math.floor(random() * n);
  let b = input.slice();
  const count = 1 + pick(3);
  for (let k = 0; k < count && b.length > 0; k++) {
    const at = pick(b.length);
    switch (pick(6)) {
      case 0:
        b[at] = (b[at] as number) ^ (1 << pick(8));
        break;
      case 1:
        b[at] = pick(256);
        break;
      case 2: {
        // 4-aligned, since that is where offsets and lengths live.
        const pos = at & ~3;
        const word = random() < 0.5 ? (WORDS[pick(WORDS.length)] as number) : pick(512);
        if (pos + 4 <= b.length) new DataView(b.buffer).setUint32(pos, word >>> 0, true);
        break;
      }
      case 3: {
        const extra = Uint8Array.from({ length: 1 + pick(8) }, () => pick(256));
        const next = new Uint8Array(b.length + extra.length);
        next.set(b.subarray(0, at));
        next.set(extra, at);
        next.set(b.subarray(at), at + extra.length);
        b = next;
        break;
      }
      case 4: {
        const end = Math.min(b.length, at + 1 + pick(8));
        const next = new Uint8Array(b.length - (end - at));
        next.set(b.subarray(0, at));
        next.set(b.subarray(end), at);
        b = next;
        break;
      }
      default:
        b = b.slice(0, at);
    }
  }
  return b;
}

/**
 * Where the union tags of a valid Message{FullSession} are, and the vtable
 * entry of FullSession.payload (when the vtable has one).
 */
export function unionSpots(bytes: Uint8Array): {
  contentType: number;
  payloadType?: number;
  payloadSlot?: number;
} {
  const bb = new ByteBuffer(bytes);
  const message = Message.getRootAsMessage(bb);
  const fs: FullSession = message.content(new FullSession());
  const payloadType = bb.__offset(fs.bb_pos, 6);
  const fsVtable = fs.bb_pos - bb.readInt32(fs.bb_pos);
  return {
    contentType: message.bb_pos + bb.__offset(message.bb_pos, 4),
    ...(payloadType === 0 ? {} : { payloadType: fs.bb_pos + payloadType }),
    ...(bb.readInt16(fsVtable) > 8 ? { payloadSlot: fsVtable + 8 } : {}),
  };
}

/**
 * The corpus on which scripts/wire-5-fixtures.mjs compares our verifier with
 * the C++ one: for each valid buffer, both union tags set to every value and
 * the payload's vtable entry cleared; then `mutations` random mutations of
 * them in turn. The same inputs give the same corpus.
 */
export function crossCheckCorpus(valid: readonly Uint8Array[], mutations = 40_000): Uint8Array[] {
  const corpus: Uint8Array[] = [];
  for (const good of valid) {
    const spots = unionSpots(good);
    for (const at of [spots.contentType, spots.payloadType]) {
      if (at === undefined) continue;
      for (let tag = 0; tag < 256; tag++) {
        const b = good.slice();
        b[at] = tag;
        corpus.push(b);
      }
    }
    if (spots.payloadSlot !== undefined) {
      const b = good.slice();
      new DataView(b.buffer).setUint16(spots.payloadSlot, 0, true);
      corpus.push(b);
    }
  }
  const random = prng(0x5eed);
  for (let i = 0; i < mutations; i++) {
    corpus.push(mutate(valid[i % valid.length] as Uint8Array, random));
  }
  return corpus;
}

export interface CrossCheck {
  inputs: number;
  bothAccept: number;
  bothReject: number;
  onlyCppAccepts: number;
  onlyOursAccepts: number;
  onlyCppReasons: Record<string, number>;
  /** Bitsets in corpus order (bit i of byte i >> 3 is input i), base64. */
  cppAccepts: string;
  oursAccepts: string;
}

export function loadCrossCheck(): CrossCheck {
  return JSON.parse(readFileSync(join(FIXTURE_DIR, 'cross-check.json'), 'utf8')) as CrossCheck;
}
