// The library against a mock manager as strict and as slow as the real one (issue 10, items 3
// and 5): an older build that refuses empty sessions, an EndAck that waits for the indexer's
// bulk flush, a worker pool that handles messages out of order, and the second EndAck that
// retransmitted items provoke.
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  AgentSyncProtocol,
  computeIndexChecksum,
  Mode,
  Operation,
  type SyncOptions,
} from '../../src/index.js';
import { MockManager, type MockManagerOptions } from '../../src/testing/index.js';
import { WireOperation } from '../../src/wire/index.js';
import { doc, RecordingTransport } from '../helpers.js';

const INDEX = 'wazuh-states-inventory';
const AGENT = '001';

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const thing of open.splice(0).reverse()) await thing.close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Until the manager has answered `n` sessions Ok: its flush is over and the documents are in. */
const flushed = (manager: MockManager, n = 1) =>
  vi.waitFor(() => expect(manager.stats.sessionsCompleted).toBe(n), {
    timeout: 20_000,
    interval: 10,
  });

function setup(managerOptions: MockManagerOptions, syncDefaults: SyncOptions = {}) {
  const manager = new MockManager(managerOptions);
  const transport = new RecordingTransport(manager.transport('syscollector'));
  const agent = new AgentSyncProtocol({
    moduleName: 'syscollector',
    dbPath: ':memory:',
    transport,
    agentInfo: { id: AGENT },
    // Well above any answer's delay: no attempt times out unless a test means it to.
    syncDefaults: { timeoutMs: 5000, retries: 2, ...syncDefaults },
  });
  open.push(manager, agent);
  return { manager, transport, agent };
}

/** What the manager should hold after every change so far: item id -> document. */
class Inventory {
  readonly expected = new Map<string, string>();
  #version = 0;

  constructor(readonly agent: AgentSyncProtocol) {}

  upsert(id: string): void {
    const data = doc(id, { version: ++this.#version });
    this.agent.persistDifference(id, Operation.Modify, INDEX, data);
    this.expected.set(id, data);
  }

  remove(id: string): void {
    this.agent.persistDifference(id, Operation.Delete, INDEX, '');
    this.expected.delete(id);
  }

  matches(manager: MockManager): void {
    const stored = new Map(manager.documents(INDEX).map((d) => [d.itemId, d.data]));
    expect(stored).toEqual(
      new Map([...this.expected].map(([id, data]) => [id, JSON.parse(data) as unknown])),
    );
  }
}

/** Sync until the queue is empty (at most `rounds` syncs); returns the results. */
async function syncUntilEmpty(agent: AgentSyncProtocol, rounds = 5) {
  const results = [];
  for (let i = 0; i < rounds && agent.pendingCount > 0; i++) {
    results.push(await agent.synchronizeModule(Mode.Delta));
  }
  return results;
}

describe("a manager like ad9475fb35 (emptySessions: 'refuse')", () => {
  const checksumOf = (ids: string[]) =>
    computeIndexChecksum(ids.map((id) => JSON.parse(doc(id)) as unknown));

  it('fails Check, metadata and group syncs with the manager error; a later build takes them', async () => {
    for (const emptySessions of ['accept', 'refuse'] as const) {
      const { agent } = setup({ emptySessions, responseDelivery: 'microtask' });
      agent.persistDifference('a', Operation.Create, INDEX, doc('a'));
      // Delta carries data: both builds take it.
      expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 1 });

      const wrong = checksumOf(['a', 'b']);
      const check = await agent.checkIntegrity(INDEX, wrong);
      const metadata = await agent.synchronizeMetadataOrGroups(Mode.MetadataDelta);
      const groups = await agent.synchronizeMetadataOrGroups(Mode.GroupCheck);
      if (emptySessions === 'accept') {
        expect(check).toMatchObject({ outcome: 'mismatch' });
        expect(await agent.requiresFullSync(INDEX, wrong)).toBe(true);
        expect(await agent.requiresFullSync(INDEX, checksumOf(['a']))).toBe(false);
        expect(metadata).toMatchObject({ ok: true });
        expect(groups).toMatchObject({ ok: true });
      } else {
        // Not a proven mismatch: the manager refused the session itself.
        expect(check).toMatchObject({ outcome: 'inconclusive', reason: 'manager-error' });
        expect(await agent.requiresFullSync(INDEX, wrong)).toBe(false);
        expect(metadata).toMatchObject({ ok: false, reason: 'manager-error' });
        expect(groups).toMatchObject({ ok: false, reason: 'manager-error' });
      }
    }
  });
});

describe('an EndAck that waits for the bulk flush (endAckDelayMs)', () => {
  it('Delta syncs converge when the flush is shorter than timeoutMs', async () => {
    const { manager, agent, transport } = setup({ endAckDelayMs: 60 }, { timeoutMs: 5000 });
    const inventory = new Inventory(agent);
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 20; i++) inventory.upsert(`item-${(round * 7 + i) % 30}`);
      if (round > 0) inventory.remove(`item-${round}`);
      const started = Date.now();
      expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true });
      expect(Date.now() - started).toBeGreaterThanOrEqual(55);
      expect(agent.pendingCount).toBe(0);
      inventory.matches(manager);
    }
    // The End after the data reached a session already being indexed: ignored, not re-sent.
    expect(transport.count('End')).toBe(6);
    expect(manager.stats).toMatchObject({ sessionsCompleted: 3, sessionsFailed: 0 });
  });

  it('a flush longer than every End retry fails the sync with a timeout; the next one converges', async () => {
    // Two End attempts of 100 ms against a 1 s flush: only a stall of most of a second could let
    // the EndAck in. Answers come as microtasks, so no earlier answer can be late for its wait.
    const { manager, agent } = setup(
      { endAckDelayMs: 1000, responseDelivery: 'microtask' },
      { timeoutMs: 100, retries: 1 },
    );
    const inventory = new Inventory(agent);
    for (let i = 0; i < 5; i++) inventory.upsert(`item-${i}`);
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({
      ok: false,
      reason: 'timeout',
    });
    expect(agent.pendingCount).toBe(5);
    await flushed(manager);
    // The manager indexed them anyway: the documents are there, and sending them again is harmless.
    inventory.matches(manager);
    inventory.upsert('item-0');
    // With a timeout above the flush, the same items go again and the sync ends Ok.
    expect(await agent.synchronizeModule(Mode.Delta, { timeoutMs: 20_000 })).toMatchObject({
      ok: true,
      sent: 5,
    });
    expect(agent.pendingCount).toBe(0);
    inventory.matches(manager);
  });
});

describe('messages handled out of order by the worker pool (workers)', () => {
  it('Delta syncs converge, with End overtaking data and the ReqRets that follow', async () => {
    const { manager, agent } = setup(
      { workers: 4, seed: 20261201, endAckDelayMs: 10 },
      { timeoutMs: 5000 },
    );
    const inventory = new Inventory(agent);
    let extraReqRets = false;
    for (let round = 0; round < 25 && !extraReqRets; round++) {
      for (let i = 0; i < 12; i++) inventory.upsert(`item-${(round * 5 + i) % 40}`);
      if (round % 3 === 2) inventory.remove(`item-${round % 40}`);
      const results = await syncUntilEmpty(agent);
      expect(results.at(-1)).toMatchObject({ ok: true });
      expect(agent.pendingCount).toBe(0);
      inventory.matches(manager);
      // Every session gets one ReqRet for its probe; more means an End overtook data.
      const { reqRetsSent, sessionsStarted } = manager.stats;
      extraReqRets = reqRetsSent > sessionsStarted;
    }
    expect(extraReqRets).toBe(true);
  });
});

describe('duplicate EndAcks', () => {
  it('a retransmission that arrives during the flush gives a second EndAck, which changes nothing', async () => {
    const { manager, agent, transport } = setup({ endAckDelayMs: 30 }, { timeoutMs: 5000 });
    // The last DataValue of the first sync comes late: End gets a ReqRet for it, the resent copy
    // completes the session, and the late original arrives while the flush is pending.
    manager.inject({ type: 'DataValue', seq: 4, action: 'delay', delayMs: 15 });
    const inventory = new Inventory(agent);
    for (let i = 0; i < 5; i++) inventory.upsert(`item-${i}`);
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({
      ok: true,
      retransmitted: 1,
    });
    // Right away, while the second EndAck of that session is still to come.
    inventory.upsert('item-1');
    inventory.remove('item-2');
    inventory.upsert('item-9');
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 3 });
    await sleep(60);
    expect(manager.stats.endAcksRepeated).toBe(1);
    expect(agent.pendingCount).toBe(0);
    inventory.matches(manager);
    // Nothing was sent again because of it, and a later sync still works.
    expect(transport.count('DataValue')).toBe(5 + 1 + 3);
    inventory.upsert('item-3');
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 1 });
    inventory.matches(manager);
    expect(agent.stats.syncsOk).toBe(3);
  });
});

describe('a sync that fails after the manager took its data', () => {
  // With the real manager's EndAck after its bulk flush (or an EndAck lost on the way), a sync
  // can fail after the manager indexed everything. A Create deleted during that sync must then
  // still reach the manager as a Delete (PROTOCOL.md section 5 row 8 would drop it as never
  // seen), or the document stays there for good and only a Check would notice.
  it('keeps the Delete of a document created in a sync whose EndAck came too late', async () => {
    // Two End attempts of 100 ms against a 1 s flush (see the test above).
    const { manager, agent, transport } = setup(
      { endAckDelayMs: 1000, responseDelivery: 'microtask' },
      { timeoutMs: 100, retries: 1 },
    );
    agent.persistDifference('x', Operation.Create, INDEX, doc('x'));
    let settled = false;
    const syncing = agent.synchronizeModule(Mode.Delta).finally(() => {
      settled = true;
    });
    while (transport.count('DataValue') === 0) await sleep(1);
    expect(settled, 'the Delete is persisted while the sync runs').toBe(false);
    agent.persistDifference('x', Operation.Delete, INDEX, '');
    expect(await syncing).toMatchObject({ ok: false, reason: 'timeout' });
    expect(agent.pendingCount).toBe(1);
    await flushed(manager);
    expect(manager.documentCount(INDEX)).toBe(1); // the manager indexed x after all
    expect(await agent.synchronizeModule(Mode.Delta, { timeoutMs: 20_000 })).toMatchObject({
      ok: true,
      sent: 1,
    });
    expect(transport.of('DataValue').at(-1)).toMatchObject({
      id: 'x',
      operation: WireOperation.Delete,
    });
    expect(manager.documentCount(INDEX)).toBe(0);
  });
});

describe('an EndAck that arrives between two End attempts', () => {
  // The real manager sends EndAck only after its bulk flush, which can outlast an End attempt.
  // An EndAck that arrives during the backoff after a timed-out attempt answers that attempt:
  // the resent End reaches a manager that has forgotten the session, so the sync must not wait
  // for another answer, nor send everything again next time.
  it('counts an EndAck Ok that came during the backoff', async () => {
    const { manager, agent, transport } = setup(
      // The first End attempt gives up after 200 ms; the EndAck comes 700 ms after that End,
      // well inside the 1.5 s pause before the second attempt. The timers' order alone decides
      // it (answers come as microtasks): only a stall of half a second could move it.
      { endAckDelayMs: 700, responseDelivery: 'microtask' },
      { timeoutMs: 200, retries: 1, backoff: { minMs: 1500, maxMs: 1500 } },
    );
    for (const id of ['a', 'b']) agent.persistDifference(id, Operation.Create, INDEX, doc(id));
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 2 });
    // Where the EndAck landed: after the first attempt's End timed out (a second End went out)
    // and before that second End, so in the pause between them. The probe's End comes first.
    expect(transport.timeline.filter((e) => e === '>End' || e === '<EndAck')).toEqual([
      '>End',
      '>End',
      '<EndAck',
      '>End',
    ]);
    expect(manager.documentCount(INDEX)).toBe(2);
    expect(agent.pendingCount).toBe(0);
  });
});
