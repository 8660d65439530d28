// The intent log in front of SQLite: a persisted change survives a crash before it reaches SQLite,
// a torn or corrupt tail loses only what comes after it, and a crash between moving the log into
// SQLite and emptying it applies nothing twice. Real SIGKILLs: processes.test.ts and
// test/reliability/crash.test.ts.
import { copyFileSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Operation } from '../../src/enums/operation.js';
import { PersistentQueue } from '../../src/queue/index.js';
import { IntentLog } from '../../src/queue/intent-log.js';
import { useTempDir } from './helpers.js';

const { Create: C, Modify: M, Delete: D } = Operation;

/**
 * Opens a queue that the test then abandons, as a crashed process would: never closed, so its
 * logged changes are not moved into SQLite. (Its handles go with the test process.)
 */
function crashing(path: string): PersistentQueue {
  return new PersistentQueue(path);
}

/**
 * The files a crash of the queue at `path` would leave, copied to a new database path that the
 * test opens: the abandoned queue still owns `path` (a dead process's lock would be gone).
 */
function afterCrash(path: string): string {
  const copy = `${path}.after-crash`;
  for (const suffix of ['', '-wal', '-intent']) {
    if (existsSync(`${path}${suffix}`)) copyFileSync(`${path}${suffix}`, `${copy}${suffix}`);
  }
  return copy;
}

const rows = (q: PersistentQueue) => q.inspect().map((e) => [e.id, e.operation, e.data]);

describe('PersistentQueue intent log', () => {
  const tmp = useTempDir();

  it('a change not yet in SQLite survives a crash and is applied, in order, by the next open', () => {
    const path = tmp.dbPath();
    const q = crashing(path);
    q.persist('a', C, 'i', 'a1');
    q.persist('b', C, 'i', 'b1');
    q.persist('a', M, 'i', 'a2');
    q.persist('c', C, 'i', 'c1');
    q.persist('c', D, 'i', 'c1'); // a New row deleted: dropped
    expect(statSync(`${path}-intent`).size).toBeGreaterThan(0);

    const crashed = afterCrash(path);
    const reopened = tmp.open(crashed);
    expect(rows(reopened)).toEqual([
      ['a', M, 'a2'],
      ['b', C, 'b1'],
    ]);
    expect(statSync(`${crashed}-intent`).size).toBe(0); // moved into SQLite, then emptied
  });

  it('changes logged during a take are applied to it on reopen, then crash recovery runs', () => {
    const path = tmp.dbPath();
    const q = crashing(path);
    q.persist('a', C, 'i', 'a1');
    q.persist('b', C, 'i', 'b1');
    expect(q.take().size).toBe(2);
    q.persist('a', M, 'i', 'a2'); // logged while 'a' is taken

    const reopened = tmp.open(afterCrash(path));
    // The take failed (it may have reached the manager), and a's new content waits for the next.
    expect(reopened.inspect().map((e) => [e.id, e.data, e.syncStatus])).toEqual([
      ['a', 'a2', 0],
      ['b', 'b1', 0],
    ]);
    expect(reopened.take().size).toBe(2);
  });

  it('a torn tail loses only the torn record', () => {
    const path = tmp.dbPath();
    const q = crashing(path);
    for (const id of ['a', 'b', 'c']) q.persist(id, C, 'i', `{"id":"${id}"}`);
    const crashed = afterCrash(path);
    const log = readFileSync(`${crashed}-intent`);
    writeFileSync(`${crashed}-intent`, log.subarray(0, log.length - 5));

    expect(rows(tmp.open(crashed))).toEqual([
      ['a', C, '{"id":"a"}'],
      ['b', C, '{"id":"b"}'],
    ]);
  });

  it('a corrupt record ends the replay: nothing after it is trusted', () => {
    const path = tmp.dbPath();
    const q = crashing(path);
    for (const id of ['a', 'b', 'c']) q.persist(id, C, 'i', `{"id":"${id}"}`);
    const crashed = afterCrash(path);
    const log = readFileSync(`${crashed}-intent`);
    const at = log.indexOf('{"id":"b"}');
    log[at + 2] = (log[at + 2] as number) ^ 0xff;
    writeFileSync(`${crashed}-intent`, log);

    expect(rows(tmp.open(crashed))).toEqual([['a', C, '{"id":"a"}']]);
  });

  it('records already moved into SQLite are not applied again (crash before the log was emptied)', () => {
    const path = tmp.dbPath();
    const q = tmp.open(path);
    q.persist('a', C, 'i', 'a1');
    expect(q.size()).toBe(1); // moved into SQLite: a New row
    q.persist('a', D, 'i', 'a1');
    const logged = `${path}.copy`;
    copyFileSync(`${path}-intent`, logged); // the log holding the Delete
    expect(q.size()).toBe(0); // the Delete dropped the New row
    q.close();
    copyFileSync(logged, `${path}-intent`); // as if emptying it had not happened

    // Applied again, the Delete would queue a Delete for an item the manager never had.
    expect(rows(tmp.open(path))).toEqual([]);
  });

  it('a clean close leaves no log; a close that cannot move the log keeps it for the next open', () => {
    const path = tmp.dbPath();
    const q = new PersistentQueue(path);
    q.persist('a', C, 'i', 'a1');
    q.close();
    expect(existsSync(`${path}-intent`)).toBe(false);

    const full = new PersistentQueue(path);
    full.setMaxPageCount(1);
    for (let i = 0; i < 50; i++) full.persist(`k${i}`, C, 'i', 'x'.repeat(2000));
    expect(() => full.size()).toThrow(/database or disk is full/);
    full.close(); // no error: the changes stay in the log
    expect(statSync(`${path}-intent`).size).toBeGreaterThan(50 * 2000);

    const reopened = tmp.open(path);
    expect(reopened.size()).toBe(51);
  });

  it('batches logged changes into SQLite once the log holds enough of them', () => {
    const path = tmp.dbPath();
    const q = tmp.open(path);
    let emptied = 0;
    let previous = 0;
    for (let i = 0; i < 5000; i++) {
      q.persist(`k${i}`, C, 'i', '{}');
      const size = statSync(`${path}-intent`).size;
      if (size < previous) emptied++;
      previous = size;
    }
    // The log stays bounded: it was moved into SQLite (and emptied) along the way.
    expect(emptied).toBeGreaterThanOrEqual(4);
    expect(q.size()).toBe(5000);
  });
});

describe('IntentLog', () => {
  const tmp = useTempDir();

  it('reads back what it appended, UTF-8 included, after the given serial', () => {
    const log = new IntentLog(tmp.dbPath('x-intent'));
    log.append(1, 'a', C, 'i', '{"n":"é€😀"}');
    log.append(2, 'b\u0000c', D, 'idx', '');
    log.append(3, 'c', M, 'i', 'x'.repeat(100_000));
    expect(log.read(0).map((r) => [r.serial, r.id, r.operation, r.index, r.data.length])).toEqual([
      [1, 'a', C, 'i', 12],
      [2, 'b\u0000c', D, 'idx', 0],
      [3, 'c', M, 'i', 100_000],
    ]);
    expect(log.read(0)[0]?.data).toBe('{"n":"é€😀"}');
    expect(log.read(2).map((r) => r.serial)).toEqual([3]);
    log.close();
  });

  it('stops at a gap in the serials', () => {
    const log = new IntentLog(tmp.dbPath('x-intent'));
    log.append(1, 'a', C, 'i', '');
    log.append(3, 'c', C, 'i', '');
    expect(log.read(0).map((r) => r.id)).toEqual(['a']);
    log.close();
  });

  it('the next record overwrites what a failed write left past the last good one', () => {
    const path = tmp.dbPath('x-intent');
    const log = new IntentLog(path);
    log.append(1, 'a', C, 'i', 'a');
    // A write that failed half-way (a full disk) left bytes past the end of the last record.
    const good = statSync(path).size;
    writeFileSync(path, Buffer.concat([readFileSync(path), Buffer.alloc(7, 0xee)]));
    log.append(2, 'b', C, 'i', 'b');
    expect(statSync(path).size).toBeGreaterThan(good);
    expect(log.read(0).map((r) => r.id)).toEqual(['a', 'b']);
    log.close();
  });
});
