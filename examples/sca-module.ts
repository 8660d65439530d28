// An SCA-style module: evaluates a policy, keeps every check result in the
// queue, and verifies with a Check that the manager holds the same results;
// on a mismatch it resends everything with a Full sync.
// Run: npx tsx examples/sca-module.ts

import { createHash } from 'node:crypto';
import {
  AgentSyncProtocol,
  computeIndexChecksum,
  Mode,
  type MQueueTransport,
  Operation,
} from 'agent-sync-protocol';
import { MockManager } from 'agent-sync-protocol/testing';

const INDEX = 'wazuh-states-sca';

type CheckResult = { policy: string; check: number; title: string; result: 'passed' | 'failed' };

function toDocument(r: CheckResult) {
  const body = {
    policy: { id: r.policy },
    check: { id: r.check, title: r.title, result: r.result },
  };
  const sha1 = createHash('sha1').update(JSON.stringify(body)).digest('hex');
  return { ...body, checksum: { hash: { sha1 } } };
}

export class ScaModule {
  private readonly sync: AgentSyncProtocol;
  /** What this module believes the manager should hold, by item id. */
  private readonly results = new Map<string, ReturnType<typeof toDocument>>();

  constructor(transport: MQueueTransport) {
    this.sync = new AgentSyncProtocol({
      moduleName: 'sca',
      dbPath: ':memory:',
      transport,
      agentInfo: { id: '002' },
      syncDefaults: { timeoutMs: 5000 },
    });
  }

  evaluate(results: CheckResult[]): void {
    for (const r of results) {
      const id = `${r.policy}:${r.check}`;
      const document = toDocument(r);
      const known = this.results.has(id);
      this.results.set(id, document);
      this.sync.persistDifference(
        id,
        known ? Operation.Modify : Operation.Create,
        INDEX,
        JSON.stringify(document),
      );
    }
  }

  /** Delta sync, then an integrity check; a proven mismatch triggers a Full resync from memory. */
  async syncAndVerify(): Promise<void> {
    const delta = await this.sync.synchronizeModule(Mode.Delta);
    console.log(`  delta: ${delta.ok ? `${delta.sent} sent` : delta.reason}`);
    const checksum = computeIndexChecksum(this.results.values());
    if (!(await this.sync.requiresFullSync(INDEX, checksum))) {
      console.log('  integrity: manager matches');
      return;
    }
    console.log('  integrity: mismatch, running a Full sync');
    for (const [id, document] of this.results) {
      this.sync.persistDifferenceInMemory(id, Operation.Create, INDEX, JSON.stringify(document));
    }
    const full = await this.sync.synchronizeModule(Mode.Full);
    console.log(`  full: ${full.ok ? `${full.sent} sent` : full.reason}`);
  }

  close(): Promise<void> {
    return this.sync.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const manager = new MockManager();
  const sca = new ScaModule(manager.transport('sca'));
  const policy = 'cis_debian12';
  console.log('first evaluation');
  sca.evaluate([
    { policy, check: 1, title: 'Ensure /tmp is a separate partition', result: 'failed' },
    { policy, check: 2, title: 'Ensure nodev option set on /tmp', result: 'passed' },
    { policy, check: 3, title: 'Ensure SSH root login is disabled', result: 'passed' },
  ]);
  await sca.syncAndVerify();

  console.log('the manager index is rebuilt empty');
  manager.clearDocuments();
  await sca.syncAndVerify();
  console.log(`manager holds ${manager.documents().length} results`);
  await sca.close();
  await manager.close();
}
