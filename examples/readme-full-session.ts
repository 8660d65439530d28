// The README's Wazuh 5.0 example as the README prints it (test/docs-snippets.test.ts
// compares them), so that it keeps compiling against the API. Type-checked only: the
// transport stands for one the reader writes (over the agent's queue-sync socket or
// POST /stateful); examples/demo.ts runs the same calls against the mock manager
// (`npm run demo -- --wire fullSession`).
import type { SessionTransport } from 'agent-sync-protocol';
import { AgentSyncProtocol, Mode, Operation } from 'agent-sync-protocol';

declare const mySessionTransport: SessionTransport;
declare const dbPath: string;
declare const doc: object;

// biome-ignore format: the README aligns its comments
{
// #region full-session
const sync = new AgentSyncProtocol({
  moduleName: 'syscollector',
  dbPath,
  wire: 'fullSession',
  clusterName: 'wazuh',                  // the manager's <cluster><name>
  agentInfo: { id: '001' },              // numeric: the manager compares it
  transport: mySessionTransport,         // a SessionTransport
});
sync.persistDifference('pkg-1', Operation.Modify, 'wazuh-states-inventory-packages', JSON.stringify(doc), 3n);
await sync.synchronizeModule(Mode.Delta);
// #endregion full-session
}

// The interface as the README prints it; the assignments below fail to compile when it and
// the library's SessionTransport drift apart.
// biome-ignore format: the README aligns its comments
{
// #region session-transport
interface SessionTransport {
  send(session: { id: string; moduleName: string; body: Uint8Array }, signal: AbortSignal):
    Promise<{ status: number; body?: string; retryAfterSeconds?: number }>;
}
// #endregion session-transport
  const printed: SessionTransport = mySessionTransport;
  const library: import('agent-sync-protocol').SessionTransport = printed;
  void library;
}
