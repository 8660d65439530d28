// Shutdown on the Wazuh 5.0 wire: close() or an abort while a session's answer is held, the
// session either not yet seen by the manager or already applied by it, the transport honouring
// the abort signal or ignoring it (its promise never settles), with changes persisted while
// the session is in flight. The sync must end 'closed' / 'aborted', no promise may reject
// unhandled, nothing may log at error level, the file must stay consistent, every change the
// manager does not reflect must still be queued in its final state, and one clean sync (after
// reopening, for close) must bring the manager to the module's state.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AgentSyncProtocol } from '../../src/agent-sync-protocol.js';
import { Mode } from '../../src/enums/mode.js';
import { type ChangeOperation, Operation } from '../../src/enums/operation.js';
import type { LogLevel } from '../../src/interfaces/logger.js';
import type {
  SessionAnswer,
  SessionRequest,
  SessionTransport,
} from '../../src/interfaces/session-transport.js';
import { PersistentQueue } from '../../src/queue/persistent-queue.js';
import { MockManager } from '../../src/testing/mock-manager.js';
import {
  expectedDocuments5,
  FAST,
  type ModuleState,
  makeDocument,
  managerDocuments5,
  openAgent5,
} from './full-session-support.js';
import { AGENT_ID, envCount, INDEX, prng, runSeed, show } from './support.js';

type Point = 'held' | 'applied-held';
type Ender = 'close' | 'abort';

/**
 * Hands sessions to the manager until the `at`-th; that one is held (after the manager applied
 * it, for 'applied-held'): its answer comes only as a rejection on abort, or never when
 * `ignoreSignal`.
 */
class GateTransport implements SessionTransport {
  sessions = 0;
  constructor(
    readonly inner: SessionTransport,
    readonly at: number,
    readonly point: Point,
    readonly ignoreSignal: boolean,
    readonly reached: () => void,
    readonly during: () => void,
  ) {}

  async send(session: SessionRequest, signal: AbortSignal): Promise<SessionAnswer> {
    const n = ++this.sessions;
    this.during();
    if (n !== this.at) return this.inner.send(session, signal);
    if (this.point === 'applied-held') {
      const answer = await this.inner.send(session, signal);
      if (answer.status !== 200) throw new Error(`not applied: ${show(answer)}`);
    }
    this.reached();
    return new Promise<SessionAnswer>((_resolve, reject) => {
      if (this.ignoreSignal) return;
      signal.addEventListener('abort', () => reject(new Error('the request was aborted')), {
        once: true,
      });
    });
  }
}

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
beforeEach(() => {
  process.on('unhandledRejection', onUnhandled);
});
afterEach(() => {
  process.off('unhandledRejection', onUnhandled);
});

const counts = { ends: 0, persistsDuring: 0, queuedAfter: 0, byCase: {} as Record<string, number> };

async function endDuringSession(
  point: Point,
  ender: Ender,
  full: boolean,
  seed: number,
): Promise<void> {
  const rand = prng(seed);
  const dir = mkdtempSync(join(tmpdir(), 'reliability-fs-shutdown-'));
  const path = join(dir, 'queue.db');
  const manager = new MockManager({ seed });
  const errors: string[] = [];
  const logger = (level: LogLevel, message: string) => {
    if (level === 'error') errors.push(message);
  };
  const state: ModuleState = new Map();
  let counter = 0;
  let agent: AgentSyncProtocol = openAgent5(path, manager.sessionTransport(AGENT_ID), logger);
  const persist = () => {
    const id = `i${Math.floor(rand() * 40)}`;
    const held = state.has(id);
    const r = rand();
    const op: ChangeOperation = held
      ? r < 0.75
        ? Operation.Modify
        : Operation.Delete
      : r < 0.85
        ? Operation.Create
        : Operation.Delete;
    const version = rand() < 0.25 ? 0 : ++counter;
    const data = makeDocument(id, `t${++counter}`, version);
    agent.persistDifference(id, op, INDEX, data, version); // throws once closed
    if (op === Operation.Delete) state.delete(id);
    else state.set(id, { data, version });
  };
  const tryPersist = () => {
    try {
      persist();
      counts.persistsDuring++;
    } catch (error) {
      expect((error as Error).name, String(error)).toBe('ClosedError');
    }
  };

  try {
    // History the manager acknowledged, then the changes of the sync that gets ended.
    for (let i = 0; i < 30; i++) persist();
    expect(await agent.synchronizeModule(Mode.Delta, FAST)).toMatchObject({ ok: true });
    for (let i = 0; i < 40; i++) persist();
    await agent.close();

    let reached!: () => void;
    const atPoint = new Promise<void>((resolve) => {
      reached = resolve;
    });
    const sessionsBefore = full ? 1 + Math.floor(rand() * 3) : 1 + Math.floor(rand() * 4);
    const transport = new GateTransport(
      manager.sessionTransport(AGENT_ID),
      sessionsBefore,
      point,
      rand() < 0.5,
      reached,
      () => {
        if (rand() < 0.3) tryPersist();
      },
    );
    agent = openAgent5(path, transport, logger);
    const controller = new AbortController();
    const options = {
      ...FAST,
      timeoutMs: 600_000,
      maxSessionBytes: 10_000,
      signal: controller.signal,
    };
    if (full) {
      for (const [id, item] of state) {
        agent.persistDifferenceInMemory(id, Operation.Modify, INDEX, item.data);
      }
    }
    const syncing = agent.synchronizeModule(full ? Mode.Full : Mode.Delta, options);
    const early = syncing.then((r) => {
      throw new Error(`the sync ended before the held session: ${show(r)}`);
    });
    await Promise.race([atPoint, early]);
    early.catch(() => {});
    for (let i = 0; i < 3; i++) tryPersist();
    let closing: Promise<void> | undefined;
    if (ender === 'close') closing = agent.close();
    else controller.abort();
    tryPersist();
    const result = await syncing;
    await closing;
    const label = `${point}/${ender}/${full ? 'full' : 'delta'}`;
    counts.ends++;
    counts.byCase[label] = (counts.byCase[label] ?? 0) + 1;
    expect(result, `${label}, seed ${seed}: ${show(result)}`).toMatchObject({
      ok: false,
      reason: ender === 'close' ? 'closed' : 'aborted',
    });
    if (ender === 'abort') await agent.close();
    // Let any stray rejection surface before counting them.
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(unhandled, label).toEqual([]);
    expect(errors, label).toEqual([]);

    const raw = new Database(path, { readonly: true });
    expect(raw.pragma('integrity_check', { simple: true })).toBe('ok');
    raw.close();

    // No row lost: what the manager does not reflect is queued, and every row is a final state.
    const queue = new PersistentQueue(path);
    const rows = new Map(queue.inspect().map((row) => [row.id, row]));
    queue.close();
    counts.queuedAfter += rows.size;
    const docs = managerDocuments5(manager);
    const expected = expectedDocuments5(state);
    const ids = new Set([...Object.keys(docs), ...Object.keys(expected), ...rows.keys()]);
    for (const id of ids) {
      const row = rows.get(id);
      const want = state.get(id)?.data ?? null;
      if (row !== undefined) {
        if (want === null) expect(row.operation, `${label}: ${id}`).toBe(Operation.Delete);
        else expect(row.data, `${label}: ${id}`).toBe(want);
      } else if (!full) {
        // A Full's Cleans may have removed documents nobody changed: Delta only.
        expect(docs[id], `${label}: ${id} is neither on the manager nor queued`).toEqual(
          expected[id],
        );
      }
    }

    // A clean sync after reopening converges (a Full that was cut short is redone first).
    agent = openAgent5(path, manager.sessionTransport(AGENT_ID), logger);
    if (full) {
      for (const [id, item] of state) {
        agent.persistDifferenceInMemory(id, Operation.Modify, INDEX, item.data);
      }
      const again = await agent.synchronizeModule(Mode.Full, FAST);
      expect(again, show(again)).toMatchObject({ ok: true });
    }
    const last = await agent.synchronizeModule(Mode.Delta, { ...FAST, maxSessions: 1000 });
    expect(last, show(last)).toMatchObject({ ok: true });
    expect(agent.pendingCount).toBe(0);
    expect(managerDocuments5(manager), `${label}, seed ${seed}`).toEqual(expectedDocuments5(state));
    expect(errors).toEqual([]);
  } finally {
    await agent.close();
    await manager.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('5.0 wire: close() and abort while a session is in flight', () => {
  const perCase = envCount('ASP_RELIABILITY_CLOSES', 8);
  const seed = runSeed();

  afterAll(() => {
    console.log(`full-session shutdown: seed ${seed}, ${show(counts)}`);
  });

  const cases: [Point, Ender, boolean][] = [];
  for (const point of ['held', 'applied-held'] as Point[]) {
    for (const ender of ['close', 'abort'] as Ender[]) {
      for (const full of [false, true]) cases.push([point, ender, full]);
    }
  }
  for (const [i, [point, ender, full]] of cases.entries()) {
    it(`${ender} during a ${full ? 'Full' : 'Delta'} session ${point}: nothing lost, nothing unhandled`, async () => {
      for (let n = 0; n < perCase; n++) {
        const s = (seed + i * 1000 + n) >>> 0;
        try {
          await endDuringSession(point, ender, full, s);
        } catch (error) {
          console.log(
            `full-session shutdown: failed with seed ${s} (ASP_RELIABILITY_SEED=${seed})`,
          );
          throw error;
        }
      }
    }, 120_000);
  }
});
