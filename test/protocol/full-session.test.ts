// The Wazuh 5.0 wire ('fullSession') end to end against the mock manager's /stateful front.
import { afterEach, describe, expect, it } from 'vitest';
import {
  AgentSyncProtocol,
  type AgentSyncProtocolOptions,
  computeIndexChecksum,
  type FullSessionWireOptions,
  type LogFields,
  Mode,
  Operation,
  type SessionRequest,
  type SessionTransport,
} from '../../src/index.js';
import { MockManager } from '../../src/testing/index.js';
import { decodeFullSession, Mode as WireMode5 } from '../../src/wire-5/index.js';
import { dbFile, doc } from '../helpers.js';

const INDEX = 'wazuh-states-inventory-packages';
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

function setup(extra: Partial<FullSessionWireOptions> = {}) {
  const manager = new MockManager({ clusterName: 'wazuh' });
  const transport = new Recording(manager.sessionTransport('001'));
  const logs: Array<{ message: string; fields?: LogFields }> = [];
  const agent = new AgentSyncProtocol({
    moduleName: 'syscollector',
    dbPath: dbFile(),
    transport,
    wire: 'fullSession',
    clusterName: 'wazuh',
    agentInfo: { id: '001', osPlatform: 'ubuntu', groups: ['default'] },
    logger: (_level, message, fields) => logs.push({ message, ...(fields ? { fields } : {}) }),
    syncDefaults: {
      timeoutMs: 1000,
      retries: 2,
      backoff: { minMs: 0 },
      checkAttempts: 3,
      checkRetryDelayMs: 1,
    },
    ...extra,
  });
  open.push(manager, agent);
  return { manager, transport, agent, logs };
}

describe("wire: 'fullSession', Delta", () => {
  it('sends the queue as one session; documents arrive with the 5.0 _id and their versions', async () => {
    const { manager, transport, agent } = setup();
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'), 7n);
    agent.persistDifferences([
      { id: 'b', operation: Operation.Modify, index: INDEX, data: doc('b'), version: 3 },
    ]);
    const result = await agent.synchronizeModule(Mode.Delta);
    expect(result).toMatchObject({ ok: true, sent: 2, retransmitted: 0 });
    expect(agent.pendingCount).toBe(0);
    expect(transport.sent).toHaveLength(1);
    const [request] = transport.sent;
    expect(request?.id).toMatch(/^syscollector-[0-9]+$/);
    expect(result.ok && String(result.session)).toBe(request?.id.split('-')[1]);
    const [session] = transport.decoded();
    expect(session?.start).toMatchObject({
      module: 'syscollector',
      mode: WireMode5.ModuleDelta,
      index: [INDEX],
      agentid: '001',
      clusterName: 'wazuh',
      osplatform: 'ubuntu',
      groups: ['default'],
    });
    expect(
      session?.payload?.type === 'SyncData' && session.payload.values.map((v) => v.version),
    ).toEqual([7n, 3n]);
    const docs = manager.documents(INDEX).sort((x, y) => x.id.localeCompare(y.id));
    expect(docs.map((d) => d.id)).toEqual(['wazuh_001_a', 'wazuh_001_b']);
    expect(agent.stats).toMatchObject({ syncsOk: 1, messagesSent: 1 });
  });

  it('a lower version never replaces a stored document (external versioning on the manager)', async () => {
    const { manager, agent } = setup();
    const versioned = (v: number, tag: string) => doc('a', { state: { document_version: v }, tag });
    agent.persistDifference('a', Operation.Modify, INDEX, versioned(5, 'five'), 5);
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true });
    agent.persistDifference('a', Operation.Modify, INDEX, versioned(3, 'three'), 3n);
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true });
    expect(manager.documents(INDEX).map((d) => (d.data as { tag: string }).tag)).toEqual(['five']);
  });

  it('an empty queue succeeds without a session', async () => {
    const { transport, agent } = setup();
    expect(await agent.synchronizeModule(Mode.Delta)).toEqual({
      ok: true,
      sent: 0,
      retransmitted: 0,
    });
    expect(transport.sent).toHaveLength(0);
  });

  it('cuts the queue into sessions by bytes, at most maxSessions per call', async () => {
    const { manager, transport, agent } = setup();
    const big = 'x'.repeat(40_000);
    for (let i = 0; i < 5; i++) {
      agent.persistDifference(`i${i}`, Operation.Create, INDEX, doc(`i${i}`, { big }));
    }
    // 40 KiB items under a 50 KiB cap: one item per session.
    const first = await agent.synchronizeModule(Mode.Delta, {
      maxSessionBytes: 50_000,
      maxSessions: 3,
    });
    expect(first).toMatchObject({ ok: true, sent: 3 });
    expect(transport.sent).toHaveLength(3);
    expect(new Set(transport.sent.map((s) => s.id)).size).toBe(3);
    expect(agent.pendingCount).toBe(2);
    expect(await agent.synchronizeModule(Mode.Delta, { maxSessionBytes: 50_000 })).toMatchObject({
      ok: true,
      sent: 2,
    });
    expect(manager.documentCount(INDEX)).toBe(5);
  });

  it('a call stopped by maxSessions: its items are neither pending nor sent again, after close too', async () => {
    const path = dbFile();
    const { manager, transport, agent } = setup({ dbPath: path });
    for (let i = 0; i < 4; i++)
      agent.persistDifference(`i${i}`, Operation.Create, INDEX, doc(`i${i}`));
    // One item per session: the call stops at 2 with 2 more queued.
    expect(
      await agent.synchronizeModule(Mode.Delta, { maxSessionBytes: 9_000, maxSessions: 2 }),
    ).toMatchObject({ ok: true, sent: 2 });
    expect(agent.pendingCount).toBe(2);
    await agent.close();
    const again = new AgentSyncProtocol({
      moduleName: 'syscollector',
      dbPath: path,
      transport,
      wire: 'fullSession',
      clusterName: 'wazuh',
      agentInfo: { id: '001' },
    });
    open.push(again);
    expect(again.pendingCount).toBe(2);
    expect(await again.synchronizeModule(Mode.Delta, { maxSessionBytes: 9_000 })).toMatchObject({
      ok: true,
      sent: 2,
    });
    expect(transport.sent).toHaveLength(4);
    expect(again.pendingCount).toBe(0);
    expect(manager.documentCount(INDEX)).toBe(4);
  });

  it('the first failed session stops the rest and leaves them queued', async () => {
    const { manager, transport, agent } = setup();
    const big = 'x'.repeat(40_000);
    for (let i = 0; i < 4; i++) {
      agent.persistDifference(`i${i}`, Operation.Create, INDEX, doc(`i${i}`, { big }));
    }
    manager.injectStateful({ action: 'internal-error', skip: 1, times: 10 });
    const result = await agent.synchronizeModule(Mode.Delta, {
      maxSessionBytes: 50_000,
      retries: 1,
    });
    expect(result).toMatchObject({ ok: false, reason: 'manager-error' });
    // Session 1 applied; session 2 tried twice; sessions 3 and 4 never sent.
    expect(transport.sent).toHaveLength(3);
    expect(transport.sent[1]?.id).toBe(transport.sent[2]?.id);
    expect(transport.sent[1]?.body).toEqual(transport.sent[2]?.body);
    expect(agent.pendingCount).toBe(3);
    expect(manager.documentCount(INDEX)).toBe(1);
  });
});

describe("wire: 'fullSession', the size of one change", () => {
  it('takes a change far beyond a datagram, up to what a default session holds', async () => {
    const { manager, agent } = setup();
    const big = JSON.stringify({ id: 'big', blob: 'x'.repeat(1024 * 1024) });
    agent.persistDifference('big', Operation.Create, INDEX, big);
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 1 });
    expect(manager.documentCount()).toBe(1);

    const tooBig = JSON.stringify({ id: 'huge', blob: 'x'.repeat(5 * 1024 * 1024) });
    expect(() => agent.persistDifference('huge', Operation.Create, INDEX, tooBig)).toThrow(
      /limit is \d+ bytes/,
    );
    expect(agent.pendingCount).toBe(0);
  });
});

describe("wire: 'fullSession', HTTP statuses", () => {
  it('503 with Retry-After is retried after at least Retry-After, then succeeds', async () => {
    const { manager, transport, agent, logs } = setup();
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'));
    manager.injectStateful({ action: 'unavailable', retryAfterSeconds: 1 });
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 1 });
    expect(transport.sent).toHaveLength(2);
    const wait = logs.find((l) => l.fields?.delayMs !== undefined);
    expect(wait?.fields?.delayMs).toBeGreaterThanOrEqual(1000);
  });

  it('500 on every attempt fails manager-error within the retries budget; rows stay', async () => {
    const { manager, transport, agent } = setup();
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'));
    manager.injectStateful({ action: 'internal-error', times: Number.POSITIVE_INFINITY });
    expect(await agent.synchronizeModule(Mode.Delta, { retries: 2 })).toMatchObject({
      ok: false,
      reason: 'manager-error',
    });
    expect(transport.sent).toHaveLength(3);
    expect(agent.pendingCount).toBe(1);
  });

  it('503 on every attempt fails manager-offline', async () => {
    const { manager, agent } = setup();
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'));
    manager.setIndexerAvailable(false);
    expect(await agent.synchronizeModule(Mode.Delta, { retries: 1 })).toMatchObject({
      ok: false,
      reason: 'manager-offline',
    });
    expect(agent.stats.syncsFailed['manager-offline']).toBe(1);
  });

  it('a Retry-After beyond an hour waits an hour at most (an abort ends the wait)', async () => {
    const { agent, logs } = setup({
      transport: { send: async (_s: SessionRequest) => ({ status: 503, retryAfterSeconds: 1e12 }) },
    });
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'));
    const controller = new AbortController();
    const sync = agent.synchronizeModule(Mode.Delta, { signal: controller.signal });
    while (!logs.some((l) => l.fields?.delayMs !== undefined)) {
      await new Promise((r) => setImmediate(r));
    }
    controller.abort();
    expect(await sync).toMatchObject({ ok: false, reason: 'aborted' });
    expect(logs.find((l) => l.fields?.delayMs !== undefined)?.fields?.delayMs).toBe(3_600_000);
    expect(agent.pendingCount).toBe(1);
  });

  it('no answer is a timeout, retried; a later answer succeeds', async () => {
    const { manager, transport, agent } = setup();
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'));
    manager.injectStateful({ action: 'drop' });
    expect(await agent.synchronizeModule(Mode.Delta, { timeoutMs: 50 })).toMatchObject({
      ok: true,
    });
    expect(transport.sent).toHaveLength(2);
  });

  it('no answer at all fails timeout, and the rows stay queued', async () => {
    const { manager, agent } = setup();
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'));
    manager.injectStateful({ action: 'drop', times: Number.POSITIVE_INFINITY });
    expect(await agent.synchronizeModule(Mode.Delta, { timeoutMs: 20, retries: 1 })).toMatchObject({
      ok: false,
      reason: 'timeout',
    });
    expect(agent.pendingCount).toBe(1);
  });

  it.each([
    [400, 'invalid-session'],
    [401, 'unauthorized'],
    [403, 'forbidden'],
    [413, 'too-large'],
    [418, 'manager-error'],
  ] as const)('%i fails %s at once, without a retry', async (status, reason) => {
    const sent: SessionRequest[] = [];
    const { agent } = setup({
      transport: {
        send: async (session: SessionRequest) => {
          sent.push(session);
          return { status, body: '{"error":"x"}' };
        },
      },
    });
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'));
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: false, reason });
    expect(sent).toHaveLength(1);
    expect(agent.pendingCount).toBe(1);
    expect(agent.stats.syncsFailed[reason]).toBe(1);
  });

  it.each([415, 429, 500, 502, 503, 504])(
    '%i is transient: retried with the same id and bytes, then 200 succeeds',
    async (status) => {
      const sent: SessionRequest[] = [];
      const { agent } = setup({
        transport: {
          send: async (session: SessionRequest) => {
            sent.push(session);
            return { status: sent.length === 1 ? status : 202 };
          },
        },
      });
      agent.persistDifference('a', Operation.Create, INDEX, doc('a'));
      expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 1 });
      expect(sent).toHaveLength(2);
      expect(sent[1]?.id).toBe(sent[0]?.id);
      expect(sent[1]?.body).toEqual(sent[0]?.body);
      expect(agent.pendingCount).toBe(0);
    },
  );

  it('an answer that is not an HTTP status counts as a failed hand-off, retried', async () => {
    let calls = 0;
    const { agent } = setup({
      transport: {
        send: async (_session: SessionRequest) =>
          ++calls === 1 ? ({ status: 'ok' } as never) : { status: 200 },
      },
    });
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'));
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true });
    expect(calls).toBe(2);
  });

  it('a cluster name the manager does not have is 403 forbidden', async () => {
    const { agent } = setup({ clusterName: 'other' });
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'));
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({
      ok: false,
      reason: 'forbidden',
    });
  });

  it('a transport that rejects is retried, then fails send-failed', async () => {
    let calls = 0;
    const { agent } = setup({
      transport: {
        send: async () => {
          calls++;
          throw new Error('socket closed');
        },
      },
    });
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'));
    const result = await agent.synchronizeModule(Mode.Delta, { retries: 1 });
    expect(result).toMatchObject({ ok: false, reason: 'send-failed' });
    expect(!result.ok && result.message).toContain('socket closed');
    expect(calls).toBe(2);
  });
});

describe("wire: 'fullSession', progress and stats", () => {
  it("reports 'start', 'data' per applied session and 'end'", async () => {
    const { agent } = setup();
    const big = 'x'.repeat(40_000);
    for (let i = 0; i < 3; i++) {
      agent.persistDifference(`i${i}`, Operation.Create, INDEX, doc(`i${i}`, { big }));
    }
    const phases: string[] = [];
    const result = await agent.synchronizeModule(Mode.Delta, {
      maxSessionBytes: 50_000,
      onProgress: ({ phase, sent, total }) => phases.push(`${phase}:${sent}/${total}`),
    });
    expect(result).toMatchObject({ ok: true, sent: 3 });
    expect(phases).toEqual(['start:0/3', 'data:1/3', 'data:2/3', 'data:3/3', 'end:3/3']);
    expect(agent.stats).toMatchObject({ syncsOk: 1, messagesSent: 3, queueDepth: 0 });
    expect(agent.stats.bytesSent).toBeGreaterThan(120_000);
  });
});

describe("wire: 'fullSession', Full", () => {
  it('cleans the indices of the buffer, then sends it: stale documents are gone', async () => {
    const { manager, transport, agent } = setup();
    agent.persistDifference('old', Operation.Create, INDEX, doc('old'));
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true });
    agent.persistDifferenceInMemory('new', Operation.Create, INDEX, doc('new'));
    expect(await agent.synchronizeModule(Mode.Full)).toMatchObject({ ok: true, sent: 1 });
    const kinds = transport.decoded().map((s) => s.payload?.type);
    expect(kinds).toEqual(['SyncData', 'Cleans', 'SyncData']);
    expect(manager.documents(INDEX).map((d) => d.itemId)).toEqual(['new']);
    // The buffer is cleared: the next Full has nothing to send.
    expect(await agent.synchronizeModule(Mode.Full)).toEqual({
      ok: true,
      sent: 0,
      retransmitted: 0,
    });
  });

  it('a failed Cleans sends no data', async () => {
    const { manager, transport, agent } = setup();
    agent.persistDifferenceInMemory('new', Operation.Create, INDEX, doc('new'));
    manager.injectStateful({ action: 'internal-error', times: 10 });
    expect(await agent.synchronizeModule(Mode.Full, { retries: 0 })).toMatchObject({
      ok: false,
      reason: 'manager-error',
    });
    expect(transport.decoded().map((s) => s.payload?.type)).toEqual(['Cleans']);
  });
});

describe("wire: 'fullSession', Check", () => {
  it('200 is a match', async () => {
    const { agent } = setup();
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'));
    await agent.synchronizeModule(Mode.Delta);
    const check = await agent.checkIntegrity(INDEX, computeIndexChecksum([JSON.parse(doc('a'))]));
    expect(check).toMatchObject({ outcome: 'match' });
    expect(await agent.requiresFullSync(INDEX, computeIndexChecksum([JSON.parse(doc('a'))]))).toBe(
      false,
    );
  });

  it('409 is retried checkAttempts times before it is a mismatch', async () => {
    const { transport, agent } = setup();
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'));
    await agent.synchronizeModule(Mode.Delta);
    const check = await agent.checkIntegrity(INDEX, computeIndexChecksum([JSON.parse(doc('b'))]), {
      checkAttempts: 3,
    });
    expect(check).toMatchObject({ outcome: 'mismatch' });
    const checks = transport.decoded().filter((s) => s.start.mode === WireMode5.ModuleCheck);
    expect(checks).toHaveLength(3);
    expect(checks[0]?.payload).toEqual({
      type: 'ChecksumModule',
      index: INDEX,
      checksum: computeIndexChecksum([JSON.parse(doc('b'))]),
    });
    expect(agent.stats.checksMismatched).toBe(1);
    expect(await agent.requiresFullSync(INDEX, 'f'.repeat(40), { checkAttempts: 1 })).toBe(true);
  });

  it('a 409 followed by a 200 is a match (the indexer caught up)', async () => {
    let calls = 0;
    const { agent } = setup({
      transport: { send: async () => ({ status: ++calls === 1 ? 409 : 200 }) },
    });
    expect(await agent.checkIntegrity(INDEX, 'f'.repeat(40))).toMatchObject({ outcome: 'match' });
    expect(calls).toBe(2);
  });

  it('an abort during the pause between Check attempts ends the check inconclusive', async () => {
    let calls = 0;
    const { agent } = setup({
      transport: {
        send: async (_session: SessionRequest) => {
          calls++;
          return { status: 409 };
        },
      },
    });
    const controller = new AbortController();
    const check = agent.checkIntegrity(INDEX, 'f'.repeat(40), {
      signal: controller.signal,
      checkRetryDelayMs: 60_000,
    });
    while (calls === 0) await new Promise((r) => setImmediate(r));
    controller.abort();
    expect(await check).toMatchObject({ outcome: 'inconclusive', reason: 'aborted' });
    expect(calls).toBe(1);
  });

  it('no answer is inconclusive, without Check retries', async () => {
    const { manager, agent } = setup();
    manager.injectStateful({ action: 'drop', times: Number.POSITIVE_INFINITY });
    expect(
      await agent.checkIntegrity(INDEX, 'f'.repeat(40), { timeoutMs: 20, retries: 0 }),
    ).toMatchObject({
      outcome: 'inconclusive',
      reason: 'timeout',
    });
  });
});

describe("wire: 'fullSession', metadata and groups", () => {
  it('Start carries the indices and global_version, without payload', async () => {
    const { transport, agent } = setup();
    const result = await agent.synchronizeMetadataOrGroups(Mode.GroupDelta, {
      indices: [INDEX, 'wazuh-states-fim-files', INDEX],
      globalVersion: 42n,
    });
    expect(result).toMatchObject({ ok: true, sent: 0 });
    const [session] = transport.decoded();
    expect(session?.start).toMatchObject({
      mode: WireMode5.GroupDelta,
      index: ['wazuh-states-fim-files', INDEX],
      globalVersion: 42n,
    });
    expect(session?.payload).toBeNull();
  });

  it('a globalVersion out of u64 range is unsupported; nothing is sent', async () => {
    const { transport, agent } = setup();
    expect(
      await agent.synchronizeMetadataOrGroups(Mode.MetadataDelta, { globalVersion: -1 }),
    ).toMatchObject({ ok: false, reason: 'unsupported' });
    expect(transport.sent).toHaveLength(0);
  });
});

describe("wire: 'fullSession', abort and close", () => {
  it('an abort ends the sync aborted; its rows stay queued', async () => {
    const { manager, agent } = setup();
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'));
    manager.injectStateful({ action: 'drop', times: Number.POSITIVE_INFINITY });
    const controller = new AbortController();
    const sync = agent.synchronizeModule(Mode.Delta, {
      signal: controller.signal,
      timeoutMs: 60_000,
    });
    await new Promise((r) => setImmediate(r));
    controller.abort();
    expect(await sync).toMatchObject({ ok: false, reason: 'aborted' });
    expect(agent.pendingCount).toBe(1);
  });

  it('close() during a sync resolves it closed', async () => {
    const { manager, agent } = setup();
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'));
    manager.injectStateful({ action: 'drop', times: Number.POSITIVE_INFINITY });
    const sync = agent.synchronizeModule(Mode.Delta, { timeoutMs: 60_000 });
    await new Promise((r) => setImmediate(r));
    await agent.close();
    expect(await sync).toMatchObject({ ok: false, reason: 'closed' });
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({
      ok: false,
      reason: 'closed',
    });
  });

  it('a signal passed to the transport aborts with the attempt', async () => {
    let seen: AbortSignal | undefined;
    const { agent } = setup({
      transport: {
        send: (_session: SessionRequest, signal: AbortSignal) => {
          seen = signal;
          return new Promise<never>(() => {});
        },
      },
    });
    expect(
      await agent.checkIntegrity(INDEX, 'f'.repeat(40), { timeoutMs: 10, retries: 0 }),
    ).toMatchObject({
      outcome: 'inconclusive',
      reason: 'timeout',
    });
    expect(seen?.aborted).toBe(true);
  });
});

describe("wire: 'fullSession', what it cannot express, and its options", () => {
  it('parseResponseBuffer is seed-only: false, and a warning', () => {
    const { agent, logs } = setup();
    expect(agent.parseResponseBuffer(new Uint8Array([1, 2, 3]))).toBe(false);
    expect(logs.some((l) => l.message.includes('seed wire'))).toBe(true);
  });

  it('the seed wire refuses metadata indices/globalVersion as unsupported, sending nothing', async () => {
    const manager = new MockManager();
    const agent = new AgentSyncProtocol({
      moduleName: 'fim',
      dbPath: dbFile(),
      transport: manager.transport('fim'),
      agentInfo: { id: '001' },
    });
    open.push(manager, agent);
    expect(
      await agent.synchronizeMetadataOrGroups(Mode.MetadataDelta, { indices: [INDEX] }),
    ).toMatchObject({ ok: false, reason: 'unsupported' });
    expect(manager.stats).toMatchObject({});
    expect(manager.sessionCount).toBe(0);
  });

  it('the seed wire takes a version and ignores it', async () => {
    const manager = new MockManager();
    const agent = new AgentSyncProtocol({
      moduleName: 'fim',
      dbPath: dbFile(),
      transport: manager.transport('fim'),
      agentInfo: { id: '001' },
      syncDefaults: { timeoutMs: 1000 },
    });
    open.push(manager, agent);
    agent.persistDifference('a', Operation.Create, 'wazuh-states-fim-files', doc('a'), 9n);
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 1 });
    expect(manager.documents().map((d) => d.id)).toEqual(['001_a']);
  });

  it('AgentSyncProtocol.open() refuses a missing clusterName at once, too', async () => {
    const manager = new MockManager();
    open.push(manager);
    await expect(
      AgentSyncProtocol.open({
        moduleName: 'fim',
        dbPath: dbFile(),
        wire: 'fullSession',
        agentInfo: { id: '001' },
        transport: manager.sessionTransport('001'),
      } as unknown as AgentSyncProtocolOptions), // what plain JavaScript can pass
    ).rejects.toThrow(TypeError);
  });

  it('clusterName is required', () => {
    const manager = new MockManager();
    open.push(manager);
    expect(
      () =>
        new AgentSyncProtocol({
          moduleName: 'fim',
          dbPath: ':memory:',
          wire: 'fullSession',
          agentInfo: { id: '001' },
          transport: manager.sessionTransport('001'),
        } as unknown as AgentSyncProtocolOptions), // what plain JavaScript can pass
    ).toThrow(/clusterName is required/);
  });

  it('a non-numeric agent id, a module name outside the id charset and an unknown wire are refused', () => {
    const manager = new MockManager();
    open.push(manager);
    const base = {
      moduleName: 'fim',
      dbPath: ':memory:',
      wire: 'fullSession' as const,
      clusterName: 'wazuh',
      agentInfo: { id: '001' },
      transport: manager.sessionTransport('001'),
    };
    expect(() => new AgentSyncProtocol({ ...base, agentInfo: { id: 'abc' } })).toThrow(/numeric/);
    expect(() => new AgentSyncProtocol({ ...base, moduleName: 'my module' })).toThrow(RangeError);
    expect(
      () => new AgentSyncProtocol({ ...base, wire: 'http' } as unknown as AgentSyncProtocolOptions),
    ).toThrow(/wire must be/);
  });

  it('a version that is not a u64 is refused before anything is queued', () => {
    const { agent } = setup();
    expect(() => agent.persistDifference('a', Operation.Create, INDEX, doc('a'), -1)).toThrow(
      RangeError,
    );
    expect(() =>
      agent.persistDifferences([
        { id: 'a', operation: Operation.Create, index: INDEX, data: doc('a'), version: 2n ** 64n },
      ]),
    ).toThrow(/changes\[0\]/);
    expect(agent.pendingCount).toBe(0);
  });

  it('invalid 5.0 options reject the sync', async () => {
    const { agent } = setup();
    await expect(agent.synchronizeModule(Mode.Delta, { maxSessions: 0 })).rejects.toThrow(
      RangeError,
    );
    await expect(agent.checkIntegrity(INDEX, 'x', { checkAttempts: 0 })).rejects.toThrow(
      RangeError,
    );
  });
});
