// Crash tests on the Wazuh 5.0 wire: a module process (fixtures/full-session-crash-child.ts)
// syncs through a SessionTransport that is its fork IPC channel to this process, which holds the
// mock manager. At a chosen session the parent SIGKILLs the child instead of answering: either
// before the manager saw the session, or after the manager applied it (the answer never comes).
// Some trials kill the next generation too, on the same database. Then a fresh instance on the
// same dbPath syncs with the same manager: every acknowledged change must be there in its final
// state (nothing lost), no deleted item may be back (nothing resurrected); the one persist in
// flight at a kill may have landed or not.
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { Mode } from '../../src/enums/mode.js';
import { Operation } from '../../src/enums/operation.js';
import { MockManager } from '../../src/testing/mock-manager.js';
import {
  buildModel5,
  type ChildToParent,
  CRASH_CHILD,
  divergence,
  FAST,
  managerDocuments5,
  openAgent5,
  type ParentToChild,
  REPO,
} from './full-session-support.js';
import { AGENT_ID, envCount, INDEX, prng, runSeed, show } from './support.js';

type Point = 'before-answer' | 'applied-unanswered';

interface Kill {
  point: Point;
  lines: string[];
}

/**
 * Run one child generation; answer its sessions through `manager` (each hit by a 500 with
 * probability 0.15, so some stay queued), and SIGKILL it at its `at`-th session, at `point`.
 */
function runUntilKilled(
  manager: MockManager,
  args: { db: string; events: string; generation: number; seed: number },
  at: number,
  point: Point,
  rand: () => number,
): Promise<Kill> {
  const child: ChildProcess = fork(
    CRASH_CHILD,
    [args.db, args.events, String(args.generation), String(args.seed)],
    { cwd: REPO, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] },
  );
  return new Promise((resolve, reject) => {
    let err = '';
    let killed = false;
    child.stderr?.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    child.on('message', async (message: ChildToParent) => {
      if (message.type !== 'session' || killed) return;
      const body = Buffer.from(message.body, 'base64');
      if (message.n === at) {
        killed = true;
        if (point === 'applied-unanswered') {
          const answer = await manager.stateful(body, { agentId: AGENT_ID, sessionId: message.id });
          if (answer.status !== 200) {
            reject(new Error(`the session to kill at was not applied: ${show(answer)}`));
          }
        }
        child.kill('SIGKILL');
        return;
      }
      const answer =
        rand() < 0.15
          ? { status: 500, body: '{"error":"Internal error","code":500}' }
          : await manager.stateful(body, { agentId: AGENT_ID, sessionId: message.id });
      if (killed || !child.connected) return;
      const reply: ParentToChild = { type: 'answer', n: message.n, ...answer };
      child.send(reply);
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL' || !killed) {
        reject(new Error(`child ended with code ${code} signal ${signal} before the kill: ${err}`));
        return;
      }
      const log = readFileSync(args.events, 'utf8');
      // A line cut by the kill is not a complete event.
      const lines = log.slice(0, log.lastIndexOf('\n') + 1).split('\n');
      resolve({ point, lines });
    });
  });
}

const counts = {
  kills: 0,
  trials: 0,
  byPoint: {} as Record<string, number>,
  items: 0,
  deletesAfter: 0,
};

async function trial(seed: number, points: readonly Point[]): Promise<void> {
  const rand = prng(seed);
  const dir = mkdtempSync(join(tmpdir(), 'reliability-fs-crash-'));
  const db = join(dir, 'queue.db');
  const manager = new MockManager({ seed });
  const kills: Kill[] = [];
  try {
    for (const [generation, point] of points.entries()) {
      const at = 1 + Math.floor(rand() * 6);
      kills.push(
        await runUntilKilled(
          manager,
          {
            db,
            events: join(dir, `events-${generation}.log`),
            generation,
            seed: seed + generation,
          },
          at,
          point,
          rand,
        ),
      );
      counts.kills++;
      counts.byPoint[point] = (counts.byPoint[point] ?? 0) + 1;
    }
    counts.trials++;

    const check = new Database(db, { readonly: true });
    expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
    check.close();

    const { acked, maybe } = buildModel5(kills);
    const agent = openAgent5(db, manager.sessionTransport(AGENT_ID));
    // The restarted module deletes some of what it holds, among them rows whose Create was in
    // the session killed after the manager applied it: those Deletes must reach the manager.
    for (const [id, data] of acked) {
      if (data === null || maybe.has(id) || rand() >= 0.3) continue;
      agent.persistDifference(id, Operation.Delete, INDEX, data);
      acked.set(id, null);
      counts.deletesAfter++;
    }
    const result = await agent.synchronizeModule(Mode.Delta, { ...FAST, maxSessions: 1000 });
    const pending = agent.pendingCount;
    await agent.close();
    const where = `seed ${seed}, kills ${kills.map((k) => k.point).join(', ')}`;
    expect(result.ok, `${where}: ${show(result)}`).toBe(true);
    expect(pending).toBe(0);

    const { wrong, ids } = divergence(managerDocuments5(manager), { acked, maybe });
    counts.items += ids;
    expect(wrong, where).toEqual([]);
  } finally {
    await manager.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('5.0 wire: SIGKILL during a session loses nothing and resurrects nothing', () => {
  const trials = envCount('ASP_RELIABILITY_KILLS', 16);
  const seed = runSeed();

  afterAll(() => {
    console.log(`full-session crash: seed ${seed}, ${show(counts)}`);
  });

  it('a new process on the same dbPath brings the manager to every acknowledged final state', async () => {
    const rand = prng(seed);
    const points: Point[] = ['before-answer', 'applied-unanswered'];
    for (let i = 0; i < trials; i++) {
      // One trial in three kills two generations on the same files.
      const plan = Array.from(
        { length: rand() < 0.34 ? 2 : 1 },
        (_, g) => points[(i + g) % 2] as Point,
      );
      const s = (seed + i * 104_729) >>> 0;
      try {
        await trial(s, plan);
      } catch (error) {
        console.log(
          `full-session crash: failed with trial seed ${s} (ASP_RELIABILITY_SEED=${seed})`,
        );
        throw error;
      }
    }
  }, 600_000);
});
