// One scripted run of Wazuh 5.0 sessions, shared by test/testing/full-session.test.ts (on the
// mock) and test/testing/full-session-real.ts (on the real manager module, to record what it
// answers): every step is a `/stateful` request, in order, and the documents it leaves behind
// are compared at the end. Bodies are built with the wire-5 encoder, or (for the shapes the
// encoder refuses to build) with the generated FlatBuffers classes, and are deterministic.
import { createHash } from 'node:crypto';
import { Builder } from 'flatbuffers';
import { ChecksumModule } from '../../src/wire-5/generated/wazuh/sync-schema/checksum-module.js';
import { Cleans } from '../../src/wire-5/generated/wazuh/sync-schema/cleans.js';
import { DataClean } from '../../src/wire-5/generated/wazuh/sync-schema/data-clean.js';
import { DataContext } from '../../src/wire-5/generated/wazuh/sync-schema/data-context.js';
import { DataValue } from '../../src/wire-5/generated/wazuh/sync-schema/data-value.js';
import { FullSession } from '../../src/wire-5/generated/wazuh/sync-schema/full-session.js';
import { Message } from '../../src/wire-5/generated/wazuh/sync-schema/message.js';
import { Start } from '../../src/wire-5/generated/wazuh/sync-schema/start.js';
import { SyncData } from '../../src/wire-5/generated/wazuh/sync-schema/sync-data.js';
import {
  type DataValueInput,
  FullSessionEncoder,
  MessageType,
  Mode,
  Operation,
  Option,
  type PayloadInput,
  SessionPayload,
  type StartFields,
} from '../../src/wire-5/index.js';
import { mutate, prng, unionSpots } from '../wire-5/support.js';

/** The cluster both managers run with. */
export const CLUSTER = 'cluster01';
/** The in-flight budget both run with (the real one: `--max-inflight-bytes`), so 413 is cheap. */
export const BUDGET = 2 * 1024 * 1024;
/** The largest body under BUDGET (see maxBodyBytes): 2 MiB minus 282,624 bytes. */
export const MAX_BODY = BUDGET - (32 * (256 + 8192) + 8192 + 4096);
/** The VD feed offset both report (the real one: `--vd-feed-offset`). */
export const VD_FEED_OFFSET = 5n;

export const PACKAGES = 'wazuh-states-inventory-packages';
export const SYSTEM = 'wazuh-states-inventory-system';
export const FIM_FILES = 'wazuh-states-fim-files';
export const FIM_REGISTRY = 'wazuh-states-fim-registry-keys';

/** One `/stateful` request of the run. */
export interface Step {
  /** Unique; names the step in the recorded results. */
  name: string;
  /** The X-Wazuh-Agent-Id header; '' sends none. */
  agentId: string;
  body: Uint8Array;
  /** Switch the indexer before sending (the real one: SIGUSR2 toggles it). */
  indexer?: 'down' | 'up';
}

export const sha1 = (text: string): string => createHash('sha1').update(text).digest('hex');

/** The checksum a Check must carry for documents with these `checksum.hash.sha1` values. */
export const aggregate = (checksums: readonly string[]): string =>
  sha1([...checksums].sort().join(''));

/** A Start as the reference agent fills it; `overrides` change fields. */
export function startFields(agentid: string, overrides: Partial<StartFields> = {}): StartFields {
  return {
    module: 'syscollector',
    mode: Mode.ModuleDelta,
    index: [],
    option: Option.Sync,
    architecture: 'x86_64',
    hostname: `host-${agentid}`,
    osname: 'Ubuntu',
    osplatform: 'ubuntu',
    ostype: 'linux',
    osversion: '22.04',
    agentversion: 'v5.0.0',
    agentname: `agent-${agentid}`,
    agentid,
    groups: ['default'],
    clusterName: CLUSTER,
    ...overrides,
  };
}

const encoder = new FullSessionEncoder();

/** An encoded session (a copy: the encoder reuses its buffer). */
export function body(start: StartFields, payload: PayloadInput | null): Uint8Array {
  return encoder.encode(start, payload).slice();
}

/** An Upsert of `data` (an object is written as its JSON). */
export function upsert(
  index: string,
  id: string,
  data: object | string | Uint8Array,
  version?: bigint,
): DataValueInput {
  const bytes =
    typeof data === 'object' && !(data instanceof Uint8Array) ? JSON.stringify(data) : data;
  return {
    operation: Operation.Upsert,
    index,
    id,
    data: bytes,
    ...(version === undefined ? {} : { version }),
  };
}

export function remove(index: string, id: string, version?: bigint): DataValueInput {
  return {
    operation: Operation.Delete,
    index,
    id,
    data: '',
    ...(version === undefined ? {} : { version }),
  };
}

/** A document with a `checksum.hash.sha1` derived from `seed`. */
export function checked(seed: string, extra: object = {}): object {
  return { ...extra, item: seed, checksum: { hash: { sha1: sha1(seed) } } };
}

export const delta = (
  agentid: string,
  values: DataValueInput[],
  start: Partial<StartFields> = {},
) => body(startFields(agentid, start), { type: 'SyncData', values });

export const check = (agentid: string, index: string, checksum: string) =>
  body(startFields(agentid, { mode: Mode.ModuleCheck, index: [index] }), {
    type: 'ChecksumModule',
    index,
    checksum,
  });

export const cleans = (agentid: string, indices: string[]) =>
  body(startFields(agentid, { index: indices }), { type: 'Cleans', indices });

/** Raw session parts, for the shapes the encoder refuses to build. */
export interface RawSession {
  /** Start fields; null: no Start. mode, option and operations may be outside their enums. */
  start:
    | (Omit<Partial<StartFields>, 'mode' | 'option'> & { mode?: number; option?: number })
    | null;
  agentid: string;
  payload?:
    | {
        type: 'SyncData';
        values?: Array<Omit<DataValueInput, 'operation'> & { operation: number }>;
        contexts?: number;
      }
    | { type: 'Cleans'; indices: string[] }
    | { type: 'ChecksumModule'; index: string; checksum: string };
}

/** Builds a Message{FullSession} from raw parts, writing every field given, valid or not. */
export function rawBody(raw: RawSession): Uint8Array {
  const b = new Builder(1024);
  const text = (value: string) => b.createString(value);
  let startOff = 0;
  if (raw.start !== null) {
    const s = { ...startFields(raw.agentid), ...raw.start } as StartFields & {
      mode: number;
      option: number;
    };
    const module = text(s.module);
    const groups = Start.createGroupsVector(b, s.groups.map(text));
    const index = Start.createIndexVector(b, s.index.map(text));
    const strings = [
      s.architecture,
      s.hostname,
      s.osname,
      s.osplatform,
      s.ostype,
      s.osversion,
      s.agentversion,
      s.agentname,
      s.agentid,
      s.clusterName,
    ].map(text);
    Start.startStart(b);
    Start.addModule(b, module);
    b.addFieldInt8(1, s.mode, 0);
    Start.addIndex(b, index);
    b.addFieldInt8(3, s.option, 0);
    Start.addArchitecture(b, strings[0] as number);
    Start.addHostname(b, strings[1] as number);
    Start.addOsname(b, strings[2] as number);
    Start.addOsplatform(b, strings[3] as number);
    Start.addOstype(b, strings[4] as number);
    Start.addOsversion(b, strings[5] as number);
    Start.addAgentversion(b, strings[6] as number);
    Start.addAgentname(b, strings[7] as number);
    Start.addAgentid(b, strings[8] as number);
    Start.addGroups(b, groups);
    Start.addClusterName(b, strings[9] as number);
    if (s.globalVersion !== undefined) Start.addGlobalVersion(b, s.globalVersion);
    if (s.feedOffset !== undefined) Start.addFeedOffset(b, s.feedOffset);
    startOff = Start.endStart(b);
  }
  let payloadType = SessionPayload.NONE;
  let payloadOff = 0;
  const p = raw.payload;
  if (p?.type === 'SyncData') {
    let values: number | undefined;
    if (p.values !== undefined) {
      const offsets = p.values.map((v) => {
        const id = text(v.id);
        const index = text(v.index);
        const data = DataValue.createDataVector(
          b,
          typeof v.data === 'string' ? new TextEncoder().encode(v.data) : v.data,
        );
        DataValue.startDataValue(b);
        DataValue.addId(b, id);
        DataValue.addIndex(b, index);
        DataValue.addVersion(b, v.version ?? 0n);
        b.addFieldInt8(0, v.operation, 0);
        DataValue.addData(b, data);
        return DataValue.endDataValue(b);
      });
      values = SyncData.createValuesVector(b, offsets);
    }
    const contextOffsets: number[] = [];
    for (let i = 0; i < (p.contexts ?? 0); i++) {
      const id = text(`ctx-${i}`);
      const index = text(PACKAGES);
      const data = DataContext.createDataVector(b, new TextEncoder().encode('{"c":1}'));
      DataContext.startDataContext(b);
      DataContext.addId(b, id);
      DataContext.addIndex(b, index);
      DataContext.addData(b, data);
      contextOffsets.push(DataContext.endDataContext(b));
    }
    const contexts = SyncData.createContextsVector(b, contextOffsets);
    SyncData.startSyncData(b);
    if (values !== undefined) SyncData.addValues(b, values);
    SyncData.addContexts(b, contexts);
    payloadType = SessionPayload.SyncData;
    payloadOff = SyncData.endSyncData(b);
  } else if (p?.type === 'Cleans') {
    const items = Cleans.createItemsVector(
      b,
      p.indices.map((index) => {
        const off = text(index);
        DataClean.startDataClean(b);
        DataClean.addIndex(b, off);
        return DataClean.endDataClean(b);
      }),
    );
    payloadType = SessionPayload.Cleans;
    payloadOff = Cleans.createCleans(b, items);
  } else if (p?.type === 'ChecksumModule') {
    const index = text(p.index);
    const checksum = text(p.checksum);
    payloadType = SessionPayload.ChecksumModule;
    payloadOff = ChecksumModule.createChecksumModule(b, index, checksum);
  }
  FullSession.startFullSession(b);
  if (startOff !== 0) FullSession.addStart(b, startOff);
  if (payloadType !== SessionPayload.NONE) {
    FullSession.addPayloadType(b, payloadType);
    FullSession.addPayload(b, payloadOff);
  }
  const session = FullSession.endFullSession(b);
  b.finish(Message.createMessage(b, MessageType.FullSession, session));
  return b.asUint8Array().slice();
}

/** A well-formed Message whose content is a DataValue, not a FullSession. */
export function dataValueMessage(): Uint8Array {
  const b = new Builder(256);
  const id = b.createString('x');
  const index = b.createString(PACKAGES);
  DataValue.startDataValue(b);
  DataValue.addId(b, id);
  DataValue.addIndex(b, index);
  const value = DataValue.endDataValue(b);
  b.finish(Message.createMessage(b, MessageType.DataValue, value));
  return b.asUint8Array().slice();
}

/** `length` bytes from a seeded PRNG. */
export function randomBytes(length: number, seed: number): Uint8Array {
  const random = prng(seed);
  return Uint8Array.from({ length }, () => Math.floor(random() * 256));
}

/** A document of about `size` bytes. */
const bigDocument = (size: number) => ({ blob: 'x'.repeat(size) });

/** The run, in order. Agents: one range per group, so the groups do not disturb each other. */
export function steps(): Step[] {
  const out: Step[] = [];
  const add = (name: string, agentId: string, data: Uint8Array, extra: Partial<Step> = {}) =>
    out.push({ name, agentId, body: data, ...extra });

  // A: data, overlay, Check (agent 1).
  add(
    'A1 delta: 3 upserts, 2 indices, forged wazuh fields',
    '1',
    delta('1', [
      upsert(
        PACKAGES,
        'pkg-1',
        checked('a', {
          wazuh: { agent: { id: '999', name: 'forged', extra: 'kept' }, cluster: { name: 'evil' } },
        }),
      ),
      upsert(PACKAGES, 'pkg-2', checked('b')),
      upsert(SYSTEM, 'os-1', checked('c')),
    ]),
  );
  add('A2 check: match', '1', check('1', PACKAGES, aggregate([sha1('a'), sha1('b')])));
  add(
    'A3 check: uppercase checksum',
    '1',
    check('1', PACKAGES, aggregate([sha1('a'), sha1('b')]).toUpperCase()),
  );
  add(
    'A4 delta: delete, change, delete a missing one',
    '1',
    delta('1', [
      remove(PACKAGES, 'pkg-2'),
      upsert(PACKAGES, 'pkg-1', checked('a2')),
      remove(PACKAGES, 'ghost'),
    ]),
  );
  add('A5 check: stale', '1', check('1', PACKAGES, aggregate([sha1('a'), sha1('b')])));
  add('A6 check: current', '1', check('1', PACKAGES, aggregate([sha1('a2')])));
  add(
    'A7 check: wildcard index',
    '1',
    check('1', 'wazuh-states-inventory-*', aggregate([sha1('a2'), sha1('c')])),
  );
  add('A8 check: no documents', '1', check('1', FIM_FILES, sha1('')));

  // P: agent id forms.
  add(
    'P1 header 007, Start 7, forged wazuh fields',
    '007',
    delta('7', [
      upsert(PACKAGES, 'p1', {
        n: 1,
        wazuh: {
          agent: { id: '999', name: 'forged', extra: 'kept', host: { ip: '10.0.0.1' } },
          cluster: { name: 'evil' },
        },
      }),
    ]),
  );
  add('P2 header 2, Start 0002', '2', delta('0002', [upsert(PACKAGES, 'p2', { n: 2 })]));
  add(
    'P3 header 1, Start 4294967297 (atoi)',
    '1',
    delta('4294967297', [upsert(PACKAGES, 'p3', { n: 3 })]),
  );
  add('P4 header 1, Start 2', '1', delta('2', [upsert(PACKAGES, 'p4', { n: 4 })]));
  add(
    'P5 both past LONG_MAX (atoi)',
    '999999999999999999999999',
    delta('99999999999999999999', [upsert(PACKAGES, 'p5', { n: 5 })]),
  );

  // V: versioned upserts (agent 10).
  const dv = (n: number, version: number) => ({ n, state: { document_version: version } });
  add('V1 v1 version 5: created', '10', delta('10', [upsert(PACKAGES, 'v1', dv(1, 5), 5n)]));
  add('V2 v1 version 3: older, kept', '10', delta('10', [upsert(PACKAGES, 'v1', dv(2, 3), 3n)]));
  add(
    'V3 v1 version 5: equal, replaced',
    '10',
    delta('10', [upsert(PACKAGES, 'v1', dv(3, 5), 5n)]),
  );
  add('V4 v1 unversioned: replaced', '10', delta('10', [upsert(PACKAGES, 'v1', dv(4, 1))]));
  add(
    'V5 v1 version 2: above the stored 1',
    '10',
    delta('10', [upsert(PACKAGES, 'v1', dv(5, 2), 2n)]),
  );
  add('V6 v2 version 1, no state', '10', delta('10', [upsert(PACKAGES, 'v2', { n: 1 }, 1n)]));
  add(
    'V7 v2 version 1 again: no stored version',
    '10',
    delta('10', [upsert(PACKAGES, 'v2', { n: 2 }, 1n)]),
  );
  add('V8 delete v2 with a version', '10', delta('10', [remove(PACKAGES, 'v2', 1n)]));
  add(
    'V9 one session: v3 version 9, then version 4',
    '10',
    delta('10', [upsert(PACKAGES, 'v3', dv(1, 9), 9n), upsert(PACKAGES, 'v3', dv(2, 4), 4n)]),
  );

  // C: Cleans (agents 20 and 21).
  add(
    'C1 agent 20 data',
    '20',
    delta('20', [
      upsert(FIM_FILES, 'f1', { n: 1 }),
      upsert(FIM_REGISTRY, 'r1', { n: 1 }),
      upsert(PACKAGES, 'k1', { n: 1 }),
    ]),
  );
  add(
    'C2 agent 21 data',
    '21',
    delta('21', [upsert(FIM_FILES, 'f1', { n: 1 }), upsert(PACKAGES, 'k1', { n: 1 })]),
  );
  add('C3 agent 20 cleans fim-files', '20', cleans('20', [FIM_FILES]));
  add('C4 agent 20 cleans nothing allowlisted', '20', cleans('20', ['not-allowed', '']));
  add(
    'C5 agent 20 cleans fim-* twice',
    '20',
    cleans('20', ['wazuh-states-fim-*', 'wazuh-states-fim-*']),
  );
  add('C6 agent 21 cleans vulnerabilities', '21', cleans('21', ['wazuh-states-vulnerabilities']));

  // S: per-document skips (agent 30).
  add(
    'S1 every value skipped',
    '30',
    delta('30', [
      upsert('my-index', 'x1', { n: 1 }),
      upsert('wazuh-states-vulnerabilities', 'x2', { n: 1 }),
      upsert(PACKAGES, '', { n: 1 }),
      upsert(PACKAGES, 'x3', 'nope'),
      upsert(PACKAGES, 'x4', '[1]'),
      upsert(PACKAGES, 'x5', '5'),
      upsert(PACKAGES, 'x6', '{"a":1e400}'),
      upsert(PACKAGES, 'x7', '{"a":"\\ud800"}'),
      upsert(PACKAGES, 'x8', Uint8Array.of(0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d)),
      upsert(PACKAGES, 'x9', ''),
      upsert(PACKAGES, 'x11', 'null'),
      upsert(PACKAGES, 'x12', '{"a":"\\udc00"}'),
      upsert(PACKAGES, 'x13', '{"a":1}garbage'),
      remove('my-index', 'x10'),
    ]),
  );
  add(
    'S2 documents the seed wire refused',
    '30',
    delta('30', [
      upsert(
        PACKAGES,
        's1',
        Uint8Array.of(0xef, 0xbb, 0xbf, ...new TextEncoder().encode('{"b":1}')),
      ),
      upsert(PACKAGES, 's2', { first: true }),
      upsert(PACKAGES, 's2', { second: true }),
      upsert(PACKAGES, 's3', '{"wazuh":null,"x":1}'),
      upsert(PACKAGES, 's4', '{}'),
      upsert(PACKAGES, 's5', ' {"w":1}\n'),
      upsert(PACKAGES, 's6', '{"a":"\\ud83e\\udd8a"}'),
    ]),
  );
  add(
    'S3 contexts are not indexed',
    '30',
    rawBody({
      agentid: '30',
      start: {},
      payload: {
        type: 'SyncData',
        values: [{ ...upsert(PACKAGES, 'c1', { n: 1 }), operation: 0 }],
        contexts: 2,
      },
    }),
  );

  // E: refusals and failures (agent 40).
  const valid = delta('40', [upsert(PACKAGES, 'e0', { n: 0 })]);
  add('E01 no agent id header', '', valid);
  add('E02 empty body', '40', new Uint8Array(0));
  for (const [i, size] of [1, 7, 64, 300, 4096].entries()) {
    add(`E03.${i} ${size} random bytes`, '40', randomBytes(size, 1000 + i));
  }
  add('E04 truncated body', '40', valid.slice(0, Math.floor(valid.length / 2)));
  const random = prng(0x40);
  for (let i = 0; i < 16; i++) add(`E05.${i} corrupted body`, '40', mutate(valid, random));
  add('E06 a DataValue message', '40', dataValueMessage());
  add(
    'E07 FullSession without Start',
    '40',
    rawBody({ agentid: '40', start: null, payload: { type: 'Cleans', indices: [PACKAGES] } }),
  );
  add('E08 module empty', '40', delta('40', [upsert(PACKAGES, 'e', { n: 1 })], { module: '' }));
  add('E09 Start agent id not numeric', '40', delta('abc', [upsert(PACKAGES, 'e', { n: 1 })]));
  add('E10 header not numeric', 'x40', valid);
  add('E11 Start agent id of another agent', '40', delta('41', [upsert(PACKAGES, 'e', { n: 1 })]));
  add(
    'E12 cluster name empty',
    '40',
    delta('40', [upsert(PACKAGES, 'e', { n: 1 })], { clusterName: '' }),
  );
  add(
    'E13 another cluster',
    '40',
    delta('40', [upsert(PACKAGES, 'e', { n: 1 })], { clusterName: 'other' }),
  );
  add(
    'E14 ModuleCheck with SyncData',
    '40',
    rawBody({
      agentid: '40',
      start: { mode: Mode.ModuleCheck },
      payload: { type: 'SyncData', values: [{ ...upsert(PACKAGES, 'e', { n: 1 }), operation: 0 }] },
    }),
  );
  add(
    'E15 MetadataDelta with Cleans',
    '40',
    rawBody({
      agentid: '40',
      start: { mode: Mode.MetadataDelta, globalVersion: 1n },
      payload: { type: 'Cleans', indices: [PACKAGES] },
    }),
  );
  add('E16 ModuleDelta without payload', '40', rawBody({ agentid: '40', start: {} }));
  add(
    'E17 SyncData without values',
    '40',
    rawBody({ agentid: '40', start: {}, payload: { type: 'SyncData', values: [] } }),
  );
  add(
    'E18 SyncData with contexts only',
    '40',
    rawBody({ agentid: '40', start: {}, payload: { type: 'SyncData', contexts: 1 } }),
  );
  add(
    'E19 Cleans without items',
    '40',
    rawBody({ agentid: '40', start: {}, payload: { type: 'Cleans', indices: [] } }),
  );
  add('E20 Check of a forbidden index', '40', check('40', 'my-index', sha1('')));
  add('E21 Check of an empty index name', '40', check('40', '', sha1('')));
  add('E22 Check without checksum', '40', check('40', PACKAGES, ''));
  add('E23 mode 7', '40', rawBody({ agentid: '40', start: { mode: 7 } }));
  add(
    'E23b mode -3 with Cleans',
    '40',
    rawBody({
      agentid: '40',
      start: { mode: -3 },
      payload: { type: 'Cleans', indices: [PACKAGES] },
    }),
  );
  add(
    'E24 mode 7, another cluster',
    '40',
    rawBody({ agentid: '40', start: { mode: 7, clusterName: 'other' } }),
  );
  add(
    'E25 option 9 on data',
    '40',
    rawBody({
      agentid: '40',
      start: { option: 9 },
      payload: {
        type: 'SyncData',
        values: [{ ...upsert(PACKAGES, 'opt9', { n: 9 }), operation: 0 }],
      },
    }),
  );
  add(
    'E26 operation 5',
    '40',
    rawBody({
      agentid: '40',
      start: {},
      payload: {
        type: 'SyncData',
        values: [
          { ...upsert(PACKAGES, 'op-ok', { n: 1 }), operation: 0 },
          { ...upsert(PACKAGES, 'op5', { n: 5 }), operation: 5 },
        ],
      },
    }),
  );
  add(
    'E27 unsafe index name after a good value',
    '40',
    delta('40', [
      upsert(PACKAGES, 'u1', { n: 1 }),
      upsert('wazuh-states-inventory-a b', 'u2', { n: 2 }),
      upsert(PACKAGES, 'u3', { n: 3 }),
    ]),
  );
  add(
    'E28 wazuh is not an object',
    '40',
    delta('40', [
      upsert(PACKAGES, 'w1', { n: 1 }),
      upsert(PACKAGES, 'w2', { wazuh: 'x' }),
      upsert(PACKAGES, 'w3', { n: 3 }),
    ]),
  );
  add(
    'E28b wazuh.agent is an array',
    '40',
    delta('40', [upsert(PACKAGES, 'w4', { wazuh: { agent: [] } })]),
  );
  add('E29 check with a document without sha1', '40', check('40', PACKAGES, sha1('')));
  add(
    'E30 Cleans with a VD option',
    '40',
    body(startFields('40', { option: Option.VDSync, feedOffset: 9n, index: [SYSTEM] }), {
      type: 'Cleans',
      indices: [SYSTEM],
    }),
  );
  add('E31 Cleans of an unsafe index name', '40', cleans('40', ['wazuh-states-fim-a/b']));
  add('E32 Check of an unsafe index name', '40', check('40', 'wazuh-states-fim-a b', sha1('')));

  // K: the Check's paging (agent 80): pages of 1000 sorted checksums, each page after the last
  // checksum of the previous one, so a checksum equal to the last of a page is skipped.
  const tie = sha1('tie');
  const below = Array.from({ length: 1300 }, (_, i) => sha1(`k${i}`)).filter((k) => k < tie);
  const keys = [...below.slice(0, 999), tie, tie];
  add(
    'K1 1001 documents, a tie across the page boundary',
    '80',
    delta(
      '80',
      keys.map((k, i) => upsert(PACKAGES, `k${i}`, { checksum: { hash: { sha1: k } } })),
    ),
  );
  add('K2 check: every checksum', '80', check('80', PACKAGES, aggregate(keys)));
  add('K3 check: the tie counted once', '80', check('80', PACKAGES, aggregate(keys.slice(0, -1))));

  // U: union tags the codec's verifier refuses and the manager's C++ one does not look into.
  const tagged = (bytes: Uint8Array, at: number | undefined, tag: number) => {
    const copy = bytes.slice();
    copy[at as number] = tag;
    return copy;
  };
  const spots = unionSpots(valid);
  add('U1 content tag NONE', '40', tagged(valid, spots.contentType, 0));
  add('U2 content tag 9', '40', tagged(valid, spots.contentType, 9));
  add('U3 payload tag 7', '40', tagged(valid, spots.payloadType, 7));
  const foreign = delta('40', [upsert(PACKAGES, 'e', { n: 1 })], { clusterName: 'other' });
  add(
    'U4 payload tag 7, another cluster',
    '40',
    tagged(foreign, unionSpots(foreign).payloadType, 7),
  );
  // Agent 50: a metadata session, whose effects the harness does not apply (see group M).
  const stray = rawBody({
    agentid: '50',
    start: { mode: Mode.MetadataDelta, globalVersion: 1n, index: [PACKAGES] },
    payload: { type: 'Cleans', indices: [PACKAGES] },
  });
  add(
    'U5 metadata session with a stray payload value',
    '50',
    tagged(stray, unionSpots(stray).payloadType, 0),
  );

  // D: vulnerability detection sessions (agent 45).
  const vd = (option: Option, feedOffset: bigint, id: string, start: Partial<StartFields> = {}) =>
    delta('45', [upsert(PACKAGES, id, { n: 1 })], { option, feedOffset, ...start });
  add('D1 VDSync at the current feed offset', '45', vd(Option.VDSync, VD_FEED_OFFSET, 'vd1'));
  add('D2 VDFirst at another feed offset', '45', vd(Option.VDFirst, VD_FEED_OFFSET + 1n, 'vd2'));
  add(
    'D3 VDSync at another offset, another cluster',
    '45',
    vd(Option.VDSync, 6n, 'vd3', { clusterName: 'other' }),
  );

  // M: metadata and groups (agent 50). The real harness only journals update-by-query.
  const meta = (
    mode: Mode,
    globalVersion: bigint,
    index: string[],
    start: Partial<StartFields> = {},
  ) => body(startFields('50', { mode, globalVersion, index, ...start }), null);
  add(
    'M1 data',
    '50',
    delta('50', [upsert(SYSTEM, 'm1', { n: 1 }), upsert(PACKAGES, 'm2', { n: 2 })]),
  );
  add(
    'M2 MetadataDelta 100',
    '50',
    meta(Mode.MetadataDelta, 100n, [SYSTEM, PACKAGES], { agentname: 'renamed' }),
  );
  add(
    'M3 MetadataDelta 50',
    '50',
    meta(Mode.MetadataDelta, 50n, [SYSTEM, PACKAGES], { agentname: 'older' }),
  );
  add(
    'M4 GroupDelta 100',
    '50',
    meta(Mode.GroupDelta, 100n, [SYSTEM], { groups: ['web', 'prod'] }),
  );
  add(
    'M5 MetadataCheck',
    '50',
    meta(Mode.MetadataCheck, 1n, [SYSTEM, PACKAGES], { hostname: 'repaired' }),
  );
  add('M6 GroupCheck', '50', meta(Mode.GroupCheck, 1n, [PACKAGES], { groups: ['prod', 'web'] }));
  add(
    'M7 MetadataDelta of forbidden indices',
    '50',
    meta(Mode.MetadataDelta, 200n, ['not-a-state-index']),
  );
  add('M8 GroupDelta of no index', '50', meta(Mode.GroupDelta, 200n, []));
  add(
    'M9 MetadataDelta of an unsafe index',
    '50',
    meta(Mode.MetadataDelta, 200n, ['wazuh-states-inventory-a b']),
  );

  // X: the indexer down (agent 60).
  add('X1 indexer down: data', '60', delta('60', [upsert(PACKAGES, 'x1', { n: 1 })]), {
    indexer: 'down',
  });
  add('X2 indexer down: random bytes', '60', randomBytes(64, 60));
  add('X3 indexer down: another agent', '60', delta('61', [upsert(PACKAGES, 'x', { n: 1 })]));
  add('X4 indexer down: Check', '60', check('60', PACKAGES, sha1('')));
  add('X5 indexer up: data', '60', delta('60', [upsert(PACKAGES, 'x2', { n: 2 })]), {
    indexer: 'up',
  });

  // B: the byte budget (agent 70).
  add('B1 garbage of exactly the largest size', '70', randomBytes(MAX_BODY, 70));
  add('B2 one byte more', '70', randomBytes(MAX_BODY + 1, 71));
  add(
    'B3 a valid session over the limit',
    '70',
    delta('70', [upsert(PACKAGES, 'big', bigDocument(MAX_BODY))]),
  );
  return out;
}

/** The recorded run of the real manager (test/testing/full-session-real.json). */
export interface RealRun {
  /** What ran: the module's source commit and how the harness was started. */
  source: string;
  /** Each step's answer, by step name. */
  answers: Record<string, { status: number; body: string; retryAfter?: string }>;
  /** The stored documents at the end: index -> `_id` -> `_source`. */
  store: Record<string, Record<string, unknown>>;
}
