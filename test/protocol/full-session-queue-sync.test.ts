// The 'fullSession' wire beside a Wazuh 5.0 agent, end to end on real Unix sockets:
// AgentSyncProtocol → QueueSyncTransport → AgentdIntake (queue-sync) → MockManager /stateful,
// and the HTTP status back as HCRESULT → WazuhResponseListener → parseResponseBuffer.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  AgentSyncProtocol,
  Mode,
  Operation,
  QueueSyncTransport,
  WazuhResponseListener,
} from '../../src/index.js';
import { AgentdIntake, MockManager } from '../../src/testing/index.js';
import { cleanupAfterEach, dbFile, doc, tempDir } from '../helpers.js';
import { recordingLogger, until } from '../transports/support.js';

const INDEX = 'wazuh-states-inventory-packages';
const cleanup = cleanupAfterEach();

async function beside(moduleName = 'syscollector', agentdAgentId = '001') {
  const dir = tempDir();
  const manager = new MockManager({ clusterName: 'wazuh' });
  cleanup.push(() => manager.close());
  const wmodules = join(dir, 'wmodules');
  const intake = new AgentdIntake({
    socketPath: join(dir, 'queue-sync'),
    manager,
    agentId: agentdAgentId,
    commandSockets: () => wmodules,
  });
  await intake.listen();
  cleanup.push(() => intake.close());
  const logs = recordingLogger();
  const transport = new QueueSyncTransport({
    socketPath: intake.socketPath,
    handoffRetryPauseMs: 0,
    logger: logs.log,
  });
  cleanup.push(() => transport.close());
  const agent = new AgentSyncProtocol({
    moduleName,
    dbPath: dbFile(),
    transport,
    wire: 'fullSession',
    clusterName: 'wazuh',
    agentInfo: { id: '001', osPlatform: 'ubuntu', groups: ['default'] },
    logger: logs.log,
    syncDefaults: { timeoutMs: 20_000, retries: 2, backoff: { minMs: 0 } },
  });
  cleanup.push(() => agent.close());
  const listener = new WazuhResponseListener({ logger: logs.log });
  listener.register(moduleName, agent);
  await listener.listen(wmodules);
  cleanup.push(() => listener.close());
  return { manager, intake, transport, agent, listener, logs };
}

describe("wire 'fullSession' beside a 5.0 agent (QueueSyncTransport)", () => {
  it('persistDifference + Delta: the documents arrive, the 200 comes back as HCRESULT', async () => {
    const { manager, intake, agent } = await beside();
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'), 1n);
    agent.persistDifference('b', Operation.Create, INDEX, doc('b'), 1n);
    const result = await agent.synchronizeModule(Mode.Delta);
    expect(result).toMatchObject({ ok: true, sent: 2 });
    expect(agent.pendingCount).toBe(0);
    expect(
      manager
        .documents(INDEX)
        .map((d) => d.id)
        .sort(),
    ).toEqual(['wazuh_001_a', 'wazuh_001_b']);
    await intake.drain();
    expect(intake.stats).toMatchObject({ accepted: 1, resultsSent: 1, resultsDropped: 0 });
    expect(result.ok && `syscollector-${result.session}`).toBe(intake.sessions[0]?.id);
  });

  it('a 503 from the manager comes back through HCRESULT and the driver retries it', async () => {
    const { manager, intake, agent } = await beside();
    manager.injectStateful({ action: 'unavailable', retryAfterSeconds: 0 });
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'));
    const result = await agent.synchronizeModule(Mode.Delta);
    expect(result).toMatchObject({ ok: true, sent: 1 });
    expect(intake.sessions.map((s) => s.answer?.status)).toEqual([503, 200]);
    // A retry is the same session: same id, same bytes.
    expect(intake.sessions[0]?.id).toBe(intake.sessions[1]?.id);
    expect(manager.documents(INDEX)).toHaveLength(1);
  });

  it('503 on every attempt: the sync fails manager-offline and the queue keeps the rows', async () => {
    const { manager, agent } = await beside();
    manager.injectStateful({ action: 'unavailable', retryAfterSeconds: 0, times: 3 });
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'));
    const result = await agent.synchronizeModule(Mode.Delta);
    expect(result).toMatchObject({ ok: false, reason: 'manager-offline' });
    expect(agent.pendingCount).toBe(1);
  });

  it('a 400 from the manager comes back as the driver failure invalid-session, not retried', async () => {
    // agentd posting without an agent id: the manager's "Missing agent id header".
    const { intake, agent } = await beside('syscollector', '');
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'));
    const result = await agent.synchronizeModule(Mode.Delta);
    expect(result).toMatchObject({ ok: false, reason: 'invalid-session' });
    expect(!result.ok && result.message).toMatch(/Missing agent id header/);
    expect(intake.sessions).toHaveLength(1);
    expect(agent.pendingCount).toBe(1);
  });

  it('agentd refuses every hand-off: a clear failure, and the queue keeps the rows', async () => {
    const { intake, agent } = await beside();
    intake.refuseNext(4, { report: false });
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'));
    const result = await agent.synchronizeModule(Mode.Delta, { retries: 0 });
    expect(result).toMatchObject({ ok: false, reason: 'send-failed' });
    expect(!result.ok && result.message).toMatch(
      /agentd did not take session syscollector-\d+ on 4 hand-offs/,
    );
    expect(agent.pendingCount).toBe(1);
    expect(intake.stats).toMatchObject({ refused: 4, accepted: 0 });
  });

  it('a module agentd reports nothing to succeeds once agentd took the session', async () => {
    const { manager, intake, agent } = await beside('custom');
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'));
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 1 });
    expect(agent.pendingCount).toBe(0);
    await intake.drain();
    expect(intake.stats).toMatchObject({ accepted: 1, resultsSent: 0, resultsDropped: 1 });
    expect(manager.documents(INDEX)).toHaveLength(1);
  });

  it('a stale HCRESULT is ignored; the waiting session takes only its own', async () => {
    const { manager, intake, agent, logs } = await beside();
    // The manager handles the session but its answer is lost: agentd reports nothing yet.
    manager.injectStateful({ action: 'drop', applied: true });
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'));
    const sync = agent.synchronizeModule(Mode.Delta);
    await until(() => intake.sessions.length === 1);
    const number = intake.sessions[0]?.id.split('-')[1] as string;
    const stale = (BigInt(number) - 1n).toString();
    expect(agent.parseResponseBuffer(new TextEncoder().encode(`HCRESULT:${stale}:200:`))).toBe(
      false,
    );
    // The same through the command socket, as agentd would write it.
    expect(await intake.report('syscollector', stale, 500)).toBe(true);
    await until(() =>
      logs.lines.some(
        (l) =>
          l.includes(`stale result for session syscollector-${stale}`) && l.includes('HTTP 500'),
      ),
    );
    expect(await intake.report('syscollector', number, 200, '{}')).toBe(true);
    expect(await sync).toMatchObject({ ok: true, sent: 1 });
    expect(agent.pendingCount).toBe(0);
  });

  it('parseResponseBuffer on the fullSession wire: malformed and non-HCRESULT bytes are refused', async () => {
    const { agent } = await beside();
    const bytes = (text: string) => new TextEncoder().encode(text);
    expect(agent.parseResponseBuffer(bytes('HCRESULT:1:2x0:'))).toBe(false);
    expect(agent.parseResponseBuffer(bytes('not a result'))).toBe(false);
    expect(agent.parseResponseBuffer(new Uint8Array())).toBe(false);
  });

  it('a transport without receiveResult refuses HCRESULT bytes', async () => {
    const manager = new MockManager({ clusterName: 'wazuh' });
    cleanup.push(() => manager.close());
    const agent = new AgentSyncProtocol({
      moduleName: 'syscollector',
      dbPath: dbFile(),
      transport: manager.sessionTransport('001'),
      wire: 'fullSession',
      clusterName: 'wazuh',
      agentInfo: { id: '001' },
    });
    cleanup.push(() => agent.close());
    expect(agent.parseResponseBuffer(new TextEncoder().encode('HCRESULT:1:200:'))).toBe(false);
  });
});
