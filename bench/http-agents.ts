// The Wazuh 5.0 wire over HTTP: 50 agents, each an AgentSyncProtocol with its own file queue and
// its own HttpSessionTransport (keep-alive agent), in this process, POSTing their sessions
// concurrently to the standalone mock manager (the agent-sync-mock-manager command) in a child
// process. In-process agents, so the sessions cross a real TCP connection and HTTP stack to a
// separate manager process while the agents' own side stays one process whose CPU is measured
// (50 agent processes would spend the 2 cores on 50 runtimes instead). Used by run.ts.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentSyncProtocol, HttpSessionTransport, type SessionTransport } from '../src/index.js';
import { startMockCli } from '../test/transports/mock-cli.js';
import { changes, deltaUntilEmpty, FULL_SESSION, median, scratch, seconds } from './workload.js';

export const HTTP_AGENTS = 50;
export const HTTP_ITEMS_PER_AGENT = 2_000;
/** Sessions of about 65 of the ~300-byte documents (8 KiB overhead + each item's bytes + 512). */
export const HTTP_SESSION_BYTES = 64 * 1024;

export interface HttpFigures {
  sessionsPerS: number;
  mbPerS: number;
  mockCpuPerS: number;
  agentsCpuPerS: number;
}

/** CPU seconds a process has used, from /proc (Linux). */
function processCpuSeconds(pid: number, ticks: number): number {
  const fields = (readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1] as string).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / ticks;
}

/** Counts the sessions and body bytes that went through `inner`. */
class CountingTransport implements SessionTransport {
  sessions = 0;
  bytes = 0;
  constructor(readonly inner: HttpSessionTransport) {}
  send(...args: Parameters<SessionTransport['send']>) {
    this.sessions++;
    this.bytes += args[0].body.length;
    return this.inner.send(...args);
  }
}

export async function httpAgents(
  runs: number,
  log: (message: string) => void,
): Promise<HttpFigures> {
  const ticks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  const mock = await startMockCli([]);
  const url = `http://127.0.0.1:${mock.ready.httpPort}/stateful`;
  const pid = mock.child.pid as number;
  const figures: HttpFigures[] = [];
  try {
    for (let run = 0; run < runs; run++) {
      await mock.json('POST', '/reset');
      const { dir, dispose } = scratch();
      const agents = Array.from({ length: HTTP_AGENTS }, (_, a) => {
        const id = String(a + 1).padStart(3, '0');
        const transport = new CountingTransport(new HttpSessionTransport({ url, agentId: id }));
        const agent = new AgentSyncProtocol({
          moduleName: 'bench',
          dbPath: join(dir, `${id}.db`),
          ...FULL_SESSION,
          agentInfo: { id },
          transport,
          syncDefaults: { maxSessionBytes: HTTP_SESSION_BYTES },
        });
        agent.persistDifferences(changes(0, HTTP_ITEMS_PER_AGENT));
        return { agent, transport };
      });
      // Move every intent log into SQLite before the window.
      for (const { agent } of agents) void agent.pendingCount;
      const mockCpu = processCpuSeconds(pid, ticks);
      const ownCpu = process.cpuUsage();
      const began = performance.now();
      await Promise.all(agents.map(({ agent }) => deltaUntilEmpty(agent)));
      const elapsed = seconds(began);
      const mockUsed = processCpuSeconds(pid, ticks) - mockCpu;
      const own = process.cpuUsage(ownCpu);
      const ownUsed = (own.user + own.system) / 1e6;
      const sessions = agents.reduce((sum, a) => sum + a.transport.sessions, 0);
      const bytes = agents.reduce((sum, a) => sum + a.transport.bytes, 0);
      const { body: stats } = await mock.json<{
        statefulStats: { answered: Record<string, number> };
      }>('GET', '/stats');
      const { body: sample } = await mock.json<unknown[]>('GET', '/documents?agent=050');
      if (
        stats.statefulStats.answered['200'] !== sessions ||
        sample.length !== HTTP_ITEMS_PER_AGENT
      ) {
        throw new Error(
          `HTTP bench: ${sessions} sessions sent, manager answered ${JSON.stringify(stats.statefulStats.answered)}, agent 050 has ${sample.length} documents`,
        );
      }
      for (const { agent, transport } of agents) {
        await agent.close();
        transport.inner.close();
      }
      dispose();
      const figure = {
        sessionsPerS: sessions / elapsed,
        mbPerS: bytes / 1e6 / elapsed,
        mockCpuPerS: mockUsed / elapsed,
        agentsCpuPerS: ownUsed / elapsed,
      };
      log(
        `  run ${run + 1}: ${sessions} sessions, ${(bytes / 1e6).toFixed(1)} MB in ${elapsed.toFixed(2)} s: ${figure.sessionsPerS.toFixed(0)} sessions/s, ${figure.mbPerS.toFixed(1)} MB/s; CPU s per s: mock ${figure.mockCpuPerS.toFixed(2)}, agents ${figure.agentsCpuPerS.toFixed(2)}`,
      );
      figures.push(figure);
    }
  } finally {
    await mock.stop();
  }
  const pick = (key: keyof HttpFigures) => median(figures.map((f) => f[key]));
  return {
    sessionsPerS: pick('sessionsPerS'),
    mbPerS: pick('mbPerS'),
    mockCpuPerS: pick('mockCpuPerS'),
    agentsCpuPerS: pick('agentsCpuPerS'),
  };
}
