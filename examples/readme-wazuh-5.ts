// The README's two Wazuh 5.0 set-ups as the README prints them (test/docs-snippets.test.ts
// compares them), run on one machine: a MockManagerServer that checks signatures stands for
// the manager, and an AgentdIntake for the agent daemon. Run: npx tsx examples/readme-wazuh-5.ts
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AgentSyncProtocol,
  HttpSessionTransport,
  Mode,
  Operation,
  QueueSyncTransport,
  WazuhResponseListener,
} from 'agent-sync-protocol';
import { AgentdIntake, MockManagerServer } from 'agent-sync-protocol/testing';

const INDEX = 'wazuh-states-inventory-packages';
const doc = (name: string) => JSON.stringify({ package: { name } });

/** Beside a Wazuh 5.0 agent: agentd takes each session, signs it and POSTs it. */
async function besideAgent(home: string, dbPath: string) {
  // #region beside-agent
  const transport = new QueueSyncTransport({ socketPath: `${home}/queue/sockets/queue-sync` });
  const sync = new AgentSyncProtocol({
    moduleName: 'syscollector',
    dbPath,
    wire: 'fullSession',
    clusterName: 'wazuh',
    agentInfo: { id: '001' },
    transport, // agentd signs and POSTs each session
  });
  const listener = new WazuhResponseListener();
  listener.register('syscollector', sync); // HCRESULT:<session>:<status>:<body> -> the sync
  await listener.listen(`${home}/queue/sockets/wmodules`);
  // #endregion beside-agent
  return { sync, close: () => Promise.all([listener.close(), transport.close()]) };
}

/** Straight to a manager's /stateful, or to a test rig's socket. */
function straightToManager(socketPath: string, clientKeysHex: string, dbPath: string) {
  // #region straight-to-manager
  const transport = new HttpSessionTransport({
    socketPath, // the rig's --stateful-socket PATH; or url: 'https://…'
    agentId: '001',
    agentKey: clientKeysHex, // this agent's client.keys key: signs each request
  });
  const sync = new AgentSyncProtocol({
    moduleName: 'syscollector',
    dbPath,
    wire: 'fullSession',
    clusterName: 'wazuh',
    agentInfo: { id: '001' },
    transport,
  });
  // #endregion straight-to-manager
  return { sync, close: () => transport.close() };
}

const dir = mkdtempSync(join(tmpdir(), 'readme-wazuh-5-'));
const key = '0123456789abcdef'.repeat(4);
const server = new MockManagerServer({
  statefulSocketPath: join(dir, 'inventory-sync.sock'),
  agentKeys: { '001': key },
});
const { statefulSocketPath = '' } = await server.start();
try {
  const direct = straightToManager(statefulSocketPath, key, join(dir, 'direct.db'));
  direct.sync.persistDifference('curl', Operation.Create, INDEX, doc('curl'));
  const first = await direct.sync.synchronizeModule(Mode.Delta);
  console.log(`straight to the manager: ${first.ok ? `${first.sent} sent` : first.reason}`);
  await direct.sync.close();
  direct.close();

  // agentd's part: its intake socket, forwarding each session signed, as the agent daemon does.
  mkdirSync(join(dir, 'queue', 'sockets'), { recursive: true });
  const forward = new HttpSessionTransport({
    socketPath: statefulSocketPath,
    agentId: '001',
    agentKey: key,
  });
  const intake = new AgentdIntake({
    socketPath: join(dir, 'queue', 'sockets', 'queue-sync'),
    transport: forward,
    commandSockets: { syscollector: join(dir, 'queue', 'sockets', 'wmodules') },
  });
  await intake.listen();
  const beside = await besideAgent(dir, join(dir, 'beside.db'));
  beside.sync.persistDifference('vim', Operation.Create, INDEX, doc('vim'));
  const second = await beside.sync.synchronizeModule(Mode.Delta);
  console.log(`beside the agent: ${second.ok ? `${second.sent} sent` : second.reason}`);
  await beside.sync.close();
  await beside.close();
  await intake.close();
  forward.close();
  const ids = server.manager.documents(INDEX).map((d) => d.id);
  console.log(`manager holds: ${ids.sort().join(', ')}`);
} finally {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
}
