// The README's Usage example as the README prints it (test/docs-snippets.test.ts
// compares them), so that it keeps compiling against the API. Type-checked
// only: it names a real agent's paths, so it is not run. The declarations
// stand for what the README leaves to the reader.
import type { MQueueTransport } from 'agent-sync-protocol';
import { AgentSyncProtocol, Mode, Operation } from 'agent-sync-protocol';

declare const myTransport: MQueueTransport;
declare const doc: object;
declare const bytes: Uint8Array;

// biome-ignore format: the README aligns its comments
{
// #region usage
const sync = new AgentSyncProtocol({
  moduleName: 'fim',
  dbPath: '/var/lib/my-agent/fim_sync.db',
  transport: myTransport,                 // an MQueueTransport (see below)
  agentInfo: { id: '001' },               // anything missing comes from the host
  logger: (level, message) => console.log(level, message),
});

// Whenever the module sees a change (any time, even during a sync):
sync.persistDifference('/etc/passwd', Operation.Modify, 'wazuh-states-fim-files', JSON.stringify(doc));

// Periodically:
const result = await sync.synchronizeModule(Mode.Delta, { maxEps: 500 });
if (!result.ok) console.warn(`sync failed: ${result.reason}: ${result.message}`);

// Responses from the manager: automatic when the transport has onResponse(),
// otherwise feed the bytes that followed `<module>_sync `:
sync.parseResponseBuffer(bytes);

await sync.close();
// #endregion usage
}
