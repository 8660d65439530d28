import { afterEach, describe, expect, it } from 'vitest';
import {
  AgentSyncProtocol,
  computeIndexChecksum,
  type LogLevel,
  Mode,
  Operation,
  type SyncProgress,
} from '../../src/index.js';
import { MockManager } from '../../src/testing/index.js';
import { dbFile, doc, RecordingTransport } from '../helpers.js';

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const thing of open.splice(0).reverse()) await thing.close();
});

function setup(items: number, logger?: (level: LogLevel, message: string) => void) {
  const manager = new MockManager();
  const transport = new RecordingTransport(manager.transport('fim'));
  const agent = new AgentSyncProtocol({
    moduleName: 'fim',
    dbPath: dbFile(),
    transport,
    logger,
    syncDefaults: { timeoutMs: 2000, retries: 0 },
  });
  open.push(manager, agent);
  for (let i = 0; i < items; i++)
    agent.persistDifference(`f${i}`, Operation.Create, 'idx', doc(`f${i}`));
  return { manager, transport, agent };
}

/** Records every report as `phase sent/total r=retransmitted`. */
function recorder() {
  const seen: string[] = [];
  const onProgress = (p: SyncProgress) =>
    seen.push(`${p.phase} ${p.sent}/${p.total} r=${p.retransmitted}`);
  return { seen, onProgress };
}

describe('onProgress reports what happens, in order', () => {
  it('Delta: start at StartAck, data per page, end when End goes out, then each ReqRet round', async () => {
    const { manager, agent } = setup(1200);
    manager.inject({ type: 'DataValue', seq: 5n, action: 'drop' });
    const { seen, onProgress } = recorder();
    const result = await agent.synchronizeModule(Mode.Delta, { onProgress });
    expect(result).toMatchObject({ ok: true, sent: 1200, retransmitted: 1 });
    expect(seen).toEqual([
      'start 0/1200 r=0',
      'data 512/1200 r=0',
      'data 1024/1200 r=0',
      'data 1200/1200 r=0',
      'end 1200/1200 r=0',
      'retransmit 1200/1200 r=1',
    ]);
  });

  it("reports 'end' once the End is really out: after it, the transport has sent End", async () => {
    const { transport, agent } = setup(3);
    const endsAtReport: number[] = [];
    await agent.synchronizeModule(Mode.Delta, {
      onProgress: (p) => {
        if (p.phase === 'end') endsAtReport.push(transport.count('End'));
        if (p.phase === 'start') endsAtReport.push(transport.count('DataValue'));
      },
    });
    // 'start': no data yet; 'end': the probe End and the End after the data.
    expect(endsAtReport).toEqual([0, 2]);
  });

  it('one retransmit report per ReqRet round, however many ranges it holds', async () => {
    const { manager, agent } = setup(40);
    for (const seq of [3n, 17n, 30n]) manager.inject({ type: 'DataValue', seq, action: 'drop' });
    const { seen, onProgress } = recorder();
    expect(await agent.synchronizeModule(Mode.Delta, { onProgress })).toMatchObject({
      ok: true,
      retransmitted: 3,
    });
    expect(seen).toEqual([
      'start 0/40 r=0',
      'data 40/40 r=0',
      'end 40/40 r=0',
      'retransmit 40/40 r=3',
    ]);
  });

  it('Full: start, data, end', async () => {
    const { agent } = setup(0);
    agent.persistDifferenceInMemory('a', Operation.Create, 'idx', doc('a'));
    agent.persistDifferenceInMemory('b', Operation.Create, 'idx', doc('b'));
    const { seen, onProgress } = recorder();
    expect(await agent.synchronizeModule(Mode.Full, { onProgress })).toMatchObject({ ok: true });
    expect(seen).toEqual(['start 0/2 r=0', 'data 2/2 r=0', 'end 2/2 r=0']);
  });

  it('Check: start and end, no data', async () => {
    const { agent } = setup(0);
    const { seen, onProgress } = recorder();
    await agent.checkIntegrity('idx', 'deadbeef', { onProgress });
    expect(seen).toEqual(['start 0/0 r=0', 'end 0/0 r=0']);
  });

  it.each([Mode.MetadataDelta, Mode.MetadataCheck, Mode.GroupDelta, Mode.GroupCheck] as const)(
    'metadata/group mode %s: start and end, no data',
    async (mode) => {
      const { agent } = setup(2);
      const { seen, onProgress } = recorder();
      expect(await agent.synchronizeMetadataOrGroups(mode, { onProgress })).toMatchObject({
        ok: true,
      });
      expect(seen).toEqual(['start 0/0 r=0', 'end 0/0 r=0']);
    },
  );

  it('reports nothing when StartAck refuses the session, and nothing when there is nothing to send', async () => {
    const { manager, agent } = setup(2);
    manager.forceStatus('StartAck', 2);
    const { seen, onProgress } = recorder();
    expect(await agent.synchronizeModule(Mode.Delta, { onProgress })).toMatchObject({
      ok: false,
      reason: 'manager-error',
    });
    expect(await agent.synchronizeModule(Mode.Full, { onProgress })).toMatchObject({
      ok: true,
      sent: 0,
    });
    expect(seen).toEqual([]);
  });

  it('a throwing callback does not fail the sync', async () => {
    const { agent } = setup(3);
    const result = await agent.synchronizeModule(Mode.Delta, {
      onProgress: () => {
        throw new Error('boom');
      },
    });
    expect(result).toMatchObject({ ok: true, sent: 3 });
  });
});

describe('stats', () => {
  it('counts syncs by outcome, messages, bytes, retransmissions and queue depth', async () => {
    const { manager, transport, agent } = setup(4);
    expect(agent.stats).toMatchObject({ syncsOk: 0, messagesSent: 0, bytesSent: 0, queueDepth: 4 });
    manager.inject({ type: 'DataValue', seq: 1n, action: 'drop' });
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, retransmitted: 1 });
    manager.forceStatus('StartAck', 3);
    agent.persistDifference('x', Operation.Create, 'idx', doc('x'));
    await agent.synchronizeModule(Mode.Delta);
    // @ts-expect-error JavaScript callers can pass any mode; it counts as invalid-mode
    await agent.synchronizeModule(Mode.Check);
    const stats = agent.stats;
    expect(stats.syncsOk).toBe(1);
    expect(stats.syncsFailed['manager-offline']).toBe(1);
    expect(stats.syncsFailed['invalid-mode']).toBe(1);
    expect(stats.syncsFailed.timeout).toBe(0);
    expect(stats.checksMismatched).toBe(0);
    expect(stats.retransmitted).toBe(1);
    expect(stats.queueDepth).toBe(1);
    // Start + probe End + 4 data + End + 1 resend, then the failed sync's Start.
    expect(stats.messagesSent).toBe(9);
    expect(transport.sent).toHaveLength(9);
    expect(stats.bytesSent).toBeGreaterThan(9 * 40);
  });
});

describe('a Check mismatch is an answer, not a failure', () => {
  async function checked() {
    const lines: string[] = [];
    const ctx = setup(0, (level, message) => lines.push(`${level} ${message}`));
    const docs = [doc('a'), doc('b')];
    for (const [i, d] of docs.entries())
      ctx.agent.persistDifference(`a${i}`, Operation.Create, 'idx', d);
    expect(await ctx.agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true });
    lines.length = 0;
    return { ...ctx, lines, checksum: computeIndexChecksum(docs.map((d) => JSON.parse(d))) };
  }

  it('a mismatch counts in checksMismatched, not in syncsFailed, and logs at info', async () => {
    const { agent, lines } = await checked();
    expect(await agent.requiresFullSync('idx', 'deadbeef')).toBe(true);
    const stats = agent.stats;
    expect(stats.checksMismatched).toBe(1);
    expect(Object.values(stats.syncsFailed).reduce((a, b) => a + b, 0)).toBe(0);
    expect(stats.syncsOk).toBe(1); // the Delta sync before
    expect(lines.filter((l) => !l.startsWith('debug'))).toEqual([
      "info [fim] check: mismatch, the manager's checksum of idx differs; a Full sync is due",
    ]);
  });

  it('a match counts as ok and logs at info', async () => {
    const { agent, lines, checksum } = await checked();
    expect(await agent.checkIntegrity('idx', checksum)).toMatchObject({ outcome: 'match' });
    expect(agent.stats).toMatchObject({ syncsOk: 2, checksMismatched: 0 });
    expect(lines.filter((l) => !l.startsWith('debug'))).toEqual([
      "info [fim] check: match, the manager's checksum of idx is ours",
    ]);
  });

  it('an inconclusive check still counts and logs as a failure', async () => {
    const { manager, agent, lines } = await checked();
    manager.setIndexerAvailable(false);
    expect(await agent.checkIntegrity('idx', 'x')).toMatchObject({ outcome: 'inconclusive' });
    expect(agent.stats.syncsFailed['manager-offline']).toBe(1);
    expect(agent.stats.checksMismatched).toBe(0);
    expect(lines.filter((l) => l.startsWith('warn'))).toEqual([
      expect.stringMatching(/^warn \[fim\] sync failed \(manager-offline\)/),
    ]);
  });
});
