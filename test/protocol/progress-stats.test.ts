import { afterEach, describe, expect, it } from 'vitest';
import { AgentSyncProtocol, Mode, Operation, type SyncProgress } from '../../src/index.js';
import { MockManager } from '../../src/testing/index.js';
import { dbFile, doc, RecordingTransport } from '../helpers.js';

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const thing of open.splice(0).reverse()) await thing.close();
});

function setup(items: number) {
  const manager = new MockManager();
  const transport = new RecordingTransport(manager.transport('fim'));
  const agent = new AgentSyncProtocol({ moduleName: 'fim', dbPath: dbFile(), transport });
  open.push(manager, agent);
  for (let i = 0; i < items; i++)
    agent.persistDifference(`f${i}`, Operation.Create, 'idx', doc(`f${i}`));
  return { manager, transport, agent };
}

describe('onProgress', () => {
  it('reports data pages, End and retransmission with running counts', async () => {
    const { manager, agent } = setup(1200);
    manager.inject({ type: 'DataValue', seq: 5n, action: 'drop' });
    const seen: SyncProgress[] = [];
    const result = await agent.synchronizeModule(Mode.Delta, {
      onProgress: (p) => seen.push({ ...p }),
    });
    expect(result).toMatchObject({ ok: true, sent: 1200, retransmitted: 1 });
    expect(seen[0]).toEqual({ phase: 'data', sent: 0, total: 1200, retransmitted: 0 });
    const data = seen.filter((p) => p.phase === 'data').map((p) => p.sent);
    expect(data).toEqual([0, 512, 1024, 1200]);
    expect(seen.find((p) => p.phase === 'end')).toEqual({
      phase: 'end',
      sent: 1200,
      total: 1200,
      retransmitted: 0,
    });
    expect(seen.at(-1)).toEqual({ phase: 'retransmit', sent: 1200, total: 1200, retransmitted: 1 });
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
    agent.persistDifference('x', Operation.Create, 'idx', '{}');
    await agent.synchronizeModule(Mode.Delta);
    await agent.synchronizeModule(Mode.Check);
    const stats = agent.stats;
    expect(stats.syncsOk).toBe(1);
    expect(stats.syncsFailed['manager-offline']).toBe(1);
    expect(stats.syncsFailed['invalid-mode']).toBe(1);
    expect(stats.syncsFailed.timeout).toBe(0);
    expect(stats.retransmitted).toBe(1);
    expect(stats.queueDepth).toBe(1);
    // Start + probe End + 4 data + End + 1 resend, then the failed sync's Start.
    expect(stats.messagesSent).toBe(9);
    expect(transport.sent).toHaveLength(9);
    expect(stats.bytesSent).toBeGreaterThan(9 * 40);
  });
});
