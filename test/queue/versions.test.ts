// Per-item versions (u64, 0 = unversioned) and DataContext rows (Wazuh 5.0): carried through
// persist/persistMany, the intent log, SQLite, coalescing, inspect() and sessions. Coalescing is
// last write wins for every field a change carries, as the reference's applyCoalesceLogic
// (wazuh/wazuh f838614611, src/shared_modules/sync_protocol/src/persistent_queue_storage.cpp):
// a later change replaces index, data, operation, version and the DataContext flag, a Delete's
// included; the 17 cases of the contract keep their outcomes.
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { Operation } from '../../src/enums/operation.js';
import {
  CreateStatus,
  PersistentQueue,
  type QueueChange,
  SyncStatus,
} from '../../src/queue/index.js';
import { IntentLog } from '../../src/queue/intent-log.js';
import { cases, type Event } from './cases.js';
import { useTempDir } from './helpers.js';

const { Create: C, Modify: M, Delete: D } = Operation;
const U64_MAX = 2n ** 64n - 1n;
const VERSIONS = [0n, 1n, 2n ** 53n + 1n, 2n ** 63n - 1n, 2n ** 63n, U64_MAX - 1n, U64_MAX];

/** The files a crash of the queue at `path` would leave, copied to a new path (see intent-log.test.ts). */
function afterCrash(path: string): string {
  const copy = `${path}.after-crash`;
  for (const suffix of ['', '-wal', '-intent']) {
    if (existsSync(`${path}${suffix}`)) copyFileSync(`${path}${suffix}`, `${copy}${suffix}`);
  }
  return copy;
}

const versionsOf = (q: PersistentQueue) => q.inspect().map((e) => [e.id, e.version ?? 0n]);

describe('PersistentQueue versions', () => {
  const tmp = useTempDir();

  it('round-trips 0 through 2^64-1 via persist, persistMany, SQLite, reopen and a session', () => {
    const path = tmp.dbPath();
    const q = tmp.open(path);
    VERSIONS.forEach((v, i) => {
      q.persist(`p${i}`, C, 'i', '{}', v);
    });
    q.persistMany(
      VERSIONS.map((v, i) => ({ id: `m${i}`, operation: M, index: 'i', data: '{}', version: v })),
    );
    const expected = [
      ...VERSIONS.map((v, i) => [`p${i}`, v]),
      ...VERSIONS.map((v, i) => [`m${i}`, v]),
    ];
    expect(versionsOf(q)).toEqual(expected);
    // inspect() leaves an unversioned row as it always read.
    expect(q.inspect()[0]).not.toHaveProperty('version');
    q.close();

    const reopened = tmp.open(path);
    expect(versionsOf(reopened)).toEqual(expected);
    const session = reopened.takeSession(0);
    expect(Array.from(session.rows(), (r) => [r.id, r.version])).toEqual(expected);
    expect([...session.rows()].every((r) => typeof r.version === 'bigint')).toBe(true);
  });

  it('round-trips versions through the intent log a crash leaves behind', () => {
    const path = tmp.dbPath();
    const q = new PersistentQueue(path); // abandoned, as a crashed process would
    VERSIONS.forEach((v, i) => {
      q.persist(`k${i}`, i % 2 === 0 ? C : M, 'i', `{"i":${i}}`, v, i % 3 === 0);
    });
    const crashed = afterCrash(path);
    expect(readFileSync(`${crashed}-intent`).length).toBeGreaterThan(0);
    const reopened = tmp.open(crashed);
    expect(reopened.inspect().map((e) => [e.id, e.version ?? 0n, e.dataContext ?? false])).toEqual(
      VERSIONS.map((v, i) => [`k${i}`, v, i % 3 === 0]),
    );
  });

  it('stores a u64 as the signed 64-bit INTEGER with the same bits, as the reference does', () => {
    const path = tmp.dbPath();
    const q = tmp.open(path);
    for (const [id, v] of [
      ['zero', 0n],
      ['top', 2n ** 63n - 1n],
      ['half', 2n ** 63n],
      ['max', U64_MAX],
    ] as const) {
      q.persist(id, C, 'i', '{}', v);
    }
    q.close();
    const db = new Database(path, { readonly: true });
    const stored = db
      .prepare(
        'SELECT id, typeof(version), CAST(version AS TEXT) FROM persistent_queue ORDER BY ord',
      )
      .raw()
      .all();
    db.close();
    expect(stored).toEqual([
      ['zero', 'integer', '0'],
      ['top', 'integer', '9223372036854775807'],
      ['half', 'integer', '-9223372036854775808'],
      ['max', 'integer', '-1'],
    ]);
  });

  it('survives either way a successful take drops its rows (copied aside, or row by row)', () => {
    for (const synced of [200, 2]) {
      const q = tmp.open(tmp.dbPath(`complete-${synced}.db`));
      q.persistMany(
        Array.from({ length: synced }, (_, i) => ({
          id: `s${i}`,
          operation: C,
          index: 'i',
          data: '{}',
          version: BigInt(i + 1),
        })),
      );
      q.take();
      q.persist('s0', M, 'i', '{"u":1}', U64_MAX, true); // changed during the take: stays
      q.persist('p', C, 'i', '{}', 2n ** 63n, true); // new during the take: stays
      q.complete(true);
      expect(q.inspect().map((e) => [e.id, e.version, e.dataContext])).toEqual([
        ['s0', U64_MAX, true],
        ['p', 2n ** 63n, true],
      ]);
    }
  });

  it('takes a safe-integer number as a version', () => {
    const q = tmp.open();
    q.persist('a', C, 'i', '{}', 42);
    q.persistMany([{ id: 'b', operation: C, index: 'i', data: '{}', version: 2 ** 53 - 1 }]);
    expect(versionsOf(q)).toEqual([
      ['a', 42n],
      ['b', 2n ** 53n - 1n],
    ]);
  });

  it('refuses a version outside u64 or a flag that is not a boolean, changing nothing', () => {
    const path = tmp.dbPath();
    const q = tmp.open(path);
    q.persist('keep', C, 'i', '{}', 5n);
    const bad: Array<[unknown, unknown, ErrorConstructor]> = [
      [-1n, false, RangeError],
      [2n ** 64n, false, RangeError],
      [-1, false, RangeError],
      [1.5, false, RangeError],
      [2 ** 53, false, RangeError],
      [Number.NaN, false, RangeError],
      ['1', false, TypeError],
      [null, false, TypeError],
      [1n, 1, TypeError],
      [1n, 'yes', TypeError],
    ];
    for (const [version, flag, type] of bad) {
      const args = ['x', C, 'i', '{}', version, flag] as unknown as Parameters<
        PersistentQueue['persist']
      >;
      expect(() => q.persist(...args), String(version)).toThrow(type);
      const many = [
        { id: 'y', operation: C, index: 'i', data: '{}' },
        { id: 'x', operation: C, index: 'i', data: '{}', version, dataContext: flag },
      ] as unknown as QueueChange[];
      expect(() => q.persistMany(many), String(version)).toThrow(type);
    }
    expect(versionsOf(q)).toEqual([['keep', 5n]]);
    q.close();
    expect(versionsOf(tmp.open(path))).toEqual([['keep', 5n]]); // nothing was logged either
  });
});

describe('PersistentQueue coalescing with versions (last write wins, as the reference)', () => {
  const tmp = useTempDir();
  const row = (q: PersistentQueue, id = 'a') => q.inspect().find((e) => e.id === id);

  it('a later change replaces the version, even a lower one or 0', () => {
    const q = tmp.open();
    q.persist('a', C, 'i', '{"v":5}', 5n);
    q.persist('a', M, 'i', '{"v":3}', 3n);
    expect(row(q)).toMatchObject({ operation: M, version: 3n, createStatus: CreateStatus.New });
    q.persist('b', M, 'i', '{"v":7}', 7n);
    q.persist('b', D, 'i', '');
    expect(row(q, 'b')).toMatchObject({ operation: D });
    expect(row(q, 'b')).not.toHaveProperty('version'); // the Delete's 0
    q.persist('c', D, 'i', '', 2n);
    q.persist('c', M, 'i-2', '{"v":9}', 9n);
    expect(row(q, 'c')).toMatchObject({ operation: M, index: 'i-2', version: 9n });
  });

  it('a Delete of a New Pending row drops it with its version; a new Create starts over', () => {
    const q = tmp.open();
    q.persist('a', C, 'i', '{}', 8n);
    q.persist('a', D, 'i', '', 9n);
    expect(q.size()).toBe(0);
    q.persist('a', C, 'i', '{}', 4n);
    expect(row(q)).toMatchObject({ version: 4n, createStatus: CreateStatus.New });
  });

  it('the DataContext flag follows the last change too', () => {
    const q = tmp.open();
    q.persist('a', M, 'i', '{}', 1n, true);
    expect(row(q)).toMatchObject({ dataContext: true });
    q.persist('a', M, 'i', '{}', 2n);
    expect(row(q)).not.toHaveProperty('dataContext');
    q.persist('a', D, 'i', '', 3n, true);
    expect(row(q)).toMatchObject({ dataContext: true, operation: D, version: 3n });
  });

  for (const success of [true, false]) {
    it(`a change during a take replaces the version; it stays after ${success ? 'success' : 'failure'}`, () => {
      const q = tmp.open();
      q.persist('a', M, 'i', '{"v":1}', 1n);
      q.take();
      q.persist('a', M, 'i', '{"v":2}', 2n, true);
      expect(row(q)).toMatchObject({
        syncStatus: SyncStatus.SyncingUpdated,
        version: 2n,
        dataContext: true,
        inFlight: M,
      });
      q.complete(success);
      expect(row(q)).toMatchObject({
        syncStatus: SyncStatus.Pending,
        data: '{"v":2}',
        version: 2n,
        dataContext: true,
      });
    });
  }

  // Every event of a case carries its own version and flag: the outcome (rows, first operation)
  // is the contract's, and a row left behind carries its last change's version and flag.
  for (const c of cases) {
    it(`case ${c.name}: same outcome, the row left has the last change's version`, () => {
      const q = tmp.open();
      const last = new Map<string, [bigint, boolean]>();
      let n = 0;
      const apply = (events: Event[]) => {
        for (const e of events) {
          const [id, op] = Array.isArray(e) ? e : ['item', e];
          n++;
          const version = U64_MAX - BigInt(n); // large values: the full u64 range matters
          const flag = n % 2 === 0;
          q.persist(id, op, 'idx-a', JSON.stringify({ n }), version, flag);
          last.set(id, [version, flag]);
        }
      };
      apply(c.before);
      if (c.during !== undefined) {
        q.take();
        apply(c.during);
        q.complete(c.outcome === 'success');
      }
      const session = q.takeSession(0);
      expect(session.count).toBe(c.rows);
      if (c.firstOp !== undefined) expect([...session.rows()][0]?.operation).toBe(c.firstOp);
      for (const r of session.rows()) expect([r.version, r.dataContext]).toEqual(last.get(r.id));
    });
  }
});

describe('PersistentQueue DataContext rows', () => {
  const tmp = useTempDir();

  it('are queued and taken like values, marked, and kept out of the session indices', () => {
    const q = tmp.open();
    q.persist('v1', C, 'idx-v', '{"a":1}', 3n);
    q.persist('c1', C, 'idx-ctx', '{"c":1}', 0n, true);
    q.persistMany([
      { id: 'c2', operation: M, index: 'idx-v', data: '{"c":2}', dataContext: true },
      { id: 'v2', operation: M, index: 'idx-w', data: '{"a":2}' },
    ]);
    expect(q.inspect().map((e) => [e.id, e.dataContext ?? false])).toEqual([
      ['v1', false],
      ['c1', true],
      ['c2', true],
      ['v2', false],
    ]);
    const session = q.takeSession();
    expect(Array.from(session.rows(), (r) => [r.id, r.dataContext, r.version])).toEqual([
      ['v1', false, 3n],
      ['c1', true, 0n],
      ['c2', true, 0n],
      ['v2', false, 0n],
    ]);
    expect(session.indices).toEqual(['idx-v', 'idx-w']);
  });

  it('clearDataContext() removes every DataContext row and nothing else', () => {
    const path = tmp.dbPath();
    const q = tmp.open(path);
    q.persist('v1', C, 'i', '{}');
    q.persist('c1', C, 'i', '{}', 1n, true);
    q.persist('c2', D, 'j', '', 0n, true);
    q.persist('was-ctx', M, 'i', '{}', 0n, true);
    q.persist('was-ctx', M, 'i', '{}'); // now a value
    q.persist('now-ctx', M, 'i', '{}');
    q.persist('now-ctx', M, 'i', '{}', 0n, true);
    expect(q.clearDataContext()).toBe(3);
    expect(q.inspect().map((e) => e.id)).toEqual(['v1', 'was-ctx']);
    expect(q.clearDataContext()).toBe(0);
    q.close();
    expect(
      tmp
        .open(path)
        .inspect()
        .map((e) => e.id),
    ).toEqual(['v1', 'was-ctx']);
  });

  it('clearDataContext() is refused while a take is active, and removes nothing', () => {
    const q = tmp.open();
    q.persist('c1', C, 'i', '{}', 0n, true);
    q.takeSession();
    q.persist('c2', C, 'i', '{}', 0n, true);
    expect(() => q.clearDataContext()).toThrow(/while a take is active/);
    expect(q.size()).toBe(2);
    q.completeSession(true);
    expect(q.clearDataContext()).toBe(1);
    expect(q.size()).toBe(0);
  });

  it('removeIndices() removes every row of those indices, values and contexts, logged ones too', () => {
    const path = tmp.dbPath();
    const q = tmp.open(path);
    q.persistMany([
      { id: 'a', operation: C, index: 'i', data: '{}' },
      { id: 'b', operation: D, index: 'j', data: '' },
    ]);
    q.persist('c', M, 'i', '{}', 0n, true); // still in the intent log
    q.persist('d', M, 'k', '{}');
    expect(q.removeIndices(['i', 'j', 'i', 'none'])).toBe(3);
    expect(q.inspect().map((e) => e.id)).toEqual(['d']);
    q.close();
    expect(
      tmp
        .open(path)
        .inspect()
        .map((e) => e.id),
    ).toEqual(['d']);
  });

  it('removeIndices() is refused while a take is active, and removes nothing', () => {
    const q = tmp.open();
    q.persist('a', C, 'i', '{}');
    q.takeSession();
    expect(() => q.removeIndices(['i'])).toThrow(/while a take is active/);
    expect(q.size()).toBe(1);
    q.completeSession(false);
    expect(q.removeIndices(['i'])).toBe(1);
  });
});

describe('IntentLog format 2', () => {
  const tmp = useTempDir();

  it('reads back the version and the flag of each record', () => {
    const log = new IntentLog(tmp.dbPath('log'));
    log.append(1, 'a', C, 'i', '{}');
    log.append(2, 'b', M, 'j', 'data', U64_MAX, true);
    log.append(3, 'c', D, 'k', '', 2n ** 63n, false);
    expect(log.read(0).map((r) => [r.serial, r.id, r.operation, r.version, r.dataContext])).toEqual(
      [
        [1, 'a', C, 0n, false],
        [2, 'b', M, U64_MAX, true],
        [3, 'c', D, 2n ** 63n, false],
      ],
    );
    log.close();
  });

  it('a tag with an unknown bit (or operation NoOp) is corrupt: the replay stops there', () => {
    for (const tag of [0x80 | 0x20 | M, 0x80 | Operation.NoOp, 0x40 | M]) {
      const path = tmp.dbPath(`log-${tag}`);
      const log = new IntentLog(path);
      log.append(1, 'a', C, 'i', '{}');
      const first = log.bytes;
      log.append(2, 'b', M, 'i', '{}', 7n);
      log.append(3, 'c', M, 'i', '{}');
      log.close();
      const bytes = readFileSync(path);
      bytes[first + 8 + 8] = tag; // the second record's tag, after its header and serial
      const length = bytes.readUInt32LE(first);
      const payload = bytes.subarray(first + 8, first + 8 + length);
      bytes.writeUInt32LE(crc32(payload), first + 4); // a valid checksum: only the tag is wrong
      writeFileSync(path, bytes);
      const reread = new IntentLog(path);
      expect(
        reread.read(0).map((r) => r.id),
        tag.toString(16),
      ).toEqual(['a']);
      reread.close();
    }
  });

  it('a 0.1.x log gets format 2 records appended after its own, and reads both', () => {
    const path = tmp.dbPath('mixed-intent');
    copyFileSync(new URL('./fixtures/queue-0.1/queue.db-intent', import.meta.url), path);
    const log = new IntentLog(path);
    expect(log.read(12)).toHaveLength(4);
    log.append(17, 'new', M, 'i', '{}', 9n, true);
    expect(log.read(12).map((r) => [r.serial, r.id, r.version, r.dataContext])).toEqual([
      [13, 'logged-c', 0n, false],
      [14, 'm-existing', 0n, false],
      [15, 'after-take', 0n, false],
      [16, 'c-new', 0n, false],
      [17, 'new', 9n, true],
    ]);
    log.close();
  });
});
