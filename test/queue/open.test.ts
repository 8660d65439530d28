// Opening without blocking the thread: AgentSyncProtocol.open() and PersistentQueue.open() wait
// for another holder of the database on timers, where the constructors sleep inside SQLite.
//
// No assertion here is on a duration (a loaded machine stretches every wait): timers running
// during the wait is shown by what a timer did (an interval ticking, a holder closed from one),
// "at once" by settling before a 0 ms timer fires (microtasks always run first), and "soon after
// the holder closes" by resolving (not rejecting) with a 20 s busy timeout: a wait that blocked
// the thread would run it out and reject, since the holder closes from a timer.
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AgentSyncProtocol,
  Mode,
  Operation,
  type SeedWireOptions,
  StorageError,
} from '../../src/index.js';
import { PersistentQueue } from '../../src/queue/index.js';
import { MockManager } from '../../src/testing/index.js';
import { dbFile, doc, tempDir } from '../helpers.js';
import { fixture, repoRoot } from './helpers.js';

const closing: Array<{ close(): unknown }> = [];
const intervals: ReturnType<typeof setInterval>[] = [];
afterEach(async () => {
  for (const interval of intervals.splice(0)) clearInterval(interval);
  for (const thing of closing.splice(0).reverse()) await thing.close();
});

function track<T extends { close(): unknown }>(thing: T): T {
  closing.push(thing);
  return thing;
}

/** Counts the ticks of a 5 ms interval; `onTick` runs on each, with the count so far. */
function ticker(onTick: (ticks: number) => void = () => {}): { ticks: () => number } {
  let ticks = 0;
  intervals.push(
    setInterval(() => {
      ticks++;
      onTick(ticks);
    }, 5),
  );
  return { ticks: () => ticks };
}

/** How `promise` settles, if it does before a 0 ms timer fires; 'pending' otherwise. */
async function settledAtOnce<T>(
  promise: Promise<T>,
): Promise<{ value: T } | { error: unknown } | 'pending'> {
  const timer = new Promise<'pending'>((resolve) => setTimeout(() => resolve('pending'), 0));
  return Promise.race([
    promise.then(
      (value) => ({ value }),
      (error) => ({ error }),
    ),
    timer,
  ]);
}

/** What `fn` throws. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('did not throw');
}

/** Descriptors of this process open on files under `dir`. */
function descriptorsUnder(dir: string): string[] {
  const found: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(`${dir}/`)) found.push(target);
    } catch {
      // Closed between the listing and the read.
    }
  }
  return found.sort();
}

const IN_USE =
  /^persistent queue: cannot open .*sync\.db: another queue has this database open \(.*sync\.db-lock stayed locked for more than 300 ms\)/;

function options(dbPath: string, extra: Partial<SeedWireOptions> = {}): SeedWireOptions {
  const manager = track(new MockManager());
  return { moduleName: 'fim', dbPath, transport: manager.transport('fim'), ...extra };
}

/** An instance in this process holding `dbPath`, with one change queued. */
function holderOf(dbPath: string): AgentSyncProtocol {
  const holder = track(new AgentSyncProtocol(options(dbPath)));
  holder.persistDifference('held', Operation.Create, 'idx', doc('held'));
  return holder;
}

describe('AgentSyncProtocol.open() while another instance holds the database', () => {
  it('keeps timers running during the wait and resolves once the holder closes', async () => {
    const dbPath = dbFile();
    const holder = holderOf(dbPath);
    let closedAtTick = 0;
    const { ticks } = ticker((n) => {
      if (n === 5) {
        closedAtTick = n;
        void holder.close();
      }
    });

    // Blocking for the 20 s would end in a rejection: the holder closes from a timer.
    const agent = track(await AgentSyncProtocol.open(options(dbPath, { busyTimeoutMs: 20_000 })));

    // The holder closed from a timer: the only way this open could get the database.
    expect(closedAtTick).toBe(5);
    expect(ticks()).toBeGreaterThanOrEqual(5);
    expect(agent.pendingCount).toBe(1); // the holder's change
  });

  it('rejects with the constructor StorageError past busyTimeoutMs, leaving nothing open or locked', async () => {
    const dir = tempDir();
    const dbPath = join(dir, 'sync.db');
    const holder = holderOf(dbPath);
    const { ticks } = ticker();

    const error = await AgentSyncProtocol.open(options(dbPath, { busyTimeoutMs: 300 })).then(
      () => undefined,
      (err: unknown) => err,
    );

    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).message).toMatch(IN_USE);
    expect((error as StorageError).cause).toMatchObject({ code: 'SQLITE_BUSY' });
    expect(ticks()).toBeGreaterThanOrEqual(3);
    // The constructor's error, word for word.
    const constructed = thrown(
      () => new AgentSyncProtocol(options(dbPath, { busyTimeoutMs: 300 })),
    );
    expect(constructed).toBeInstanceOf(StorageError);
    expect((error as StorageError).message).toBe((constructed as StorageError).message);

    await holder.close();
    // The failed attempts closed every handle they opened. (While the holder had the lock file
    // locked, SQLite kept a closed handle's descriptor aside: closing it would drop the
    // holder's POSIX lock. It closes such descriptors with the holder's last lock.)
    expect(descriptorsUnder(dir)).toEqual([]);
    // busyTimeoutMs 0: one attempt, which any lock left behind would fail.
    const agent = track(await AgentSyncProtocol.open(options(dbPath, { busyTimeoutMs: 0 })));
    expect(agent.pendingCount).toBe(1);
  });

  it('rejects invalid options at once, with the constructor error', async () => {
    const dbPath = dbFile();
    holderOf(dbPath); // any wait for the database would be a long one
    const transport = { start() {}, send() {} };
    const bad: unknown[] = [
      undefined,
      { moduleName: '', dbPath, transport },
      { moduleName: 'x'.repeat(65), dbPath, transport },
      { moduleName: 'fim', dbPath: 42, transport },
      { moduleName: 'fim', dbPath, transport: {} },
      { moduleName: 'fim', dbPath, transport, busyTimeoutMs: -1 },
      { moduleName: 'fim', dbPath, transport, busyTimeoutMs: 1.5 },
    ];
    for (const input of bad) {
      const constructed = thrown(() => new AgentSyncProtocol(input as SeedWireOptions));
      expect(constructed).toSatisfy((e) => e instanceof TypeError || e instanceof RangeError);
      const outcome = await settledAtOnce(AgentSyncProtocol.open(input as SeedWireOptions));
      expect(outcome, JSON.stringify(input)).toEqual({ error: constructed });
      const { error } = outcome as { error: Error };
      expect(error.constructor).toBe((constructed as Error).constructor);
    }
  });

  it('rejects when the transport throws while wiring responses, and leaves the database free', async () => {
    const dbPath = dbFile();
    const failing = {
      start() {},
      send() {},
      onResponse() {
        throw new Error('no listener');
      },
    };
    await expect(
      AgentSyncProtocol.open({ moduleName: 'fim', dbPath, transport: failing }),
    ).rejects.toThrow('no listener');
    track(new AgentSyncProtocol(options(dbPath, { busyTimeoutMs: 0 })));
  });
});

describe('an instance from AgentSyncProtocol.open()', () => {
  it('persists and syncs like a constructed one', async () => {
    const dbPath = dbFile();
    const manager = track(new MockManager());
    const agent = await AgentSyncProtocol.open({
      moduleName: 'fim',
      dbPath,
      transport: manager.transport('fim'),
    });
    track(agent);
    agent.persistDifference('a', Operation.Create, 'idx', doc('a'));
    agent.persistDifference('b', Operation.Create, 'idx', doc('b'));
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 2 });
    expect(manager.documents('idx').map((d) => d.itemId)).toEqual(['a', 'b']);
    expect(agent.pendingCount).toBe(0);

    agent.persistDifferenceInMemory('c', Operation.Create, 'full', doc('c'));
    expect(await agent.synchronizeModule(Mode.Full)).toMatchObject({ ok: true, sent: 1 });
    expect(manager.documents('full').map((d) => d.itemId)).toEqual(['c']);

    // What it persisted survives a close, for the next instance however it is opened.
    agent.persistDifference('a', Operation.Delete, 'idx', '');
    await agent.close();
    const reopened = track(new AgentSyncProtocol(options(dbPath)));
    expect(reopened.pendingCount).toBe(1);
  });
});

/**
 * A child process keeping a queue open (or a write lock) on `dbPath` until SIGUSR2, then `holdMs`
 * more; resolves once it has it.
 */
function holdInChild(
  dbPath: string,
  holdMs: number,
  child: 'owner-child.ts' | 'lock-child.ts' = 'owner-child.ts',
): Promise<ChildProcess> {
  const ready = child === 'owner-child.ts' ? 'open' : 'locked';
  return new Promise((resolve, reject) => {
    const holder = spawn(
      process.execPath,
      ['--import', 'tsx', fixture(child), dbPath, String(holdMs)],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    closing.push({ close: () => holder.kill('SIGKILL') });
    holder.stdout?.setEncoding('utf8');
    holder.stdout?.on('data', (chunk: string) => {
      if (chunk.includes(ready)) resolve(holder);
    });
    holder.on('error', reject);
    holder.on('exit', (code) => reject(new Error(`${child} ended early (${code})`)));
  });
}

describe('PersistentQueue.open()', () => {
  it('waits on timers for a queue another process holds', async () => {
    const dbPath = dbFile();
    const holder = await holdInChild(dbPath, 0);
    // The holder lets go only when told, from a timer: a blocking wait would never tell it.
    const { ticks } = ticker((n) => {
      if (n === 5) holder.kill('SIGUSR2');
    });
    const queue = track(await PersistentQueue.open(dbPath, { busyTimeoutMs: 20_000 }));
    expect(ticks()).toBeGreaterThanOrEqual(5);
    expect(queue.inspect().map((e) => e.id)).toEqual(['child']);
  });

  it("waits on timers for another connection's write lock, then keeps busyTimeoutMs", async () => {
    const dbPath = dbFile();
    new PersistentQueue(dbPath).close();
    const writer = new Database(dbPath);
    closing.push(writer);
    writer.exec('BEGIN IMMEDIATE');
    let committedAtTick = 0;
    ticker((n) => {
      if (n === 5) {
        committedAtTick = n;
        writer.exec('COMMIT');
      }
    });

    const queue = track(await PersistentQueue.open(dbPath, { busyTimeoutMs: 20_000 }));
    expect(committedAtTick).toBe(5);
    // Later statements wait for a lock as a constructed queue's do, not 0 ms as an attempt's:
    // a write while another process holds the lock for a moment succeeds once it is released.
    const holder = await holdInChild(dbPath, 1500, 'lock-child.ts');
    holder.kill('SIGUSR2'); // commits 1.5 s later, while persistMany waits inside SQLite
    queue.persistMany([{ id: 'a', operation: Operation.Create, index: 'i', data: doc('a') }]);
    expect(queue.inspect().map((e) => e.id)).toEqual(['a']);
  });

  it('rejects other storage errors and invalid options at once', async () => {
    const dir = tempDir();
    const missing = await settledAtOnce(PersistentQueue.open(join(dir, 'no/such/dir/q.db')));
    expect(missing).toEqual({ error: expect.any(StorageError) });
    expect((missing as { error: Error }).error.message).toMatch(/directory .* does not exist/);

    const corrupt = join(dir, 'corrupt.db');
    writeFileSync(corrupt, 'not a database, not at all: '.repeat(200));
    const notADatabase = await settledAtOnce(PersistentQueue.open(corrupt));
    expect(notADatabase).toEqual({ error: expect.any(StorageError) });
    expect((notADatabase as { error: Error }).error.message).toMatch(/file is not a database/);

    const invalid = await settledAtOnce(PersistentQueue.open(dbFile(), { busyTimeoutMs: -1 }));
    expect(invalid).toEqual({ error: expect.any(RangeError) });
  });
});
