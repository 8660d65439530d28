// Sessions cut by bytes for the Wazuh 5.0 FullSession driver, as the reference cuts them
// (wazuh/wazuh f838614611: persistent_queue_storage.cpp fetchAndMarkForSync and
// estimateSerializedItemBytes, agent_sync_protocol.cpp synchronizeDeltaByBlocks): a session is
// the longest prefix of the queue whose estimate (8 KiB + per item its UTF-8 id, index and data
// bytes + 512) stays within the cap less a 64 KiB grace, an item over the cap goes alone, at most
// 10 sessions per sync, and the first failure stops the rest and leaves them queued.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Operation } from '../../src/enums/operation.js';
import {
  CreateStatus,
  DEFAULT_MAX_SESSION_BYTES,
  estimateItemBytes,
  ITEM_OVERHEAD_BYTES,
  MAX_SESSIONS_PER_SYNC,
  type PersistentQueue,
  type QueueSession,
  runSessions,
  SESSION_GRACE_BYTES,
  SESSION_OVERHEAD_BYTES,
  type SessionOutcome,
  StorageError,
  SyncStatus,
  sessionBudget,
} from '../../src/queue/index.js';
import { fixture, repoRoot, useTempDir } from './helpers.js';

const { Create: C, Modify: M, Delete: D } = Operation;

// Ids k00..k99 and index 'i': data of 484 bytes makes each item's estimate exactly 1000 bytes.
const ITEM = 1000;
const dataOf = (n: number) => `{"n":${String(n).padStart(2, '0')},"pad":"${'x'.repeat(467)}"}`;
const id = (n: number) => `k${String(n).padStart(2, '0')}`;
/** A cap (no grace below 64 KiB) that holds exactly `items` items of ITEM bytes. */
const capFor = (items: number) => SESSION_OVERHEAD_BYTES + items * ITEM;

function fill(q: PersistentQueue, count: number, from = 0): void {
  for (let n = from; n < from + count; n++) q.persist(id(n), C, 'i', dataOf(n));
}

/** Runs sessions by hand until the queue is empty, each a success; returns their ids. */
function drain(q: PersistentQueue, max: number): string[][] {
  const out: string[][] = [];
  for (;;) {
    const s = q.takeSession(max);
    if (s.count === 0) return out;
    out.push(Array.from(s.rows(), (r) => r.id));
    q.completeSession(true);
  }
}

describe('PersistentQueue.takeSession: cutting by bytes', () => {
  const tmp = useTempDir();

  it('uses the reference constants and estimate', () => {
    expect(DEFAULT_MAX_SESSION_BYTES).toBe(5 * 1024 * 1024);
    expect(MAX_SESSIONS_PER_SYNC).toBe(10);
    expect(SESSION_GRACE_BYTES).toBe(64 * 1024);
    expect(SESSION_OVERHEAD_BYTES).toBe(8 * 1024);
    expect(ITEM_OVERHEAD_BYTES).toBe(512);
    expect(estimateItemBytes(id(1), 'i', dataOf(1))).toBe(ITEM);
    // UTF-8 bytes, not UTF-16 units: é is 2 bytes, 🎉 is 4 (2 units).
    expect(estimateItemBytes('é', 'ü', '🎉')).toBe(2 + 2 + 4 + 512);
    expect(sessionBudget(DEFAULT_MAX_SESSION_BYTES)).toBe(5 * 1024 * 1024 - 64 * 1024);
    expect(sessionBudget(64 * 1024 + 1)).toBe(1);
    expect(sessionBudget(64 * 1024)).toBe(64 * 1024);
    expect(sessionBudget(5000)).toBe(5000);
    expect(sessionBudget(0)).toBe(0);
  });

  it('cuts at the exact cap: a session may reach it, never pass it', () => {
    const q = tmp.open();
    fill(q, 10);
    const first = q.takeSession(capFor(3));
    expect(Array.from(first.rows(), (r) => r.id)).toEqual([id(0), id(1), id(2)]);
    expect(first.estimatedBytes).toBe(capFor(3));
    q.completeSession(true);
    expect(drain(q, capFor(3))).toEqual([[id(3), id(4), id(5)], [id(6), id(7), id(8)], [id(9)]]);

    const r = tmp.open(tmp.dbPath('one-byte-less.db'));
    fill(r, 5);
    expect(drain(r, capFor(3) - 1).map((s) => s.length)).toEqual([2, 2, 1]);
  });

  it('cuts long queues of varied items as the reference estimate says', () => {
    // 3,000 rows of varied sizes, against a model of the cut, for caps holding tens of rows,
    // exactly the first 1,024 (and one byte more), and thousands.
    const q = tmp.open();
    const rows = Array.from({ length: 3000 }, (_, n) => ({
      id: `r${n}`,
      data: 'x'.repeat((n * 37) % 900),
    }));
    q.persistMany(rows.map((r) => ({ id: r.id, operation: C, index: 'i', data: r.data })));
    const sizes = rows.map((r) => estimateItemBytes(r.id, 'i', r.data));
    // A cap whose budget holds exactly the first 1,024 rows.
    const oneBatch =
      SESSION_GRACE_BYTES +
      SESSION_OVERHEAD_BYTES +
      sizes.slice(0, 1024).reduce((a, b) => a + b, 0);
    for (const cap of [capFor(30), oneBatch, oneBatch + 1, capFor(1500), capFor(2500)]) {
      const budget = sessionBudget(cap);
      const expected: number[] = [];
      let estimate = SESSION_OVERHEAD_BYTES;
      let count = 0;
      for (const size of sizes) {
        if (count > 0 && estimate + size > budget) {
          expected.push(count);
          estimate = SESSION_OVERHEAD_BYTES;
          count = 0;
        }
        estimate += size;
        count++;
      }
      expected.push(count);
      // Every session of the queue in one take, then all returned to Pending for the next cap.
      const taken: string[] = [];
      const lengths: number[] = [];
      for (;;) {
        const session = q.takeNextSession(cap);
        if (session.count === 0) break;
        lengths.push(session.count);
        taken.push(...Array.from(session.rows(), (r) => r.id));
      }
      q.completeSessions(0, false);
      expect(lengths, `cap ${cap}`).toEqual(expected);
      expect(taken).toEqual(rows.map((r) => r.id));
    }
    expect(q.pendingCount()).toBe(rows.length);
  });

  it('counts UTF-8 bytes as the estimate does', () => {
    const q = tmp.open();
    // 242 × 'é' = 484 UTF-8 bytes (242 UTF-16 units): each item is 1000 bytes, not 758.
    for (let n = 0; n < 4; n++) q.persist(id(n), C, 'i', 'é'.repeat(242));
    const s = q.takeSession(capFor(3));
    expect(s.count).toBe(3);
    expect(s.estimatedBytes).toBe(
      SESSION_OVERHEAD_BYTES +
        [...s.rows()].reduce((t, r) => t + estimateItemBytes(r.id, r.index, r.data), 0),
    );
  });

  it('cuts the default cap (5 MiB) 64 KiB short, as the reference', () => {
    const q = tmp.open();
    const data = 'x'.repeat(100 * 1024);
    for (let n = 0; n < 60; n++) q.persist(id(n), C, 'i', data);
    const item = estimateItemBytes(id(0), 'i', data);
    const fits = Math.floor(
      (DEFAULT_MAX_SESSION_BYTES - SESSION_GRACE_BYTES - SESSION_OVERHEAD_BYTES) / item,
    );
    expect(fits).toBe(50);
    const s = q.takeSession();
    expect(s.count).toBe(fits);
    expect(s.estimatedBytes).toBeLessThanOrEqual(DEFAULT_MAX_SESSION_BYTES - SESSION_GRACE_BYTES);
  });

  it('an item larger than the cap goes alone, and the queue goes on after it', () => {
    const q = tmp.open();
    q.persist('huge-first', M, 'i', 'y'.repeat(20_000));
    fill(q, 2);
    q.persist('huge', M, 'i', 'z'.repeat(50_000));
    fill(q, 2, 2);
    const sessions: string[][] = [];
    const estimates: number[] = [];
    for (;;) {
      const s = q.takeSession(capFor(3));
      if (s.count === 0) break;
      sessions.push(Array.from(s.rows(), (r) => r.id));
      estimates.push(s.estimatedBytes);
      q.completeSession(true);
    }
    expect(sessions).toEqual([['huge-first'], [id(0), id(1)], ['huge'], [id(2), id(3)]]);
    expect(estimates[2]).toBe(SESSION_OVERHEAD_BYTES + 1 + 4 + 50_000 + 512);
  });

  it('keeps queue order across sessions; a coalesced row keeps its place and its latest content', () => {
    const q = tmp.open();
    fill(q, 8);
    q.persist(id(2), M, 'i', dataOf(99), 7n);
    q.persist('late', C, 'i', dataOf(50));
    const sessions = drain(q, capFor(3));
    expect(sessions.flat()).toEqual([...Array.from({ length: 8 }, (_, n) => id(n)), 'late']);
    expect(sessions.every((s) => s.length <= 3)).toBe(true);
  });

  it('returns each row with its current content, version and flag, and indices of values only', () => {
    const q = tmp.open();
    q.persist('a', C, 'idx-b', '{"a":1}', 5n);
    q.persist('b', D, 'idx-a', '', 2n ** 64n - 1n);
    q.persist('c', M, 'idx-ctx', '{"c":1}', 0n, true);
    q.persist('a', M, 'idx-b', '{"a":2}', 6n);
    const s = q.takeSession();
    const a = { id: 'a', index: 'idx-b', data: '{"a":2}', operation: M, version: 6n };
    const b = { id: 'b', index: 'idx-a', data: '', operation: D, version: 2n ** 64n - 1n };
    const c = { id: 'c', index: 'idx-ctx', data: '{"c":1}', operation: M, version: 0n };
    // The DataValue rows, then the DataContext rows: what the driver encodes.
    expect([...s.rows(false)]).toEqual([
      { ...a, dataContext: false },
      { ...b, dataContext: false },
    ]);
    expect([...s.rows(true)]).toEqual([{ ...c, dataContext: true }]);
    expect({ ...s, rows: [...s.rows()] }).toEqual({
      count: 3,
      rows: [
        { id: 'a', index: 'idx-b', data: '{"a":2}', operation: M, version: 6n, dataContext: false },
        {
          id: 'b',
          index: 'idx-a',
          data: '',
          operation: D,
          version: 2n ** 64n - 1n,
          dataContext: false,
        },
        {
          id: 'c',
          index: 'idx-ctx',
          data: '{"c":1}',
          operation: M,
          version: 0n,
          dataContext: true,
        },
      ],
      indices: ['idx-a', 'idx-b'],
      estimatedBytes:
        SESSION_OVERHEAD_BYTES +
        estimateItemBytes('a', 'idx-b', '{"a":2}') +
        estimateItemBytes('b', 'idx-a', '') +
        estimateItemBytes('c', 'idx-ctx', '{"c":1}'),
    });
    // The seed wire's readSeqs pages the same take.
    expect(q.readSeqs(0, 2, 10).map((r) => [r.seq, r.id])).toEqual([
      [0, 'a'],
      [1, 'b'],
      [2, 'c'],
    ]);
  });

  it('reads a session of many batches whole, in queue order, values and contexts apart', () => {
    const q = tmp.open();
    // 1,000 rows, every third a DataContext row: several read batches of each kind.
    const ids = Array.from({ length: 1000 }, (_, n) => `r${n}`);
    for (const [n, rowId] of ids.entries()) {
      q.persist(rowId, C, n % 3 === 0 ? 'ctx' : `i${n % 2}`, `{"n":${n}}`, BigInt(n), n % 3 === 0);
    }
    const s = q.takeSession(0);
    expect(s.count).toBe(1000);
    expect(s.indices).toEqual(['i0', 'i1']);
    expect(Array.from(s.rows(), (r) => r.id)).toEqual(ids);
    expect(Array.from(s.rows(false), (r) => [r.id, r.version])).toEqual(
      ids.flatMap((rowId, n) => (n % 3 === 0 ? [] : [[rowId, BigInt(n)]])),
    );
    expect(Array.from(s.rows(true), (r) => r.id)).toEqual(ids.filter((_, n) => n % 3 === 0));
  });

  it("refuses to read a session's rows once the queue changed after the take, or closed", () => {
    const q = tmp.open();
    fill(q, 4);
    const first = q.takeNextSession(capFor(2));
    const second = q.takeNextSession(capFor(2)); // a write: the first session's rows may differ
    expect(() => [...first.rows()]).toThrow(/the queue changed after the session was taken/);
    expect(Array.from(second.rows(), (r) => r.id)).toEqual([id(2), id(3)]);
    // A change persisted meanwhile is applied (written) by the next call that reads the queue.
    q.persist(id(3), M, 'i', dataOf(33));
    expect(q.pendingCount()).toBe(0);
    expect(() => [...second.rows()]).toThrow(/the queue changed after the session was taken/);
    q.completeSessions(2);
    const last = q.takeSession(capFor(2));
    expect(last.count).toBe(1);
    q.close();
    expect(() => [...last.rows()]).toThrow(StorageError);
  });

  it('0 means no cap: the whole queue', () => {
    const q = tmp.open();
    fill(q, 30);
    expect(q.takeSession(0).count).toBe(30);
  });

  it('refuses a cap that is not a non-negative safe integer', () => {
    const q = tmp.open();
    fill(q, 1);
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => q.takeSession(bad)).toThrow(RangeError);
    }
    expect(q.inspect()[0]?.syncStatus).toBe(SyncStatus.Pending);
  });

  it('an empty queue starts nothing', () => {
    const q = tmp.open();
    const s = q.takeSession();
    expect({ ...s, rows: [...s.rows()] }).toEqual({
      count: 0,
      rows: [],
      indices: [],
      estimatedBytes: 0,
    });
    expect(q.take()).toEqual({ size: 0, indices: [] }); // no take is active
  });

  it('shares the one active take with the seed wire', () => {
    const q = tmp.open();
    fill(q, 4);
    q.takeSession(capFor(2));
    expect(() => q.takeSession(capFor(2))).toThrow(/already active/);
    expect(() => q.take()).toThrow(/already active/);
    q.completeSession(true);
    q.take();
    expect(() => q.takeSession()).toThrow(/already active/);
    q.complete(true);
    expect(q.size()).toBe(0);
  });

  it('success removes exactly the session rows; the rest stays Pending', () => {
    const q = tmp.open();
    fill(q, 10);
    q.takeSession(capFor(3));
    expect(q.inspect().map((e) => e.syncStatus)).toEqual([1, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
    q.completeSession(true);
    expect(q.inspect().map((e) => [e.id, e.syncStatus])).toEqual(
      Array.from({ length: 7 }, (_, n) => [id(n + 3), SyncStatus.Pending]),
    );
  });

  it('success of a take over a thousand rows removes exactly its rows, changed ones excepted', () => {
    // 2,500 rows taken of 4,000, removed in batches of 1,000 from the take's end back; rows
    // changed meanwhile (in the first, a middle and the last batch) and Pending rows stay.
    const q = tmp.open();
    // Items of ITEM bytes: 50 sessions of 50.
    const ids = Array.from({ length: 4000 }, (_, n) => `r${String(n).padStart(4, '0')}`);
    q.persistMany(ids.map((id) => ({ id, operation: C, index: 'i', data: 'x'.repeat(482) })));
    let taken = 0;
    for (let n = 0; n < 50; n++) taken += q.takeNextSession(capFor(50)).count;
    expect(taken).toBe(2500);
    const changed = ['r0000', 'r0999', 'r1000', 'r1777', 'r2499'];
    for (const id of changed) q.persist(id, M, 'i', '{"changed":true}');
    q.completeSessions(50);
    const left = q.inspect();
    expect(left.map((e) => e.id)).toEqual([...changed, ...ids.slice(2500)]);
    expect(left.every((e) => e.syncStatus === SyncStatus.Pending)).toBe(true);
    expect(left.slice(0, 5).every((e) => e.data === '{"changed":true}')).toBe(true);
  });

  it('failure returns the session rows to Pending, in place, and the next session retakes them', () => {
    const q = tmp.open();
    fill(q, 10);
    const first = Array.from(q.takeSession(capFor(3)).rows(), (r) => r.id);
    q.completeSession(false);
    expect(q.size()).toBe(10);
    expect(q.inspect().every((e) => e.syncStatus === SyncStatus.Pending)).toBe(true);
    expect(Array.from(q.takeSession(capFor(3)).rows(), (r) => r.id)).toEqual(first);
  });

  it('a change persisted during a session survives its completion', () => {
    const q = tmp.open();
    fill(q, 6);
    const s = q.takeSession(capFor(3));
    expect(Array.from(s.rows(), (r) => r.id)).toEqual([id(0), id(1), id(2)]);
    q.persist(id(0), D, 'i', '', 3n); // a taken Create deleted: the manager may have it
    q.persist(id(1), M, 'i', '{"new":true}', 9n, true);
    q.persist('new', C, 'i', '{"n":1}');
    q.completeSession(true);
    const left = new Map(q.inspect().map((e) => [e.id, e]));
    expect([...left.keys()]).toEqual([id(0), id(1), id(3), id(4), id(5), 'new']);
    expect(left.get(id(0))).toMatchObject({ operation: D, version: 3n, syncStatus: 0 });
    expect(left.get(id(1))).toMatchObject({
      operation: M,
      data: '{"new":true}',
      version: 9n,
      dataContext: true,
      syncStatus: SyncStatus.Pending,
      createStatus: CreateStatus.Existing,
    });
    expect(left.get('new')).toMatchObject({ createStatus: CreateStatus.New });
  });

  for (const mode of ['session', 'carry'] as const) {
    const what = mode === 'carry' ? "with a Delta's sessions carried" : 'mid-session';
    it(`a crash ${what} (SIGKILL) leaves every row Pending, with its version, on reopen`, async () => {
      const path = tmp.dbPath();
      const sessionIds = await killedChild(path, mode);
      expect(sessionIds.length).toBeGreaterThan(1);
      expect(sessionIds).toEqual(Array.from({ length: sessionIds.length }, (_, i) => `k${i}`));

      const q = tmp.open(path);
      const entries = q.inspect();
      expect(entries.map((e) => [e.id, e.syncStatus, e.version, e.dataContext ?? false])).toEqual(
        Array.from({ length: 30 }, (_, i) => [
          `k${i}`,
          SyncStatus.Pending,
          i === 0 ? 100n : BigInt(i + 1),
          i !== 0 && i % 3 === 0,
        ]),
      );
      expect(entries[0]).toMatchObject({ operation: M, data: '{"changed":true}' });
      // The sessions may have reached the manager: their created rows count as seen.
      expect(entries.map((e) => e.createStatus)).toEqual(
        Array.from({ length: 30 }, (_, i) => (i < sessionIds.length ? 0 : CreateStatus.New)),
      );
      expect(q.carriedSessions).toBe(0);
      const again = Array.from({ length: mode === 'carry' ? 2 : 1 }, () =>
        Array.from(q.takeNextSession(capFor(3)).rows(), (r) => r.id),
      );
      expect(again.flat()).toEqual(sessionIds);
    });
  }

  /** Runs the session child until it holds its take, kills it (SIGKILL), returns the ids taken. */
  function killedChild(path: string, mode: 'session' | 'carry'): Promise<string[]> {
    return new Promise<string[]>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', fixture('session-child.ts'), path, String(capFor(3)), mode],
        { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      let stderr = '';
      let ids: string[] | undefined;
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (chunk: string) => {
        out += chunk;
        const line = /#session (\S+)\n/.exec(out);
        if (line !== null && ids === undefined) {
          ids = (line[1] as string).split(',');
          child.kill('SIGKILL');
        }
      });
      child.stderr.on('data', (chunk) => {
        stderr += chunk;
      });
      child.on('error', reject);
      child.on('close', (_code, signal) =>
        signal === 'SIGKILL' && ids !== undefined
          ? resolve(ids)
          : reject(new Error(`session child ended without a session: ${stderr}`)),
      );
    });
  }
});

describe('runSessions: at most N sessions per sync, the first failure stops the rest', () => {
  const tmp = useTempDir();

  /** A send that records each session's ids and answers with `outcomes[i]` (default true). */
  function recorder(outcomes: SessionOutcome[] = []) {
    const sent: string[][] = [];
    const send = async (s: QueueSession): Promise<SessionOutcome> => {
      sent.push(Array.from(s.rows(), (r) => r.id));
      await Promise.resolve();
      return outcomes[sent.length - 1] ?? true;
    };
    return { sent, send };
  }

  /** A queue of `items` rows after a run of `maxSessions` sessions of 2 that carried them. */
  async function carriedQueue(items: number, maxSessions: number): Promise<PersistentQueue> {
    const q = tmp.open();
    fill(q, items);
    await runSessions(q, recorder().send, { maxSessionBytes: capFor(2), maxSessions });
    expect(q.carriedSessions).toBe(maxSessions);
    return q;
  }

  it('runs at most maxSessions (default 10) sessions, then stops with the rest queued', async () => {
    const q = tmp.open();
    fill(q, 25);
    const { sent, send } = recorder();
    expect(await runSessions(q, send, { maxSessionBytes: capFor(2) })).toEqual({
      succeeded: 10,
      success: true,
      stopped: false,
    });
    expect(sent).toEqual(Array.from({ length: 10 }, (_, i) => [id(2 * i), id(2 * i + 1)]));
    // Stopped at the limit with fewer queued than it took: the sessions are carried to the next
    // run, their rows in the take (sent, not Pending) until it ends.
    expect(q.carriedSessions).toBe(10);
    expect(q.pendingCount()).toBe(5);
    expect(q.inspect().map((e) => [e.id, e.syncStatus])).toEqual(
      Array.from({ length: 25 }, (_, n) => [
        id(n),
        n < 20 ? SyncStatus.Syncing : SyncStatus.Pending,
      ]),
    );

    const next = recorder();
    expect(await runSessions(q, next.send, { maxSessionBytes: capFor(2), maxSessions: 2 })).toEqual(
      { succeeded: 2, success: true, stopped: false },
    );
    expect(next.sent).toEqual([
      [id(20), id(21)],
      [id(22), id(23)],
    ]);
    // A take carries once: this run ended it, removing both runs' rows.
    expect(q.carriedSessions).toBe(0);
    expect(q.inspect().map((e) => [e.id, e.syncStatus])).toEqual([[id(24), SyncStatus.Pending]]);
    const last = recorder();
    expect(await runSessions(q, last.send, { maxSessionBytes: capFor(2) })).toMatchObject({
      succeeded: 1,
      success: true,
    });
    expect(last.sent).toEqual([[id(24)]]);
    expect(q.size()).toBe(0);
  });

  it('a run that sends the rest after a carried one leaves the queue empty', async () => {
    const q = await carriedQueue(12, 3);
    const next = recorder();
    expect(await runSessions(q, next.send, { maxSessionBytes: capFor(2) })).toEqual({
      succeeded: 3,
      success: true,
      stopped: false,
    });
    expect(next.sent).toEqual([
      [id(6), id(7)],
      [id(8), id(9)],
      [id(10), id(11)],
    ]);
    expect(q.size()).toBe(0);
  });

  it('a change persisted while a take is carried is never held back by it', async () => {
    const q = await carriedQueue(12, 3);
    // Reaching SQLite, the change first ends the carried take (its rows applied, removed): the
    // item is Pending with its new content, and the next run sends it.
    q.persist(id(1), M, 'i', '{"changed":true}');
    expect(q.pendingCount()).toBe(7);
    expect(q.carriedSessions).toBe(0);
    expect(q.size()).toBe(7);
    const next = recorder();
    await runSessions(q, next.send, { maxSessionBytes: capFor(2) });
    expect(next.sent).toEqual([[id(6), id(7)], [id(8), id(9)], [id(10), id(11)], [id(1)]]);
    expect(q.size()).toBe(0);
  });

  it('a change persisted during the run that took on a carried take waits for its end, as in any run', async () => {
    const q = await carriedQueue(8, 2);
    const sent: string[][] = [];
    await runSessions(
      q,
      (s) => {
        sent.push(Array.from(s.rows(), (r) => r.id));
        if (sent.length === 1) q.persist(id(0), M, 'i', '{"during":true}');
        return true;
      },
      { maxSessionBytes: capFor(2) },
    );
    expect(sent).toEqual([
      [id(4), id(5)],
      [id(6), id(7)],
    ]);
    expect(q.inspect().map((e) => [e.id, e.data, e.syncStatus])).toEqual([
      [id(0), '{"during":true}', SyncStatus.Pending],
    ]);
  });

  it('carries only when no more is queued than the run took', async () => {
    const q = tmp.open();
    fill(q, 10);
    // 4 taken, 6 queued: the next run cannot send them all, so this one's rows go now.
    await runSessions(q, recorder().send, { maxSessionBytes: capFor(2), maxSessions: 2 });
    expect(q.carriedSessions).toBe(0);
    expect(q.size()).toBe(6);
    await runSessions(q, recorder().send, { maxSessionBytes: capFor(2), maxSessions: 2 });
    expect(q.carriedSessions).toBe(2);
    expect(q.size()).toBe(6);
    expect(q.pendingCount()).toBe(2);
    // Nothing left after the limit: nothing to carry for.
    await runSessions(q, recorder().send, { maxSessionBytes: capFor(2), maxSessions: 1 });
    expect(q.carriedSessions).toBe(0);
    expect(q.size()).toBe(0);
  });

  it('a failure after a carried run removes the carried rows and requeues the rest', async () => {
    const q = await carriedQueue(8, 2);
    const next = recorder([true, { success: false, dataSent: false }]);
    expect(await runSessions(q, next.send, { maxSessionBytes: capFor(2) })).toEqual({
      succeeded: 1,
      success: false,
      stopped: false,
    });
    expect(q.carriedSessions).toBe(0);
    expect(q.inspect().map((e) => [e.id, e.syncStatus])).toEqual(
      [6, 7].map((n) => [id(n), SyncStatus.Pending]),
    );
  });

  it('a carried take ends as a success before anything that changes the queue or needs no active take, close included', () => {
    const carried = (path: string) => {
      const q = tmp.open(path);
      fill(q, 6);
      q.takeNextSession(capFor(2));
      q.takeNextSession(capFor(2));
      q.carrySessions();
      return q;
    };
    for (const [name, act] of [
      ['take', (q: PersistentQueue) => q.take()],
      ['takeSession', (q: PersistentQueue) => q.takeSession(capFor(2))],
      ['clearDataContext', (q: PersistentQueue) => q.clearDataContext()],
      ['removeIndices', (q: PersistentQueue) => q.removeIndices(['other'])],
      [
        'persistMany',
        (q: PersistentQueue) => q.persistMany([{ id: 'x', operation: C, index: 'i', data: '{}' }]),
      ],
    ] as const) {
      const q = carried(tmp.dbPath(`${name}.db`));
      act(q);
      expect(q.carriedSessions, name).toBe(0);
      q.complete(false);
      expect(
        q
          .inspect()
          .map((e) => e.id)
          .filter((e) => e !== 'x'),
        name,
      ).toEqual([id(4), id(5)]);
    }
    const closed = tmp.dbPath('close.db');
    carried(closed).close();
    expect(
      tmp
        .open(closed)
        .inspect()
        .map((e) => e.id),
    ).toEqual([id(4), id(5)]);
    expect(() => tmp.open(tmp.dbPath('none.db')).carrySessions()).toThrow(/no session to carry/);
  });

  it('the first failure returns its session to Pending and leaves the rest queued, in order', async () => {
    const q = tmp.open();
    fill(q, 12);
    const { sent, send } = recorder([true, true, false, true]);
    expect(await runSessions(q, send, { maxSessionBytes: capFor(3) })).toEqual({
      succeeded: 2,
      success: false,
      stopped: false,
    });
    expect(sent).toHaveLength(3);
    expect(q.inspect().map((e) => [e.id, e.syncStatus])).toEqual(
      Array.from({ length: 6 }, (_, n) => [id(6 + n), SyncStatus.Pending]),
    );
    const retry = recorder();
    await runSessions(q, retry.send, { maxSessionBytes: capFor(3) });
    expect(retry.sent).toEqual([
      [id(6), id(7), id(8)],
      [id(9), id(10), id(11)],
    ]);
  });

  it('ends the run at once: changes made meanwhile survive, the failed session is requeued', async () => {
    // The sessions of one run share a take; the rows of those that went through are removed
    // when the run ends, and a change made during the run to any taken row is kept.
    const q = tmp.open();
    fill(q, 9);
    const changed = (n: number) => `{"n":${n},"changed":true}`;
    const sent: Array<Array<[string, string]>> = [];
    const during: Array<() => void> = [
      () => q.persist(id(4), M, 'i', changed(4)), // not taken yet: goes in session 2
      () => q.persist(id(1), M, 'i', changed(1)), // session 1 went through: requeued
      () => {
        q.persist(id(6), M, 'i', changed(6)); // in the failed session: requeued changed
        q.persist(id(7), D, 'i', ''); // created and deleted, never sent: dropped
      },
    ];
    const outcomes: SessionOutcome[] = [true, true, { success: false, dataSent: false }];
    const result = await runSessions(
      q,
      (s) => {
        sent.push(Array.from(s.rows(), (r) => [r.id, r.data]));
        during[sent.length - 1]?.();
        return outcomes[sent.length - 1] ?? true;
      },
      { maxSessionBytes: capFor(3) },
    );
    expect(result).toEqual({ succeeded: 2, success: false, stopped: false });
    expect(sent.map((ids) => ids.map(([i]) => i))).toEqual([
      [id(0), id(1), id(2)],
      [id(3), id(4), id(5)],
      [id(6), id(7), id(8)],
    ]);
    expect(sent[1]?.[1]).toEqual([id(4), changed(4)]);
    expect(q.inspect().map((e) => [e.id, e.data, e.syncStatus, e.createStatus])).toEqual([
      [id(1), changed(1), SyncStatus.Pending, CreateStatus.Existing],
      [id(6), changed(6), SyncStatus.Pending, CreateStatus.New],
      [id(8), dataOf(8), SyncStatus.Pending, CreateStatus.New],
    ]);
    const next: string[][] = [];
    await runSessions(q, (s) => {
      next.push(Array.from(s.rows(), (r) => r.id));
      return true;
    });
    expect(next).toEqual([[id(1), id(6), id(8)]]);
    expect(q.size()).toBe(0);
  });

  it('a failure counts as possibly sent unless told otherwise', async () => {
    for (const [outcome, left] of [
      [false, [['a', D]]], // the Delete of a create that may have been indexed is kept
      [{ success: false }, [['a', D]]],
      [{ success: false, dataSent: false }, []], // the reference: dropped
    ] as const) {
      const q = tmp.open(tmp.dbPath(`q-${JSON.stringify(outcome)}.db`));
      q.persist('a', C, 'i', '{}');
      await runSessions(q, (s) => {
        expect(Array.from(s.rows(), (r) => r.id)).toEqual(['a']);
        q.persist('a', D, 'i', '');
        return outcome;
      });
      expect(q.inspect().map((e) => [e.id, e.operation])).toEqual(left);
    }
  });

  it('a send that throws fails its session (rows back to Pending) and the error propagates', async () => {
    const q = tmp.open();
    fill(q, 4);
    const boom = new Error('transport down');
    await expect(
      runSessions(q, () => Promise.reject(boom), { maxSessionBytes: capFor(2) }),
    ).rejects.toBe(boom);
    expect(q.inspect().every((e) => e.syncStatus === SyncStatus.Pending)).toBe(true);
    expect(q.takeSession(capFor(2)).count).toBe(2); // no take left active
  });

  it('stops before the next session once the signal is aborted', async () => {
    const q = tmp.open();
    fill(q, 6);
    const aborted = new AbortController();
    aborted.abort();
    const none = recorder();
    expect(await runSessions(q, none.send, { signal: aborted.signal })).toEqual({
      succeeded: 0,
      success: false,
      stopped: true,
    });
    expect(none.sent).toEqual([]);

    const stop = new AbortController();
    const sent: number[] = [];
    const result = await runSessions(
      q,
      (s) => {
        sent.push(s.count);
        stop.abort();
        return true;
      },
      { maxSessionBytes: capFor(2), signal: stop.signal },
    );
    expect(result).toEqual({ succeeded: 1, success: true, stopped: true });
    expect(q.size()).toBe(4);
  });

  it('refuses maxSessions below 1', async () => {
    const q = tmp.open();
    await expect(runSessions(q, () => true, { maxSessions: 0 })).rejects.toThrow(RangeError);
  });
});
