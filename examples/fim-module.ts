// A FIM-style module: watches files, records each change as it happens, and
// syncs the queue periodically (Delta). Run: npx tsx examples/fim-module.ts
import { createHash } from 'node:crypto';
import { AgentSyncProtocol, Mode, type MQueueTransport, Operation } from 'agent-sync-protocol';
import { MockManager } from 'agent-sync-protocol/testing';

const INDEX = 'wazuh-states-fim-files';

interface FileState {
  path: string;
  size: number;
  mtime: string;
  sha256: string;
}

/** The module owns its scanning; the protocol owns persistence and delivery. */
export class FimModule {
  private readonly sync: AgentSyncProtocol;

  constructor(transport: MQueueTransport, dbPath: string) {
    this.sync = new AgentSyncProtocol({
      moduleName: 'fim',
      dbPath,
      transport,
      agentInfo: { id: '001' },
      logger: (level, message) => {
        if (level !== 'debug') console.log(`  [${level}] ${message}`);
      },
      syncDefaults: { timeoutMs: 5000, retries: 3, maxEps: 1000 },
    });
  }

  /** Called by the watcher for every event; cheap, safe during a sync. */
  onFileEvent(event: 'added' | 'modified' | 'deleted', file: FileState): void {
    const document = {
      file: { path: file.path, size: file.size, mtime: file.mtime, hash: { sha256: file.sha256 } },
      checksum: {
        hash: { sha1: createHash('sha1').update(`${file.path}:${file.sha256}`).digest('hex') },
      },
    };
    const operation =
      event === 'added'
        ? Operation.Create
        : event === 'modified'
          ? Operation.Modify
          : Operation.Delete;
    this.sync.persistDifference(file.path, operation, INDEX, JSON.stringify(document));
  }

  /** Called on the module's sync interval. */
  async syncNow(): Promise<void> {
    const result = await this.sync.synchronizeModule(Mode.Delta);
    if (result.ok) console.log(`  synced ${result.sent} changes`);
    else
      console.log(
        `  sync failed (${result.reason}); ${this.sync.pendingCount} changes stay queued`,
      );
  }

  close(): Promise<void> {
    return this.sync.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const manager = new MockManager();
  const fim = new FimModule(manager.transport('fim'), ':memory:');
  const file = (path: string, rev: number): FileState => ({
    path,
    size: 100 + rev,
    mtime: new Date(Date.UTC(2026, 10, 22, 8, rev)).toISOString(),
    sha256: createHash('sha256').update(`${path}#${rev}`).digest('hex'),
  });

  console.log('initial scan');
  for (const path of ['/etc/passwd', '/etc/group', '/etc/hosts'])
    fim.onFileEvent('added', file(path, 0));
  await fim.syncNow();

  console.log('the manager is offline for a while');
  manager.setIndexerAvailable(false);
  fim.onFileEvent('modified', file('/etc/hosts', 1));
  fim.onFileEvent('modified', file('/etc/hosts', 2)); // coalesced with the previous change
  fim.onFileEvent('deleted', file('/etc/group', 0));
  await fim.syncNow();

  console.log('back online');
  manager.setIndexerAvailable(true);
  await fim.syncNow();
  console.log(
    `manager holds: ${manager
      .documents()
      .map((d) => d.itemId)
      .sort()
      .join(', ')}`,
  );
  await fim.close();
  await manager.close();
}
