// The demo behind `npm run demo`: an inventory-like module queues a realistic
// first scan, syncs it to the in-process mock manager while the manager loses
// some messages (so ReqRet retransmission happens), then proves with a Check
// that both sides hold the same inventory.
//
// `npm run demo -- --wire fullSession` runs the same job on the Wazuh 5.0 wire:
// the queue goes out in byte-cut sessions (several Delta calls, since one sends
// at most 10 sessions), the manager answers one session 503 with Retry-After
// (the session is sent again, same id and bytes), and the Check matches.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  AgentSyncProtocol,
  computeIndexChecksum,
  Mode,
  Operation,
  type SyncProgress,
} from 'agent-sync-protocol';
import { MockManager } from 'agent-sync-protocol/testing';

const { values: flags } = parseArgs({
  options: { wire: { type: 'string', default: 'seed' } },
});
const wire = flags.wire;
if (wire !== 'seed' && wire !== 'fullSession') {
  console.error(`--wire must be 'seed' or 'fullSession', got '${wire}'`);
  process.exit(2);
}

const PACKAGES = 6000;
const PORTS = 1500;
const AGENT_ID = '001';
const PACKAGES_INDEX = 'wazuh-states-inventory-packages';
const PORTS_INDEX = 'wazuh-states-inventory-ports';

/** A WCS-style document with `checksum.hash.sha1` over its own content, as inventory modules send. */
function withChecksum(fields: Record<string, unknown>): Record<string, unknown> {
  const sha1 = createHash('sha1').update(JSON.stringify(fields)).digest('hex');
  return { ...fields, checksum: { hash: { sha1 } } };
}

function packageDoc(i: number): Record<string, unknown> {
  return withChecksum({
    agent: { id: AGENT_ID },
    package: {
      name: `lib-demo-${i}`,
      version: `${1 + (i % 7)}.${i % 13}.${i % 5}-1`,
      architecture: i % 9 === 0 ? 'all' : 'amd64',
      type: 'deb',
      size: 1024 * (1 + (i % 400)),
      vendor: 'Debian Developers <debian-devel@lists.debian.org>',
      description: `Demo package ${i}, shared library for the agent-sync-protocol demo`,
      installed: '2026-11-20T08:00:00.000Z',
    },
  });
}

function portDoc(i: number): Record<string, unknown> {
  return withChecksum({
    agent: { id: AGENT_ID },
    network: { transport: i % 4 === 0 ? 'udp' : 'tcp' },
    source: { ip: '0.0.0.0', port: 1024 + i },
    destination: { ip: '0.0.0.0', port: 0 },
    interface: { state: i % 4 === 0 ? '' : 'listening' },
    process: { name: `demo-daemon-${i % 50}`, pid: 2000 + i },
  });
}

function progressBar(label: string): (progress: SyncProgress) => void {
  const tty = process.stdout.isTTY;
  let lastQuarter = -1;
  let lastPhase = '';
  return ({ phase, sent, total, retransmitted }) => {
    const ratio = total === 0 ? 1 : sent / total;
    if (tty) {
      const width = 30;
      const filled = Math.round(ratio * width);
      const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
      process.stdout.write(
        `\r  ${label} ${bar} ${String(Math.round(ratio * 100)).padStart(3)}%  ${sent}/${total} sent, ${retransmitted} resent (${phase})   `,
      );
      if (phase === 'end' && retransmitted === 0) process.stdout.write('\n');
    } else if (Math.floor(ratio * 4) > lastQuarter || phase !== lastPhase) {
      lastQuarter = Math.floor(ratio * 4);
      lastPhase = phase;
      console.log(
        `  ${label} ${Math.round(ratio * 100)}%  ${sent}/${total} sent, ${retransmitted} resent (${phase})`,
      );
    }
  };
}

const dir = mkdtempSync(join(tmpdir(), 'asp-demo-'));
const manager = new MockManager({ seed: 2026, clusterName: 'wazuh' });
const common = {
  moduleName: 'syscollector',
  dbPath: join(dir, 'inv_sync.db'),
  agentInfo: { id: AGENT_ID, name: 'demo-agent', groups: ['default'] },
};
const agent =
  wire === 'seed'
    ? new AgentSyncProtocol({
        ...common,
        transport: manager.transport('syscollector'),
        syncDefaults: { timeoutMs: 2000 },
      })
    : new AgentSyncProtocol({
        ...common,
        wire: 'fullSession',
        clusterName: 'wazuh', // the manager's <cluster><name>
        transport: manager.sessionTransport(AGENT_ID),
        // 256 KiB sessions instead of 5 MiB, so that the scan takes several sessions
        // (and, at 10 sessions per call, several Delta calls).
        syncDefaults: { timeoutMs: 2000, maxSessionBytes: 256 * 1024 },
      });

/**
 * Syncs the queue until it is empty. On the 5.0 wire one Delta sends at most `maxSessions`
 * (10) sessions and leaves the rest queued, so a large scan takes several calls; the progress
 * bar counts over all of them.
 */
async function syncAll(label: string) {
  const total = agent.pendingCount;
  const bar = progressBar(label);
  let sent = 0;
  let retransmitted = 0;
  let calls = 0;
  let session: bigint | undefined;
  do {
    calls++;
    const before = sent;
    const result = await agent.synchronizeModule(Mode.Delta, {
      onProgress: (p) => {
        const done = before + p.sent;
        // One start and one end for the whole scan, not one per call.
        if (p.phase === 'start' && calls > 1) return;
        if (p.phase === 'end' && done < total) return;
        bar({ ...p, sent: done, total });
      },
    });
    if (!result.ok) throw new Error(`${label} failed: ${result.reason}: ${result.message}`);
    sent += result.sent;
    retransmitted += result.retransmitted;
    session = result.session;
  } while (wire === 'fullSession' && agent.pendingCount > 0);
  if (process.stdout.isTTY) process.stdout.write('\n');
  return { sent, retransmitted, calls, session };
}

try {
  console.log(
    `agent-sync-protocol demo (${wire} wire): ${PACKAGES} packages and ${PORTS} ports from an inventory scan\n`,
  );

  // 1. The module's first scan: every item is a Create in the persistent queue.
  const documents = new Map<string, Record<string, unknown>>();
  let began = performance.now();
  for (let i = 0; i < PACKAGES; i++) {
    const doc = packageDoc(i);
    documents.set(`pkg-${i}`, doc);
    agent.persistDifference(`pkg-${i}`, Operation.Create, PACKAGES_INDEX, JSON.stringify(doc));
  }
  for (let i = 0; i < PORTS; i++) {
    const doc = portDoc(i);
    documents.set(`port-${i}`, doc);
    agent.persistDifference(`port-${i}`, Operation.Create, PORTS_INDEX, JSON.stringify(doc));
  }
  const persistSeconds = (performance.now() - began) / 1000;
  const queued = agent.pendingCount;
  console.log(
    `persisted ${queued} items in ${persistSeconds.toFixed(2)} s (${Math.round(queued / persistSeconds)} items/s)`,
  );

  // 2. Seed wire: the manager loses about 1 in 200 data messages on the way.
  //    5.0 wire: the manager is at capacity once, and says when to come back.
  if (wire === 'seed') {
    manager.inject({
      type: 'DataValue',
      action: 'drop',
      probability: 0.005,
      times: Number.POSITIVE_INFINITY,
    });
  } else {
    manager.injectStateful({ action: 'unavailable', retryAfterSeconds: 1, skip: 2 });
  }
  began = performance.now();
  const delta = await syncAll('delta sync');
  const syncSeconds = (performance.now() - began) / 1000;
  manager.clearFaults();
  const answered = manager.statefulStats.answered;
  const messages = delta.sent + delta.retransmitted + 2;
  console.log(
    wire === 'seed'
      ? `synced in ${syncSeconds.toFixed(2)} s: ${delta.sent} items sent, ${delta.retransmitted} retransmitted after ReqRet, ` +
          `${Math.round(messages / syncSeconds)} messages/s (session ${delta.session})`
      : `synced in ${syncSeconds.toFixed(2)} s: ${delta.sent} items sent in ${answered[200] ?? 0} sessions ` +
          `over ${delta.calls} Delta calls, ${answered[503] ?? 0} sent again after a 503`,
  );

  // 3. Later scans find changes: 25 upgraded packages, 10 closed ports.
  for (let i = 0; i < 25; i++) {
    const doc = packageDoc(i + 1_000_000);
    documents.set(`pkg-${i}`, doc);
    agent.persistDifference(`pkg-${i}`, Operation.Modify, PACKAGES_INDEX, JSON.stringify(doc));
  }
  for (let i = 0; i < 10; i++) {
    documents.delete(`port-${i}`);
    agent.persistDifference(`port-${i}`, Operation.Delete, PORTS_INDEX, '');
  }
  const changes = await agent.synchronizeModule(Mode.Delta);
  if (!changes.ok) throw new Error(`second delta sync failed: ${changes.reason}`);
  console.log(`second delta sync: ${changes.sent} changes sent`);

  // 4. Integrity check: both sides compute the same checksum per index.
  let allMatch = true;
  for (const [index, prefix] of [
    [PACKAGES_INDEX, 'pkg-'],
    [PORTS_INDEX, 'port-'],
  ] as const) {
    const ours = [...documents].filter(([id]) => id.startsWith(prefix)).map(([, doc]) => doc);
    const check = await agent.checkIntegrity(index, computeIndexChecksum(ours));
    console.log(`check ${index}: ${check.outcome}`);
    allMatch &&= check.outcome === 'match';
  }

  const held = manager.documents().length;
  console.log('\nsummary');
  console.log(`  items sent              ${delta.sent + changes.sent}`);
  if (wire === 'seed') {
    const stats = manager.stats;
    console.log(
      `  retransmitted (ReqRet)  ${delta.retransmitted}   (manager sent ${stats.reqRetsSent} ReqRet, dropped ${stats.faults.dropped})`,
    );
  } else {
    const { answered } = manager.statefulStats;
    console.log(
      `  sessions                ${agent.stats.messagesSent}   (manager answered ${answered[200] ?? 0} × 200, ${answered[503] ?? 0} × 503)`,
    );
    console.log(`  retried after 503       ${answered[503] ?? 0}   (waited for Retry-After: 1 s)`);
  }
  console.log(`  documents on manager    ${held}   (expected ${documents.size})`);
  console.log(`  checksum matched        ${allMatch ? 'yes' : 'NO'}`);
  console.log(
    `  elapsed                 ${((performance.now() - began) / 1000 + persistSeconds).toFixed(2)} s`,
  );
  if (!allMatch || held !== documents.size) process.exitCode = 1;
} finally {
  await agent.close();
  await manager.close();
  rmSync(dir, { recursive: true, force: true });
}
