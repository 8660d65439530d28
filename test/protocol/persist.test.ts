import { describe, expect, it } from 'vitest';
import {
  AgentSyncProtocol,
  type Change,
  MAX_DATAGRAM_BYTES,
  Mode,
  Operation,
} from '../../src/index.js';
import { PersistentQueue } from '../../src/queue/index.js';
import { MockManager } from '../../src/testing/index.js';
import { dbFile, doc, RecordingTransport } from '../helpers.js';

/** A document `{"x":"xxx…"}` whose string has `length` characters. */
function padded(length: number): string {
  return JSON.stringify({ x: 'x'.repeat(length) });
}

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
    ['an empty id', ['', Operation.Create, 'idx', doc('a')], TypeError],
    ['a non-string id', [42, Operation.Create, 'idx', doc('a')], TypeError],
    ['an unknown operation', ['a', 7, 'idx', doc('a')], RangeError],
    ['NoOp', ['a', Operation.NoOp, 'idx', doc('a')], RangeError],
    ['a string operation', ['a', 'Create', 'idx', doc('a')], TypeError],
    ['an empty index', ['a', Operation.Create, '', doc('a')], TypeError],
    ['data that is not a string', ['a', Operation.Create, 'idx', { a: 1 }], TypeError],
    ['data that is not JSON (Create)', ['a', Operation.Create, 'idx', '{oops'], TypeError],
    ['data that is not JSON (Modify)', ['a', Operation.Modify, 'idx', ''], TypeError],
    [
      'a change too large for one datagram',
      ['a', Operation.Create, 'idx', padded(MAX_DATAGRAM_BYTES)],
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
    // The longest module name the agent daemon passes on (64 bytes) against the shortest.
    const { agent, manager } = agentAt(dbFile(), 'm'.repeat(64));
    const { agent: short, manager: m2 } = agentAt(dbFile(), 'm');
    // Find the largest document the short module accepts; the long module must refuse it.
    let low = 60_000;
    let high = MAX_DATAGRAM_BYTES;
    while (low < high) {
      const mid = Math.ceil((low + high) / 2);
      try {
        short.persistDifference('id', Operation.Create, 'idx', padded(mid));
        low = mid;
      } catch {
        high = mid - 1;
      }
    }
    expect(() => agent.persistDifference('id', Operation.Create, 'idx', padded(low))).toThrow(
      RangeError,
    );
    expect(() => short.persistDifference('id', Operation.Create, 'idx', padded(low + 1))).toThrow(
      RangeError,
    );
    // The accepted maximum really fits: it syncs, and the framed message is within the limit.
    short.persistDifference('id', Operation.Create, 'idx', padded(low));
    const sizes: number[] = [];
    const transport = m2.transport('m');
    const send = transport.send.bind(transport);
    transport.send = (message, module) => {
      sizes.push(message.length + 's:m:'.length);
      return send(message, module);
    };
    const synced = new AgentSyncProtocol({ moduleName: 'm', dbPath: ':memory:', transport });
    synced.persistDifference('id', Operation.Create, 'idx', padded(low));
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
    agent.persistDifference('a', Operation.Create, 'idx', doc('a'));
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
    agent.persistDifference('a', Operation.Create, 'idx', doc('a'));
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
  const good = (id: string): Change => ({
    id,
    operation: Operation.Create,
    index: 'idx',
    data: doc(id),
  });

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
      { id: '', operation: Operation.Create, index: 'idx', data: doc('x') },
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
      { id: 'x', operation: Operation.NoOp, index: 'idx', data: doc('x') },
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

  it("stores a change's fields (version included) and nothing else its object carries", async () => {
    const path = dbFile();
    const { agent, manager } = agentAt(path);
    // A module's own record type with a field the queue also has a name for. `version` is a
    // field of Change (the 5.0 wire sends it), so it is stored; `dataContext` is not.
    agent.persistDifferences([{ ...good('a'), version: 7n, dataContext: true } as Change]);
    await agent.close();
    const rows = await rowsOf(path);
    expect(rows).toMatchObject([{ id: 'a', index: 'idx', data: doc('a'), version: 7n }]);
    expect(rows[0]).not.toHaveProperty('dataContext');
    await manager.close();
  });
});

describe('a Full sync and the queue', () => {
  it('sends a Delete of an item a Full sync sent while its Create was still queued', async () => {
    const { agent, manager } = agentAt(dbFile());
    agent.persistDifference('x', Operation.Create, 'idx', doc('x'));
    agent.persistDifferenceInMemory('x', Operation.Modify, 'idx', doc('x'));
    expect(await agent.synchronizeModule(Mode.Full)).toMatchObject({ ok: true });
    expect(manager.documentCount('idx')).toBe(1);
    agent.persistDifference('x', Operation.Delete, 'idx', '');
    expect(agent.pendingCount).toBe(1); // not dropped with its Create as "never sent"
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true });
    expect(manager.documentCount('idx')).toBe(0);
    await agent.close();
    await manager.close();
  });

  it('sends a Delete persisted while the Full sync that carries the item is in flight', async () => {
    const manager = new MockManager();
    const inner = manager.transport('fim');
    let onFirstSend: (() => void) | undefined;
    const agent = new AgentSyncProtocol({
      moduleName: 'fim',
      dbPath: dbFile(),
      transport: {
        start: () => inner.start(),
        send(message: Uint8Array, moduleName: string) {
          const during = onFirstSend;
          onFirstSend = undefined;
          during?.();
          inner.send(message, moduleName);
        },
        onResponse: (listener: (message: Uint8Array) => void) => inner.onResponse(listener),
      },
    });
    agent.persistDifference('x', Operation.Create, 'idx', doc('x'));
    agent.persistDifferenceInMemory('x', Operation.Modify, 'idx', doc('x'));
    // The module deletes the item as the Full's Start goes out: the Full still sends it.
    onFirstSend = () => agent.persistDifference('x', Operation.Delete, 'idx', '');
    expect(await agent.synchronizeModule(Mode.Full)).toMatchObject({ ok: true });
    expect(manager.documentCount('idx')).toBe(1);
    expect(agent.pendingCount).toBe(1); // not dropped with its Create as "never sent"
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true });
    expect(manager.documentCount('idx')).toBe(0);
    await agent.close();
    await manager.close();
  });
});

describe('documents the manager stores intact (it drops their first byte)', () => {
  const refused: Array<[string, string, RegExp]> = [
    ['an empty object', '{}', /empty object/],
    ['an empty object with blanks', '{ \n }', /empty object/],
    ['leading whitespace', ' {"a":1}', /starts with whitespace/],
    ['a leading newline', '\n{"a":1}', /starts with whitespace/],
    ['an array', '[1]', /not a JSON object/],
    ['a number', '42', /not a JSON object/],
    ['null', 'null', /not a JSON object/],
    ['a string', '"text"', /not a JSON object/],
  ];

  it.each(refused)(
    'refuses %s for Create and Modify in all three persist methods, with the reason, changing nothing',
    async (_name, data, why) => {
      const manager = new MockManager();
      const transport = new RecordingTransport(manager.transport('fim'));
      const agent = new AgentSyncProtocol({ moduleName: 'fim', dbPath: dbFile(), transport });
      agent.persistDifference('kept', Operation.Create, 'idx', doc('kept'));
      agent.persistDifferenceInMemory('kept', Operation.Create, 'idx', doc('kept'));
      for (const operation of [Operation.Create, Operation.Modify] as const) {
        for (const call of [
          () => agent.persistDifference('bad', operation, 'idx', data),
          () => agent.persistDifferenceInMemory('bad', operation, 'idx', data),
          () => agent.persistDifferences([{ id: 'bad', operation, index: 'idx', data }]),
        ]) {
          expect(call).toThrow(TypeError);
          expect(call).toThrow(why);
          expect(call).toThrow(/data of 'bad' would be corrupted by the manager/);
        }
      }
      expect(agent.pendingCount).toBe(1);
      expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 1 });
      expect(await agent.synchronizeModule(Mode.Full)).toMatchObject({ ok: true, sent: 1 });
      expect(transport.of('DataValue').map((m) => m.id)).toEqual(['kept', 'kept']);
      await agent.close();
      await manager.close();
    },
  );

  it('accepts any data for a Delete, and objects with members however they are nested', async () => {
    const { agent, manager } = agentAt(dbFile());
    agent.persistDifference('a', Operation.Delete, 'idx', '{}');
    agent.persistDifference('b', Operation.Create, 'idx', '{"a":{}}');
    agent.persistDifference('c', Operation.Modify, 'idx', '{ "a" : [] }\n');
    expect(agent.pendingCount).toBe(3);
    await agent.close();
    await manager.close();
  });
});

describe('ids', () => {
  const refused: Array<[string, string, RegExp]> = [
    ['blank', '   ', /id must not be blank/],
    ['a tab only', '\t', /id must not be blank/],
    ['a NUL', 'a\u0000b', /control characters/],
    ['a newline', 'a\nb', /control characters/],
    ['U+001F', 'a\u001f', /control characters/],
    ['DEL (U+007F)', 'a\u007f', /control characters/],
  ];

  it.each(refused)('refuses an id with %s in all three persist methods', async (_n, id, why) => {
    const path = dbFile();
    const { agent, manager } = agentAt(path);
    agent.persistDifference('kept', Operation.Create, 'idx', doc('kept'));
    for (const call of [
      () => agent.persistDifference(id, Operation.Create, 'idx', doc('x')),
      () => agent.persistDifference(id, Operation.Delete, 'idx', ''),
      () => agent.persistDifferenceInMemory(id, Operation.Create, 'idx', doc('x')),
      () =>
        agent.persistDifferences([
          { id, operation: Operation.Modify, index: 'idx', data: doc('x') },
        ]),
    ]) {
      expect(call).toThrow(TypeError);
      expect(call).toThrow(why);
    }
    expect(agent.pendingCount).toBe(1);
    expect(await agent.synchronizeModule(Mode.Full)).toEqual({
      ok: true,
      sent: 0,
      retransmitted: 0,
    });
    await agent.close();
    expect((await rowsOf(path)).map((r) => r.id)).toEqual(['kept']);
    await manager.close();
  });

  it('accepts ids with inner spaces and non-ASCII characters', async () => {
    const { agent, manager } = agentAt(dbFile());
    agent.persistDifference(' C:\\Program Files\\x ', Operation.Create, 'idx', doc('a'));
    agent.persistDifference('/etc/ñandú €', Operation.Create, 'idx', doc('b'));
    expect(agent.pendingCount).toBe(2);
    await agent.close();
    await manager.close();
  });
});

describe('module names', () => {
  const transport = { start() {}, send() {} };

  it('refuses a name over 64 bytes in UTF-8 with a RangeError, and takes 64', async () => {
    expect(
      () => new AgentSyncProtocol({ moduleName: 'm'.repeat(65), dbPath: ':memory:', transport }),
    ).toThrow(RangeError);
    // 22 three-byte characters: 22 UTF-16 units, 66 bytes.
    expect(
      () => new AgentSyncProtocol({ moduleName: '€'.repeat(22), dbPath: ':memory:', transport }),
    ).toThrow(/at most 64 bytes in UTF-8 .*got 66 bytes/);
    const longest = new AgentSyncProtocol({
      moduleName: 'm'.repeat(64),
      dbPath: ':memory:',
      transport,
    });
    await longest.close();
  });

  it.each([
    ['a NUL', 'fim\u0000'],
    ['a newline', 'fim\nsca'],
    ['DEL', '\u007ffim'],
  ])('refuses a name with %s with a TypeError', (_n, moduleName) => {
    expect(() => new AgentSyncProtocol({ moduleName, dbPath: ':memory:', transport })).toThrow(
      /moduleName must not contain control characters/,
    );
    expect(() => new AgentSyncProtocol({ moduleName, dbPath: ':memory:', transport })).toThrow(
      TypeError,
    );
  });

  it('opens no database for a refused name', () => {
    const path = dbFile();
    expect(
      () => new AgentSyncProtocol({ moduleName: 'x'.repeat(65), dbPath: path, transport }),
    ).toThrow(RangeError);
    // Nothing holds the file: an instance with no wait at all opens it.
    const next = new AgentSyncProtocol({
      moduleName: 'x',
      dbPath: path,
      transport,
      busyTimeoutMs: 0,
    });
    return next.close();
  });
});
