import { afterEach, describe, expect, it } from 'vitest';
import { AgentSyncProtocol, Mode, Operation } from '../../src/index.js';
import { MockManager } from '../../src/testing/index.js';
import { decodeAgentMessage, Status } from '../../src/wire/index.js';
import {
  dbFile,
  doc,
  RecordingTransport,
  type ScriptedTransport,
  scriptedManager,
} from '../helpers.js';

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const thing of open.splice(0).reverse()) await thing.close();
});

/** The manager answers as microtasks: before the agent starts to wait, however slow the machine. */
const PROMPT = { responseDelivery: 'microtask' } as const;

/** Resolves once the agent has handed its `n`th DataValue to `transport`. */
function dataValueSent(transport: RecordingTransport, n: number): Promise<void> {
  const inner = transport.inner;
  const send = inner.send.bind(inner);
  return new Promise((resolve) => {
    let seen = 0;
    inner.send = (message, module) => {
      const result = send(message, module);
      if (decodeAgentMessage(message)?.type === 'DataValue' && ++seen === n) resolve();
      return result;
    };
  });
}

function setup(
  options: { items?: number; managerOptions?: ConstructorParameters<typeof MockManager>[0] } = {},
) {
  const manager = new MockManager(options.managerOptions);
  const transport = new RecordingTransport(manager.transport('fim'));
  const agent = new AgentSyncProtocol({
    moduleName: 'fim',
    dbPath: dbFile(),
    transport,
    agentInfo: { id: '007' },
    // Far above any answer's delay: no attempt times out unless the test means it to (those
    // tests take answers as microtasks, which no stall can make late, and a short timeout).
    syncDefaults: { timeoutMs: 5000, retries: 2 },
  });
  open.push(manager, agent);
  for (let i = 0; i < (options.items ?? 5); i++) {
    agent.persistDifference(`file-${i}`, Operation.Create, 'wazuh-states-fim', doc(`file-${i}`));
  }
  return { manager, transport, agent };
}

/** `timeoutMs`: far above the scripted answers' delays (next macrotask, or 10-20 ms) by default. */
function agentOn(transport: ScriptedTransport, items = 3, timeoutMs = 5000) {
  const agent = new AgentSyncProtocol({
    moduleName: 'fim',
    dbPath: dbFile(),
    transport,
    syncDefaults: { timeoutMs, retries: 2 },
  });
  open.push(agent);
  for (let i = 0; i < items; i++)
    agent.persistDifference(`f${i}`, Operation.Modify, 'idx', doc(`f${i}`));
  return agent;
}

describe('a Delta sync against the mock manager', () => {
  it('sends Start, End (the probe), every item once in queue order, End, and empties the queue on EndAck Ok', async () => {
    const { manager, transport, agent } = setup({ items: 5 });
    const result = await agent.synchronizeModule(Mode.Delta);
    expect(result).toMatchObject({ ok: true, sent: 5, retransmitted: 0 });
    expect(typeof (result as { session: bigint }).session).toBe('bigint');
    expect(transport.sent.map((m) => m.type)).toEqual([
      'Start',
      'End',
      'DataValue',
      'DataValue',
      'DataValue',
      'DataValue',
      'DataValue',
      'End',
    ]);
    const start = transport.of('Start')[0];
    expect(start).toMatchObject({ size: 5n, index: ['wazuh-states-fim'], agentid: '007' });
    expect(transport.of('DataValue').map((m) => [m.seq, m.id])).toEqual(
      [0, 1, 2, 3, 4].map((i) => [BigInt(i), `file-${i}`]),
    );
    expect(agent.pendingCount).toBe(0);
    expect(
      manager
        .documents()
        .map((d) => d.id)
        .sort(),
    ).toEqual([0, 1, 2, 3, 4].map((i) => `007_file-${i}`));
  });

  it('returns success without contacting the manager when nothing is queued', async () => {
    const { transport, agent } = setup({ items: 0 });
    expect(await agent.synchronizeModule(Mode.Delta)).toEqual({
      ok: true,
      sent: 0,
      retransmitted: 0,
    });
    expect(transport.sent).toEqual([]);
  });

  it('keeps an answer that arrives inside send(), before the driver waits', async () => {
    const { manager, agent } = setup({ items: 3, managerOptions: { responseDelivery: 'sync' } });
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 3 });
    expect(manager.documents()).toHaveLength(3);
  });

  it('carries u64 session ids as bigint beyond 2^53', async () => {
    const big = 0xfffffffffffffff0n;
    const transport = scriptedManager({ session: big });
    const agent = agentOn(transport, 2);
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, session: big });
    expect(
      transport.sent.filter((m) => m.type === 'DataValue').every((m) => m.session === big),
    ).toBe(true);
  });
});

describe('timeouts and retries', () => {
  // Tests that need an attempt to time out use a short timeout; the manager's other answers then
  // come as microtasks, before the agent's wait even starts, so a stalled process cannot make
  // one of them late (with answers on the next macrotask, an expired timer runs first).
  it('sends Start again when StartAck does not come, and succeeds on the retry', async () => {
    const { manager, transport, agent } = setup({ items: 2, managerOptions: PROMPT });
    manager.inject({ type: 'Start', action: 'drop', times: 1 });
    expect(await agent.synchronizeModule(Mode.Delta, { timeoutMs: 100 })).toMatchObject({
      ok: true,
      sent: 2,
    });
    expect(transport.count('Start')).toBe(2);
  });

  it('fails with timeout after retries + 1 Starts, and keeps the items', async () => {
    const { manager, transport, agent } = setup({ items: 2 });
    manager.setSilent(true);
    const result = await agent.synchronizeModule(Mode.Delta, { retries: 3, timeoutMs: 30 });
    expect(result).toMatchObject({ ok: false, reason: 'timeout' });
    expect(transport.count('Start')).toBe(4);
    expect(transport.count('DataValue')).toBe(0);
    expect(agent.pendingCount).toBe(2);
  });

  it('waits backoff.minMs between attempts when asked to', async () => {
    const { manager, agent } = setup({ items: 1 });
    manager.setSilent(true);
    const began = performance.now();
    await agent.synchronizeModule(Mode.Delta, {
      retries: 2,
      timeoutMs: 10,
      backoff: { minMs: 100, factor: 1 },
    });
    // 3 waits of 10 ms plus 2 pauses of 100 ms: the pauses must have happened.
    expect(performance.now() - began).toBeGreaterThanOrEqual(200);
  });

  it('sends End again when its answer does not come, and resends only what was lost', async () => {
    const { manager, transport, agent } = setup({ items: 3, managerOptions: PROMPT });
    manager.inject({ type: 'DataValue', seq: 1n, action: 'drop', times: 1 });
    manager.inject({ type: 'End', action: 'drop', skip: 1, times: 1 }); // the End after the data
    expect(await agent.synchronizeModule(Mode.Delta, { timeoutMs: 100 })).toMatchObject({
      ok: true,
      sent: 3,
      retransmitted: 1,
    });
    expect(transport.count('End')).toBe(3);
    expect(transport.of('DataValue').map((m) => m.seq)).toEqual([0n, 1n, 2n, 1n]);
  });

  it('a lost probe End costs another Start, not the data', async () => {
    const { manager, transport, agent } = setup({ items: 3, managerOptions: PROMPT });
    manager.inject({ type: 'End', action: 'drop', times: 1 });
    expect(await agent.synchronizeModule(Mode.Delta, { timeoutMs: 100 })).toMatchObject({
      ok: true,
      sent: 3,
      retransmitted: 0,
    });
    expect(transport.sent.map((m) => m.type)).toEqual([
      'Start',
      'End',
      'Start',
      'End',
      'DataValue',
      'DataValue',
      'DataValue',
      'End',
    ]);
    expect(manager.documents()).toHaveLength(3);
  });

  it('fails with timeout after retries + 1 Ends and returns the items to pending', async () => {
    const { manager, transport, agent } = setup({ items: 3, managerOptions: PROMPT });
    manager.inject({ type: 'End', action: 'drop', times: Number.POSITIVE_INFINITY });
    const result = await agent.synchronizeModule(Mode.Delta, { retries: 2, timeoutMs: 30 });
    expect(result).toMatchObject({ ok: false, reason: 'timeout' });
    expect(transport.count('End')).toBe(3);
    expect(agent.pendingCount).toBe(3);
    expect(manager.documents()).toEqual([]);
  });
});

describe('manager statuses', () => {
  it.each([
    [Status.Error, 'manager-error'],
    [Status.Offline, 'manager-offline'],
    [Status.PartialOk, 'manager-error'],
  ] as const)('StartAck %s fails at once, without retrying Start', async (status, reason) => {
    const { manager, transport, agent } = setup({ items: 2 });
    manager.forceStatus('StartAck', status);
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: false, reason });
    expect(transport.count('Start')).toBe(1);
    expect(transport.count('DataValue')).toBe(0);
    expect(agent.pendingCount).toBe(2);
  });

  it('reports manager-offline when the indexer is unavailable', async () => {
    const { manager, agent } = setup({ items: 1 });
    manager.setIndexerAvailable(false);
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({
      ok: false,
      reason: 'manager-offline',
    });
  });

  it.each([
    [Status.Error, 'manager-error'],
    [Status.Offline, 'manager-offline'],
  ] as const)('EndAck %s fails the sync and keeps every item pending', async (status, reason) => {
    const { manager, transport, agent } = setup({ items: 4 });
    manager.forceStatus('EndAck', status);
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: false, reason });
    expect(transport.count('End')).toBe(2);
    expect(agent.pendingCount).toBe(4);
    // The next sync sends them all again and succeeds.
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 4 });
  });

  it('fails with manager-error when the manager cannot index, and retries cleanly later', async () => {
    const { manager, agent } = setup({ items: 2 });
    manager.failIndexing(1);
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({
      ok: false,
      reason: 'manager-error',
    });
    expect(manager.documents()).toEqual([]);
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 2 });
    expect(manager.documents()).toHaveLength(2);
  });
});

describe('ReqRet', () => {
  it('resends exactly the seqs the manager missed, once, and does not resend End', async () => {
    const { manager, transport, agent } = setup({ items: 10 });
    const lost = new Set([2n, 3n, 7n]);
    manager.inject({ type: 'DataValue', seq: (seq) => lost.has(seq), action: 'drop', times: 3 });
    const result = await agent.synchronizeModule(Mode.Delta);
    expect(result).toMatchObject({ ok: true, sent: 10, retransmitted: 3 });
    const seqs = transport.of('DataValue').map((m) => m.seq);
    expect(seqs.slice(10)).toEqual([2n, 3n, 7n]);
    expect(transport.count('End')).toBe(2); // the probe's and the one after the data
    expect(manager.documents()).toHaveLength(10);
  });

  it('clips a range that ends at 2^64-1 to the session', async () => {
    let asked = false;
    const transport = scriptedManager({
      complete: (t, session) => {
        if (asked) return;
        asked = true;
        t.reply(t.encoder.reqRet(session, [{ begin: 1n, end: 2n ** 64n - 1n }]));
        setTimeout(() => t.reply(t.encoder.endAck(Status.Ok, session)), 20);
      },
    });
    const agent = agentOn(transport, 4);
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({
      ok: true,
      sent: 4,
      retransmitted: 3,
    });
    const seqs = transport.sent
      .filter((m) => m.type === 'DataValue')
      .map((m) => (m as { seq: bigint }).seq);
    expect(seqs).toEqual([0n, 1n, 2n, 3n, 1n, 2n, 3n]);
  });

  it('merges overlapping ranges so each seq is resent once', async () => {
    let asked = false;
    const transport = scriptedManager({
      complete: (t, session) => {
        if (asked) return;
        asked = true;
        t.reply(
          t.encoder.reqRet(session, [
            { begin: 2n, end: 3n },
            { begin: 0n, end: 2n },
          ]),
        );
        setTimeout(() => t.reply(t.encoder.endAck(Status.Ok, session)), 20);
      },
    });
    const agent = agentOn(transport, 5);
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, retransmitted: 4 });
  });

  it.each([
    ['an empty range list', []],
    ['an inverted range', [{ begin: 3n, end: 1n }]],
    ['ranges past the last seq', [{ begin: 10n, end: 20n }]],
  ])('fails with retransmit-invalid on %s', async (_name, ranges) => {
    const transport = scriptedManager({
      complete: (t, session) => t.reply(t.encoder.reqRet(session, ranges)),
    });
    const agent = agentOn(transport, 3);
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({
      ok: false,
      reason: 'retransmit-invalid',
    });
    expect(agent.pendingCount).toBe(3);
  });

  it('fails after maxReqRetRounds when the manager asks for retransmission forever', async () => {
    let completed = false;
    const transport = scriptedManager({
      answer: (m, t, session) => {
        // Every resend of seq 0 is answered with a request for seq 0 again.
        if (completed && m.type === 'DataValue' && m.seq === 0n)
          t.reply(t.encoder.reqRet(session, [{ begin: 0n, end: 0n }]));
      },
      complete: (t, session) => {
        completed = true;
        t.reply(t.encoder.reqRet(session, [{ begin: 0n, end: 0n }]));
      },
    });
    const agent = agentOn(transport, 2);
    const result = await agent.synchronizeModule(Mode.Delta, { maxReqRetRounds: 5 });
    expect(result).toMatchObject({ ok: false, reason: 'retransmit-invalid' });
    expect(transport.count('End')).toBe(2);
  });
});

describe('the probe: End before data tells the session size', () => {
  // A manager whose first StartAck carries a stale session (opened by an earlier Start for
  // `staleSize` items): its probe End is answered as that session would be.
  function staleFirst(staleSize: number, answerProbe: 'reqret' | 'endack' | 'silent') {
    const stale = 0x5fa1en;
    let first = true;
    return scriptedManager({
      answer: (m, t) => {
        if (m.type === 'Start' && first) {
          first = false;
          t.reply(t.encoder.startAck(Status.Ok, stale));
          return true;
        }
        if (m.type === 'End' && m.session === stale) {
          if (answerProbe === 'reqret')
            t.reply(t.encoder.reqRet(stale, [{ begin: 0n, end: BigInt(staleSize - 1) }]));
          if (answerProbe === 'endack') t.reply(t.encoder.endAck(Status.Ok, stale));
          return true;
        }
        return m.type === 'DataValue' && m.session === stale;
      },
    });
  }

  it.each([
    ['a ReqRet for fewer seqs', 'reqret', 2],
    ['a ReqRet for more seqs', 'reqret', 9],
    ['an EndAck', 'endack', 2],
    ['no answer', 'silent', 2],
  ] as const)('refuses a session whose probe gets %s, and starts again', async (_n, kind, size) => {
    const transport = staleFirst(size, kind);
    // 'no answer' waits for the probe's timeout: long enough for no other answer to be late.
    const agent = agentOn(transport, 3, kind === 'silent' ? 1000 : undefined);
    const result = await agent.synchronizeModule(Mode.Delta);
    expect(result).toMatchObject({ ok: true, sent: 3, session: 0xfedcba9876543210n });
    expect(transport.count('Start')).toBe(2);
    // Nothing went to the stale session but its probe End.
    const stale = transport.sent.filter((m) => 'session' in m && m.session === 0x5fa1en);
    expect(stale.map((m) => m.type)).toEqual(['End']);
    expect(agent.pendingCount).toBe(0);
  });

  it('a session refused on every attempt fails the sync with timeout and keeps the items', async () => {
    const transport = scriptedManager({
      answer: (m, t, session) => {
        if (m.type === 'End') {
          t.reply(t.encoder.reqRet(session, [{ begin: 0n, end: 0n }]));
          return true;
        }
      },
    });
    // The retries' StartAcks name the refused session again and are waited out; every answer
    // taken for late, too, would end the same way.
    const agent = agentOn(transport, 3, 100);
    const result = await agent.synchronizeModule(Mode.Delta, { retries: 2 });
    expect(result).toMatchObject({ ok: false, reason: 'timeout' });
    expect(transport.count('Start')).toBe(3);
    expect(transport.count('DataValue')).toBe(0);
    expect(agent.pendingCount).toBe(3);
  });
});

describe('responses for another session or phase', () => {
  it('ignores EndAck and ReqRet of another session, and StartAck after the start phase', async () => {
    const transport = scriptedManager({
      answer: (m, t, session) => {
        if (m.type === 'DataValue' && m.seq === 0n) {
          t.reply(t.encoder.startAck(Status.Ok, 1n)); // wrong phase
          t.reply(t.encoder.endAck(Status.Error, session + 1n)); // wrong session
        }
        if (m.type === 'End') {
          t.reply(t.encoder.endAck(Status.Error, session + 1n)); // wrong session
          t.reply(t.encoder.reqRet(session - 1n, [{ begin: 0n, end: 0n }])); // wrong session
        }
      },
      complete: (t, session) => setTimeout(() => t.reply(t.encoder.endAck(Status.Ok, session)), 10),
    });
    const agent = agentOn(transport, 3);
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({
      ok: true,
      sent: 3,
      retransmitted: 0,
    });
  });

  it('parseResponseBuffer returns false for invalid bytes and true for a valid but unexpected message', () => {
    const transport = scriptedManager();
    const agent = agentOn(transport, 0);
    expect(agent.parseResponseBuffer(new Uint8Array([1, 2, 3]))).toBe(false);
    expect(agent.parseResponseBuffer(transport.encoder.endAck(Status.Ok, 5n))).toBe(true);
    // An agent message is not a response.
    expect(agent.parseResponseBuffer(transport.encoder.end(5n))).toBe(false);
  });
});

describe('one sync at a time, abort and close', () => {
  it('answers busy at once to a second sync and sends nothing for it', async () => {
    const { transport, agent } = setup({ items: 3 });
    const first = agent.synchronizeModule(Mode.Delta);
    const second = await agent.synchronizeModule(Mode.Delta);
    expect(second).toMatchObject({ ok: false, reason: 'busy' });
    expect(await agent.requiresFullSync('idx', 'abc')).toBe(false);
    expect(await agent.synchronizeMetadataOrGroups(Mode.MetadataDelta)).toMatchObject({
      reason: 'busy',
    });
    expect(await first).toMatchObject({ ok: true });
    expect(transport.count('Start')).toBe(1);
  });

  it('aborts by AbortSignal mid-sync and keeps every item pending', async () => {
    const { manager, agent } = setup({ items: 50 });
    manager.setSilent(true);
    const controller = new AbortController();
    const pending = agent.synchronizeModule(Mode.Delta, {
      signal: controller.signal,
      timeoutMs: 5000,
    });
    setTimeout(() => controller.abort(), 20);
    expect(await pending).toMatchObject({ ok: false, reason: 'aborted' });
    expect(agent.pendingCount).toBe(50);
  });

  it('aborts during the data phase (paced) and keeps every item', async () => {
    const { manager, transport, agent } = setup({ items: 40 });
    const controller = new AbortController();
    const third = dataValueSent(transport, 3);
    const pending = agent.synchronizeModule(Mode.Delta, { signal: controller.signal, maxEps: 20 });
    await third; // the next one is 50 ms away
    controller.abort();
    expect(await pending).toMatchObject({ ok: false, reason: 'aborted' });
    expect(transport.count('DataValue')).toBeLessThan(40);
    expect(agent.pendingCount).toBe(40);
    expect(manager.documents()).toEqual([]);
  });

  it('close() mid-sync resolves the sync with closed, logs no error, and a reopen finds every item', async () => {
    const manager = new MockManager();
    open.push(manager);
    const path = dbFile();
    const logs: string[] = [];
    const transport = new RecordingTransport(manager.transport('fim'));
    const agent = new AgentSyncProtocol({
      moduleName: 'fim',
      dbPath: path,
      transport,
      logger: (level, message) => logs.push(`${level}: ${message}`),
    });
    for (let i = 0; i < 30; i++)
      agent.persistDifference(`f${i}`, Operation.Create, 'idx', doc(`f${i}`));
    const third = dataValueSent(transport, 3);
    const pending = agent.synchronizeModule(Mode.Delta, { maxEps: 20 });
    await third; // mid-data: the next one is 50 ms away
    await agent.close();
    expect(await pending).toMatchObject({ ok: false, reason: 'closed' });
    expect(logs.filter((l) => l.startsWith('error'))).toEqual([]);
    expect(() => agent.persistDifference('x', Operation.Create, 'idx', '{"v":1}')).toThrow(
      /closed/,
    );
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({
      ok: false,
      reason: 'closed',
    });
    expect(agent.parseResponseBuffer(new Uint8Array(8))).toBe(false);

    const again = new AgentSyncProtocol({
      moduleName: 'fim',
      dbPath: path,
      transport: manager.transport('fim'),
    });
    open.push(again);
    expect(again.pendingCount).toBe(30);
    expect(await again.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 30 });
    expect(manager.documents()).toHaveLength(30);
  });
});

describe('transport failures', () => {
  it('re-opens the transport once and resends the message that failed', async () => {
    const { transport, agent } = setup({ items: 3 });
    const inner = transport.inner;
    let failures = 1;
    const send = inner.send.bind(inner);
    inner.send = (message, module) => {
      if (failures-- > 0) throw new Error('EAGAIN');
      return send(message, module);
    };
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 3 });
    expect(transport.starts).toBe(2);
  });

  it('fails with send-failed when the resend fails too, and keeps the items', async () => {
    const { transport, agent } = setup({ items: 3 });
    const inner = transport.inner;
    const send = inner.send.bind(inner);
    let calls = 0;
    inner.send = (message, module) => {
      // Start goes through; the first DataValue and its resend fail.
      if (++calls >= 2 && calls <= 3) return Promise.reject(new Error('socket closed'));
      return send(message, module);
    };
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({
      ok: false,
      reason: 'send-failed',
    });
    expect(agent.pendingCount).toBe(3);
  });

  it('fails with queue-unavailable when the transport cannot start, and keeps the items', async () => {
    const agent = new AgentSyncProtocol({
      moduleName: 'fim',
      dbPath: dbFile(),
      transport: {
        start() {
          throw new Error('no queue socket');
        },
        send() {},
      },
    });
    open.push(agent);
    agent.persistDifference('a', Operation.Create, 'idx', '{"v":1}');
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({
      ok: false,
      reason: 'queue-unavailable',
    });
    expect(agent.pendingCount).toBe(1);
  });
});
