import os from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AgentSyncProtocol,
  computeIndexChecksum,
  type MetadataMode,
  Mode,
  Operation,
  PACKAGE_VERSION,
} from '../../src/index.js';
import { MockManager } from '../../src/testing/index.js';
import { WireMode } from '../../src/wire/index.js';
import { dbFile, doc, RecordingTransport } from '../helpers.js';

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const thing of open.splice(0).reverse()) await thing.close();
});

function setup(
  agentInfo: ConstructorParameters<typeof AgentSyncProtocol>[0]['agentInfo'] = { id: '001' },
) {
  const manager = new MockManager();
  const transport = new RecordingTransport(manager.transport('syscollector'));
  const agent = new AgentSyncProtocol({
    moduleName: 'syscollector',
    dbPath: dbFile(),
    transport,
    agentInfo,
    // Far above any answer's delay: a stalled process must not turn one answer into a resent
    // Start or End (the tests check the exact messages). No test here waits for a timeout but
    // the silent manager's, which sets its own.
    syncDefaults: { timeoutMs: 5000, retries: 1 },
  });
  open.push(manager, agent);
  return { manager, transport, agent };
}

describe('Full mode', () => {
  it('replaces the manager inventory of this agent and module with the in-memory buffer, then clears it', async () => {
    const { manager, transport, agent } = setup();
    agent.persistDifference('old', Operation.Create, 'wazuh-states-packages', doc('old'));
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 1 });

    agent.persistDifferenceInMemory(
      'pkg-b',
      Operation.Create,
      'wazuh-states-packages',
      doc('pkg-b'),
    );
    agent.persistDifferenceInMemory(
      'pkg-a',
      Operation.Create,
      'wazuh-states-packages',
      doc('pkg-a'),
    );
    agent.persistDifferenceInMemory(
      'port-1',
      Operation.Create,
      'wazuh-states-ports',
      doc('port-1'),
    );
    agent.persistDifferenceInMemory(
      'pkg-b',
      Operation.Modify,
      'wazuh-states-packages',
      doc('pkg-b', { v: 2 }),
    );
    const result = await agent.synchronizeModule(Mode.Full);
    expect(result).toMatchObject({ ok: true, sent: 3 });
    const start = transport.of('Start').at(-1);
    expect(start).toMatchObject({ mode: WireMode.ModuleFull, size: 3n });
    expect(start?.index).toEqual(['wazuh-states-packages', 'wazuh-states-ports']);
    expect(
      manager
        .documents()
        .map((d) => d.itemId)
        .sort(),
    ).toEqual(['pkg-a', 'pkg-b', 'port-1']);
    expect(manager.documents().find((d) => d.itemId === 'pkg-b')?.data).toMatchObject({ v: 2 });

    // The buffer was cleared: a second Full sync has nothing to send.
    const before = transport.sent.length;
    expect(await agent.synchronizeModule(Mode.Full)).toEqual({
      ok: true,
      sent: 0,
      retransmitted: 0,
    });
    expect(transport.sent.length).toBe(before);
  });

  it('clears the buffer after a failed attempt too, and leaves the persistent queue alone', async () => {
    const { manager, agent } = setup();
    agent.persistDifference('queued', Operation.Create, 'idx', doc('queued'));
    agent.persistDifferenceInMemory('a', Operation.Create, 'idx', doc('a'));
    manager.forceStatus('EndAck', 2);
    expect(await agent.synchronizeModule(Mode.Full)).toMatchObject({
      ok: false,
      reason: 'manager-error',
    });
    expect(await agent.synchronizeModule(Mode.Full)).toEqual({
      ok: true,
      sent: 0,
      retransmitted: 0,
    });
    expect(agent.pendingCount).toBe(1);
  });

  it('clearInMemoryData drops the buffer', async () => {
    const { transport, agent } = setup();
    agent.persistDifferenceInMemory('a', Operation.Create, 'idx', doc('a'));
    agent.clearInMemoryData();
    expect(await agent.synchronizeModule(Mode.Full)).toEqual({
      ok: true,
      sent: 0,
      retransmitted: 0,
    });
    expect(transport.sent).toEqual([]);
  });
});

describe('Check mode (requiresFullSync)', () => {
  async function seeded() {
    const ctx = setup();
    const docs = ['a', 'b', 'c'].map((id) => doc(id));
    for (const [i, d] of docs.entries()) {
      ctx.agent.persistDifference(`item-${i}`, Operation.Create, 'idx', d);
    }
    expect(await ctx.agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true });
    return { ...ctx, checksum: computeIndexChecksum(docs.map((d) => JSON.parse(d))) };
  }

  it('returns false when the checksums match, sending Start(Check), ChecksumModule and End', async () => {
    const { transport, agent, checksum } = await seeded();
    expect(await agent.checkIntegrity('idx', checksum)).toMatchObject({ outcome: 'match' });
    expect(await agent.requiresFullSync('idx', checksum)).toBe(false);
    const tail = transport.sent.slice(-3);
    expect(tail.map((m) => m.type)).toEqual(['Start', 'ChecksumModule', 'End']);
    expect(tail[0]).toMatchObject({ mode: WireMode.ModuleCheck, size: 0n, index: ['idx'] });
    expect(tail[1]).toMatchObject({ index: 'idx', checksum });
  });

  it('returns true on a proven mismatch (EndAck Error)', async () => {
    const { agent } = await seeded();
    expect(await agent.requiresFullSync('idx', 'deadbeef')).toBe(true);
    expect(await agent.checkIntegrity('idx', 'deadbeef')).toMatchObject({ outcome: 'mismatch' });
  });

  it('returns false when the answer is not a proven mismatch (Offline, timeout, StartAck Error)', async () => {
    const { manager, agent } = await seeded();
    manager.setIndexerAvailable(false);
    expect(await agent.requiresFullSync('idx', 'deadbeef')).toBe(false);
    expect(await agent.checkIntegrity('idx', 'x')).toMatchObject({
      outcome: 'inconclusive',
      reason: 'manager-offline',
    });
    manager.setIndexerAvailable(true);
    manager.forceStatus('StartAck', 2);
    expect(await agent.requiresFullSync('idx', 'deadbeef')).toBe(false);
    manager.setSilent(true);
    expect(await agent.checkIntegrity('idx', 'x', { timeoutMs: 20, retries: 0 })).toMatchObject({
      outcome: 'inconclusive',
      reason: 'timeout',
    });
  });

  it('rejects an empty index or checksum with a TypeError', async () => {
    const { agent } = setup();
    await expect(agent.requiresFullSync('', 'x')).rejects.toThrow(TypeError);
    await expect(agent.requiresFullSync('idx', '')).rejects.toThrow(TypeError);
  });
});

describe('metadata and group modes', () => {
  it.each<MetadataMode>([Mode.MetadataDelta, Mode.MetadataCheck, Mode.GroupDelta, Mode.GroupCheck])(
    'mode %s sends Start(size 0, no index) and End, no data',
    async (mode) => {
      const { transport, agent } = setup();
      agent.persistDifference('q', Operation.Create, 'idx', '{"v":1}');
      expect(await agent.synchronizeMetadataOrGroups(mode)).toMatchObject({ ok: true, sent: 0 });
      expect(transport.sent.map((m) => m.type)).toEqual(['Start', 'End']);
      expect(transport.of('Start')[0]).toMatchObject({ mode, size: 0n, index: [] });
      expect(agent.pendingCount).toBe(1);
    },
  );

  it('refuses a mode the method does not take, sending nothing', async () => {
    const { transport, agent } = setup();
    // @ts-expect-error JavaScript callers can pass any mode; the runtime check refuses it
    expect(await agent.synchronizeMetadataOrGroups(Mode.Delta)).toMatchObject({
      ok: false,
      reason: 'invalid-mode',
    });
    // @ts-expect-error as above
    expect(await agent.synchronizeModule(Mode.Check)).toMatchObject({
      ok: false,
      reason: 'invalid-mode',
    });
    // @ts-expect-error as above
    expect(await agent.synchronizeModule(Mode.GroupDelta)).toMatchObject({
      ok: false,
      reason: 'invalid-mode',
    });
    // @ts-expect-error as above
    expect(await agent.synchronizeModule(42 as Mode)).toMatchObject({
      ok: false,
      reason: 'invalid-mode',
    });
    expect(transport.sent).toEqual([]);
  });
});

describe('agent metadata in Start', () => {
  it('sends the host facts and this package version when agentInfo is not given', async () => {
    const { transport, agent } = setup(undefined);
    await agent.synchronizeMetadataOrGroups(Mode.MetadataDelta);
    const start = transport.of('Start')[0];
    expect(start).toMatchObject({
      hostname: os.hostname(),
      architecture: os.machine(),
      ostype: os.platform(),
      agentversion: PACKAGE_VERSION,
      agentname: os.hostname(),
    });
    for (const field of ['agentid', 'osname', 'osversion'] as const) {
      expect(start?.[field]).toMatch(/\S/);
      expect(start?.[field]).not.toMatch(/hardcoded|placeholder/i);
    }
    expect(start?.checksumMetadata).toBeUndefined();
  });

  it('sends what the user configured', async () => {
    const { transport, agent } = setup({
      id: '042',
      name: 'web-1',
      groups: ['default', 'web'],
      osName: 'Ubuntu',
      osVersion: '24.04',
      checksumMetadata: 'abc',
      globalVersion: '7',
    });
    await agent.synchronizeMetadataOrGroups(Mode.GroupDelta);
    expect(transport.of('Start')[0]).toMatchObject({
      agentid: '042',
      agentname: 'web-1',
      groups: ['default', 'web'],
      osname: 'Ubuntu',
      osversion: '24.04',
      checksumMetadata: 'abc',
      globalVersion: '7',
      hostname: os.hostname(),
    });
  });
});

describe('logger', () => {
  it('accepts a (level, message) callback and a pino-like object', async () => {
    const lines: string[] = [];
    const objectLines: string[] = [];
    const manager = new MockManager();
    open.push(manager);
    const a = new AgentSyncProtocol({
      moduleName: 'm1',
      dbPath: ':memory:',
      transport: manager.transport('m1'),
      logger: (level, message) => lines.push(`${level} ${message}`),
    });
    const b = new AgentSyncProtocol({
      moduleName: 'm2',
      dbPath: ':memory:',
      transport: manager.transport('m2'),
      logger: {
        debug: (_fields, m) => objectLines.push(`debug ${m}`),
        info: (_fields, m) => objectLines.push(`info ${m}`),
        warn: (_fields, m) => objectLines.push(`warn ${m}`),
        error: (_fields, m) => objectLines.push(`error ${m}`),
      },
    });
    open.push(a, b);
    for (const agent of [a, b]) {
      agent.persistDifference('x', Operation.Create, 'idx', '{"v":1}');
      await agent.synchronizeModule(Mode.Delta);
    }
    expect(lines.some((l) => l.startsWith('info [m1] sync ok'))).toBe(true);
    expect(objectLines.some((l) => l.startsWith('info [m2] sync ok'))).toBe(true);
  });
});
