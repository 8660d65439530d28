// The promises of the public API that are not about the protocol itself: what use after close()
// throws, how invalid sync options fail, that results survive JSON.stringify, and the structured
// fields a logger receives.
import { afterEach, describe, expect, it } from 'vitest';
import {
  AgentSyncProtocol,
  ClosedError,
  computeIndexChecksum,
  type LogFields,
  type LogLevel,
  Mode,
  Operation,
  type SeedWireOptions,
  type SyncOptions,
} from '../../src/index.js';
import { MockManager } from '../../src/testing/index.js';
import { dbFile, doc, scriptedManager } from '../helpers.js';

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const thing of open.splice(0).reverse()) await thing.close();
});

function setup(options: Partial<SeedWireOptions> = {}) {
  const manager = new MockManager();
  const agent = new AgentSyncProtocol({
    moduleName: 'fim',
    dbPath: dbFile(),
    transport: manager.transport('fim'),
    syncDefaults: { timeoutMs: 2000, retries: 0 },
    ...options,
  });
  open.push(manager, agent);
  return { manager, agent };
}

describe('after close()', () => {
  it('every method throws a ClosedError naming the module; syncs resolve closed', async () => {
    const { agent } = setup();
    agent.persistDifference('a', Operation.Create, 'idx', doc('a'));
    await agent.close();
    const calls: Array<[string, () => unknown]> = [
      ['persistDifference', () => agent.persistDifference('b', Operation.Create, 'idx', doc('b'))],
      [
        'persistDifferences',
        () =>
          agent.persistDifferences([
            { id: 'b', operation: Operation.Create, index: 'idx', data: doc('b') },
          ]),
      ],
      [
        'persistDifferenceInMemory',
        () => agent.persistDifferenceInMemory('b', Operation.Create, 'idx', doc('b')),
      ],
      ['clearInMemoryData', () => agent.clearInMemoryData()],
      ['stats', () => agent.stats],
      ['pendingCount', () => agent.pendingCount],
    ];
    for (const [name, call] of calls) {
      let thrown: unknown;
      try {
        call();
      } catch (error) {
        thrown = error;
      }
      expect(thrown, name).toBeInstanceOf(ClosedError);
      expect(thrown, name).toBeInstanceOf(Error);
      expect(thrown, name).toMatchObject({
        name: 'ClosedError',
        moduleName: 'fim',
        message: "AgentSyncProtocol 'fim' is closed",
      });
    }
    for (const sync of [
      agent.synchronizeModule(Mode.Delta),
      agent.synchronizeModule(Mode.Full),
      agent.synchronizeMetadataOrGroups(Mode.GroupDelta),
    ]) {
      expect(await sync).toMatchObject({ ok: false, reason: 'closed' });
    }
    expect(await agent.checkIntegrity('idx', 'x')).toMatchObject({
      outcome: 'inconclusive',
      reason: 'closed',
    });
    expect(await agent.requiresFullSync('idx', 'x')).toBe(false);
    expect(agent.parseResponseBuffer(new Uint8Array(8))).toBe(false);
    await agent.close(); // idempotent
  });
});

describe('invalid sync options reject the promise, saying what is wrong', () => {
  const cases: Array<[string, SyncOptions, ErrorConstructor]> = [
    [
      "timeoutMs must be an integer >= 1, got string '100'",
      { timeoutMs: '100' as never },
      TypeError,
    ],
    ['timeoutMs must be an integer >= 1, got 0', { timeoutMs: 0 }, RangeError],
    ['retries must be an integer >= 0, got boolean true', { retries: true as never }, TypeError],
    ['retries must be an integer >= 0, got -1', { retries: -1 }, RangeError],
    ['maxEps must be an integer >= 0, got null', { maxEps: null as never }, TypeError],
    ['maxEps must be an integer >= 0, got 1.5', { maxEps: 1.5 }, RangeError],
    [
      'maxReqRetRounds must be an integer >= 1, got bigint 5n',
      { maxReqRetRounds: 5n as never },
      TypeError,
    ],
    ["backoff must be an object, got string 'fast'", { backoff: 'fast' as never }, TypeError],
    [
      "backoff.minMs must be an integer >= 0, got string '1'",
      { backoff: { minMs: '1' as never } },
      TypeError,
    ],
    [
      'backoff.maxMs must be a number >= 10, got 5',
      { backoff: { minMs: 10, maxMs: 5 } },
      RangeError,
    ],
    ['backoff.factor must be a number >= 1, got 0.5', { backoff: { factor: 0.5 } }, RangeError],
    ['signal must be an AbortSignal, got object', { signal: {} as never }, TypeError],
    ["onProgress must be a function, got string 'log'", { onProgress: 'log' as never }, TypeError],
  ];

  it.each(cases)('%s', async (message, options, type) => {
    const { manager, agent } = setup();
    agent.persistDifference('a', Operation.Create, 'idx', doc('a'));
    for (const sync of [
      () => agent.synchronizeModule(Mode.Delta, options),
      () => agent.synchronizeMetadataOrGroups(Mode.MetadataDelta, options),
      () => agent.checkIntegrity('idx', 'x', options),
    ]) {
      const pending = sync();
      await expect(pending).rejects.toThrow(type);
      await expect(sync()).rejects.toThrow(message);
    }
    expect(manager.sessionCount).toBe(0);
    expect(agent.stats.syncsOk + agent.stats.syncsFailed['invalid-mode']).toBe(0);
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 1 });
  });

  it('checks the constructor syncDefaults at each sync the same way', async () => {
    const { agent } = setup({ syncDefaults: { timeoutMs: '5' as never } });
    await expect(agent.synchronizeModule(Mode.Delta)).rejects.toThrow(
      "timeoutMs must be an integer >= 1, got string '5'",
    );
    expect(await agent.synchronizeModule(Mode.Delta, { timeoutMs: 1000 })).toMatchObject({
      ok: true,
    });
  });
});

describe('results survive JSON.stringify (session as a decimal string)', () => {
  it('SyncSuccess with and without a session, and SyncFailure', async () => {
    const { manager, agent } = setup();
    agent.persistDifference('a', Operation.Create, 'idx', doc('a'));
    const ok = await agent.synchronizeModule(Mode.Delta);
    if (!ok.ok || ok.session === undefined) throw new Error('expected a session');
    expect(JSON.parse(JSON.stringify(ok))).toEqual({
      ok: true,
      session: ok.session.toString(),
      sent: 1,
      retransmitted: 0,
    });
    // Still a plain result for comparisons: toJSON is not an enumerable field.
    expect(Object.keys(ok)).toEqual(['ok', 'session', 'sent', 'retransmitted']);
    expect(ok).toEqual({ ok: true, session: ok.session, sent: 1, retransmitted: 0 });

    const nothing = await agent.synchronizeModule(Mode.Full);
    expect(JSON.stringify(nothing)).toBe('{"ok":true,"sent":0,"retransmitted":0}');
    const meta = await agent.synchronizeMetadataOrGroups(Mode.MetadataDelta);
    expect(JSON.parse(JSON.stringify(meta))).toMatchObject({
      ok: true,
      session: expect.any(String),
    });

    manager.forceStatus('StartAck', 2);
    agent.persistDifference('b', Operation.Create, 'idx', doc('b'));
    const failed = await agent.synchronizeModule(Mode.Delta);
    expect(JSON.parse(JSON.stringify(failed))).toEqual({
      ok: false,
      reason: 'manager-error',
      message: expect.stringContaining('StartAck'),
    });
    // @ts-expect-error JavaScript callers can pass any mode
    const invalid = await agent.synchronizeModule(Mode.Check);
    expect(JSON.parse(JSON.stringify(invalid))).toMatchObject({ reason: 'invalid-mode' });
  });

  it('IntegrityCheckResult: match, mismatch and inconclusive', async () => {
    const { manager, agent } = setup();
    agent.persistDifference('a', Operation.Create, 'idx', doc('a'));
    await agent.synchronizeModule(Mode.Delta);
    const checksum = computeIndexChecksum([JSON.parse(doc('a'))]);
    for (const [sum, outcome] of [
      [checksum, 'match'],
      ['deadbeef', 'mismatch'],
    ] as const) {
      const result = await agent.checkIntegrity('idx', sum);
      if (result.outcome !== outcome) throw new Error(`expected ${outcome}, got ${result.outcome}`);
      const session = (result as { session: bigint }).session;
      expect(JSON.parse(JSON.stringify(result))).toEqual({ outcome, session: session.toString() });
    }
    manager.setIndexerAvailable(false);
    const inconclusive = await agent.checkIntegrity('idx', checksum);
    expect(JSON.parse(JSON.stringify(inconclusive))).toEqual({
      outcome: 'inconclusive',
      reason: 'manager-offline',
      message: expect.any(String),
    });
  });

  it('a session above 2^53 keeps every digit', async () => {
    const session = 0xfedcba9876543210n; // 18364758544493064720: a JSON number would round it
    const agent = new AgentSyncProtocol({
      moduleName: 'fim',
      dbPath: dbFile(),
      transport: scriptedManager({ session }),
    });
    open.push(agent);
    agent.persistDifference('a', Operation.Create, 'idx', doc('a'));
    const result = await agent.synchronizeModule(Mode.Delta);
    expect(result).toMatchObject({ ok: true, session });
    expect(JSON.stringify(result)).toBe(
      '{"ok":true,"session":"18364758544493064720","sent":1,"retransmitted":0}',
    );
  });
});

describe('structured log fields', () => {
  type Call = { level: LogLevel; fields: LogFields; message: string };

  /** A logger with pino's calling convention: `(mergingObject, message)`. */
  function pinoLike() {
    const calls: Call[] = [];
    const method = (level: LogLevel) => (fields: LogFields, message: string) => {
      calls.push({ level, fields, message });
    };
    return {
      calls,
      logger: {
        debug: method('debug'),
        info: method('info'),
        warn: method('warn'),
        error: method('error'),
      },
    };
  }

  it('an object logger gets the fields first and the message second, as pino takes them', async () => {
    const { calls, logger } = pinoLike();
    const { manager, agent } = setup({ logger });
    agent.persistDifference('a', Operation.Create, 'idx', doc('a'));
    manager.inject({ type: 'DataValue', seq: 0n, action: 'drop' });
    const ok = await agent.synchronizeModule(Mode.Delta);
    if (!ok.ok) throw new Error(ok.message);
    expect(calls.find((c) => c.level === 'info')).toEqual({
      level: 'info',
      fields: {
        module: 'fim',
        mode: 'Delta',
        session: String(ok.session),
        sent: 1,
        retransmitted: 1,
      },
      message: '[fim] sync ok: 1 sent, 1 retransmitted',
    });
    // Every call carries the module, debug lines included.
    expect(calls.length).toBeGreaterThan(1);
    for (const call of calls) expect(call.fields.module).toBe('fim');

    manager.forceStatus('EndAck', 3);
    agent.persistDifference('b', Operation.Create, 'idx', doc('b'));
    await agent.synchronizeModule(Mode.Delta);
    expect(calls.find((c) => c.level === 'warn')).toEqual({
      level: 'warn',
      fields: { module: 'fim', mode: 'Delta', reason: 'manager-offline' },
      message: expect.stringMatching(/^\[fim\] sync failed \(manager-offline\)/),
    });
  });

  it('a Check mismatch logs its session and outcome as fields', async () => {
    const { calls, logger } = pinoLike();
    const { agent } = setup({ logger });
    const result = await agent.checkIntegrity('idx', 'deadbeef');
    if (result.outcome !== 'mismatch') throw new Error(result.outcome);
    expect(calls.filter((c) => c.level !== 'debug')).toEqual([
      {
        level: 'info',
        fields: {
          module: 'fim',
          mode: 'Check',
          index: 'idx',
          session: String(result.session),
          outcome: 'mismatch',
        },
        message: "[fim] check: mismatch, the manager's checksum of idx differs; a Full sync is due",
      },
    ]);
  });

  it('a (level, message) callback keeps working and may take the fields as a third argument', async () => {
    const two: string[] = [];
    const three: Array<[LogLevel, string, LogFields | undefined]> = [];
    const a = setup({ logger: (level, message) => two.push(`${level} ${message}`) }).agent;
    const b = setup({
      logger: (level, message, fields) => three.push([level, message, fields]),
    }).agent;
    for (const agent of [a, b]) {
      agent.persistDifference('x', Operation.Create, 'idx', doc('x'));
      expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true });
    }
    expect(two).toContain('info [fim] sync ok: 1 sent, 0 retransmitted');
    expect(three.find(([level]) => level === 'info')).toEqual([
      'info',
      '[fim] sync ok: 1 sent, 0 retransmitted',
      expect.objectContaining({ module: 'fim', mode: 'Delta', sent: 1, retransmitted: 0 }),
    ]);
  });
});
