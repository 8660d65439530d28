// Shutdown: close() at random points of a sync (before Start, waiting for StartAck, mid-data with
// pacing, waiting for EndAck with the manager having indexed or not, while resending for a
// ReqRet), with a stream of persists running. close() must never log at error level, never leave
// the file inconsistent, and a reopen must find every change not acknowledged by a successful
// sync; one clean sync then brings the manager to the final state of every id.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { AgentSyncProtocol } from '../../src/agent-sync-protocol.js';
import { Mode } from '../../src/enums/mode.js';
import { Operation } from '../../src/enums/operation.js';
import type { LogLevel } from '../../src/interfaces/logger.js';
import type { SyncOptions } from '../../src/interfaces/options.js';
import { PersistentQueue } from '../../src/queue/persistent-queue.js';
import { MockManager } from '../../src/testing/mock-manager.js';
import {
  AGENT_ID,
  envCount,
  expectedDocuments,
  HookTransport,
  INDEX,
  type ManagerModel,
  MODULE,
  managerDocuments,
  prng,
  runSeed,
  show,
  sleep,
} from './support.js';

type Point = 'before-start' | 'startack' | 'data' | 'endack-indexed' | 'endack-lost' | 'reqret';
const POINTS: Point[] = [
  'before-start',
  'startack',
  'data',
  'endack-indexed',
  'endack-lost',
  'reqret',
];

const counts = {
  closes: 0,
  persistsDuring: 0,
  refusedAfterClose: 0,
  byPoint: {} as Record<string, number>,
};

async function closeDuringSync(point: Point, seed: number): Promise<void> {
  const rand = prng(seed);
  const dir = mkdtempSync(join(tmpdir(), 'reliability-shutdown-'));
  const path = join(dir, 'queue.db');
  const manager = new MockManager({ seed });
  const logs: [LogLevel, string][] = [];
  const logger = (level: LogLevel, message: string) => {
    logs.push([level, message]);
  };
  const open = () => {
    const transport = new HookTransport(manager.transport(MODULE));
    const agent = new AgentSyncProtocol({
      moduleName: MODULE,
      dbPath: path,
      transport,
      agentInfo: { id: AGENT_ID },
      logger,
    });
    return { agent, transport };
  };
  const model: ManagerModel = new Map();
  /** Ids changed since the last successful sync: what a reopen must find. */
  const unacknowledged = new Set<string>();
  let version = 0;
  let { agent, transport } = open();
  const persist = () => {
    const id = `i${Math.floor(rand() * 60)}`;
    const held = model.get(id) !== undefined && model.get(id) !== null;
    const op = held
      ? rand() < 0.75
        ? Operation.Modify
        : Operation.Delete
      : rand() < 0.85
        ? Operation.Create
        : Operation.Delete;
    const data = JSON.stringify({ id, v: ++version });
    agent.persistDifference(id, op, INDEX, data); // throws once closed: then it did not happen
    model.set(id, op === Operation.Delete ? null : data);
    unacknowledged.add(id);
  };

  try {
    // Some history the manager acknowledged, then more changes for the sync that gets closed.
    for (let i = 0; i < 30; i++) persist();
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true });
    unacknowledged.clear();
    for (let i = 0; i < 40; i++) persist();

    const options: SyncOptions = { timeoutMs: 5000 };
    /**
     * Resolves when the chosen point is reached. Waiting points (StartAck, EndAck) are held for
     * 2 s, and close() follows after a random pause; streaming points (the k-th DataValue, the
     * first resend) close right inside that send, so no timing can let the sync end first.
     */
    let reached!: () => void;
    const atPoint = new Promise<void>((resolve) => {
      reached = resolve;
    });
    let closing: Promise<void> | undefined;
    const closeNow = () => {
      closing ??= agent.close();
      reached();
    };
    let dataValues = 0;
    const closeAfterData = 1 + Math.floor(rand() * agent.pendingCount);
    const seqs = new Set<bigint>();
    switch (point) {
      case 'startack':
        manager.inject({ direction: 'to-agent', type: 'StartAck', action: 'delay', delayMs: 2000 });
        break;
      case 'data':
        options.maxEps = 100;
        break;
      case 'endack-indexed':
        manager.inject({ direction: 'to-agent', type: 'EndAck', action: 'delay', delayMs: 2000 });
        break;
      case 'endack-lost':
        manager.inject({ type: 'End', action: 'drop', times: Number.POSITIVE_INFINITY });
        break;
      case 'reqret':
        options.maxEps = 300;
        manager.inject({
          type: 'DataValue',
          action: 'drop',
          seq: (seq) => seq % 3n === 0n && !seqs.has(seq),
          times: Number.POSITIVE_INFINITY,
        });
        break;
      default:
        break;
    }
    transport.hook = (message, when) => {
      if (when !== 'after') return;
      if (message.type === 'Start' && point === 'startack') reached();
      if (message.type === 'End' && point.startsWith('endack')) reached();
      if (message.type === 'DataValue') {
        dataValues++;
        if (point === 'data' && dataValues === closeAfterData) closeNow();
        if (point === 'reqret' && seqs.has(message.seq)) closeNow(); // the first resend
        seqs.add(message.seq);
      }
    };

    // A stream of persists, until close() refuses them.
    let streaming = true;
    const stream = (async () => {
      while (streaming) {
        await sleep(Math.floor(rand() * 3));
        try {
          persist();
          counts.persistsDuring++;
        } catch (error) {
          expect((error as Error).message).toMatch(/is closed/);
          counts.refusedAfterClose++;
          return;
        }
      }
    })();

    const syncing = agent.synchronizeModule(Mode.Delta, options);
    if (point === 'before-start') {
      closing = agent.close(); // same tick: the sync has not sent Start yet
    } else {
      // The point comes before the sync can end (a sync that ends first is a test bug).
      const early = syncing.then((r) => {
        throw new Error(`the sync ended before ${point}: ${show(r)}`);
      });
      await Promise.race([atPoint, early]);
      early.catch(() => {});
      if (closing === undefined) {
        await sleep(Math.floor(rand() * 15));
        closing = agent.close();
      }
    }
    const result = await syncing;
    await closing;
    streaming = false;
    await stream;
    counts.closes++;
    counts.byPoint[point] = (counts.byPoint[point] ?? 0) + 1;
    expect(result, show(result)).toMatchObject({ ok: false, reason: 'closed' });
    expect(logs.filter(([level]) => level === 'error')).toEqual([]);
    await agent.close(); // idempotent

    // The file is consistent...
    const raw = new Database(path, { readonly: true });
    expect(raw.pragma('integrity_check', { simple: true })).toBe('ok');
    raw.close();
    // ...and holds every change the manager did not acknowledge, in its final state.
    const queue = new PersistentQueue(path);
    const rows = new Map(queue.inspect().map((row) => [row.id, row]));
    queue.close();
    for (const id of unacknowledged) {
      const data = model.get(id) ?? null;
      const row = rows.get(id);
      if (data !== null) {
        expect(row, `${id} after closing at ${point}`).toMatchObject({ data });
        expect(row?.operation).not.toBe(Operation.Delete);
      } else if (row !== undefined) {
        expect(row.operation, `${id} after closing at ${point}`).toBe(Operation.Delete);
      }
    }
    for (const id of rows.keys()) expect(unacknowledged.has(id), id).toBe(true);

    // A clean sync after reopening converges.
    manager.clearFaults();
    ({ agent, transport } = open());
    const last = await agent.synchronizeModule(Mode.Delta, { timeoutMs: 5000 });
    expect(last, show(last)).toMatchObject({ ok: true });
    expect(managerDocuments(manager)).toEqual(expectedDocuments(model));
    expect(logs.filter(([level]) => level === 'error')).toEqual([]);
  } finally {
    await agent.close();
    await manager.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('close() at random points of a sync', () => {
  const perPoint = envCount('ASP_RELIABILITY_CLOSES', 10);
  const seed = runSeed();

  afterAll(() => {
    console.log(
      `shutdown: ${counts.closes} closes mid-sync ${show(counts.byPoint)}, ` +
        `${counts.persistsDuring} persists during them, ${counts.refusedAfterClose} refused ` +
        `after close, seed ${seed}`,
    );
  });

  for (const [i, point] of POINTS.entries()) {
    it(`closing ${point}: no error log, a consistent file, nothing unacknowledged lost`, async () => {
      for (let n = 0; n < perPoint; n++) await closeDuringSync(point, (seed + i * 1000 + n) >>> 0);
    }, 120_000);
  }
});
