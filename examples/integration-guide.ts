// The code of docs/integration-guide.md, complete and running against the
// in-process mock manager. Each `#region` holds one of the guide's snippets
// exactly as the guide prints it (test/docs-snippets.test.ts compares them);
// the code between the regions supplies what the guide leaves to the reader:
// a transport, a logger, a data directory, the module's scan.
// Run: npx tsx examples/integration-guide.ts
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MQueueTransport } from 'agent-sync-protocol';
import { MockManager } from 'agent-sync-protocol/testing';

const manager = new MockManager();
const transport = manager.transport('syscollector');
const agentId = '001';
const dataDir = mkdtempSync(join(tmpdir(), 'integration-guide-'));
// Stands in for a pino logger: any object with debug/info/warn/error will do.
const pinoLogger = { debug() {}, info() {}, warn: console.warn, error: console.error };

// #region create
import { AgentSyncProtocol, computeIndexChecksum, Mode, Operation } from 'agent-sync-protocol';

const sync = new AgentSyncProtocol({
  moduleName: 'syscollector',
  dbPath: `${dataDir}/inv_sync.db`, // e.g. /var/ossec/queue/syscollector/db
  transport, // see "Transports" below
  agentInfo: { id: agentId }, // the agent id the manager knows
  logger: pinoLogger, // or (level, message) => ...
  syncDefaults: { timeoutMs: 30_000, retries: 3, maxEps: 100 },
});
// #endregion create

const index = 'wazuh-states-inventory-packages';
/** The module's own record of what it sent: item id -> document. */
const myDocuments = new Map<string, object>();

/** The module's scanner calls this for every package it finds. */
function onPackage(name: string, version: string): void {
  const id = `${name}:${version}:amd64`;
  const fields = { package: { name, version, architecture: 'amd64' } };
  const sha1 = createHash('sha1').update(JSON.stringify(fields)).digest('hex');
  const document = { ...fields, checksum: { hash: { sha1 } } };
  myDocuments.set(id, document);
  // #region record
  sync.persistDifference(id, Operation.Create, index, JSON.stringify(document));
  // #endregion record
}

async function syncNow(): Promise<void> {
  // #region sync
  const result = await sync.synchronizeModule(Mode.Delta);
  if (!result.ok) console.warn(`sync failed: ${result.reason}: ${result.message}`);
  // #endregion sync
  console.log(`delta: ${result.ok ? `${result.sent} sent` : result.reason}`);
}

async function verifyAndRecover(): Promise<void> {
  // #region verify
  if (await sync.requiresFullSync(index, computeIndexChecksum(myDocuments.values()))) {
    for (const [id, doc] of myDocuments) {
      sync.persistDifferenceInMemory(id, Operation.Create, index, JSON.stringify(doc));
    }
    await sync.synchronizeModule(Mode.Full); // the buffer is cleared afterwards
  }
  // #endregion verify
}

/** The guide's transport shape, over some connection to the agent's queue. */
export function queueTransport(agentQueue: {
  connect(): void;
  write(moduleName: string, message: Uint8Array): void;
  onReply(listener: (bytes: Uint8Array) => void): void;
}): MQueueTransport {
  // #region transport
  const transport: MQueueTransport = {
    start: () => agentQueue.connect(), // throw when unavailable
    send: (message, moduleName) => agentQueue.write(moduleName, message), // throw on failure
    onResponse: (listener) => agentQueue.onReply(listener), // optional
  };
  // #endregion transport
  return transport;
}

const matches = () =>
  manager.indexChecksum(agentId, index) === computeIndexChecksum(myDocuments.values())
    ? 'yes'
    : 'no';

try {
  for (const [name, version] of [
    ['openssl', '3.0.15-1'],
    ['curl', '7.88.1-10'],
    ['bash', '5.2.15-2'],
  ] as const) {
    onPackage(name, version);
  }
  await syncNow();
  await verifyAndRecover();
  console.log(
    `after the check: manager holds ${manager.documentCount(index)}, checksum matches ${matches()}`,
  );

  manager.clearDocuments();
  console.log(`manager index rebuilt empty: checksum matches ${matches()}`);
  await verifyAndRecover();
  console.log(
    `after recovery: manager holds ${manager.documentCount(index)}, checksum matches ${matches()}`,
  );

  // #region close
  await sync.close(); // aborts a running sync; its changes stay queued
  // #endregion close
} finally {
  await manager.close();
  rmSync(dataDir, { recursive: true, force: true });
}
