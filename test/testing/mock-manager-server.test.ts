// The HTTP control endpoints of MockManagerServer, over real sockets: fault injection and reset.
import { afterEach, describe, expect, it } from 'vitest';
import { AgentSyncProtocol, Mode, Operation, TcpTransport } from '../../src/index.js';
import { MockManagerServer } from '../../src/testing/index.js';
import { doc } from '../helpers.js';

const open: Array<{ close(): Promise<void> | void }> = [];
afterEach(async () => {
  for (const thing of open.splice(0).reverse()) await thing.close();
});

async function startServer() {
  const server = new MockManagerServer({ managerOptions: { responseDelivery: 'sync' } });
  open.push(server);
  await server.start();
  const call = async (method: string, path: string, body?: string) => {
    const response = await fetch(`http://127.0.0.1:${server.httpPort}${path}`, { method, body });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  return { server, call };
}

function agentOf(server: MockManagerServer) {
  const transport = new TcpTransport({ port: server.port });
  const agent = new AgentSyncProtocol({
    moduleName: 'sca',
    dbPath: ':memory:',
    transport,
    agentInfo: { id: '007' },
    syncDefaults: { timeoutMs: 2000, retries: 1 },
  });
  open.push(transport, agent);
  return agent;
}

describe('MockManagerServer control endpoints', () => {
  it('POST /faults injects a rule that the next sync meets; DELETE /faults removes them', async () => {
    const { server, call } = await startServer();
    const lose = { type: 'DataValue', seq: '1', action: 'drop', times: 'Infinity' };
    expect(await call('POST', '/faults', JSON.stringify(lose))).toEqual({
      status: 201,
      body: { status: 'ok' },
    });
    const agent = agentOf(server);
    for (const id of ['a', 'b', 'c']) agent.persistDifference(id, Operation.Create, 'sca', doc(id));
    // seq 1 is lost every time, its retransmission too: the sync cannot complete.
    expect(await agent.synchronizeModule(Mode.Delta, { timeoutMs: 300 })).toMatchObject({
      ok: false,
    });
    const { body: stats } = await call('GET', '/stats');
    expect((stats.faults as { dropped: number }).dropped).toBeGreaterThanOrEqual(2);

    expect(await call('DELETE', '/faults')).toEqual({ status: 200, body: { status: 'ok' } });
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 3 });
    expect(server.manager.documentCount('sca')).toBe(3);
  });

  it('POST /reset clears documents, faults, forced statuses and counters', async () => {
    const { server, call } = await startServer();
    const agent = agentOf(server);
    agent.persistDifference('a', Operation.Create, 'sca', doc('a'));
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true });
    await call('POST', '/faults', JSON.stringify({ type: 'Start', action: 'drop', times: 5 }));
    server.manager.setIndexerAvailable(false);

    expect(await call('POST', '/reset')).toEqual({ status: 200, body: { status: 'ok' } });
    expect((await call('GET', '/documents')).body).toEqual([]);
    const { body: stats } = await call('GET', '/stats');
    expect(stats).toMatchObject({ messagesReceived: 0, sessionsStarted: 0, sessionsCompleted: 0 });
    // No Start is dropped and the indexer is back: a sync goes through at once.
    agent.persistDifference('b', Operation.Create, 'sca', doc('b'));
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 1 });
    expect(server.manager.documents().map((d) => d.id)).toEqual(['007_b']);
  });

  it.each([
    ['not JSON', '{"action":', 400, /body is not JSON/],
    ['no body', '', 400, /must be a JSON object/],
    ['an array', '[]', 400, /must be a JSON object/],
    ['no action', '{"type":"End"}', 400, /'action' must be one of drop, duplicate, delay, reorder/],
    [
      'an unknown field',
      '{"action":"drop","sequence":1}',
      400,
      /unknown fault rule field 'sequence'/,
    ],
    ['a bad type', '{"action":"drop","type":"Data"}', 400, /'type' must be one of Start, /],
    ['a bad direction', '{"action":"drop","direction":"up"}', 400, /'direction' must be one of/],
    ['a negative seq', '{"action":"drop","seq":-1}', 400, /'seq' must be an integer in 0..2\^64-1/],
    ['a seq above u64', '{"action":"drop","seq":"18446744073709551616"}', 400, /'seq'/],
    ['a fractional skip', '{"action":"drop","skip":1.5}', 400, /'skip' must be an integer >= 0/],
    [
      'times 0',
      '{"action":"drop","times":0}',
      400,
      /'times' must be an integer >= 1 or "Infinity"/,
    ],
    [
      'a probability of 2',
      '{"action":"drop","probability":2}',
      400,
      /'probability' must be a number in 0..1/,
    ],
    ['a negative delay', '{"action":"delay","delayMs":-5}', 400, /'delayMs' must be a number/],
    [
      'an empty module',
      '{"action":"drop","module":""}',
      400,
      /'module' must be a non-empty string/,
    ],
    ['a huge body', `{"action":"drop","module":"${'m'.repeat(70_000)}"}`, 413, /body above/],
  ])('POST /faults refuses %s with a clear error', async (_, body, status, message) => {
    const { server, call } = await startServer();
    const answer = await call('POST', '/faults', body);
    expect(answer.status).toBe(status);
    expect(answer.body.error).toMatch(message);
    // Nothing was injected: a sync is untouched.
    const agent = agentOf(server);
    agent.persistDifference('a', Operation.Create, 'sca', doc('a'));
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, retransmitted: 0 });
  });

  it('answers 405 with the allowed methods, and refuses a body on /reset', async () => {
    const { server, call } = await startServer();
    const wrong = await fetch(`http://127.0.0.1:${server.httpPort}/faults`);
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('POST, DELETE');
    expect((await call('DELETE', '/documents')).status).toBe(405);
    expect(await call('POST', '/reset', '{"documents":true}')).toMatchObject({ status: 400 });
  });
});
