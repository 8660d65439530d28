import { describe, expect, it } from 'vitest';
import { AgentSyncProtocol, MAX_DATAGRAM_BYTES, Mode, Operation } from '../../src/index.js';
import { PersistentQueue } from '../../src/queue/index.js';
import { MockManager } from '../../src/testing/index.js';
import { dbFile, doc } from '../helpers.js';

function agentAt(path: string, moduleName = 'fim') {
  const manager = new MockManager();
  return {
    manager,
    agent: new AgentSyncProtocol({
      moduleName,
      dbPath: path,
      transport: manager.transport(moduleName),
    }),
  };
}

async function rowsOf(path: string) {
  const queue = new PersistentQueue(path);
  try {
    return queue.inspect();
  } finally {
    queue.close();
  }
}

describe('persistDifference input validation', () => {
  const bad: Array<[string, unknown[], ErrorConstructor]> = [
    ['an empty id', ['', Operation.Create, 'idx', '{}'], TypeError],
    ['a non-string id', [42, Operation.Create, 'idx', '{}'], TypeError],
    ['an unknown operation', ['a', 7, 'idx', '{}'], RangeError],
    ['NoOp', ['a', Operation.NoOp, 'idx', '{}'], RangeError],
    ['a string operation', ['a', 'Create', 'idx', '{}'], TypeError],
    ['an empty index', ['a', Operation.Create, '', '{}'], TypeError],
    ['data that is not a string', ['a', Operation.Create, 'idx', { a: 1 }], TypeError],
    ['data that is not JSON (Create)', ['a', Operation.Create, 'idx', '{oops'], TypeError],
    ['data that is not JSON (Modify)', ['a', Operation.Modify, 'idx', ''], TypeError],
    [
      'a change too large for one datagram',
      ['a', Operation.Create, 'idx', JSON.stringify('x'.repeat(MAX_DATAGRAM_BYTES))],
      RangeError,
    ],
  ];

  it.each(bad)(
    'rejects %s with a clear error and leaves the queue exactly as it was',
    async (_name, args, type) => {
      const path = dbFile();
      const { agent, manager } = agentAt(path);
      agent.persistDifference('a', Operation.Create, 'idx', doc('a'));
      agent.persistDifference('b', Operation.Modify, 'idx', doc('b'));
      await agent.close();
      const before = await rowsOf(path);

      const { agent: again } = agentAt(path);
      const call = () => (again.persistDifference as (...a: unknown[]) => void)(...args);
      expect(call).toThrow(type);
      expect(() => (again.persistDifferenceInMemory as (...a: unknown[]) => void)(...args)).toThrow(
        type,
      );
      await again.close();
      expect(await rowsOf(path)).toEqual(before);
      await manager.close();
    },
  );

  it('accepts a Delete whose data is not JSON', async () => {
    const { agent, manager } = agentAt(dbFile());
    agent.persistDifference('a', Operation.Delete, 'idx', '');
    expect(agent.pendingCount).toBe(1);
    await agent.close();
    await manager.close();
  });

  it('counts the s:<module>: header in the datagram limit, exactly', async () => {
    const { agent, manager } = agentAt(dbFile(), 'm'.repeat(200));
    const { agent: short, manager: m2 } = agentAt(dbFile(), 'm');
    // Find the largest document the short module accepts; the long module must refuse it.
    let low = 60_000;
    let high = MAX_DATAGRAM_BYTES;
    while (low < high) {
      const mid = Math.ceil((low + high) / 2);
      try {
        short.persistDifference('id', Operation.Create, 'idx', JSON.stringify('x'.repeat(mid)));
        low = mid;
      } catch {
        high = mid - 1;
      }
    }
    expect(() =>
      agent.persistDifference('id', Operation.Create, 'idx', JSON.stringify('x'.repeat(low))),
    ).toThrow(RangeError);
    expect(() =>
      short.persistDifference('id', Operation.Create, 'idx', JSON.stringify('x'.repeat(low + 1))),
    ).toThrow(RangeError);
    // The accepted maximum really fits: it syncs, and the framed message is within the limit.
    short.persistDifference('id', Operation.Create, 'idx', JSON.stringify('x'.repeat(low)));
    const sizes: number[] = [];
    const transport = m2.transport('m');
    const send = transport.send.bind(transport);
    transport.send = (message, module) => {
      sizes.push(message.length + 's:m:'.length);
      return send(message, module);
    };
    const synced = new AgentSyncProtocol({ moduleName: 'm', dbPath: ':memory:', transport });
    synced.persistDifference('id', Operation.Create, 'idx', JSON.stringify('x'.repeat(low)));
    expect(await synced.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true });
    expect(Math.max(...sizes)).toBeLessThanOrEqual(MAX_DATAGRAM_BYTES);
    expect(Math.max(...sizes)).toBeGreaterThan(MAX_DATAGRAM_BYTES - 16);
    for (const a of [agent, short, synced]) await a.close();
    await manager.close();
    await m2.close();
  });

  it('rejects bad constructor options with a TypeError', () => {
    const manager = new MockManager();
    const transport = manager.transport('x');
    expect(() => new AgentSyncProtocol({ moduleName: '', dbPath: ':memory:', transport })).toThrow(
      TypeError,
    );
    expect(() => new AgentSyncProtocol({ moduleName: 'x', dbPath: '', transport })).toThrow(
      TypeError,
    );
    expect(
      () => new AgentSyncProtocol({ moduleName: 'x', dbPath: ':memory:', transport: {} as never }),
    ).toThrow(TypeError);
  });

  it('a second instance on one dbPath is refused; a constructor that throws leaves the file free', async () => {
    const path = dbFile();
    const { agent, manager } = agentAt(path);
    agent.persistDifference('a', Operation.Create, 'idx', '{}');
    expect(
      () =>
        new AgentSyncProtocol({
          moduleName: 'fim',
          dbPath: path,
          transport: manager.transport('fim'),
          busyTimeoutMs: 10,
        }),
    ).toThrow(/cannot open .*another queue has this database open/);
    await agent.close();

    const failing = {
      start() {},
      send() {},
      onResponse() {
        throw new Error('no listener slot');
      },
    };
    expect(
      () => new AgentSyncProtocol({ moduleName: 'fim', dbPath: path, transport: failing }),
    ).toThrow('no listener slot');
    // busyTimeoutMs 0: a file still owned by the failed instance would be refused at once.
    const next = new AgentSyncProtocol({
      moduleName: 'fim',
      dbPath: path,
      transport: manager.transport('fim'),
      busyTimeoutMs: 0,
    });
    expect(next.pendingCount).toBe(1);
    await next.close();
    await manager.close();
  });

  it('rejects bad sync options with a RangeError and stays usable', async () => {
    const { agent, manager } = agentAt(dbFile());
    agent.persistDifference('a', Operation.Create, 'idx', '{}');
    await expect(agent.synchronizeModule(Mode.Delta, { timeoutMs: 0 })).rejects.toThrow(RangeError);
    await expect(agent.synchronizeModule(Mode.Delta, { retries: -1 })).rejects.toThrow(RangeError);
    await expect(agent.synchronizeModule(Mode.Delta, { maxEps: 1.5 })).rejects.toThrow(RangeError);
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 1 });
    await agent.close();
    await manager.close();
  });
});

describe('persisting during a sync', () => {
  it('queues a change made during a sync for the next one, with its newest content', async () => {
    const manager = new MockManager();
    const agent = new AgentSyncProtocol({
      moduleName: 'fim',
      dbPath: dbFile(),
      transport: manager.transport('fim'),
    });
    for (let i = 0; i < 1000; i++)
      agent.persistDifference(`f${i}`, Operation.Create, 'idx', doc(`f${i}`));
    const running = agent.synchronizeModule(Mode.Delta);
    agent.persistDifference('f1', Operation.Modify, 'idx', doc('f1', { v: 2 }));
    agent.persistDifference('new', Operation.Create, 'idx', doc('new'));
    expect(await running).toMatchObject({ ok: true, sent: 1000 });
    expect(agent.pendingCount).toBe(2);
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 2 });
    const f1 = manager.documents().find((d) => d.itemId === 'f1');
    expect(f1?.data).toMatchObject({ v: 2 });
    expect(manager.documents()).toHaveLength(1001);
    await agent.close();
    await manager.close();
  });
});

describe('persistDifferences', () => {
  const good = (id: string) => ({ id, operation: Operation.Create, index: 'idx', data: doc(id) });

  it('queues every change in order, with the same coalescing as one call each', async () => {
    const { agent, manager } = agentAt(dbFile());
    agent.persistDifferences([
      good('a'),
      good('b'),
      { id: 'a', operation: Operation.Modify, index: 'idx', data: doc('a', { v: 2 }) },
      { id: 'b', operation: Operation.Delete, index: 'idx', data: '' },
    ]);
    expect(agent.pendingCount).toBe(1); // b: created and deleted before any sync
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 1 });
    expect(manager.documents().map((d) => d.data)).toEqual([{ ...JSON.parse(doc('a')), v: 2 }]);
    await agent.close();
    await manager.close();
  });

  it.each([
    [
      'an empty id',
      { id: '', operation: Operation.Create, index: 'idx', data: '{}' },
      TypeError,
      /changes\[1\]/,
    ],
    [
      'invalid JSON',
      { id: 'x', operation: Operation.Modify, index: 'idx', data: '{nope' },
      TypeError,
      /changes\[1\].*not valid JSON/,
    ],
    [
      'a NoOp',
      { id: 'x', operation: Operation.NoOp, index: 'idx', data: '{}' },
      RangeError,
      /changes\[1\]/,
    ],
    ['not an object', null, TypeError, /changes\[1\]/],
  ])('rejects %s with its position and stores nothing', async (_name, bad, type, message) => {
    const path = dbFile();
    const { agent, manager } = agentAt(path);
    agent.persistDifference('kept', Operation.Create, 'idx', doc('kept'));
    const call = () => agent.persistDifferences([good('first'), bad as never, good('third')]);
    expect(call).toThrow(type);
    expect(call).toThrow(message);
    await agent.close();
    expect((await rowsOf(path)).map((r) => r.id)).toEqual(['kept']);
    await manager.close();
  });
});
