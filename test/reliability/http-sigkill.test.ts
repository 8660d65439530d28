// SIGKILL of a module process mid-session on the Wazuh 5.0 wire over HTTP: the module
// (fixtures/full-session-crash-child.ts with a URL) keeps persisting changes and syncing them
// through an HttpSessionTransport to one standalone mock manager (the agent-sync-mock-manager
// command), which answers some sessions 500. A `drop` stateful fault (POST /stateful-faults)
// makes the manager keep the chosen session's request open without an answer, either before
// applying it or after (`applied: true`); once GET /stats counts it unanswered, the session is in
// flight and the module is SIGKILLed. Some trials kill the next generation too, on the same
// queue file. Then some items are deleted on that file, and the module process is restarted on
// it (the fixture's `drain` mode): it syncs to the same manager until its queue is empty and
// exits. GET /documents must hold every acknowledged final state (nothing lost) and no deleted
// item (nothing resurrected); the one persist in flight at a kill may have landed or not.
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Operation } from '../../src/enums/operation.js';
import type { StoredDocument } from '../../src/testing/document-index.js';
import { type MockCli, startMockCli } from '../transports/mock-cli.js';
import { until } from '../transports/support.js';
import {
  buildModel5,
  CRASH_CHILD,
  divergence,
  managerDocuments5,
  openAgent5,
  REPO,
} from './full-session-support.js';
import { AGENT_ID, envCount, INDEX, prng, runSeed, show } from './support.js';

type Point = 'before-applied' | 'applied-unanswered';

interface StatefulStats {
  requests: number;
  unanswered: number;
}

/** For an instance that only persists or counts, in this process. */
const NO_SEND = { send: () => Promise.reject(new Error('not for sending')) };

let mock: MockCli | undefined;
afterEach(async () => {
  await mock?.stop();
  mock = undefined;
});

const statefulStats = async (cli: MockCli) =>
  (await cli.json<{ statefulStats: StatefulStats }>('GET', '/stats')).body.statefulStats;

/**
 * Run one child generation against the mock; the manager holds its `at`-th session from now on
 * unanswered (applied or not, by `point`), and the child is SIGKILLed while it waits for it.
 */
async function runUntilKilled(
  cli: MockCli,
  args: { db: string; events: string; generation: number; seed: number },
  at: number,
  point: Point,
): Promise<{ lines: string[] }> {
  const fault = { action: 'drop', skip: at - 1, times: 1, applied: point === 'applied-unanswered' };
  expect((await cli.json('POST', '/stateful-faults', fault)).status).toBe(201);
  const before = (await statefulStats(cli)).unanswered;
  const url = `http://127.0.0.1:${cli.ready.httpPort}/stateful`;
  const child: ChildProcess = fork(
    CRASH_CHILD,
    [args.db, args.events, String(args.generation), String(args.seed), url],
    { cwd: REPO, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] },
  );
  let err = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const exited = once(child, 'exit');
  let killed = false;
  try {
    await until(async () => {
      if (child.exitCode !== null) {
        throw new Error(`child exited ${child.exitCode} before the kill: ${err}`);
      }
      return (await statefulStats(cli)).unanswered > before;
    }, 30_000);
    killed = child.kill('SIGKILL');
  } finally {
    if (!killed) child.kill('SIGKILL');
  }
  const [, signal] = (await exited) as [number | null, string | null];
  expect(signal).toBe('SIGKILL');
  const log = readFileSync(args.events, 'utf8');
  // A line cut by the kill is not a complete event.
  return { lines: log.slice(0, log.lastIndexOf('\n') + 1).split('\n') };
}

const counts = { kills: 0, trials: 0, byPoint: {} as Record<string, number>, items: 0 };

async function trial(cli: MockCli, seed: number, points: readonly Point[]): Promise<void> {
  const rand = prng(seed);
  const dir = mkdtempSync(join(tmpdir(), 'reliability-http-kill-'));
  const db = join(dir, 'queue.db');
  expect((await cli.json('POST', '/reset')).status).toBe(200);
  // Some sessions are answered 500 (nothing applied): they stay queued for a later sync.
  const errors = { action: 'internal-error', probability: 0.15, times: 'Infinity' };
  expect((await cli.json('POST', '/stateful-faults', errors)).status).toBe(201);
  const kills: { lines: string[] }[] = [];
  try {
    for (const [generation, point] of points.entries()) {
      const at = 1 + Math.floor(rand() * 12);
      const events = join(dir, `events-${generation}.log`);
      kills.push(
        await runUntilKilled(cli, { db, events, generation, seed: seed + generation }, at, point),
      );
      counts.kills++;
      counts.byPoint[point] = (counts.byPoint[point] ?? 0) + 1;
    }
    counts.trials++;
    expect((await cli.json('DELETE', '/faults')).status).toBe(200);

    const { acked, maybe } = buildModel5(kills);
    const url = `http://127.0.0.1:${cli.ready.httpPort}/stateful`;
    // The module deletes some items before its restart, among them items whose Create was in the
    // killed session.
    const deleter = openAgent5(db, NO_SEND);
    for (const [id, data] of acked) {
      if (data === null || maybe.has(id) || rand() >= 0.3) continue;
      deleter.persistDifference(id, Operation.Delete, INDEX, data);
      acked.set(id, null);
    }
    await deleter.close();
    // The restarted module process syncs until its queue is empty, and exits 0.
    const restarted = fork(
      CRASH_CHILD,
      [db, join(dir, 'events-restart.log'), String(points.length), String(seed), url, 'drain'],
      { cwd: REPO, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] },
    );
    const where = `seed ${seed}, kills ${points.join(', ')}`;
    expect(await once(restarted, 'exit'), where).toEqual([0, null]);
    const check = openAgent5(db, NO_SEND);
    const pending = check.pendingCount;
    await check.close();
    expect(pending).toBe(0);

    const docs = (await cli.json<StoredDocument[]>('GET', `/documents?agent=${AGENT_ID}`)).body;
    const { wrong, ids } = divergence(managerDocuments5(docs), { acked, maybe });
    counts.items += ids;
    expect(wrong, where).toEqual([]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('5.0 wire over HTTP: SIGKILL with a session in flight loses nothing and resurrects nothing', () => {
  const trials = envCount('ASP_RELIABILITY_HTTP_KILLS', 6);
  const seed = runSeed();

  afterAll(() => {
    console.log(`http sigkill: seed ${seed}, ${show(counts)}`);
  });

  it('the module restarted on the same dbPath brings the standalone manager to every acknowledged final state', async () => {
    mock = await startMockCli(['--seed', String(seed)]);
    const points: Point[] = ['before-applied', 'applied-unanswered'];
    for (let i = 0; i < trials; i++) {
      // Every third trial kills two generations on the same files.
      const plan = Array.from(
        { length: i % 3 === 2 ? 2 : 1 },
        (_, g) => points[(i + g) % 2] as Point,
      );
      const s = (seed + i * 104_729) >>> 0;
      try {
        await trial(mock, s, plan);
      } catch (error) {
        console.log(`http sigkill: failed with trial seed ${s} (ASP_RELIABILITY_SEED=${seed})`);
        throw error;
      }
    }
  }, 300_000);
});
