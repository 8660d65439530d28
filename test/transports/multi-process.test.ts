import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { MockManagerServer } from '../../src/testing/index.js';
import { cleanupAfterEach } from '../helpers.js';
import { runJsonChild } from './mock-cli.js';

const here = dirname(fileURLToPath(import.meta.url));
const fixture = join(here, 'fixtures', 'tcp-agents.ts');

const cleanup = cleanupAfterEach();

interface AgentResult {
  id: string;
  ok: boolean;
  sent: number;
}

const runAgents = (args: string[]) => runJsonChild<AgentResult[]>(fixture, args);

describe('many agents in several processes against one server', () => {
  it('delivers every document of 50 agents in 5 processes', async () => {
    const server = new MockManagerServer();
    const { port, httpPort } = await server.start();
    cleanup.push(() => server.close());
    const processes = 5;
    const agents = 10;
    const docs = 40;

    const results = (
      await Promise.all(
        Array.from({ length: processes }, (_, p) =>
          runAgents([String(port), String(p), String(agents), String(docs)]),
        ),
      )
    ).flat();
    expect(results).toHaveLength(processes * agents);
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(results.every((r) => r.sent === docs)).toBe(true);

    // Checked the way an outside test would: over HTTP.
    const response = await fetch(`http://127.0.0.1:${httpPort}/documents`);
    const documents = (await response.json()) as Array<{ id: string; agentId: string }>;
    expect(documents).toHaveLength(processes * agents * docs);
    const expected = new Set<string>();
    for (let p = 0; p < processes; p++) {
      for (let a = 0; a < agents; a++) {
        for (let d = 0; d < docs; d++) expected.add(`p${p}-a${a}_item${d}`);
      }
    }
    expect(new Set(documents.map((d) => d.id))).toEqual(expected);
    const stats = (await (await fetch(`http://127.0.0.1:${httpPort}/stats`)).json()) as Record<
      string,
      number
    >;
    expect(stats.sessionsCompleted).toBe(processes * agents);
    expect(stats.sessionsFailed).toBe(0);
  });
});
