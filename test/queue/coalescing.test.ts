import { describe, expect, it } from 'vitest';
import { Operation } from '../../src/enums/operation.js';
import { CreateStatus, type PersistentQueue, SyncStatus } from '../../src/queue/index.js';
import { cases, type Event, toChanges } from './cases.js';
import { useTempDir } from './helpers.js';

const { Create: C, Modify: M, Delete: D } = Operation;

function apply(q: PersistentQueue, events: Event[], step: number): void {
  for (const c of toChanges(events, step)) q.persist(c.id, c.operation, c.index, c.data);
}

describe('PersistentQueue coalescing contract', () => {
  const tmp = useTempDir();

  for (const c of cases) {
    it(c.name, () => {
      const q = tmp.open();
      apply(q, c.before, 0);
      if (c.during !== undefined) {
        q.take();
        apply(q, c.during, 1);
        q.complete(c.outcome === 'success');
      }
      expect(q.size()).toBe(c.rows);
      expect(q.pendingCount()).toBe(c.rows);
      const taken = q.take();
      expect(taken.size).toBe(c.rows);
      const rows = q.readSeqs(0, taken.size, 100);
      expect(rows).toHaveLength(c.rows);
      if (c.firstOp !== undefined) expect(rows[0]?.operation).toBe(c.firstOp);
      for (const entry of q.inspect()) expect(entry.syncStatus).toBe(SyncStatus.Syncing);
    });
  }

  it('tracks the statuses behind case 7 and 16 while the sync runs', () => {
    const q = tmp.open();
    q.persist('a', C, 'i', '1');
    expect(q.inspect()[0]).toMatchObject({ syncStatus: SyncStatus.Pending, createStatus: 1 });
    q.take();
    expect(q.inspect()[0]).toMatchObject({
      syncStatus: SyncStatus.Syncing,
      createStatus: CreateStatus.New,
      inFlight: C,
      seq: 0,
    });
    q.persist('a', D, 'i', '2');
    expect(q.inspect()[0]).toMatchObject({
      syncStatus: SyncStatus.SyncingUpdated,
      createStatus: CreateStatus.NewDeleted,
      operation: D,
      inFlight: C,
      seq: 0,
    });
    q.persist('a', M, 'i', '3');
    expect(q.inspect()[0]).toMatchObject({ createStatus: CreateStatus.New, operation: M });
    q.complete(true);
    expect(q.inspect()).toEqual([
      {
        id: 'a',
        index: 'i',
        data: '3',
        operation: M,
        syncStatus: SyncStatus.Pending,
        createStatus: CreateStatus.Existing,
        inFlight: Operation.NoOp,
        seq: null,
      },
    ]);
  });

  it('keeps a Delete of a New row that a sync has taken (the manager may have it)', () => {
    const q = tmp.open();
    q.persist('a', C, 'i', '1');
    q.take();
    q.persist('a', D, 'i', '2');
    expect(q.size()).toBe(1);
    expect(q.readSeqs(0, 0, 1)[0]).toMatchObject({ id: 'a', operation: D, data: '2' });
  });

  it('drops a row created and deleted while another sync runs (never taken)', () => {
    const q = tmp.open();
    q.persist('a', M, 'i', '1');
    q.take();
    q.persist('b', C, 'i', '1');
    q.persist('b', D, 'i', '2');
    expect(q.inspect().map((e) => e.id)).toEqual(['a']);
  });
});
