import { createHash } from 'node:crypto';
import { Builder } from 'flatbuffers';
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import type { LogLevel } from '../../src/interfaces/logger.js';
import {
  computeIndexChecksum,
  InProcessTransport,
  MockManager,
  type MockManagerOptions,
} from '../../src/testing/index.js';
import {
  DataValue,
  Message,
  MessageType,
} from '../../src/wire/generated/inventorySync_generated.js';
import {
  decodeManagerResponse,
  MessageEncoder,
  Status,
  verifyMessage,
  WireMode,
  WireOperation,
} from '../../src/wire/index.js';
import type { ManagerResponse, SeqRange } from '../../src/wire/types.js';

const enc = new MessageEncoder();
const managers: MockManager[] = [];

afterEach(async () => {
  for (const manager of managers.splice(0)) await manager.close();
});

function newManager(options: MockManagerOptions = {}): MockManager {
  const manager = new MockManager({ responseDelivery: 'sync', ...options });
  managers.push(manager);
  return manager;
}

/** A document the manager stores intact: an object with a member. */
const DOC = { v: 1 };

/** Fake timers for this test: what a delay does no longer depends on the machine's load. */
function useFakeTimers(): void {
  vi.useFakeTimers();
  onTestFinished(() => {
    vi.useRealTimers();
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const nextMacrotask = () => new Promise((resolve) => setImmediate(resolve));

const sha1 = (text: string) => createHash('sha1').update(text).digest('hex');

/** Plays the agent side of one module against a manager, collecting decoded answers. */
class Peer {
  responses: ManagerResponse[] = [];
  readonly reply = (bytes: Uint8Array): void => {
    const response = decodeManagerResponse(bytes);
    if (response === null) throw new Error('manager sent an undecodable response');
    this.responses.push(response);
  };

  constructor(
    readonly manager: MockManager,
    readonly module = 'syscollector',
    readonly agentId = '001',
  ) {}

  send(bytes: Uint8Array): void {
    this.manager.receive(bytes, this.module, this.reply);
  }

  take(): ManagerResponse[] {
    const responses = this.responses;
    this.responses = [];
    return responses;
  }

  /** Sends Start and returns the single answer. */
  startRaw(mode: WireMode, size: number | bigint, index = ['idx']): ManagerResponse | undefined {
    this.send(enc.start({ mode, size: BigInt(size), index, agentid: this.agentId }));
    return this.take()[0];
  }

  start(mode: WireMode, size: number, index = ['idx']): bigint {
    const ack = this.startRaw(mode, size, index);
    expect(ack).toMatchObject({ type: 'StartAck', status: Status.Ok });
    return (ack as { session: bigint }).session;
  }

  upsert(session: bigint, seq: number, id: string, doc: unknown, index = 'idx'): void {
    const data = typeof doc === 'string' ? doc : JSON.stringify(doc);
    this.send(enc.dataValue(BigInt(seq), session, WireOperation.Upsert, id, index, data));
  }

  remove(session: bigint, seq: number, id: string, index = 'idx'): void {
    this.send(enc.dataValue(BigInt(seq), session, WireOperation.Delete, id, index, ''));
  }

  end(session: bigint): void {
    this.send(enc.end(session));
  }

  /** A whole Full/Delta session of upserts; returns the answers after End. */
  sync(mode: WireMode, docs: Array<[string, unknown]>, index = 'idx'): ManagerResponse[] {
    const session = this.start(mode, docs.length, [index]);
    for (const [seq, [id, doc]] of docs.entries()) this.upsert(session, seq, id, doc, index);
    this.end(session);
    return this.take();
  }
}

const range = (begin: number, end: number): SeqRange => ({
  begin: BigInt(begin),
  end: BigInt(end),
});

function docIds(manager: MockManager, index?: string): string[] {
  return manager
    .documents(index)
    .map((d) => d.id)
    .sort();
}

describe('computeIndexChecksum', () => {
  it('hashes the sorted sha1 fields and skips documents without one', () => {
    const docs = [
      { checksum: { hash: { sha1: 'bb' } } },
      { name: 'no checksum' },
      { checksum: { hash: { sha1: 'aa' } } },
      { checksum: { hash: { sha1: 42 } } },
      { checksum: { hash: null } },
      null,
      { checksum: { hash: { sha1: 'cc' } } },
    ];
    expect(computeIndexChecksum(docs)).toBe(sha1('aabbcc'));
  });

  it('is the SHA-1 of nothing for no documents, and ignores order', () => {
    expect(computeIndexChecksum([])).toBe(sha1(''));
    const a = { checksum: { hash: { sha1: '01' } } };
    const b = { checksum: { hash: { sha1: '0a' } } };
    expect(computeIndexChecksum([b, a])).toBe(computeIndexChecksum([a, b]));
    expect(computeIndexChecksum(new Set([a, b]))).toBe(sha1('010a'));
  });
});

describe('MockManager sessions', () => {
  it('acknowledges Start with a random non-zero session id per session', () => {
    const peer = new Peer(newManager());
    const ids = new Set<bigint>();
    for (let i = 0; i < 20; i++) ids.add(peer.start(WireMode.ModuleDelta, 1));
    expect(ids.size).toBe(20);
    expect(ids.has(0n)).toBe(false);
    expect(peer.manager.sessionCount).toBe(20);
    expect(peer.manager.stats.sessionsStarted).toBe(20);
  });

  it('refuses size 0 in Full and Delta and sizes above the cap with Error', () => {
    const peer = new Peer(newManager({ maxSessionSize: 100 }));
    for (const mode of [WireMode.ModuleFull, WireMode.ModuleDelta]) {
      expect(peer.startRaw(mode, 0)).toEqual({
        type: 'StartAck',
        status: Status.Error,
        session: 0n,
      });
    }
    expect(peer.startRaw(WireMode.ModuleFull, 101)).toMatchObject({ status: Status.Error });
    expect(peer.startRaw(WireMode.ModuleFull, 2n ** 64n - 1n)).toMatchObject({
      status: Status.Error,
    });
    expect(peer.startRaw(WireMode.ModuleFull, 100)).toMatchObject({ status: Status.Ok });
    expect(peer.manager.sessionCount).toBe(1);
  });

  it('accepts size 0 in the modes without data by default (later 5.0 betas)', () => {
    const peer = new Peer(newManager());
    for (const mode of [
      WireMode.ModuleCheck,
      WireMode.MetadataDelta,
      WireMode.MetadataCheck,
      WireMode.GroupDelta,
      WireMode.GroupCheck,
    ]) {
      expect(peer.startRaw(mode, 0, [])).toMatchObject({ type: 'StartAck', status: Status.Ok });
    }
  });

  it("emptySessions 'refuse' answers every size-0 Start Error and ignores ChecksumModule (ad9475fb35)", () => {
    const peer = new Peer(newManager({ emptySessions: 'refuse' }));
    for (const mode of [
      WireMode.ModuleFull,
      WireMode.ModuleDelta,
      WireMode.ModuleCheck,
      WireMode.MetadataDelta,
      WireMode.MetadataCheck,
      WireMode.GroupDelta,
      WireMode.GroupCheck,
    ]) {
      expect(peer.startRaw(mode, 0, [])).toEqual({
        type: 'StartAck',
        status: Status.Error,
        session: 0n,
      });
    }
    expect(peer.manager.sessionCount).toBe(0);
    // Sessions with data are unaffected, and a ChecksumModule is an unknown message there.
    expect(peer.sync(WireMode.ModuleDelta, [['a', DOC]])).toMatchObject([{ status: Status.Ok }]);
    const session = peer.start(WireMode.ModuleCheck, 1);
    peer.send(enc.checksumModule(session, 'idx', 'f00d'));
    expect(peer.manager.stats.invalidMessages).toBe(1);
    expect(() => newManager({ emptySessions: 'never' as 'refuse' })).toThrow(RangeError);
  });

  it('answers Offline while the indexer is unavailable', () => {
    const peer = new Peer(newManager());
    peer.manager.setIndexerAvailable(false);
    expect(peer.startRaw(WireMode.ModuleFull, 3)).toEqual({
      type: 'StartAck',
      status: Status.Offline,
      session: 0n,
    });
    expect(peer.manager.sessionCount).toBe(0);
    peer.manager.setIndexerAvailable(true);
    expect(peer.startRaw(WireMode.ModuleFull, 3)).toMatchObject({ status: Status.Ok });
  });

  it('indexes a full session and answers EndAck Ok', () => {
    const peer = new Peer(newManager());
    const session = peer.start(WireMode.ModuleFull, 3, ['wazuh-states-packages']);
    peer.upsert(session, 0, 'a', { name: 'a' }, 'wazuh-states-packages');
    peer.upsert(session, 1, 'b', { name: 'b' }, 'wazuh-states-packages');
    peer.upsert(session, 2, 'c', { name: 'c' }, 'wazuh-states-packages');
    expect(peer.take()).toEqual([]);
    peer.end(session);
    expect(peer.take()).toEqual([{ type: 'EndAck', status: Status.Ok, session }]);
    expect(peer.manager.documents('wazuh-states-packages')).toEqual(
      ['a', 'b', 'c'].map((id) => ({
        index: 'wazuh-states-packages',
        id: `001_${id}`,
        itemId: id,
        agentId: '001',
        module: 'syscollector',
        data: { name: id },
      })),
    );
    expect(peer.manager.sessionCount).toBe(0);
    expect(peer.manager.stats).toMatchObject({
      messagesReceived: 5,
      sessionsStarted: 1,
      sessionsCompleted: 1,
      sessionsFailed: 0,
      dataValuesReceived: 3,
      reqRetsSent: 0,
    });
    // The session is gone: a second End is for an unknown session.
    peer.end(session);
    expect(peer.take()).toEqual([]);
  });

  it('applies Delta upserts and deletes', () => {
    const peer = new Peer(newManager());
    peer.sync(WireMode.ModuleFull, [
      ['a', { v: 1 }],
      ['b', { v: 1 }],
    ]);
    const session = peer.start(WireMode.ModuleDelta, 3);
    peer.upsert(session, 0, 'a', { v: 2 });
    peer.remove(session, 1, 'b');
    peer.upsert(session, 2, 'c', { v: 1 });
    peer.end(session);
    expect(peer.take()).toMatchObject([{ type: 'EndAck', status: Status.Ok }]);
    const docs = Object.fromEntries(peer.manager.documents().map((d) => [d.id, d.data]));
    expect(docs).toEqual({ '001_a': { v: 2 }, '001_c': { v: 1 } });
  });

  it('Full replaces only the documents of that agent and module', () => {
    const manager = newManager();
    const a1 = new Peer(manager, 'syscollector', '001');
    const a2 = new Peer(manager, 'syscollector', '002');
    const fim = new Peer(manager, 'fim', '001');
    a1.sync(WireMode.ModuleFull, [
      ['x', DOC],
      ['y', DOC],
    ]);
    a2.sync(WireMode.ModuleFull, [['x', DOC]]);
    fim.sync(WireMode.ModuleFull, [['f', DOC]], 'files');
    a1.sync(WireMode.ModuleFull, [['z', DOC]], 'other');
    expect(docIds(manager)).toEqual(['001_f', '001_z', '002_x']);
    expect(docIds(manager, 'idx')).toEqual(['002_x']);
  });

  it('asks for missing seqs as merged ranges and completes on the last retransmission', () => {
    const peer = new Peer(newManager());
    const session = peer.start(WireMode.ModuleFull, 10);
    for (const seq of [9, 0, 4, 1, 5]) peer.upsert(session, seq, `i${seq}`, { seq });
    peer.end(session);
    expect(peer.take()).toEqual([{ type: 'ReqRet', session, ranges: [range(2, 3), range(6, 8)] }]);
    for (const seq of [2, 3, 7]) peer.upsert(session, seq, `i${seq}`, { seq });
    expect(peer.take()).toEqual([]);
    // End again while still missing: a fresh ReqRet with what is left.
    peer.end(session);
    expect(peer.take()).toEqual([{ type: 'ReqRet', session, ranges: [range(6, 6), range(8, 8)] }]);
    peer.upsert(session, 8, 'i8', { seq: 8 });
    expect(peer.take()).toEqual([]);
    peer.upsert(session, 6, 'i6', { seq: 6 });
    expect(peer.take()).toEqual([{ type: 'EndAck', status: Status.Ok, session }]);
    expect(peer.manager.documentCount()).toBe(10);
    expect(peer.manager.documentCount('idx')).toBe(10);
    expect(peer.manager.documentCount('idx-none')).toBe(0);
    expect(peer.manager.documents()).toHaveLength(10);
    expect(peer.manager.stats.reqRetsSent).toBe(2);
  });

  it('asks for everything when nothing arrived, and the tail when only it is missing', () => {
    const peer = new Peer(newManager());
    const empty = peer.start(WireMode.ModuleDelta, 5);
    peer.end(empty);
    expect(peer.take()).toEqual([{ type: 'ReqRet', session: empty, ranges: [range(0, 4)] }]);
    const tail = peer.start(WireMode.ModuleDelta, 5);
    peer.upsert(tail, 0, 'a', DOC);
    peer.end(tail);
    expect(peer.take()).toEqual([{ type: 'ReqRet', session: tail, ranges: [range(1, 4)] }]);
  });

  it('ignores messages for unknown sessions and seqs beyond the size', () => {
    const messages: string[] = [];
    const peer = new Peer(newManager({ logger: (_level, message) => messages.push(message) }));
    peer.upsert(123n, 0, 'a', DOC);
    peer.send(enc.checksumModule(123n, 'idx', 'x'));
    peer.end(123n);
    const session = peer.start(WireMode.ModuleDelta, 1);
    peer.upsert(session, 1, 'beyond', DOC);
    peer.upsert(session, 2 ** 40, 'far', DOC);
    peer.upsert(session, 0, 'a', DOC);
    peer.end(session);
    expect(peer.take()).toEqual([{ type: 'EndAck', status: Status.Ok, session }]);
    expect(docIds(peer.manager)).toEqual(['001_a']);
    expect(messages.filter((m) => m.includes('unknown session'))).toHaveLength(3);
    expect(messages.filter((m) => m.includes('ignored'))).toHaveLength(2);
  });

  it('overwrites a duplicate seq and counts it', () => {
    const peer = new Peer(newManager());
    const session = peer.start(WireMode.ModuleDelta, 1);
    peer.upsert(session, 0, 'a', { v: 1 });
    peer.upsert(session, 0, 'a', { v: 2 });
    peer.end(session);
    expect(peer.manager.documents()[0]?.data).toEqual({ v: 2 });
    expect(peer.manager.stats.duplicatesReceived).toBe(1);
  });

  it('fails the session on an invalid JSON document, applying nothing', () => {
    const peer = new Peer(newManager());
    peer.sync(WireMode.ModuleFull, [['keep', DOC]]);
    const session = peer.start(WireMode.ModuleFull, 2);
    peer.upsert(session, 0, 'a', { ok: true });
    peer.upsert(session, 1, 'b', '{not json');
    peer.end(session);
    expect(peer.take()).toEqual([{ type: 'EndAck', status: Status.Error, session }]);
    expect(docIds(peer.manager)).toEqual(['001_keep']);
    expect(peer.manager.stats.sessionsFailed).toBe(1);
  });

  // The real manager writes `{"agent":…,"wazuh":…,` and then the document without its first
  // byte: these come out broken, the indexer drops them one by one, yet it answers EndAck Ok.
  it.each([
    ['an empty object', '{}'],
    ['an empty object with blanks inside', '{ \n}'],
    ['leading whitespace', ' {"a":1}'],
    ['an array', '[1]'],
    ['a number', '42'],
    ['null', 'null'],
    ['a string', '"{\\"a\\":1}"'],
  ])('fails the session on a document the real manager would corrupt: %s', (_, data) => {
    const logs: string[] = [];
    const peer = new Peer(newManager({ logger: (_level, message) => logs.push(message) }));
    peer.sync(WireMode.ModuleFull, [['keep', DOC]]);
    const session = peer.start(WireMode.ModuleDelta, 2);
    peer.upsert(session, 0, 'a', { ok: true });
    peer.upsert(session, 1, 'b', data);
    peer.end(session);
    expect(peer.take()).toEqual([{ type: 'EndAck', status: Status.Error, session }]);
    expect(docIds(peer.manager)).toEqual(['001_keep']);
    expect(peer.manager.stats.sessionsFailed).toBe(1);
    expect(logs.join('\n')).toMatch(/seq 1 refused: the manager would corrupt this document/);
  });

  it('stores objects with a member whatever follows the first byte', () => {
    const peer = new Peer(newManager());
    const docs = ['{"a":1}', '{ "a": [] }', '{"a":{}} \n', '{"\\u00e9":null}'];
    const answers = peer.sync(
      WireMode.ModuleDelta,
      docs.map((doc, i): [string, unknown] => [`d${i}`, doc]),
    );
    expect(answers).toMatchObject([{ type: 'EndAck', status: Status.Ok }]);
    expect(peer.manager.documentCount()).toBe(docs.length);
  });

  it('fails the session on invalid UTF-8 in a document', () => {
    const peer = new Peer(newManager());
    const session = peer.start(WireMode.ModuleDelta, 1);
    const bytes = new Uint8Array([0x22, 0xff, 0x22]); // "\xff"
    peer.send(enc.dataValue(0n, session, WireOperation.Upsert, 'a', 'idx', bytes));
    peer.end(session);
    expect(peer.take()).toMatchObject([{ type: 'EndAck', status: Status.Error }]);
  });

  it('leaves the index untouched when indexing fails, then recovers', () => {
    const peer = new Peer(newManager());
    peer.sync(WireMode.ModuleFull, [['old', DOC]]);
    peer.manager.failIndexing(2);
    for (let i = 0; i < 2; i++) {
      expect(peer.sync(WireMode.ModuleFull, [['new', DOC]])).toMatchObject([
        { type: 'EndAck', status: Status.Error },
      ]);
      expect(docIds(peer.manager)).toEqual(['001_old']);
    }
    expect(peer.sync(WireMode.ModuleFull, [['new', DOC]])).toMatchObject([{ status: Status.Ok }]);
    expect(docIds(peer.manager)).toEqual(['001_new']);
  });

  it('fails indexing when the indexer goes away during a session', () => {
    const peer = new Peer(newManager());
    const session = peer.start(WireMode.ModuleDelta, 1);
    peer.upsert(session, 0, 'a', DOC);
    peer.manager.setIndexerAvailable(false);
    peer.end(session);
    expect(peer.take()).toMatchObject([{ type: 'EndAck', status: Status.Error }]);
    expect(peer.manager.documents()).toEqual([]);
  });

  it('applies DataClean as a delete-by-query of that agent in that index', () => {
    const manager = newManager();
    const a1 = new Peer(manager, 'syscollector', '001');
    const a2 = new Peer(manager, 'syscollector', '002');
    a1.sync(WireMode.ModuleFull, [['x', DOC]]);
    a2.sync(WireMode.ModuleFull, [['x', DOC]]);
    const session = a1.start(WireMode.ModuleDelta, 2);
    a1.send(enc.dataClean(0n, session, 'idx'));
    a1.upsert(session, 1, 'y', DOC);
    a1.end(session);
    expect(a1.take()).toMatchObject([{ type: 'EndAck', status: Status.Ok }]);
    expect(docIds(manager)).toEqual(['001_y', '002_x']);
  });

  it('compares checksums in Check mode', () => {
    const peer = new Peer(newManager());
    const other = new Peer(peer.manager, 'syscollector', '002');
    const docs: Array<[string, unknown]> = [
      ['a', { checksum: { hash: { sha1: 'f00d' } } }],
      ['b', { checksum: { hash: { sha1: 'beef' } } }],
      ['c', { plain: true }],
    ];
    peer.sync(WireMode.ModuleFull, docs);
    other.sync(WireMode.ModuleFull, [['z', { checksum: { hash: { sha1: '0000' } } }]]);
    const expected = computeIndexChecksum(docs.map(([, d]) => d));
    expect(expected).toBe(sha1('beeff00d'));
    expect(peer.manager.indexChecksum('001', 'idx')).toBe(expected);

    const check = (checksum: string): ManagerResponse[] => {
      const session = peer.start(WireMode.ModuleCheck, 0);
      peer.send(enc.checksumModule(session, 'idx', checksum));
      peer.end(session);
      return peer.take();
    };
    expect(check(expected)).toMatchObject([{ type: 'EndAck', status: Status.Ok }]);
    expect(check(sha1('nope'))).toMatchObject([{ type: 'EndAck', status: Status.Error }]);

    // No ChecksumModule at all: nothing to compare, so not Ok.
    const bare = peer.start(WireMode.ModuleCheck, 0);
    peer.end(bare);
    expect(peer.take()).toMatchObject([{ type: 'EndAck', status: Status.Error }]);
  });

  it('answers Ok to metadata and group sessions', () => {
    const peer = new Peer(newManager());
    for (const mode of [
      WireMode.MetadataDelta,
      WireMode.MetadataCheck,
      WireMode.GroupDelta,
      WireMode.GroupCheck,
    ]) {
      const session = peer.start(mode, 0);
      peer.end(session);
      expect(peer.take()).toEqual([{ type: 'EndAck', status: Status.Ok, session }]);
    }
  });

  it('drops a session after the inactivity timeout', () => {
    useFakeTimers();
    const peer = new Peer(newManager({ sessionTimeoutMs: 60 }));
    const idle = peer.start(WireMode.ModuleDelta, 2);
    const busy = peer.start(WireMode.ModuleDelta, 2);
    vi.advanceTimersByTime(35);
    peer.upsert(busy, 0, 'a', DOC);
    vi.advanceTimersByTime(35);
    // 70 ms after Start, 35 after its last message: only the idle one is gone.
    expect(peer.manager.sessionCount).toBe(1);
    expect(peer.manager.stats.sessionsTimedOut).toBe(1);
    peer.upsert(idle, 0, 'a', DOC);
    peer.upsert(idle, 1, 'b', DOC);
    peer.end(idle);
    expect(peer.take()).toEqual([]);
    vi.advanceTimersByTime(60);
    expect(peer.manager.sessionCount).toBe(0);
    expect(peer.manager.stats.sessionsTimedOut).toBe(2);
  });
});

describe('MockManager timing like the real one', () => {
  it('endAckDelayMs: documents and EndAck come after the flush; an End meanwhile is ignored', () => {
    useFakeTimers();
    const peer = new Peer(newManager({ endAckDelayMs: 30 }));
    const session = peer.start(WireMode.ModuleDelta, 2);
    peer.upsert(session, 0, 'a', DOC);
    peer.upsert(session, 1, 'b', DOC);
    peer.end(session);
    peer.end(session); // already being indexed: no ReqRet, no EndAck (agentSession.hpp handleEnd)
    vi.advanceTimersByTime(29);
    expect(peer.take()).toEqual([]);
    expect(peer.manager.documentCount()).toBe(0);
    vi.advanceTimersByTime(1);
    expect(peer.take()).toEqual([{ type: 'EndAck', status: Status.Ok, session }]);
    expect(docIds(peer.manager)).toEqual(['001_a', '001_b']);
    expect(peer.manager.sessionCount).toBe(0);
  });

  it('endAckDelayMs: an item retransmitted during the flush indexes again, with a second EndAck', () => {
    useFakeTimers();
    const peer = new Peer(newManager({ endAckDelayMs: 30 }));
    const session = peer.start(WireMode.ModuleDelta, 2);
    peer.upsert(session, 0, 'a', DOC);
    peer.upsert(session, 1, 'b', DOC);
    peer.end(session);
    vi.advanceTimersByTime(10);
    peer.upsert(session, 1, 'b', { v: 2 }); // agentSession.hpp handleData: queued for indexing again
    vi.advanceTimersByTime(40);
    const ack = { type: 'EndAck', status: Status.Ok, session };
    expect(peer.take()).toEqual([ack, ack]);
    expect(peer.manager.documents().find((d) => d.itemId === 'b')?.data).toEqual({ v: 2 });
    expect(peer.manager.stats).toMatchObject({ sessionsCompleted: 1, endAcksRepeated: 1 });
    // After the flush answered, the session is gone: later copies are ignored.
    peer.upsert(session, 1, 'b', { v: 3 });
    vi.advanceTimersByTime(100);
    expect(peer.take()).toEqual([]);
  });

  it('endAckDelayMs: a refused session is answered Error at once', () => {
    const peer = new Peer(newManager({ endAckDelayMs: 1000 }));
    const session = peer.start(WireMode.ModuleDelta, 1);
    peer.upsert(session, 0, 'a', '[1]');
    peer.end(session);
    expect(peer.take()).toEqual([{ type: 'EndAck', status: Status.Error, session }]);
  });

  it('workers: an End may be handled before the last DataValues, giving a ReqRet for them', async () => {
    const orders = new Set<string>();
    for (let seed = 1; seed <= 12; seed++) {
      const peer = new Peer(newManager({ workers: 3, seed }));
      peer.send(
        enc.start({ mode: WireMode.ModuleDelta, size: 4n, index: ['idx'], agentid: '001' }),
      );
      await sleep(15);
      const [ack] = peer.take();
      const session = (ack as { session: bigint }).session;
      for (let seq = 0; seq < 4; seq++) peer.upsert(session, seq, `i${seq}`, DOC);
      peer.end(session);
      await sleep(15);
      const answers = peer.take();
      // In any order, the session completes with every item.
      expect(answers.at(-1)).toEqual({ type: 'EndAck', status: Status.Ok, session });
      expect(peer.manager.documentCount()).toBe(4);
      orders.add(answers.map((a) => a.type).join(','));
    }
    expect(orders).toEqual(new Set(['EndAck', 'ReqRet,EndAck']));
  });

  it('rejects bad timing options', () => {
    expect(() => newManager({ endAckDelayMs: -1 })).toThrow(RangeError);
    expect(() => newManager({ workers: 0 })).toThrow(RangeError);
    expect(() => newManager({ workers: 1.5 })).toThrow(RangeError);
  });
});

describe('MockManager faults', () => {
  it('drop: a lost DataValue is asked for again', () => {
    const peer = new Peer(newManager());
    peer.manager.inject({ type: 'DataValue', seq: 1, action: 'drop' });
    const session = peer.start(WireMode.ModuleDelta, 3);
    for (let seq = 0; seq < 3; seq++) peer.upsert(session, seq, `i${seq}`, DOC);
    peer.end(session);
    expect(peer.take()).toEqual([{ type: 'ReqRet', session, ranges: [range(1, 1)] }]);
    // The rule affected one message only.
    peer.upsert(session, 1, 'i1', DOC);
    expect(peer.take()).toMatchObject([{ type: 'EndAck', status: Status.Ok }]);
    expect(peer.manager.stats.faults.dropped).toBe(1);
  });

  it('drop to-agent, with skip, times and a module filter', () => {
    const manager = newManager();
    const a = new Peer(manager, 'a');
    const b = new Peer(manager, 'b');
    manager.inject({
      direction: 'to-agent',
      type: 'StartAck',
      module: 'a',
      action: 'drop',
      skip: 1,
      times: 2,
    });
    const answers = () => [
      a.startRaw(WireMode.ModuleDelta, 1),
      b.startRaw(WireMode.ModuleDelta, 1),
    ];
    expect(answers().map((r) => r?.type)).toEqual(['StartAck', 'StartAck']);
    expect(answers().map((r) => r?.type)).toEqual([undefined, 'StartAck']);
    expect(answers().map((r) => r?.type)).toEqual([undefined, 'StartAck']);
    expect(answers().map((r) => r?.type)).toEqual(['StartAck', 'StartAck']);
    expect(manager.stats.faults.dropped).toBe(2);
    // Dropped answers still opened sessions on the manager side.
    expect(manager.sessionCount).toBe(8);
  });

  it('drop with a seq predicate and Infinity times', () => {
    const peer = new Peer(newManager());
    peer.manager.inject({ seq: (seq) => seq % 2n === 1n, action: 'drop', times: Infinity });
    const session = peer.start(WireMode.ModuleDelta, 6);
    for (let seq = 0; seq < 6; seq++) peer.upsert(session, seq, `i${seq}`, DOC);
    peer.end(session);
    expect(peer.take()).toEqual([
      { type: 'ReqRet', session, ranges: [range(1, 1), range(3, 3), range(5, 5)] },
    ]);
    expect(peer.manager.stats.faults.dropped).toBe(3);
  });

  it('probability draws from the seeded PRNG', () => {
    const run = (seed: number): number[] => {
      const peer = new Peer(newManager({ seed }));
      expect(peer.manager.seed).toBe(seed);
      peer.manager.inject({ type: 'DataValue', action: 'drop', probability: 0.5, times: Infinity });
      const session = peer.start(WireMode.ModuleDelta, 200);
      for (let seq = 0; seq < 200; seq++) peer.upsert(session, seq, `i${seq}`, DOC);
      peer.end(session);
      const reqRet = peer.take()[0] as { ranges: SeqRange[] };
      return reqRet.ranges.map((r) => Number(r.begin));
    };
    const first = run(7);
    expect(run(7)).toEqual(first);
    expect(run(8)).not.toEqual(first);
    const dropped = managers.at(-1)?.stats.faults.dropped ?? 0;
    expect(dropped).toBeGreaterThan(50);
    expect(dropped).toBeLessThan(150);
  });

  it('duplicate: both copies reach the manager', () => {
    const peer = new Peer(newManager());
    peer.manager.inject({ type: 'DataValue', action: 'duplicate' });
    peer.manager.inject({ direction: 'to-agent', type: 'EndAck', action: 'duplicate' });
    const session = peer.start(WireMode.ModuleDelta, 1);
    peer.upsert(session, 0, 'a', DOC);
    peer.end(session);
    const ack = { type: 'EndAck', status: Status.Ok, session };
    expect(peer.take()).toEqual([ack, ack]);
    expect(peer.manager.stats).toMatchObject({
      duplicatesReceived: 1,
      dataValuesReceived: 2,
      faults: { duplicated: 2 },
    });
  });

  it('delay: to-manager and to-agent messages arrive later', () => {
    useFakeTimers();
    const peer = new Peer(newManager());
    peer.manager.inject({ type: 'End', action: 'delay', delayMs: 20 });
    peer.manager.inject({ direction: 'to-agent', type: 'EndAck', action: 'delay', delayMs: 20 });
    const session = peer.start(WireMode.ModuleDelta, 1);
    peer.upsert(session, 0, 'a', DOC);
    const end = enc.end(session);
    peer.send(end);
    // The sender reuses its buffer: the manager must have kept a copy.
    end.fill(0);
    vi.advanceTimersByTime(19);
    expect(peer.manager.documents()).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(peer.manager.documents()).toHaveLength(1);
    vi.advanceTimersByTime(19);
    expect(peer.take()).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(peer.take()).toEqual([{ type: 'EndAck', status: Status.Ok, session }]);
    expect(peer.manager.stats.faults.delayed).toBe(2);
  });

  it('reorder: a held message is delivered right after the next one', () => {
    const peer = new Peer(newManager());
    peer.manager.inject({ type: 'DataValue', seq: 0, action: 'reorder' });
    const session = peer.start(WireMode.ModuleDelta, 2);
    peer.upsert(session, 0, 'a', { v: 'first' });
    peer.upsert(session, 1, 'b', DOC);
    peer.end(session);
    expect(peer.take()).toMatchObject([{ type: 'EndAck', status: Status.Ok }]);
    expect(peer.manager.stats.faults.reordered).toBe(1);

    // Reordering End behind a late DataValue means the session completes without a ReqRet.
    peer.manager.inject({ type: 'End', action: 'reorder' });
    const late = peer.start(WireMode.ModuleDelta, 1);
    peer.end(late);
    expect(peer.take()).toEqual([]);
    peer.upsert(late, 0, 'c', DOC);
    expect(peer.take()).toMatchObject([{ type: 'EndAck', status: Status.Ok, session: late }]);
    expect(peer.manager.stats.reqRetsSent).toBe(0);
  });

  it('reorder to-agent: a held StartAck comes after the next answer', () => {
    const peer = new Peer(newManager());
    peer.manager.inject({ direction: 'to-agent', type: 'StartAck', action: 'reorder' });
    peer.send(enc.start({ mode: WireMode.ModuleDelta, size: 1n, index: ['idx'], agentid: '001' }));
    expect(peer.take()).toEqual([]);
    peer.send(enc.start({ mode: WireMode.ModuleFull, size: 0n, index: ['idx'], agentid: '001' }));
    const [refusal, held] = peer.take();
    expect(refusal).toMatchObject({ type: 'StartAck', status: Status.Error });
    expect(held).toMatchObject({ type: 'StartAck', status: Status.Ok });
  });

  it('clearFaults removes every rule', () => {
    const peer = new Peer(newManager());
    peer.manager.inject({ action: 'drop', times: Infinity });
    peer.manager.clearFaults();
    expect(peer.startRaw(WireMode.ModuleDelta, 1)).toMatchObject({ status: Status.Ok });
  });

  it('rejects malformed rules', () => {
    const manager = newManager();
    expect(() => manager.inject({ action: 'explode' as 'drop' })).toThrow(RangeError);
    expect(() => manager.inject({ action: 'drop', probability: 2 })).toThrow(RangeError);
  });

  it('forceStatus answers with the forced status', () => {
    const peer = new Peer(newManager());
    peer.manager.forceStatus('StartAck', Status.Offline);
    expect(peer.startRaw(WireMode.ModuleDelta, 1)).toEqual({
      type: 'StartAck',
      status: Status.Offline,
      session: 0n,
    });
    expect(peer.manager.sessionCount).toBe(0);

    peer.manager.forceStatus('EndAck', Status.Error, 1);
    const session = peer.start(WireMode.ModuleDelta, 1);
    peer.upsert(session, 0, 'a', DOC);
    peer.end(session);
    expect(peer.take()).toEqual([{ type: 'EndAck', status: Status.Error, session }]);
    expect(peer.sync(WireMode.ModuleDelta, [['b', DOC]])).toMatchObject([{ status: Status.Ok }]);
    expect(peer.manager.stats.faults.forcedStatus).toBe(2);
  });

  it('silent: handles everything and answers nothing', () => {
    const peer = new Peer(newManager());
    peer.manager.setSilent(true);
    peer.send(enc.start({ mode: WireMode.ModuleDelta, size: 1n, index: ['idx'], agentid: '001' }));
    expect(peer.take()).toEqual([]);
    expect(peer.manager.sessionCount).toBe(1);
    peer.manager.setSilent(false);
    expect(peer.sync(WireMode.ModuleDelta, [['a', DOC]])).toMatchObject([{ status: Status.Ok }]);
  });
});

describe('MockManager delivery and robustness', () => {
  const startBytes = () =>
    enc.start({ mode: WireMode.ModuleDelta, size: 1n, index: ['idx'], agentid: '001' });

  it("'sync' answers inside receive()", () => {
    const peer = new Peer(newManager({ responseDelivery: 'sync' }));
    peer.send(startBytes());
    expect(peer.responses).toHaveLength(1);
  });

  it("'microtask' answers after the current task's synchronous code", async () => {
    const peer = new Peer(newManager({ responseDelivery: 'microtask' }));
    peer.send(startBytes());
    expect(peer.responses).toHaveLength(0);
    await Promise.resolve();
    expect(peer.responses).toHaveLength(1);
  });

  it("'macrotask' (the default) answers on a later event-loop turn", async () => {
    const manager = new MockManager();
    managers.push(manager);
    const peer = new Peer(manager);
    peer.send(startBytes());
    await Promise.resolve();
    expect(peer.responses).toHaveLength(0);
    await nextMacrotask();
    expect(peer.responses).toHaveLength(1);
  });

  it('never throws on random bytes and counts them invalid', () => {
    const manager = newManager({ seed: 1 });
    let state = 12345;
    const rand = () => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state >>> 16;
    };
    const replies: Uint8Array[] = [];
    for (let i = 0; i < 2000; i++) {
      const bytes = new Uint8Array(rand() % 128);
      for (let j = 0; j < bytes.length; j++) bytes[j] = rand() & 0xff;
      expect(() => manager.receive(bytes, 'm', (r) => replies.push(r))).not.toThrow();
    }
    expect(manager.stats.messagesReceived).toBe(2000);
    // Random bytes essentially never form a valid message.
    expect(manager.stats.invalidMessages).toBeGreaterThan(1990);
  });

  it('never throws on truncated valid messages', () => {
    const manager = newManager();
    const reply = () => {};
    manager.receive(startBytes(), 'm', reply);
    const valid = [
      startBytes().slice(),
      enc.dataValue(0n, 1n, WireOperation.Upsert, 'id', 'idx', '{"a":1}').slice(),
      enc.checksumModule(1n, 'idx', 'abc').slice(),
      enc.end(1n).slice(),
    ];
    let unverifiable = 0;
    for (const message of valid) {
      for (let length = 0; length < message.length; length++) {
        const prefix = message.subarray(0, length);
        // Dropping only trailing padding can leave a well-formed message.
        if (verifyMessage(prefix) === null) unverifiable++;
        expect(() => manager.receive(prefix, 'm', reply)).not.toThrow();
      }
    }
    expect(unverifiable).toBeGreaterThan(300);
    expect(manager.stats.invalidMessages).toBe(unverifiable);
  });

  it("'sync' survives an agent that answers from inside the reply", () => {
    const manager = newManager({ responseDelivery: 'sync' });
    const seen: ManagerResponse[] = [];
    const reply = (bytes: Uint8Array): void => {
      const response = decodeManagerResponse(bytes) as ManagerResponse;
      seen.push(response);
      if (response.type !== 'StartAck') return;
      // Still inside the manager's receive(Start): send the whole session.
      const { session } = response;
      manager.receive(
        enc.dataValue(0n, session, WireOperation.Upsert, 'a', 'idx', '{"v":1}'),
        'm',
        reply,
      );
      manager.receive(enc.end(session), 'm', reply);
    };
    manager.receive(startBytes(), 'm', reply);
    expect(seen.map((r) => [r.type, 'status' in r ? r.status : undefined])).toEqual([
      ['StartAck', Status.Ok],
      ['EndAck', Status.Ok],
    ]);
    expect(manager.documents()).toHaveLength(1);
  });

  it('counts a DataValue with an out-of-range operation as invalid', () => {
    const manager = newManager();
    const peer = new Peer(manager);
    const session = peer.start(WireMode.ModuleDelta, 1);
    const b = new Builder(256);
    const id = b.createString('a');
    const index = b.createString('idx');
    const data = DataValue.createDataVector(b, new TextEncoder().encode('{"v":1}'));
    const content = DataValue.createDataValue(
      b,
      0n,
      session,
      7 as WireOperation,
      id,
      index,
      0,
      data,
    );
    b.finish(Message.createMessage(b, MessageType.DataValue, content));
    expect(() => peer.send(b.asUint8Array())).not.toThrow();
    expect(manager.stats.invalidMessages).toBe(1);
    peer.end(session);
    expect(peer.take()).toEqual([{ type: 'ReqRet', session, ranges: [range(0, 0)] }]);
  });

  it('counts manager-only messages sent to it as invalid', () => {
    const manager = newManager();
    manager.receive(enc.startAck(Status.Ok, 1n), 'm', () => {});
    manager.receive(enc.reqRet(1n, [range(0, 1)]), 'm', () => {});
    expect(manager.stats.invalidMessages).toBe(2);
  });

  it('survives a throwing response listener and a throwing logger', () => {
    const manager = newManager({
      logger: () => {
        throw new Error('logger broke');
      },
    });
    expect(() =>
      manager.receive(startBytes(), 'm', () => {
        throw new Error('listener broke');
      }),
    ).not.toThrow();
    expect(manager.sessionCount).toBe(1);
  });

  it('logs through both logger forms', () => {
    const calls: Array<[LogLevel, string]> = [];
    const a = newManager({ logger: (level, message) => calls.push([level, message]) });
    a.receive(new Uint8Array([1, 2, 3]), 'm', () => {});
    const warnings: string[] = [];
    const b = newManager({
      logger: {
        debug: () => {},
        info: () => {},
        warn: (_fields, message) => warnings.push(message),
        error: () => {},
      },
    });
    b.receive(new Uint8Array([1, 2, 3]), 'm', () => {});
    expect(calls).toEqual([['warn', expect.stringContaining('invalid message')]]);
    expect(warnings).toEqual([expect.stringContaining('invalid message')]);
  });

  it('routes answers to the transport that started the session', async () => {
    const manager = new MockManager();
    managers.push(manager);
    const tA = manager.transport('a');
    const tB = manager.transport('b');
    expect(tA).toBeInstanceOf(InProcessTransport);
    const got = { a: [] as ManagerResponse[], b: [] as ManagerResponse[] };
    tA.onResponse((bytes) => got.a.push(decodeManagerResponse(bytes) as ManagerResponse));
    tB.onResponse((bytes) => got.b.push(decodeManagerResponse(bytes) as ManagerResponse));
    tA.start();
    tB.start();

    tA.send(
      enc.start({ mode: WireMode.ModuleDelta, size: 1n, index: ['ia'], agentid: '001' }),
      'a',
    );
    tB.send(
      enc.start({ mode: WireMode.ModuleDelta, size: 1n, index: ['ib'], agentid: '001' }),
      'b',
    );
    await nextMacrotask();
    const sessionA = (got.a[0] as { session: bigint }).session;
    const sessionB = (got.b[0] as { session: bigint }).session;
    expect(got.a).toHaveLength(1);
    expect(got.b).toHaveLength(1);

    // Session A's data and End travel over B's transport; the EndAck still goes to A.
    tB.send(enc.dataValue(0n, sessionA, WireOperation.Upsert, 'x', 'ia', '{"v":1}'), 'b');
    tB.send(enc.end(sessionA), 'b');
    tB.send(enc.end(sessionB), 'b');
    await nextMacrotask();
    expect(got.a.slice(1)).toEqual([{ type: 'EndAck', status: Status.Ok, session: sessionA }]);
    expect(got.b.slice(1)).toEqual([{ type: 'ReqRet', session: sessionB, ranges: [range(0, 0)] }]);
    expect(manager.documents('ia')).toMatchObject([{ module: 'a', id: '001_x' }]);
  });

  it('ignores everything after close()', async () => {
    const manager = newManager({ sessionTimeoutMs: 10 });
    const peer = new Peer(manager);
    peer.start(WireMode.ModuleDelta, 1);
    manager.inject({ direction: 'to-agent', action: 'delay', delayMs: 5 });
    peer.send(startBytes());
    await manager.close();
    peer.send(startBytes());
    await sleep(20);
    expect(peer.take()).toEqual([]);
    expect(manager.sessionCount).toBe(0);
    expect(manager.stats.sessionsTimedOut).toBe(0);
  });

  it('keeps up with a large session', () => {
    const peer = new Peer(newManager());
    const size = 100_000;
    const session = peer.start(WireMode.ModuleFull, size);
    // CPU time, which other processes keeping the cores busy do not stretch, as wall time is.
    const before = process.cpuUsage();
    for (let seq = 0; seq < size; seq++) {
      peer.send(
        enc.dataValue(BigInt(seq), session, WireOperation.Upsert, `i${seq}`, 'idx', '{"v":1}'),
      );
    }
    peer.end(session);
    const used = process.cpuUsage(before);
    expect(peer.take()).toMatchObject([{ type: 'EndAck', status: Status.Ok }]);
    expect(peer.manager.documents()).toHaveLength(size);
    expect((used.user + used.system) / 1000).toBeLessThan(10_000);
  });
});
