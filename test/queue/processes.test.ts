import { type ChildProcess, spawn } from 'node:child_process';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { Operation } from '../../src/enums/operation.js';
import { PersistentQueue, StorageError, SyncStatus } from '../../src/queue/index.js';
import { fixture, repoRoot, useTempDir } from './helpers.js';

function spawnFixture(name: string, args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', fixture(name), ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/**
 * Runs the persisting child, SIGKILLs it once it has acknowledged `killAfter` ids (with
 * `inTake`, at the next take, while the child pauses with the take active), and resolves with
 * every id it acknowledged (all complete lines it wrote before dying).
 */
function persistUntilKilled(dbPath: string, killAfter: number, inTake: boolean): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawnFixture('persist-child.ts', [dbPath, inTake ? '2000' : '0']);
    let out = '';
    let stderr = '';
    let lines = 0;
    let killed = false;
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      out += chunk;
      for (const ch of chunk) if (ch === '\n') lines++;
      if (!killed && lines >= killAfter && (!inTake || out.endsWith('#take\n'))) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.stderr?.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('error', reject);
    // 'close' rather than 'exit': ids written just before the kill are still in the pipe.
    child.on('close', (code, signal) => {
      if (signal !== 'SIGKILL') {
        reject(new Error(`persist child ended with code ${code}: ${stderr}`));
        return;
      }
      const complete = out.slice(0, out.lastIndexOf('\n') + 1);
      resolve(complete.split('\n').filter((line) => line !== '' && !line.startsWith('#')));
    });
  });
}

/**
 * Starts fixture `name`, which holds something on `dbPath` for `holdMs` and prints `ready` once
 * it does; resolves then. `done` settles when the child ends (a SIGKILL counts as an end).
 */
function holdInChild(
  name: string,
  dbPath: string,
  holdMs: number,
  ready: string,
): Promise<{ child: ChildProcess; done: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const child = spawnFixture(name, [dbPath, String(holdMs)]);
    let stderr = '';
    const done = new Promise<void>((resolveDone, rejectDone) => {
      child.on('close', (code, signal) =>
        code === 0 || signal === 'SIGKILL'
          ? resolveDone()
          : rejectDone(new Error(`${name} failed: ${stderr}`)),
      );
    });
    child.stderr?.on('data', (chunk) => {
      stderr += chunk;
    });
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      if (chunk.includes(ready)) resolve({ child, done });
    });
    child.on('error', reject);
    done.catch(reject);
  });
}

/** A child holding the write lock (BEGIN IMMEDIATE) for `holdMs`. */
const holdWriteLock = (dbPath: string, holdMs: number) =>
  holdInChild('lock-child.ts', dbPath, holdMs, 'locked');

/** A child keeping a queue open on `dbPath` for `holdMs` (or until killed). */
const holdQueueOpen = (dbPath: string, holdMs: number) =>
  holdInChild('owner-child.ts', dbPath, holdMs, 'open');

function openError(path: string, busyTimeoutMs: number): StorageError {
  try {
    new PersistentQueue(path, { busyTimeoutMs }).close();
  } catch (err) {
    expect(err).toBeInstanceOf(StorageError);
    return err as StorageError;
  }
  throw new Error('the second queue opened');
}

const IN_USE =
  /^persistent queue: cannot open .*queue\.db: another queue has this database open \(.*queue\.db-lock stayed locked for more than \d+ ms\)/;

describe('one queue per database', () => {
  const tmp = useTempDir();

  it('a second queue in the same process fails clearly and disturbs nothing; it opens once the first closes', () => {
    const path = tmp.dbPath();
    const first = tmp.open(path);
    first.persist('a', Operation.Create, 'i', '{"v":1}');
    first.persist('b', Operation.Create, 'i', '{"v":1}'); // still in the intent log
    first.take(); // a sync in progress: a second open's crash recovery would reset it

    const err = openError(path, 50);
    expect(err.message).toMatch(IN_USE);
    expect(err.cause).toMatchObject({ code: 'SQLITE_BUSY' });

    // The first queue's log, take and rows are as they were.
    first.persist('c', Operation.Create, 'i', '{"v":1}');
    expect(first.readSeqs(0, 1, 2).map((r) => r.id)).toEqual(['a', 'b']);
    first.complete(true);
    expect(first.inspect().map((e) => e.id)).toEqual(['c']);
    first.close();

    const second = tmp.open(path, { busyTimeoutMs: 0 });
    expect(second.inspect().map((e) => e.id)).toEqual(['c']);
  });

  it('a queue open in another process: refused past the busy timeout, waited out within it', async () => {
    const path = tmp.dbPath();
    const owner = await holdQueueOpen(path, 800);
    expect(openError(path, 50).message).toMatch(IN_USE);
    // The owner closes within the default busy timeout (5 s): this open waits for it.
    const q = tmp.open(path);
    await owner.done;
    expect(q.inspect().map((e) => e.id)).toEqual(['child']);
  });

  it('a killed owner leaves no stale lock: the next queue opens without waiting', async () => {
    const path = tmp.dbPath();
    const owner = await holdQueueOpen(path, 60_000);
    expect(openError(path, 50).message).toMatch(IN_USE);
    owner.child.kill('SIGKILL');
    await owner.done;
    // busyTimeoutMs 0: any lock left behind would fail this open at once.
    const q = tmp.open(path, { busyTimeoutMs: 0 });
    expect(q.inspect().map((e) => e.id)).toEqual(['child']);
  });
});

describe('PersistentQueue across processes', () => {
  const tmp = useTempDir();

  it('keeps every acknowledged change when the writer is killed with SIGKILL', async () => {
    const path = tmp.dbPath();
    const acknowledged = new Set<string>();
    // Kill points land in different places of the persist/take/complete loop; the second round
    // is sure to kill the child with a take active.
    for (const [killAfter, inTake] of [
      [300, false],
      [1100, true],
      [2600, false],
    ] as const) {
      for (const id of await persistUntilKilled(path, killAfter, inTake)) acknowledged.add(id);

      const raw = new Database(path, { readonly: true });
      expect(raw.pragma('integrity_check', { simple: true })).toBe('ok');
      const takeEnd = raw.prepare('SELECT take_end FROM queue_state').pluck().get();
      if (inTake) expect(takeEnd).toBeGreaterThan(0);
      raw.close();

      const q = new PersistentQueue(path);
      try {
        const entries = q.inspect();
        const present = new Set(entries.map((e) => e.id));
        const missing = [...acknowledged].filter((id) => !present.has(id));
        expect(missing).toEqual([]);
        // Recovery on open put the interrupted take back: nothing is left Syncing.
        expect(entries.filter((e) => e.syncStatus !== SyncStatus.Pending)).toEqual([]);
        expect(q.pendingCount()).toBe(entries.length);
      } finally {
        q.close();
      }
    }
    expect(acknowledged.size).toBeGreaterThanOrEqual(2600);
  });

  it("a persist is logged at once under another connection's write lock; a read waits it out", async () => {
    const path = tmp.dbPath();
    const q = tmp.open(path);
    const lock = await holdWriteLock(path, 500);
    q.persist('a', Operation.Create, 'i', '{}');
    // Moving the logged change into SQLite needs the lock. Lenient: it waited, not failed fast.
    const start = performance.now();
    expect(q.size()).toBe(1);
    expect(performance.now() - start).toBeGreaterThan(100);
    await lock.done;
  });

  it('opening waits out another connection holding the write lock', async () => {
    const path = tmp.dbPath();
    tmp.open(path).close();
    const lock = await holdWriteLock(path, 500);
    const start = performance.now();
    const q = tmp.open(path);
    expect(performance.now() - start).toBeGreaterThan(100);
    await lock.done;
    expect(q.size()).toBe(0);
  });

  it('fails with a StorageError about the lock when the busy timeout is shorter', async () => {
    const path = tmp.dbPath();
    const q = tmp.open(path, { busyTimeoutMs: 50 });
    q.persist('a', Operation.Create, 'i', 'before');
    expect(q.size()).toBe(1);
    const lock = await holdWriteLock(path, 500);
    q.persist('a', Operation.Modify, 'i', 'during'); // logged; SQLite is not touched
    let err: unknown;
    try {
      q.take();
    } catch (e) {
      err = e;
    }
    let openErr: unknown;
    try {
      new PersistentQueue(path, { busyTimeoutMs: 50 });
    } catch (e) {
      openErr = e;
    }
    await lock.done;

    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).message).toBe(
      'persistent queue: cannot take: database is locked ' +
        '(lock held by another connection for more than 50 ms)',
    );
    expect((err as StorageError).cause).toMatchObject({ code: 'SQLITE_BUSY' });
    expect(openErr).toBeInstanceOf(StorageError);
    expect((openErr as StorageError).message).toMatch(/^persistent queue: cannot open .*locked/);

    // The failed call changed nothing (no take is active, the logged change is kept), and the
    // queue works once the lock is gone.
    expect(q.inspect().map((e) => [e.id, e.data, e.syncStatus])).toEqual([
      ['a', 'during', SyncStatus.Pending],
    ]);
    q.persist('a', Operation.Modify, 'i', 'after');
    expect(q.inspect().map((e) => [e.id, e.data])).toEqual([['a', 'after']]);
  });
});
