// Crash tests: a module process (fixtures/crash-child.ts) is SIGKILLed at random points: during
// a burst of persists, while a sync streams its data, while it waits for EndAck (with the manager
// having indexed or not), and while it resends what a ReqRet asked for. Some trials kill the
// next generation too, on the same files. Then a fresh process opens the same database with a
// manager that holds what the child's manager had indexed, and syncs: the manager must hold the
// final state of every acknowledged change (nothing lost, nothing resurrected); the one change
// in flight at a kill may have landed or not.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { AgentSyncProtocol } from '../../src/agent-sync-protocol.js';
import { Mode } from '../../src/enums/mode.js';
import { MockManager } from '../../src/testing/mock-manager.js';
import {
  AGENT_ID,
  buildModel,
  divergence,
  envCount,
  MODULE,
  managerDocuments,
  prng,
  runSeed,
  type SeedDocument,
  seedManager,
  show,
} from './support.js';

const CHILD = fileURLToPath(new URL('./fixtures/crash-child.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../..', import.meta.url));

type Target = 'burst' | 'data' | 'endack' | 'reqret';
const TARGETS: Target[] = ['burst', 'data', 'endack', 'reqret'];
/** How long after the phase line the kill may come, at most (ms). */
const WINDOW: Record<Target, number> = { burst: 60, data: 80, endack: 280, reqret: 60 };

interface Kill {
  target: Target;
  /** The last phase the child printed before it died. */
  landed: string;
  lines: string[];
}

/** Run one child generation and SIGKILL it `delay` ms after its `occurrence`-th `target` line. */
function runUntilKilled(
  args: { db: string; dump: string; events: string; generation: number; seed: number },
  target: Target,
  occurrence: number,
  delay: number,
): Promise<Kill> {
  const focus = target === 'endack' || target === 'reqret' ? target : 'mix';
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      CHILD,
      args.db,
      args.dump,
      args.events,
      String(args.generation),
      String(args.seed),
      focus,
    ],
    { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    let seen = 0;
    let armed = false;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      const before = out.length;
      out += chunk;
      if (armed) return;
      // Count target lines in what just arrived (lines may straddle chunks: scan from the last
      // complete line before this chunk).
      const from = out.lastIndexOf('\n', before - 1) + 1;
      for (const line of out.slice(from).split('\n')) {
        if (line === `phase ${target}` && ++seen === occurrence) {
          armed = true;
          setTimeout(() => child.kill('SIGKILL'), delay);
          break;
        }
      }
    });
    child.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    child.on('error', reject);
    // 'close', not 'exit': lines written just before the kill are still in the pipe.
    child.on('close', (code, signal) => {
      if (signal !== 'SIGKILL') {
        reject(new Error(`child ended with code ${code} before the kill: ${err}\n${out}`));
        return;
      }
      // A line cut by the kill is not a complete event.
      const log = readFileSync(args.events, 'utf8');
      const lines = log.slice(0, log.lastIndexOf('\n') + 1).split('\n');
      const phases = lines.filter((l) => l.startsWith('phase '));
      const landed = (phases[phases.length - 1] ?? 'phase none').slice(6);
      resolve({ target, landed, lines });
    });
  });
}

const counts = {
  kills: 0,
  trials: 0,
  byTarget: {} as Record<string, number>,
  byLanding: {} as Record<string, number>,
  maybe: 0,
};

async function trial(seed: number, targets: readonly Target[]): Promise<void> {
  const rand = prng(seed);
  const dir = mkdtempSync(join(tmpdir(), 'reliability-crash-'));
  const db = join(dir, 'queue.db');
  const dump = join(dir, 'manager.json');
  const kills: Kill[] = [];
  try {
    for (let generation = 0; generation < targets.length; generation++) {
      const target = targets[generation] as Target;
      const occurrence = 1 + Math.floor(rand() * 2);
      const delay = Math.floor(rand() * WINDOW[target]);
      const kill = await runUntilKilled(
        {
          db,
          dump,
          events: join(dir, `events-${generation}.log`),
          generation,
          seed: (seed + generation * 7919) >>> 0,
        },
        target,
        occurrence,
        delay,
      );
      kills.push(kill);
      counts.kills++;
      counts.byTarget[target] = (counts.byTarget[target] ?? 0) + 1;
      counts.byLanding[kill.landed] = (counts.byLanding[kill.landed] ?? 0) + 1;
    }
    counts.trials++;

    // The killed file is consistent.
    const check = new Database(db, { readonly: true });
    expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
    check.close();

    const { acked, maybe } = buildModel(kills, (id, [v]) => JSON.stringify({ id, v }));
    counts.maybe += maybe.size;
    const manager = new MockManager();
    const seeded: SeedDocument[] = existsSync(dump) ? JSON.parse(readFileSync(dump, 'utf8')) : [];
    await seedManager(manager, seeded);
    const agent = new AgentSyncProtocol({
      moduleName: MODULE,
      dbPath: db,
      transport: manager.transport(MODULE),
      agentInfo: { id: AGENT_ID },
    });
    const result = await agent.synchronizeModule(Mode.Delta, { timeoutMs: 10_000 });
    expect(result.ok, show(result)).toBe(true);
    expect(agent.pendingCount).toBe(0);
    await agent.close();

    const docs = managerDocuments(manager);
    await manager.close();
    const { wrong } = divergence(docs, { acked, maybe });
    const where = kills.map((k) => `${k.target}->${k.landed}`).join(', ');
    expect(wrong, `seed ${seed}, kills ${where}`).toEqual([]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Run `tasks` with at most `limit` at a time; rejects with the first failure. */
async function pool(tasks: (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: limit }, async () => {
    while (next < tasks.length) {
      const task = tasks[next++] as () => Promise<void>;
      await task();
    }
  });
  await Promise.all(workers);
}

describe('SIGKILL at random points loses nothing and resurrects nothing', () => {
  const targetKills = envCount('ASP_RELIABILITY_KILLS', 50);
  const seed = runSeed();
  const started = Date.now();

  afterAll(() => {
    console.log(
      `crash: ${counts.kills} kills in ${counts.trials} trials (targets ${show(counts.byTarget)}, ` +
        `landed in ${show(counts.byLanding)}), ${counts.maybe} in-flight persists, ` +
        `${Date.now() - started} ms, seed ${seed}`,
    );
  });

  it('a reopened queue brings the manager to the final state of every acknowledged change', async () => {
    // Kills are spread evenly over the four targets; one trial in three kills two generations.
    const rand = prng(seed);
    const plans: Target[][] = [];
    let planned = 0;
    while (planned < targetKills) {
      const chained = rand() < 0.34 && targetKills - planned >= 2;
      const plan = Array.from(
        { length: chained ? 2 : 1 },
        (_, i) => TARGETS[(planned + i) % TARGETS.length] as Target,
      );
      planned += plan.length;
      plans.push(plan);
    }
    await pool(
      plans.map((plan, i) => () => trial((seed + i * 104_729) >>> 0, plan)),
      4,
    );
    expect(counts.kills).toBe(targetKills);
  }, 300_000);
});
