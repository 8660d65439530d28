import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { Operation } from '../../src/enums/operation.js';
import {
  CreateStatus,
  PersistentQueue,
  type QueueChange,
  StorageError,
  SyncStatus,
} from '../../src/queue/index.js';
import { cases, toChanges } from './cases.js';
import { peekNextTake, useTempDir } from './helpers.js';

const { Create: C, Modify: M, Delete: D } = Operation;

const change = (id: string, operation: Operation, index = 'idx-a', data = `{"id":"${id}"}`) => ({
  id,
  operation,
  index,
  data,
});

describe('PersistentQueue.persistMany', () => {
  const tmp = useTempDir();

  for (const c of cases) {
    it(`applies the rules like persist: case ${c.name}`, () => {
      const q = tmp.open();
      q.persistMany(toChanges(c.before, 0));
      if (c.during !== undefined) {
        q.take();
        q.persistMany(toChanges(c.during, 1));
        q.complete(c.outcome === 'success');
      }
      const next = peekNextTake(q);
      expect(next.size).toBe(c.rows);
      if (c.firstOp !== undefined) expect(next.ops[0]).toBe(c.firstOp);
    });
  }

  it('matches persist() row for row on a mixed batch', () => {
    const batch: QueueChange[] = [];
    for (let i = 0; i < 300; i++) {
      batch.push(change(`id-${i % 37}`, ([C, M, D] as const)[(i * 7) % 3] ?? C, `idx-${i % 4}`));
    }
    const one = tmp.open(tmp.dbPath('one.db'));
    const many = tmp.open(tmp.dbPath('many.db'));
    for (const c of batch) one.persist(c.id, c.operation, c.index, c.data);
    many.persistMany(batch);
    expect(many.inspect()).toEqual(one.inspect());
  });

  it('is all-or-nothing: a change SQLite rejects leaves the queue exactly as before', () => {
    const q = tmp.open();
    q.persistMany([change('a', C), change('b', M), change('c', C)]);
    q.take();
    q.persist('a', M, 'idx-a', 'updated');
    const before = q.inspect();

    // NoOp is not a queueable operation: the CHECK constraint rejects the third change.
    const bad = [change('b', D), change('new', C), change('x', Operation.NoOp), change('c', D)];
    const err = (() => {
      try {
        q.persistMany(bad);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).message).toMatch(/^persistent queue: cannot persist changes: /);
    expect((err as StorageError).message).toMatch(/CHECK constraint failed/);
    expect((err as StorageError).cause).toBeInstanceOf(Database.SqliteError);
    expect(q.inspect()).toEqual(before);
  });

  it('fails with a StorageError once the queue is closed', () => {
    const q = tmp.open();
    q.close();
    expect(() => q.persistMany([change('a', C)])).toThrow(StorageError);
    expect(() => q.persistMany([change('a', C)])).toThrow(/closed/);
  });

  it('accepts an empty batch', () => {
    const q = tmp.open();
    q.persistMany([]);
    expect(q.size()).toBe(0);
  });
});

describe('PersistentQueue.take ordering', () => {
  const tmp = useTempDir();

  it('numbers rows by first insert, coalescing keeps the position', () => {
    const q = tmp.open();
    q.persist('c', C, 'idx-z', '1');
    q.persist('a', C, 'idx-b', '1');
    q.persist('b', M, 'idx-b', '1');
    q.persist('c', M, 'idx-a', '2'); // keeps c first, moves it to idx-a
    q.persist('d', C, 'idx-a', '1');
    q.persist('d', D, 'idx-a', '2'); // New and Pending: gone
    q.persist('d', C, 'idx-m', '3'); // back, now last
    const taken = q.take();
    expect(taken).toEqual({ size: 4, indices: ['idx-a', 'idx-b', 'idx-m'] });
    expect(q.readSeqs(0, 10, 10)).toEqual([
      { seq: 0, id: 'c', index: 'idx-a', data: '2', operation: M },
      { seq: 1, id: 'a', index: 'idx-b', data: '1', operation: C },
      { seq: 2, id: 'b', index: 'idx-b', data: '1', operation: M },
      { seq: 3, id: 'd', index: 'idx-m', data: '3', operation: C },
    ]);
  });

  it('takes only rows that were Pending; rows added during a sync wait for the next take', () => {
    const q = tmp.open();
    q.persistMany([change('a', C), change('b', C)]);
    expect(q.take().size).toBe(2);
    q.persist('c', C, 'idx-new', '{}');
    q.persist('a', M, 'idx-a', 'a2');
    expect(q.pendingCount()).toBe(1);
    expect(q.size()).toBe(3);
    q.complete(true);
    // a went back to Pending after c was inserted, yet keeps its original position.
    expect(q.take()).toEqual({ size: 2, indices: ['idx-a', 'idx-new'] });
    expect(q.readSeqs(0, 1, 10).map((r) => [r.seq, r.id, r.data])).toEqual([
      [0, 'a', 'a2'],
      [1, 'c', '{}'],
    ]);
  });

  it('refuses a second take while one is active, and allows one after complete', () => {
    const q = tmp.open();
    q.persist('a', C, 'i', '{}');
    q.take();
    let err: unknown;
    try {
      q.take();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(StorageError);
    expect((err as Error).message).toMatch(/already active/);
    q.complete(false);
    expect(q.take().size).toBe(1);
  });

  it('an empty take is not an active take; complete without a take is a no-op', () => {
    const q = tmp.open();
    q.complete(true);
    q.complete(false);
    expect(q.take()).toEqual({ size: 0, indices: [] });
    expect(q.take()).toEqual({ size: 0, indices: [] });
    expect(q.readSeqs(0, 100, 100)).toEqual([]);
  });

  it('complete(true) keeps survivors in order whichever way it drops the synced rows', () => {
    // Few survivors (copy-aside path) and many survivors (row-by-row path).
    for (const [synced, during] of [
      [200, 5],
      [20, 30],
    ] as const) {
      const q = new PersistentQueue(tmp.dbPath(`complete-${synced}.db`));
      try {
        q.persistMany(Array.from({ length: synced }, (_, i) => change(`s${i}`, C)));
        q.take();
        const changes: QueueChange[] = [];
        for (let i = 0; i < during; i++) {
          changes.push(change(`p${i}`, M, 'idx-p', `p${i}`)); // new, Pending
          if (i * 3 < synced) changes.push(change(`s${i * 3}`, i % 2 ? D : M, 'idx-s', `u${i}`));
        }
        q.persistMany(changes);
        q.complete(true);
        const updatedIds = changes.filter((c) => c.id.startsWith('s')).map((c) => c.id);
        const expected = [...updatedIds, ...Array.from({ length: during }, (_, i) => `p${i}`)];
        const entries = q.inspect();
        expect(entries.map((e) => e.id)).toEqual(expected);
        for (const e of entries) {
          expect(e).toMatchObject({
            syncStatus: SyncStatus.Pending,
            createStatus: CreateStatus.Existing,
            inFlight: Operation.NoOp,
            seq: null,
          });
        }
        // The survivors still coalesce and keep their order.
        q.persist('p0', M, 'idx-p', 'again');
        const next = q.take();
        expect(next.size).toBe(expected.length);
        expect(q.readSeqs(0, next.size, next.size).map((r) => r.id)).toEqual(expected);
      } finally {
        q.close();
      }
    }
  });
});

describe('PersistentQueue.readSeqs', () => {
  const tmp = useTempDir();

  function filled(n: number): PersistentQueue {
    const q = tmp.open();
    q.persistMany(Array.from({ length: n }, (_, i) => change(`id-${i}`, C, `idx-${i % 3}`)));
    expect(q.take().size).toBe(n);
    return q;
  }

  it('pages through the take in seq order', () => {
    const q = filled(1000);
    const seen: number[] = [];
    for (let from = 0; ; from += 128) {
      const page = q.readSeqs(from, 999, 128);
      if (page.length === 0) break;
      seen.push(...page.map((r) => r.seq));
    }
    expect(seen).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });

  it('handles ranges, limits and ranges past the end', () => {
    const q = filled(10);
    expect(q.readSeqs(3, 5, 100).map((r) => r.seq)).toEqual([3, 4, 5]);
    expect(q.readSeqs(3, 5, 2).map((r) => r.seq)).toEqual([3, 4]);
    expect(q.readSeqs(7, 7, 1)).toEqual([
      { seq: 7, id: 'id-7', index: 'idx-1', data: '{"id":"id-7"}', operation: C },
    ]);
    expect(q.readSeqs(8, 50, 100).map((r) => r.seq)).toEqual([8, 9]);
    expect(q.readSeqs(10, 20, 100)).toEqual([]);
    expect(q.readSeqs(5, 4, 100)).toEqual([]);
    expect(q.readSeqs(0, 9, 0)).toEqual([]);
    expect(q.readSeqs(-5, 0, 100).map((r) => r.seq)).toEqual([0]);
  });

  it('returns the current content of rows changed during the sync', () => {
    const q = filled(5);
    q.persist('id-2', M, 'idx-moved', 'new data');
    q.persist('id-4', D, 'idx-1', '{}');
    q.persist('other', C, 'idx-0', '{}'); // Pending, not part of the take
    expect(q.readSeqs(0, 10, 10).map((r) => [r.seq, r.id, r.index, r.data, r.operation])).toEqual([
      [0, 'id-0', 'idx-0', '{"id":"id-0"}', C],
      [1, 'id-1', 'idx-1', '{"id":"id-1"}', C],
      [2, 'id-2', 'idx-moved', 'new data', M],
      [3, 'id-3', 'idx-0', '{"id":"id-3"}', C],
      [4, 'id-4', 'idx-1', '{}', D],
    ]);
    expect(q.inspect()[2]).toMatchObject({ syncStatus: SyncStatus.SyncingUpdated, inFlight: C });
  });
});

describe('PersistentQueue.pendingCount', () => {
  const tmp = useTempDir();

  it('is exact after every kind of write, though it reuses a count nothing has changed since', () => {
    const q = tmp.open();
    const pending = () => q.inspect().filter((e) => e.syncStatus === SyncStatus.Pending).length;
    const steps: [string, () => unknown][] = [
      ['persistMany', () => q.persistMany([change('a', C), change('b', C), change('c', C)])],
      ['persist (logged)', () => q.persist('d', C, 'idx-b', '{}')],
      ['persist of a queued id (logged)', () => q.persist('a', M, 'idx-a', '{"v":2}')],
      ['take', () => q.take()],
      ['persist during the take', () => q.persist('e', C, 'idx-a', '{}')],
      ['change of a taken row', () => q.persist('b', M, 'idx-a', '{"v":2}')],
      ['complete', () => q.complete(true)],
      ['takeNextSession', () => q.takeNextSession(0)],
      ['completeSessions (failure)', () => q.completeSessions(0, false)],
      ['removeIndices', () => q.removeIndices(['idx-b'])],
      ['persist a Delete of a New row', () => q.persist('e', D, 'idx-a', '{}')],
    ];
    expect(q.pendingCount()).toBe(0);
    for (const [name, step] of steps) {
      step();
      // Asked twice: the second answer comes from the count the first one made.
      expect([q.pendingCount(), q.pendingCount()], name).toEqual([pending(), pending()]);
    }
    expect(q.pendingCount()).toBeGreaterThan(0);
  });
});

describe('PersistentQueue crash recovery', () => {
  const tmp = useTempDir();

  it('reopening puts an interrupted take back to Pending, keeping deletes the manager may need', () => {
    // The process may have died after the manager indexed the take (End sent, EndAck not yet
    // read), so a row created before and deleted during the sync must still send its Delete:
    // dropping it (the reference's case 8) could leave the document on the manager for ever.
    const path = tmp.dbPath();
    const q = new PersistentQueue(path);
    q.persistMany([change('keep', C), change('gone', C), change('mod', M), change('del', M)]);
    q.take();
    q.persist('gone', D, 'idx-a', '{}');
    q.persist('mod', M, 'idx-a', 'mod2');
    q.persist('del', D, 'idx-a', '{}');
    q.persist('late', C, 'idx-a', '{}');
    q.close(); // no complete(): as if the process died

    const reopened = tmp.open(path);
    const entries = reopened.inspect();
    expect(entries.map((e) => [e.id, e.operation, e.data, e.createStatus])).toEqual([
      ['keep', C, '{"id":"keep"}', CreateStatus.Existing],
      ['gone', D, '{}', CreateStatus.Existing],
      ['mod', M, 'mod2', CreateStatus.Existing],
      ['del', D, '{}', CreateStatus.Existing],
      ['late', C, '{}', CreateStatus.New],
    ]);
    for (const e of entries) {
      expect(e).toMatchObject({
        syncStatus: SyncStatus.Pending,
        inFlight: Operation.NoOp,
        seq: null,
      });
    }
    expect(reopened.pendingCount()).toBe(5);
    expect(reopened.take().size).toBe(5);
  });

  it('a failed take whose data never left drops rows created before and deleted during it', () => {
    const path = tmp.dbPath();
    const q = tmp.open(path);
    q.persistMany([change('keep', C), change('gone', C)]);
    q.take();
    q.persist('gone', D, 'idx-a', '{}'); // case 8: New, deleted during the sync
    q.complete(false, false);
    expect(q.inspect().map((e) => [e.id, e.createStatus])).toEqual([['keep', CreateStatus.New]]);
  });

  it('keeps every committed change across close and reopen', () => {
    const path = tmp.dbPath();
    const q = new PersistentQueue(path);
    q.persistMany(Array.from({ length: 100 }, (_, i) => change(`id-${i}`, M)));
    q.close();
    expect(tmp.open(path).size()).toBe(100);
  });
});

describe('PersistentQueue storage', () => {
  const tmp = useTempDir();

  it('creates the database (and its WAL files) readable by the owner only', () => {
    const path = tmp.dbPath();
    const q = tmp.open(path);
    q.persist('a', C, 'i', '{}');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    for (const suffix of ['-wal', '-shm']) {
      expect(existsSync(path + suffix)).toBe(true);
      expect(statSync(path + suffix).mode & 0o777).toBe(0o600);
    }
    expect(new Database(path, { readonly: true }).pragma('journal_mode', { simple: true })).toBe(
      'wal',
    );
  });

  it('reports a missing directory as a StorageError', () => {
    const path = join(tmp.dir(), 'no', 'such', 'dir', 'q.db');
    expect(() => new PersistentQueue(path)).toThrow(StorageError);
    expect(() => new PersistentQueue(path)).toThrow(
      `persistent queue: cannot open ${path}: directory ${join(tmp.dir(), 'no', 'such', 'dir')} does not exist`,
    );
    expect(existsSync(join(tmp.dir(), 'no'))).toBe(false);
  });

  it('reports a file that is not a database as a StorageError carrying the SqliteError', () => {
    const path = tmp.dbPath('junk.db');
    writeFileSync(path, 'not a database, just some text '.repeat(200));
    let err: unknown;
    try {
      new PersistentQueue(path);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).name).toBe('StorageError');
    expect((err as StorageError).message).toBe(
      `persistent queue: cannot open ${path}: file is not a database`,
    );
    expect((err as StorageError).cause).toBeInstanceOf(Database.SqliteError);
  });

  it('refuses an operation it cannot store, leaving the queue unchanged', () => {
    const q = tmp.open();
    q.persist('a', C, 'i', 'one');
    const before = q.inspect();
    expect(() => q.persist('a', Operation.NoOp, 'i', 'two')).toThrow(
      /^persistent queue: cannot persist a change: operation must be Create, Modify or Delete, got 3$/,
    );
    expect(() => q.persist('b', 7 as Operation, 'i', 'two')).toThrow(RangeError);
    expect(q.inspect()).toEqual(before);
    // Nothing refused reached the intent log either: a reopen finds the same queue.
    q.close();
    const again = tmp.open(q.path);
    expect(again.inspect()).toEqual(before);
  });

  it('close is idempotent and later calls throw a StorageError', () => {
    const q = tmp.open();
    q.close();
    q.close();
    for (const call of [
      () => q.persist('a', C, 'i', '{}'),
      () => q.take(),
      () => q.readSeqs(0, 1, 1),
      () => q.complete(true),
      () => q.pendingCount(),
      () => q.size(),
      () => q.inspect(),
    ]) {
      expect(call).toThrow(StorageError);
      expect(call).toThrow(/the queue is closed/);
    }
  });

  it('works in memory', () => {
    const q = tmp.open(':memory:');
    q.persist('a', C, 'i', '{}');
    expect(q.take()).toEqual({ size: 1, indices: ['i'] });
  });

  it('rejects a nonsensical busy timeout', () => {
    expect(() => new PersistentQueue(':memory:', { busyTimeoutMs: -1 })).toThrow(RangeError);
  });
});

describe('PersistentQueue at scale', () => {
  const tmp = useTempDir();

  it('takes and pages through 200,000 rows', () => {
    const n = 200_000;
    const q = tmp.open();
    const data = JSON.stringify({ payload: 'x'.repeat(200) });
    for (let start = 0; start < n; start += 20_000) {
      q.persistMany(
        Array.from({ length: 20_000 }, (_, i) =>
          change(`id-${start + i}`, C, `idx-${i % 7}`, data),
        ),
      );
    }
    const taken = q.take();
    expect(taken.size).toBe(n);
    expect(taken.indices).toEqual(['idx-0', 'idx-1', 'idx-2', 'idx-3', 'idx-4', 'idx-5', 'idx-6']);
    let count = 0;
    let outOfOrder = 0; // counted rather than asserted per row: 200,000 expect() calls are slow
    for (let from = 0; from < n; from += 512) {
      for (const row of q.readSeqs(from, from + 511, 512)) {
        if (row.seq !== count || row.id !== `id-${count}`) outOfOrder++;
        count++;
      }
    }
    expect(count).toBe(n);
    expect(outOfOrder).toBe(0);
    q.persist('id-5', M, 'idx-0', 'changed');
    q.complete(true);
    expect(q.size()).toBe(1);
    expect(q.inspect()[0]).toMatchObject({ id: 'id-5', data: 'changed' });
  });
});
