import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AgentSyncProtocol, Mode, Operation } from '../../src/index.js';
import { MockManager } from '../../src/testing/index.js';
import { WazuhQueueTransport } from '../../src/transports/wazuh-queue-transport.js';
import { WazuhResponseListener } from '../../src/transports/wazuh-response-listener.js';
import { cleanupAfterEach, tempDir } from '../helpers.js';
import {
  connectUnix,
  DatagramServer,
  encodeFrame,
  parseQueueMessage,
  utf8,
  write,
} from './support.js';

const cleanup = cleanupAfterEach();

describe('a sync over the Wazuh agent sockets', () => {
  it('goes agent -> queue datagrams -> manager -> command socket -> agent', async () => {
    const dir = tempDir();
    const queuePath = join(dir, 'queue');
    const commandPath = join(dir, 'fim_sync');
    const manager = new MockManager();
    cleanup.push(() => manager.close());
    // Lose one DataValue so a ReqRet crosses the command socket and the
    // retransmission crosses the queue socket.
    manager.inject({ type: 'DataValue', action: 'drop', seq: 3n });

    // The agent's module side: protocol, queue transport, response listener.
    const transport = new WazuhQueueTransport({ socketPath: queuePath });
    cleanup.push(() => transport.close());
    const sync = new AgentSyncProtocol({
      moduleName: 'fim',
      dbPath: join(dir, 'fim.db'),
      transport,
      agentInfo: { id: '007' },
    });
    cleanup.push(() => sync.close());
    const listener = new WazuhResponseListener();
    listener.register('fim', sync);
    await listener.listen(commandPath);
    cleanup.push(() => listener.close());

    // Stand-in for the agent daemon: reads the queue, forwards to the manager,
    // writes the manager's answers to the module's command socket.
    const command = await connectUnix(commandPath);
    cleanup.push(() => {
      command.destroy();
    });
    const modules = new Set<string>();
    const daemon = new DatagramServer(queuePath, (datagram) => {
      const parsed = parseQueueMessage(datagram);
      if (!parsed) throw new Error('datagram without an s:<module>: header');
      modules.add(parsed.moduleName);
      manager.receive(parsed.message, parsed.moduleName, (response) => {
        void write(command, encodeFrame(utf8.encode(`${parsed.moduleName}_sync `), response));
      });
    });
    cleanup.push(() => daemon.close());

    const count = 200;
    for (let i = 0; i < count; i++) {
      sync.persistDifference(`/etc/f${i}`, Operation.Create, 'fim-files', JSON.stringify({ i }));
    }
    const result = await sync.synchronizeModule(Mode.Delta, { timeoutMs: 5000 });
    expect(result).toMatchObject({ ok: true, sent: count, retransmitted: 1 });
    expect(sync.pendingCount).toBe(0);
    expect(modules).toEqual(new Set(['fim']));
    const docs = manager.documents('fim-files');
    expect(docs).toHaveLength(count);
    expect(docs.find((d) => d.itemId === '/etc/f3')).toMatchObject({
      id: '007_/etc/f3',
      data: { i: 3 },
    });
    // Start + probe End + 200 DataValues + End + 1 retransmission, each one datagram.
    expect(daemon.received).toHaveLength(count + 4);
    expect(manager.stats.reqRetsSent).toBe(2); // the probe's answer, and the resend's
  });
});
