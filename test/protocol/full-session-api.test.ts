// The Wazuh 5.0 API beyond versions: DataContext items, notifyDataClean and the VD options,
// each against the mock manager's /stateful front through sessionTransport.
import { afterEach, describe, expect, it } from 'vitest';
import { internalQueueOf } from '../../src/agent-sync-protocol.js';
import {
  AgentSyncProtocol,
  type FullSessionWireOptions,
  Mode,
  Operation,
  Option,
  type SessionRequest,
  type SessionTransport,
} from '../../src/index.js';
import { MockManager, type MockManagerOptions } from '../../src/testing/index.js';
import { decodeFullSession, Option as WireOption } from '../../src/wire-5/index.js';
import { dbFile, doc } from '../helpers.js';

const PACKAGES = 'wazuh-states-inventory-packages';
const SYSTEM = 'wazuh-states-inventory-system';
const HOTFIXES = 'wazuh-states-inventory-hotfixes';
const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const thing of open.splice(0).reverse()) await thing.close();
});

/** Records each session the agent sends, then hands it on. */
class Recording implements SessionTransport {
  readonly sent: SessionRequest[] = [];
  constructor(readonly inner: SessionTransport) {}
  send(session: SessionRequest, signal: AbortSignal) {
    this.sent.push(session);
    return this.inner.send(session, signal);
  }
  decoded() {
    return this.sent.map((s) => {
      const d = decodeFullSession(s.body);
      if (!d.ok) throw new Error('invalid session');
      return d.session;
    });
  }
}

function setup(
  managerOptions: MockManagerOptions = {},
  extra: Partial<FullSessionWireOptions> = {},
) {
  const manager = new MockManager({ clusterName: 'wazuh', ...managerOptions });
  const transport = new Recording(manager.sessionTransport('001'));
  const agent = new AgentSyncProtocol({
    moduleName: 'syscollector',
    dbPath: dbFile(),
    transport,
    wire: 'fullSession',
    clusterName: 'wazuh',
    agentInfo: { id: '001', osPlatform: 'ubuntu', groups: ['default'] },
    syncDefaults: { timeoutMs: 1000, retries: 1, backoff: { minMs: 0 } },
    ...extra,
  });
  open.push(manager, agent);
  return { manager, transport, agent };
}

function seedSetup() {
  const manager = new MockManager();
  const agent = new AgentSyncProtocol({
    moduleName: 'syscollector',
    dbPath: dbFile(),
    transport: manager.transport('syscollector'),
    syncDefaults: { timeoutMs: 1000, retries: 1 },
  });
  open.push(manager, agent);
  return { manager, agent };
}

/** The queue's rows as (id, index, context?) for comparisons. */
function rows(agent: AgentSyncProtocol) {
  return internalQueueOf(agent)
    .inspect()
    .map((e) => ({ id: e.id, index: e.index, context: e.dataContext === true }));
}

describe('DataContext items', () => {
  it('go in the Delta as DataContext, never indexed; the values are', async () => {
    const { manager, transport, agent } = setup();
    agent.persistDifference('pkg', Operation.Create, PACKAGES, doc('pkg'));
    agent.persistDataContext('os', SYSTEM, doc('os'));
    expect(agent.pendingCount).toBe(2);
    const result = await agent.synchronizeModule(Mode.Delta);
    expect(result).toMatchObject({ ok: true, sent: 2 });
    expect(agent.pendingCount).toBe(0);
    const [session] = transport.decoded();
    // Start lists the indices of the values only, as the reference does.
    expect(session?.start.index).toEqual([PACKAGES]);
    const payload = session?.payload;
    expect(payload?.type).toBe('SyncData');
    if (payload?.type !== 'SyncData') return;
    expect(payload.values.map((v) => v.id)).toEqual(['pkg']);
    expect(
      payload.contexts.map((c) => [c.id, c.index, JSON.parse(new TextDecoder().decode(c.data)).id]),
    ).toEqual([['os', SYSTEM, 'os']]);
    expect(manager.documents(PACKAGES).map((d) => d.itemId)).toEqual(['pkg']);
    expect(manager.documentCount(SYSTEM)).toBe(0);
  });

  it('are checked as a Modify change; a refused one is not queued', () => {
    const { agent } = setup();
    expect(() => agent.persistDataContext('os', SYSTEM, '[]')).toThrow(TypeError);
    expect(() => agent.persistDataContext('', SYSTEM, doc('x'))).toThrow(TypeError);
    expect(agent.pendingCount).toBe(0);
  });

  it('clearDataContext drops the contexts only, and the next Delta carries none', async () => {
    const { transport, agent } = setup();
    agent.persistDifference('pkg', Operation.Modify, PACKAGES, doc('pkg'));
    agent.persistDataContext('os', SYSTEM, doc('os'));
    agent.persistDataContext('kb1', HOTFIXES, doc('kb1'));
    expect(agent.clearDataContext()).toBe(2);
    expect(rows(agent)).toEqual([{ id: 'pkg', index: PACKAGES, context: false }]);
    expect(agent.clearDataContext()).toBe(0);
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 1 });
    const payload = transport.decoded()[0]?.payload;
    expect(payload?.type === 'SyncData' && payload.contexts).toEqual([]);
  });

  it('a failed Delta keeps the contexts with the values', async () => {
    const { manager, agent } = setup();
    agent.persistDifference('pkg', Operation.Modify, PACKAGES, doc('pkg'));
    agent.persistDataContext('os', SYSTEM, doc('os'));
    manager.injectStateful({ action: 'internal-error', times: Number.POSITIVE_INFINITY });
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: false });
    expect(rows(agent)).toEqual([
      { id: 'pkg', index: PACKAGES, context: false },
      { id: 'os', index: SYSTEM, context: true },
    ]);
  });

  it('clearDataContext throws while a sync runs, and works after it', async () => {
    const { agent } = setup();
    agent.persistDifference('pkg', Operation.Modify, PACKAGES, doc('pkg'));
    agent.persistDataContext('os', SYSTEM, doc('os'));
    const running = agent.synchronizeModule(Mode.Delta);
    expect(() => agent.clearDataContext()).toThrow(/sync of this module is running/);
    expect(await running).toMatchObject({ ok: true });
    expect(agent.clearDataContext()).toBe(0);
  });
});

describe('notifyDataClean', () => {
  it("sends one Cleans session; the manager drops this agent's documents of those indices and the queue their rows", async () => {
    const { manager, transport, agent } = setup();
    agent.persistDifference('pkg', Operation.Modify, PACKAGES, doc('pkg'));
    agent.persistDifference('kb1', Operation.Modify, HOTFIXES, doc('kb1'));
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 2 });
    // Queued since: a value and a context of the cleaned index, a value of another one.
    agent.persistDifference('pkg2', Operation.Modify, PACKAGES, doc('pkg2'));
    agent.persistDataContext('ctx', PACKAGES, doc('ctx'));
    agent.persistDifference('kb2', Operation.Modify, HOTFIXES, doc('kb2'));

    const result = await agent.notifyDataClean([PACKAGES]);
    expect(result).toMatchObject({ ok: true, sent: 0 });
    expect(manager.documentCount(PACKAGES)).toBe(0);
    expect(manager.documents(HOTFIXES).map((d) => d.itemId)).toEqual(['kb1']);
    expect(rows(agent)).toEqual([{ id: 'kb2', index: HOTFIXES, context: false }]);
    const session = transport.decoded()[1];
    expect(session?.start).toMatchObject({
      mode: 0,
      index: [PACKAGES],
      option: WireOption.Sync,
    });
    expect(session?.payload).toEqual({ type: 'Cleans', indices: [PACKAGES] });
  });

  it('a failed Cleans keeps the documents and the queue as they were', async () => {
    const { manager, agent } = setup();
    agent.persistDifference('pkg', Operation.Modify, PACKAGES, doc('pkg'));
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true });
    agent.persistDifference('pkg2', Operation.Modify, PACKAGES, doc('pkg2'));
    manager.injectStateful({ action: 'internal-error', times: Number.POSITIVE_INFINITY });
    const result = await agent.notifyDataClean([PACKAGES]);
    expect(result).toMatchObject({ ok: false, reason: 'manager-error' });
    manager.clearFaults();
    expect(manager.documents(PACKAGES).map((d) => d.itemId)).toEqual(['pkg']);
    expect(rows(agent)).toEqual([{ id: 'pkg2', index: PACKAGES, context: false }]);
  });

  it('refuses an empty or invalid list of indices, sending nothing', async () => {
    const { transport, agent } = setup();
    await expect(agent.notifyDataClean([])).rejects.toThrow(TypeError);
    await expect(agent.notifyDataClean([''])).rejects.toThrow(TypeError);
    expect(transport.sent).toHaveLength(0);
  });
});

describe('Option (VDFirst, VDSync) with the feed offset', () => {
  it('a matching feed offset: the Start carries option and feed_offset; the manager applies it', async () => {
    const { manager, transport, agent } = setup({ vdFeedOffset: 42n });
    agent.persistDifference('pkg', Operation.Modify, PACKAGES, doc('pkg'));
    agent.persistDataContext('os', SYSTEM, doc('os'));
    const result = await agent.synchronizeModule(Mode.Delta, {
      option: Option.VDFirst,
      feedOffset: 42n,
    });
    expect(result).toMatchObject({ ok: true, sent: 2 });
    expect(transport.decoded()[0]?.start).toMatchObject({
      option: WireOption.VDFirst,
      feedOffset: 42n,
    });
    expect(manager.documents(PACKAGES).map((d) => d.itemId)).toEqual(['pkg']);
    expect(agent.pendingCount).toBe(0);
  });

  it('a mismatching feed offset: 409 version_mismatch, the items stay queued', async () => {
    const { manager, agent } = setup({ vdFeedOffset: 42n });
    agent.persistDifference('pkg', Operation.Modify, PACKAGES, doc('pkg'));
    agent.persistDataContext('os', SYSTEM, doc('os'));
    const result = await agent.synchronizeModule(Mode.Delta, {
      option: Option.VDSync,
      feedOffset: 41,
    });
    expect(result).toMatchObject({ ok: false, reason: 'manager-error' });
    expect(!result.ok && result.message).toMatch(/409.*version_mismatch/);
    expect(manager.documentCount(PACKAGES)).toBe(0);
    expect(agent.pendingCount).toBe(2);
  });

  it('a VD option lifts the byte cap: one session however small maxSessionBytes is', async () => {
    const { transport, agent } = setup({ vdFeedOffset: 7n });
    for (let i = 0; i < 3; i++) {
      agent.persistDifference(`p${i}`, Operation.Modify, PACKAGES, doc(`p${i}`));
    }
    const options = { option: Option.VDSync, feedOffset: 7n, maxSessionBytes: 1 };
    expect(await agent.synchronizeModule(Mode.Delta, options)).toMatchObject({ ok: true, sent: 3 });
    expect(transport.sent).toHaveLength(1);
  });

  it('notifyDataClean carries the option and feed offset', async () => {
    const { transport, agent } = setup({ vdFeedOffset: 9n });
    const result = await agent.notifyDataClean(['wazuh-states-vulnerabilities'], {
      option: Option.VDFirst,
      feedOffset: 9n,
    });
    expect(result).toMatchObject({ ok: true });
    expect(transport.decoded()[0]?.start).toMatchObject({
      option: WireOption.VDFirst,
      feedOffset: 9n,
    });
  });

  it('refuses a VD option without a feed offset > 0, a feed offset with Sync, and an unknown option', async () => {
    const { transport, agent } = setup({ vdFeedOffset: 9n });
    agent.persistDifference('pkg', Operation.Modify, PACKAGES, doc('pkg'));
    await expect(agent.synchronizeModule(Mode.Delta, { option: Option.VDFirst })).rejects.toThrow(
      RangeError,
    );
    await expect(
      agent.synchronizeModule(Mode.Delta, { option: Option.VDFirst, feedOffset: 0 }),
    ).rejects.toThrow(RangeError);
    await expect(agent.synchronizeModule(Mode.Delta, { feedOffset: 9n })).rejects.toThrow(
      RangeError,
    );
    await expect(
      agent.synchronizeModule(Mode.Delta, { option: 3 as Option, feedOffset: 9n }),
    ).rejects.toThrow(RangeError);
    await expect(
      agent.synchronizeModule(Mode.Delta, { option: 'VDFirst' as unknown as Option }),
    ).rejects.toThrow(TypeError);
    expect(transport.sent).toHaveLength(0);
    expect(agent.pendingCount).toBe(1);
  });

  it('a Full sync with a VD option resolves unsupported and sends nothing', async () => {
    const { transport, agent } = setup({ vdFeedOffset: 9n });
    agent.persistDifferenceInMemory('pkg', Operation.Modify, PACKAGES, doc('pkg'));
    const result = await agent.synchronizeModule(Mode.Full, {
      option: Option.VDFirst,
      feedOffset: 9n,
    });
    expect(result).toMatchObject({ ok: false, reason: 'unsupported' });
    expect(transport.sent).toHaveLength(0);
  });
});

describe('on the seed wire', () => {
  it('persistDataContext throws and queues nothing', () => {
    const { agent } = seedSetup();
    agent.persistDifference('pkg', Operation.Modify, PACKAGES, doc('pkg'));
    expect(() => agent.persistDataContext('os', SYSTEM, doc('os'))).toThrow(/'fullSession' wire/);
    expect(rows(agent)).toEqual([{ id: 'pkg', index: PACKAGES, context: false }]);
    expect(agent.clearDataContext()).toBe(0);
    expect(agent.pendingCount).toBe(1);
  });

  it('notifyDataClean resolves unsupported; nothing is sent and the queue is unchanged', async () => {
    const { manager, agent } = seedSetup();
    agent.persistDifference('pkg', Operation.Modify, PACKAGES, doc('pkg'));
    const result = await agent.notifyDataClean([PACKAGES]);
    expect(result).toMatchObject({ ok: false, reason: 'unsupported' });
    expect(manager.stats.messagesReceived).toBe(0);
    expect(rows(agent)).toEqual([{ id: 'pkg', index: PACKAGES, context: false }]);
    expect(agent.stats.syncsFailed.unsupported).toBe(1);
  });

  it('a VD option resolves unsupported; nothing is sent and the queue is unchanged', async () => {
    const { manager, agent } = seedSetup();
    agent.persistDifference('pkg', Operation.Modify, PACKAGES, doc('pkg'));
    const result = await agent.synchronizeModule(Mode.Delta, {
      option: Option.VDSync,
      feedOffset: 1n,
    });
    expect(result).toMatchObject({ ok: false, reason: 'unsupported' });
    expect(manager.sessionCount).toBe(0);
    expect(agent.pendingCount).toBe(1);
    expect(agent.stats.messagesSent).toBe(0);
  });
});
