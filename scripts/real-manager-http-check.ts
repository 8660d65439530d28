// Drives AgentSyncProtocol (wire 'fullSession') through HttpSessionTransport against the REAL
// Wazuh 5.0 manager module (inventory_sync_server), not part of the test suite. It needs the
// module built from wazuh/wazuh f838614611 and running, with the maintainers' harness (not part
// of this repository):
//
//   WAZUH_SRC=<wazuh checkout or mirror> ISS_BUILD_DIR=/tmp/iss-build ./build.sh
//   ./run.sh /tmp/iss/inventory-sync.sock cluster01 &
//   npx tsx scripts/real-manager-http-check.ts /tmp/iss/inventory-sync.sock cluster01
//
// It prints each session's HTTP status and body (from the transport's point of view) and each
// sync's result as JSON lines, then the documents the fake indexer holds (SIGUSR1 dump file
// `<socket>.indexer.json`, when present). Exit 0 when every case ended as expected.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AgentSyncProtocol,
  computeIndexChecksum,
  Mode,
  Operation,
  type SessionAnswer,
  type SessionRequest,
  type SessionTransport,
} from '../src/index.js';
import { HttpSessionTransport } from '../src/transports/http-session-transport.js';

const [socketPath = '/tmp/iss/inventory-sync.sock', clusterName = 'cluster01'] =
  process.argv.slice(2);
const INDEX = 'wazuh-states-inventory-packages';
const KEY = '0123456789abcdef'.repeat(4);

/** Logs every answer the manager gives, then hands it to the sync. */
class Logged implements SessionTransport {
  readonly answers: SessionAnswer[] = [];
  constructor(
    public label: string,
    readonly inner: HttpSessionTransport,
  ) {}
  async send(session: SessionRequest, signal: AbortSignal): Promise<SessionAnswer> {
    try {
      const answer = await this.inner.send(session, signal);
      this.answers.push(answer);
      console.log(
        JSON.stringify({
          case: this.label,
          session: session.id,
          bytes: session.body.length,
          ...answer,
        }),
      );
      return answer;
    } catch (error) {
      console.log(JSON.stringify({ case: this.label, session: session.id, error: String(error) }));
      throw error;
    }
  }
}

const doc = (id: string, name: string) =>
  JSON.stringify({
    package: { name, version: '1.0' },
    checksum: { hash: { sha1: `${id}`.padEnd(40, '0') } },
  });

function agent(label: string, transportAgentId: string, agentKey?: string) {
  const http = new HttpSessionTransport({
    socketPath,
    agentId: transportAgentId,
    ...(agentKey ? { agentKey } : {}),
    timeoutMs: 20_000,
  });
  const transport = new Logged(label, http);
  const sync = new AgentSyncProtocol({
    moduleName: 'syscollector',
    dbPath: join(mkdtempSync(join(tmpdir(), 'real-mgr-')), 'sync.db'),
    transport,
    wire: 'fullSession',
    clusterName,
    agentInfo: { id: '001', name: 'agent-001', osPlatform: 'ubuntu', groups: ['default'] },
    syncDefaults: { timeoutMs: 30_000, retries: 1, backoff: { minMs: 0 }, checkAttempts: 1 },
  });
  return { sync, transport, http };
}

const failures: string[] = [];
function expect(label: string, ok: boolean, result: unknown) {
  console.log(
    JSON.stringify({ case: label, ok, result }, (_k, v) => (typeof v === 'bigint' ? String(v) : v)),
  );
  if (!ok) failures.push(label);
}

const main = agent('clean', '001');
// A known start on a server that already ran this script: the agent's documents of INDEX go.
const clean = await main.sync.notifyDataClean([INDEX]);
expect('notifyDataClean (Cleans)', clean.ok, clean);
main.transport.label = 'delta';
main.sync.persistDifference('a', Operation.Create, INDEX, doc('aa', 'openssl'));
main.sync.persistDifference('b', Operation.Create, INDEX, doc('bb', 'curl'), 3n);
const delta = await main.sync.synchronizeModule(Mode.Delta);
expect('persistDifference + Delta', delta.ok && main.sync.pendingCount === 0, delta);

main.transport.label = 'large delta';
const pad = 'x'.repeat(1500);
for (let i = 0; i < 2000; i++) {
  main.sync.persistDifference(`big${i}`, Operation.Create, INDEX, JSON.stringify({ pad, i }));
}
const large = await main.sync.synchronizeModule(Mode.Delta, { maxSessionBytes: 4 * 1024 * 1024 });
expect(
  'large Delta (2000 items, ~3 MB, sessions up to 4 MiB)',
  large.ok && main.sync.pendingCount === 0,
  large,
);
main.sync.persistDifference('a', Operation.Create, INDEX, doc('aa', 'openssl'));
main.sync.persistDifference('b', Operation.Create, INDEX, doc('bb', 'curl'), 3n);
for (let i = 0; i < 2000; i++) main.sync.persistDifference(`big${i}`, Operation.Delete, INDEX, '');
const cleanup = await main.sync.synchronizeModule(Mode.Delta, { maxSessionBytes: 4 * 1024 * 1024 });
expect('Delta deleting them again', cleanup.ok, cleanup);

main.transport.label = 'check';
const good = computeIndexChecksum([
  JSON.parse(doc('aa', 'openssl')),
  JSON.parse(doc('bb', 'curl')),
]);
const match = await main.sync.checkIntegrity(INDEX, good);
expect('Check (matching checksum) -> 200', match.outcome === 'match', match);
const mismatch = await main.sync.checkIntegrity(INDEX, 'f'.repeat(40));
expect('Check (wrong checksum) -> 409', mismatch.outcome === 'mismatch', mismatch);

main.transport.label = 'full';
main.sync.persistDifferenceInMemory('c', Operation.Create, INDEX, doc('cc', 'bash'));
const full = await main.sync.synchronizeModule(Mode.Full);
expect('Full (Cleans then data)', full.ok, full);

const wrong = agent('wrong agent', '002');
wrong.sync.persistDifference('x', Operation.Create, INDEX, doc('xx', 'zsh'));
const forbidden = await wrong.sync.synchronizeModule(Mode.Delta);
expect(
  'wrong agent -> 403',
  !forbidden.ok && forbidden.reason === 'forbidden' && wrong.transport.answers[0]?.status === 403,
  forbidden,
);

const signed = agent('signed', '001', KEY);
signed.sync.persistDifference('s', Operation.Create, INDEX, doc('ss', 'signed-pkg'));
const signedResult = await signed.sync.synchronizeModule(Mode.Delta);
expect('signed request (the module ignores Authorization)', signedResult.ok, signedResult);

for (const a of [main, wrong, signed]) {
  await a.sync.close();
  a.http.close();
}
const dump = `${socketPath}.indexer.json`;
if (existsSync(dump)) {
  const indices = (JSON.parse(readFileSync(dump, 'utf8')) as { indices?: Record<string, object> })
    .indices;
  console.log(JSON.stringify({ dump, ids: Object.keys(indices?.[INDEX] ?? {}) }));
}
console.log(failures.length === 0 ? 'all cases as expected' : `unexpected: ${failures.join(', ')}`);
process.exitCode = failures.length === 0 ? 0 : 1;
