// 50 agents x 2 modules on the Wazuh 5.0 wire, in 5 child processes (fixtures/http-agents.ts),
// against one standalone mock manager (the agent-sync-mock-manager command): processes 0, 2 and 4
// POST /stateful to its TCP HTTP port, 1 and 3 to its --stateful-socket. Faults are injected over
// POST /stateful-faults: syscollector sessions get 503s and an applied session never answered,
// which its modules retry within the Delta call; sca sessions get 500s and one applied session
// never answered, which fail the sca modules' Delta call (they do not retry), so the next call
// must send those items again. Checked
// from outside: GET /documents must hold exactly the documents the modules' changes leave (ids
// `<cluster>_<agent>_<item>`, data, no extra one), and every queue file must be empty.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AgentSyncProtocol } from '../../src/index.js';
import type { StoredDocument } from '../../src/testing/document-index.js';
import { cleanupAfterEach } from '../helpers.js';
import { agentId, CLUSTER, expectedDocuments, MODULES } from './http-agents-plan.js';
import { type MockCli, ROOT, runJsonChild, startMockCli } from './mock-cli.js';

const fixture = join(ROOT, 'test', 'transports', 'fixtures', 'http-agents.ts');

interface ModuleResult {
  agent: string;
  module: string;
  calls: number;
  failed: string[];
  pending: number;
}

const cleanup = cleanupAfterEach();

/** What a queue file still holds, read by a fresh instance (nothing is sent). */
async function pendingIn(dbPath: string, agent: string, moduleName: string): Promise<number> {
  const sync = new AgentSyncProtocol({
    moduleName,
    dbPath,
    wire: 'fullSession',
    clusterName: CLUSTER,
    agentInfo: { id: agent },
    transport: { send: () => Promise.reject(new Error('not for sending')) },
  });
  const pending = sync.pendingCount;
  await sync.close();
  return pending;
}

describe('Wazuh 5.0 over HTTP: many agents in several processes against one standalone mock', () => {
  it('delivers exactly every document of 50 agents x 2 modules in 5 processes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'http-many-agents-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const socket = join(dir, 'inventory-sync.sock');
    const mock: MockCli = await startMockCli(['--seed', '7', '--stateful-socket', socket]);
    cleanup.push(() => mock.stop());
    const { httpPort } = mock.ready;
    const processes = 5;
    const agents = 10;
    const items = 300;

    const faults = [
      {
        action: 'unavailable',
        module: 'syscollector',
        retryAfterSeconds: 0,
        probability: 0.05,
        times: 12,
      },
      { action: 'drop', module: 'syscollector', applied: true, skip: 100, times: 1 },
      { action: 'internal-error', module: 'sca', probability: 0.05, times: 12 },
      { action: 'drop', module: 'sca', applied: true, skip: 100, times: 1 },
    ];
    for (const fault of faults) {
      expect((await mock.json('POST', '/stateful-faults', fault)).status).toBe(201);
    }

    const results = (
      await Promise.all(
        Array.from({ length: processes }, (_, p) =>
          runJsonChild<ModuleResult[]>(fixture, [
            p % 2 === 0 ? `http://127.0.0.1:${httpPort}/stateful` : socket,
            String(1 + p * agents),
            String(agents),
            dir,
            String(items),
          ]),
        ),
      )
    ).flat();
    expect(results).toHaveLength(processes * agents * MODULES.length);
    expect(results.filter((r) => r.pending !== 0)).toEqual([]);
    // Several sessions per module: each round needed more than one Delta call.
    expect(results.every((r) => r.calls >= 3)).toBe(true);

    const { body: stats } = await mock.json<{
      statefulStats: { requests: number; answered: Record<string, number>; unanswered: number };
    }>('GET', '/stats');
    const { answered, unanswered } = stats.statefulStats;
    // The faults were hit. syscollector retried through each of its own: no call failed. Each sca
    // fault failed exactly one sca call (its 500s, and its session never answered).
    expect(answered['503']).toBeGreaterThan(0);
    expect(answered['500']).toBeGreaterThan(0);
    expect(unanswered).toBe(2);
    const failed = (module: string) =>
      results.filter((r) => r.module === module).flatMap((r) => r.failed);
    expect(failed('syscollector')).toEqual([]);
    expect(failed('sca')).toHaveLength((answered['500'] ?? 0) + 1);

    const { body: documents } = await mock.json<StoredDocument[]>('GET', '/documents');
    const expected = expectedDocuments(processes * agents, items);
    const got = new Map(
      documents.map((d) => {
        const { wazuh: _overlay, ...data } = d.data as Record<string, unknown>;
        return [d.id, { index: d.index, data }];
      }),
    );
    expect(documents).toHaveLength(got.size);
    expect(got.size).toBe(expected.size);
    expect(got).toEqual(expected);

    const left: string[] = [];
    for (let a = 1; a <= processes * agents; a++) {
      for (const { name } of MODULES) {
        const agent = agentId(a);
        const pending = await pendingIn(join(dir, `${agent}-${name}.db`), agent, name);
        if (pending !== 0) left.push(`${agent}/${name}: ${pending}`);
      }
    }
    expect(left).toEqual([]);
  }, 120_000);
});
