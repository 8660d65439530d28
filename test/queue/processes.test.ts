import { type ChildProcess, spawn } from 'node:child_process';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { Operation } from '../../src/enums/operation.js';
import { PersistentQueue, StorageError, SyncStatus } from '../../src/queue/index.js';
import { fixture, repoRoot, useTempDir } from './helpers.js';

/** Children still running; a test that fails while one holds a lock leaves none behind. */
const children = new Set<ChildProcess>();
afterEach(() => {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
});

function spawnFixture(name: string, args: string[]): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture(name), ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.on('close', () => children.delete(child));
  return child;
}

/**
 * Runs the persisting child and SIGKILLs it once it has acknowledged `killAfter` ids; with
 * `inTake`, the child stops at the next take, the take active, and says so ("#held") before the
 * kill, so the kill lands mid-sync however slow the machine is. Resolves with every id it
 * acknowledged (all complete lines it wrote before dying).
 */
function persistUntilKilled(dbPath: string, killAfter: number, inTake: boolean): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawnFixture('persist-child.ts', inTake ? [dbPath, String(killAfter)] : [dbPath]);
    let out = '';
    let stderr = '';
    let lines = 0;
    let killed = false;
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      out += chunk;
      for (const ch of chunk) if (ch === '\n') lines++;
      if (!killed && (inTake ? out.endsWith('#held\n') : lines >= killAfter)) {
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

/** A child holding something on the database until told to let go. */
interface Holder {
  child: ChildProcess;
  /** Settles when the child ends (a SIGKILL counts as an end). */
  done: Promise<void>;
  /**
   * Tells the child (SIGUSR2) to let go `delayMs` (its argument) after the signal; resolves with
   * the child's Date.now() taken just before it did, while it still held on.
   */
  release(): Promise<number>;
}

/**
 * Starts fixture `name` on `dbPath`, which holds something until released (or killed) and
 * prints `ready` once it does; resolves then. The child lets go `delayMs` after `release()`.
 * Nothing is timed: the parent says when, so a slow machine cannot end the hold early.
 */
async function holdInChild(
  name: string,
  dbPath: string,
  delayMs: number,
  ready: string,
): Promise<Holder> {
  const child = spawnFixture(name, [dbPath, String(delayMs)]);
  let stdout = '';
  let stderr = '';
  let ended = false;
  const waiters: (() => void)[] = [];
  const wake = () => {
    for (const waiter of waiters.splice(0)) waiter();
  };
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    stdout += chunk;
    wake();
  });
  child.stderr?.on('data', (chunk) => {
    stderr += chunk;
  });
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      ended = true;
      wake();
      if (code === 0 || signal === 'SIGKILL') resolve();
      else reject(new Error(`${name} failed (${code ?? signal}): ${stderr}`));
    });
  });
  done.catch(() => {}); // handled where awaited; a failure also rejects the line waits below
  /** The first complete line that `match` accepts; rejects if the child ends first. */
  const line = (match: (line: string) => boolean) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const found = stdout.split('\n').slice(0, -1).find(match);
        if (found !== undefined) resolve(found);
        else if (ended) reject(new Error(`${name} ended before printing the line: ${stderr}`));
        else waiters.push(check);
      };
      check();
    });
  await line((l) => l === ready);
  return {
    child,
    done,
    release: async () => {
      child.kill('SIGUSR2');
      const last = await line((l) => /^(released|closed) \d+$/.test(l));
      return Number(last.split(' ')[1]);
    },
  };
}

/**
 * A child holding the write lock (BEGIN IMMEDIATE) until released; it commits `delayMs` after
 * `release()`.
 */
const holdWriteLock = (dbPath: string, delayMs = 0) =>
  holdInChild('lock-child.ts', dbPath, delayMs, 'locked');

/** A child keeping a queue open on `dbPath` until released (or killed); it closes `delayMs` after `release()`. */
const holdQueueOpen = (dbPath: string, delayMs = 0) =>
  holdInChild('owner-child.ts', dbPath, delayMs, 'open');

/**
 * How long a child waits after `release()` before it lets go, in the tests where a blocking call
 * in this process must meet the hold and wait it out: the call begins right after the signal,
 * so it meets the hold unless this process stalls for longer than this (the tests check it did).
 */
const LET_GO_MS = 500;

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
    const owner = await holdQueueOpen(path, LET_GO_MS);
    expect(openError(path, 50).message).toMatch(IN_USE);
    // The owner closes LET_GO_MS after the signal, within the default busy timeout (5 s): this
    // open, begun while the owner still had the queue, waits for it.
    const closed = owner.release();
    const began = Date.now();
    const q = tmp.open(path);
    expect(began, 'the open began before the owner closed').toBeLessThan(await closed);
    await owner.done;
    expect(q.inspect().map((e) => e.id)).toEqual(['child']);
  });

  it('a killed owner leaves no stale lock: the next queue opens without waiting', async () => {
    const path = tmp.dbPath();
    const owner = await holdQueueOpen(path);
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
    // Three children started through tsx: seconds on a loaded machine.
  }, 120_000);

  it("a persist is logged at once under another connection's write lock; a read waits it out", async () => {
    const path = tmp.dbPath();
    const q = tmp.open(path);
    const lock = await holdWriteLock(path, LET_GO_MS);
    q.persist('a', Operation.Create, 'i', '{}');
    // Moving the logged change into SQLite needs the lock: the read, begun while the other
    // connection held it, waited it out rather than failing.
    const released = lock.release();
    const began = Date.now();
    expect(q.size()).toBe(1);
    expect(began, 'the read began under the lock').toBeLessThan(await released);
    await lock.done;
  });

  it('opening waits out another connection holding the write lock', async () => {
    const path = tmp.dbPath();
    tmp.open(path).close();
    const lock = await holdWriteLock(path, LET_GO_MS);
    const released = lock.release();
    const began = Date.now();
    const q = tmp.open(path);
    expect(began, 'the open began under the lock').toBeLessThan(await released);
    await lock.done;
    expect(q.size()).toBe(0);
  });

  it('fails with a StorageError about the lock when the busy timeout is shorter', async () => {
    const path = tmp.dbPath();
    const q = tmp.open(path, { busyTimeoutMs: 50 });
    q.persist('a', Operation.Create, 'i', 'before');
    expect(q.size()).toBe(1);
    const lock = await holdWriteLock(path);
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
    await lock.release();
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
