// The README's mock manager example as the README prints it
// (test/docs-snippets.test.ts compares them), so that it keeps compiling
// against the API. Type-checked only.
import { AgentSyncProtocol, Mode } from 'agent-sync-protocol';
import { MockManager } from 'agent-sync-protocol/testing';

// biome-ignore format: the README aligns its comments
{
// #region testing
const manager = new MockManager();
const sync = new AgentSyncProtocol({ moduleName: 'fim', dbPath: ':memory:', transport: manager.transport('fim') });
manager.inject({ type: 'DataValue', action: 'drop', seq: 3n });   // lose one message
await sync.synchronizeModule(Mode.Delta);                          // ReqRet brings it back
manager.documents();                                               // what the manager indexed
// #endregion testing
}
