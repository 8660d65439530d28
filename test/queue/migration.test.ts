// A queue file written by 0.1.x (test/queue/fixtures/queue-0.1, made by make-0.1-queue.ts with
// the 0.1.x code: a take in flight and an intent log a crash left behind) opens with this code
// and migrates in place: every row, its state and the logged changes come through, exactly as
// 0.1.x itself would have recovered them, and then take versions like any new file.
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { Operation } from '../../src/enums/operation.js';
import {
  CreateStatus,
  PersistentQueue,
  type QueueEntry,
  StorageError,
  SyncStatus,
} from '../../src/queue/index.js';
import { IntentLog } from '../../src/queue/intent-log.js';
import { fixture, useTempDir } from './helpers.js';

const { Create: C, Modify: M, Delete: D } = Operation;
const { Existing, New } = CreateStatus;
const BIG = `{"pad":"${'x'.repeat(200_000 - 10)}"}`;

const entry = (
  id: string,
  index: string,
  data: string,
  operation: Operation,
  createStatus: CreateStatus,
): QueueEntry => ({
  id,
  index,
  data,
  operation,
  syncStatus: SyncStatus.Pending,
  createStatus,
  inFlight: Operation.NoOp,
  seq: null,
});

// What the 0.1.x code itself makes of the fixture's database alone (recorded by opening a copy
// with the 0.1.x code): the take that was in flight failed, possibly after sending (its created
// rows are now Existing), and a change made during it kept its new content.
const DATABASE_ALONE: QueueEntry[] = [
  entry('c-new', 'idx-a', '{"n":1}', C, Existing),
  entry('m-existing', 'idx-b', '{"n":2}', M, Existing),
  entry('d-existing', 'idx-a', '', D, Existing),
  entry('c-then-d', 'idx-a', '{"n":4}', D, Existing),
  entry('m-then-m', 'idx-b', '{"n":5,"changed":true}', M, Existing),
  entry('unicode', 'idx-ü', '{"name":"héllo ✓ 🎉"}', C, Existing),
  entry('big', 'idx-a', BIG, M, Existing),
  entry('after-take', 'idx-c', '{"n":8}', C, New),
];

// The same with the crash-left intent log replayed first (its 4 changes were made during the
// take), again as the 0.1.x code recovers it.
const WITH_LOG: QueueEntry[] = [
  entry('c-new', 'idx-a', '{"n":1}', D, Existing),
  entry('m-existing', 'idx-b', '{"n":2,"changed":true}', M, Existing),
  entry('d-existing', 'idx-a', '', D, Existing),
  entry('c-then-d', 'idx-a', '{"n":4}', D, Existing),
  entry('m-then-m', 'idx-b', '{"n":5,"changed":true}', M, Existing),
  entry('unicode', 'idx-ü', '{"name":"héllo ✓ 🎉"}', C, Existing),
  entry('big', 'idx-a', BIG, M, Existing),
  entry('after-take', 'idx-c', '{"n":8,"changed":true}', M, New),
  entry('logged-c', 'idx-c', '{"n":10}', C, New),
];

function copyFixture(dir: string, withLog: boolean): string {
  const path = join(dir, 'queue.db');
  copyFileSync(fixture('queue-0.1/queue.db'), path);
  if (withLog) copyFileSync(fixture('queue-0.1/queue.db-intent'), `${path}-intent`);
  return path;
}

function raw<T>(path: string, read: (db: Database.Database) => T): T {
  const db = new Database(path);
  try {
    return read(db);
  } finally {
    db.close();
  }
}

const columns = (db: Database.Database) =>
  (db.pragma('table_info(persistent_queue)') as Array<{ name: string }>).map((c) => c.name);

describe('PersistentQueue migration from a 0.1.x file', () => {
  const tmp = useTempDir();

  it('the fixture is a real 0.1.x file: schema version 0, no version column, a take in flight', () => {
    const path = copyFixture(tmp.dir(), false);
    raw(path, (db) => {
      expect(db.pragma('user_version', { simple: true })).toBe(0);
      expect(columns(db)).toEqual([
        'ord',
        'id',
        'idx',
        'operation',
        'create_status',
        'updated',
        'data',
      ]);
      expect(db.prepare('SELECT take_end FROM queue_state').pluck().get()).toBe(7);
      expect(db.prepare('SELECT count(*) FROM sync_take').pluck().get()).toBe(7);
      expect(
        db.prepare('SELECT count(*) FROM persistent_queue WHERE updated = 1').pluck().get(),
      ).toBe(2);
      // The log beside it holds serials 13..16.
      expect(db.prepare('SELECT applied FROM intent_log_state').pluck().get()).toBe(12);
    });
  });

  it('opens and migrates in place: every row and state as 0.1.x recovers them, unversioned', () => {
    const path = copyFixture(tmp.dir(), false);
    const q = tmp.open(path);
    expect(q.inspect()).toEqual(DATABASE_ALONE);
    for (const e of q.inspect()) {
      expect(e.version).toBeUndefined();
      expect(e.dataContext).toBeUndefined();
    }
    q.close();
    raw(path, (db) => {
      expect(db.pragma('user_version', { simple: true })).toBe(1);
      expect(columns(db)).toEqual([
        'ord',
        'id',
        'idx',
        'operation',
        'create_status',
        'updated',
        'data',
        'version',
        'data_context',
      ]);
      expect(db.prepare('SELECT take_end FROM queue_state').pluck().get()).toBe(0);
      expect(db.prepare('SELECT count(*) FROM sync_take').pluck().get()).toBe(0);
    });
  });

  it('replays the intent log 0.1.x left behind (format 1 records) before recovering the take', () => {
    const path = copyFixture(tmp.dir(), true);
    const log = new IntentLog(`${path}-intent`);
    const records = log.read(12); // SQLite recorded serial 12 as applied
    log.close();
    expect(records.map((r) => [r.serial, r.id, r.operation, r.version, r.dataContext])).toEqual([
      [13, 'logged-c', C, 0n, false],
      [14, 'm-existing', M, 0n, false],
      [15, 'after-take', M, 0n, false],
      [16, 'c-new', D, 0n, false],
    ]);

    const q = tmp.open(path);
    expect(q.inspect()).toEqual(WITH_LOG);
    expect(readFileSync(`${path}-intent`).length).toBe(0); // moved into SQLite
    // The next take sends them in their first-insert order, as 0.1.x would.
    const taken = q.take();
    expect(taken).toEqual({ size: 9, indices: ['idx-a', 'idx-b', 'idx-c', 'idx-ü'] });
    expect(q.readSeqs(0, 8, 9).map((r) => [r.seq, r.id, r.operation])).toEqual([
      [0, 'c-new', D],
      [1, 'm-existing', M],
      [2, 'd-existing', D],
      [3, 'c-then-d', D],
      [4, 'm-then-m', M],
      [5, 'unicode', C],
      [6, 'big', M],
      [7, 'after-take', M],
      [8, 'logged-c', C],
    ]);
  });

  it('a migrated file takes versions and DataContext rows, and keeps them across reopens', () => {
    const path = copyFixture(tmp.dir(), true);
    const q = tmp.open(path);
    q.persist('m-existing', M, 'idx-b', '{"n":2,"v":7}', 7n);
    q.persist('ctx', C, 'idx-ctx', '{"ctx":1}', 0n, true);
    q.persist('max', C, 'idx-m', '{}', 2n ** 64n - 1n);
    q.close();

    const again = tmp.open(path);
    const byId = new Map(again.inspect().map((e) => [e.id, e]));
    expect(byId.size).toBe(WITH_LOG.length + 2);
    expect(byId.get('m-existing')).toMatchObject({ data: '{"n":2,"v":7}', version: 7n });
    expect(byId.get('ctx')).toMatchObject({ dataContext: true, createStatus: New });
    expect(byId.get('max')?.version).toBe(2n ** 64n - 1n);
    expect(byId.get('big')).toEqual(WITH_LOG[6]); // untouched rows read as before
    raw(path, (db) => expect(db.pragma('user_version', { simple: true })).toBe(1));
  });

  it('a new file gets exactly the schema a migrated one has', () => {
    const migrated = copyFixture(tmp.dir(), false);
    tmp.open(migrated).close();
    const fresh = tmp.dbPath('fresh.db');
    tmp.open(fresh).close();
    const schema = (path: string) =>
      raw(path, (db) => ({
        version: db.pragma('user_version', { simple: true }),
        sql: db.prepare('SELECT type, name, sql FROM sqlite_master ORDER BY name').all(),
      }));
    expect(schema(fresh)).toEqual(schema(migrated));
  });

  it('refuses a file from a later schema version, and leaves it as it was', () => {
    const path = copyFixture(tmp.dir(), false);
    raw(path, (db) => db.pragma('user_version = 2'));
    expect(() => new PersistentQueue(path)).toThrow(StorageError);
    expect(() => new PersistentQueue(path)).toThrow(/schema version 2, newer than this code's 1/);
    raw(path, (db) => {
      expect(db.pragma('user_version', { simple: true })).toBe(2);
      expect(columns(db)).not.toContain('version');
      expect(db.prepare('SELECT take_end FROM queue_state').pluck().get()).toBe(7);
      expect(db.prepare('SELECT count(*) FROM persistent_queue').pluck().get()).toBe(8);
    });
  });
});
