// Storage faults: a database locked by another process, a full disk, a read-only file or
// directory, a missing directory, corrupt files. Each must surface as a clear error from the call
// that hit it (StorageError, or a SyncResult with reason 'storage'), keep what was stored, and
// leave an instance that works again once the fault is gone. New files are owner-only.
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it, type TestContext } from 'vitest';
import { AgentSyncProtocol, internalQueueOf } from '../../src/agent-sync-protocol.js';
import { Mode } from '../../src/enums/mode.js';
import { Operation } from '../../src/enums/operation.js';
import type { SyncResult } from '../../src/interfaces/results.js';
import { PersistentQueue } from '../../src/queue/persistent-queue.js';
import { StorageError } from '../../src/queue/storage-error.js';
import { MockManager } from '../../src/testing/mock-manager.js';
import { cleanupAfterEach } from '../helpers.js';
import { AGENT_ID, HookTransport, INDEX, MODULE, managerDocuments, show } from './support.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

const cleanup = cleanupAfterEach();

const faults: Record<string, number> = {};
const count = (what: string) => {
  faults[what] = (faults[what] ?? 0) + 1;
};
afterAll(() => console.log(`storage: faults exercised ${show(faults)}`));

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'reliability-storage-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function open(dbPath: string, manager = new MockManager(), busyTimeoutMs?: number) {
  const transport = new HookTransport(manager.transport(MODULE));
  const agent = new AgentSyncProtocol({
    moduleName: MODULE,
    dbPath,
    transport,
    agentInfo: { id: AGENT_ID },
    ...(busyTimeoutMs === undefined ? {} : { busyTimeoutMs }),
  });
  cleanup.push(() => agent.close());
  cleanup.push(() => manager.close());
  return { agent, manager, transport };
}

const doc = (id: string, v: number | string = 1) => JSON.stringify({ id, v });

/** What a call threw, or undefined. */
function thrown(call: () => unknown): unknown {
  try {
    call();
  } catch (error) {
    return error;
  }
  return undefined;
}

/** The agent's queue (private): the full-disk test caps its pages through a test hook. */
function queueOf(agent: AgentSyncProtocol): PersistentQueue {
  return internalQueueOf(agent);
}

// ---- another process holding the lock ---------------------------------------------------------

interface Holder {
  child: ChildProcessWithoutNullStreams;
  /** Resolves when the child printed a line `match` accepts (a string: that exact line). */
  line(match: string | ((line: string) => boolean)): Promise<string>;
  /**
   * Tells the child (SIGUSR2) to let go of the lock, `releaseDelayMs` later; resolves with its
   * Date.now() taken while it still held the lock.
   */
  release(): Promise<number>;
}

/**
 * Another process holding the write lock, from when it starts (or, with `onSignal`, from a line
 * on its stdin) until `release()`: the test says when the lock goes, no timer does.
 */
function lockHolder(dbPath: string, releaseDelayMs: number, onSignal = false): Holder {
  const args = ['--import', 'tsx', fixture('lock-holder.ts'), dbPath, String(releaseDelayMs)];
  if (onSignal) args.push('on-signal');
  const child = spawn(process.execPath, args, { cwd: REPO });
  let out = '';
  let err = '';
  let ended = false;
  const waiters: (() => void)[] = [];
  const wake = () => {
    for (const waiter of waiters.splice(0)) waiter();
  };
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    out += chunk;
    wake();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const exited = new Promise<void>((resolve) =>
    child.on('close', () => {
      ended = true;
      wake();
      resolve();
    }),
  );
  cleanup.push(async () => {
    child.kill('SIGKILL');
    await exited;
  });
  const line = (match: string | ((line: string) => boolean)) =>
    new Promise<string>((resolve, reject) => {
      const accepts = typeof match === 'string' ? (l: string) => l === match : match;
      const check = () => {
        const found = out.split('\n').slice(0, -1).find(accepts);
        if (found !== undefined) resolve(found);
        else if (ended) reject(new Error(`lock holder exited before '${String(match)}': ${err}`));
        else waiters.push(check);
      };
      check();
    });
  return {
    child,
    line,
    release: async () => {
      child.kill('SIGUSR2');
      const released = await line((l) => l.startsWith('released '));
      return Number(released.slice('released '.length));
    },
  };
}

/**
 * How long the holder keeps the lock after `release()` where a blocking call of this process
 * must meet the lock and wait it out: the call begins right after the signal, so it meets the
 * lock unless this process stalls longer than this (the tests check that it did meet it).
 */
const LET_GO_MS = 500;

describe('a database locked by another process', () => {
  it('waits out a lock shorter than the busy timeout (open, count and sync)', async () => {
    const path = join(tempDir(), 'queue.db');
    const { agent, manager } = open(path, new MockManager(), 5000);
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'));

    // Each call begins while another process holds the lock, which it lets go LET_GO_MS after
    // the signal: the call waits and succeeds. The holder's clock says it still had the lock
    // when the call began.
    let holder = lockHolder(path, LET_GO_MS);
    await holder.line('locked');
    // A persist only appends to the intent log; counting moves it into SQLite, which waits.
    agent.persistDifference('b', Operation.Create, INDEX, doc('b'));
    let released = holder.release();
    let began = Date.now();
    expect(agent.pendingCount).toBe(2);
    expect(began, 'count began under the lock').toBeLessThan(await released);
    count('lock waited out');

    holder = lockHolder(path, LET_GO_MS);
    await holder.line('locked');
    released = holder.release();
    began = Date.now();
    // The take runs inside this call, before its first await.
    const syncing = agent.synchronizeModule(Mode.Delta, { timeoutMs: 20_000 });
    expect(began, 'sync began under the lock').toBeLessThan(await released);
    const result = await syncing;
    count('lock waited out');

    // The next owner of the file, once this one is closed.
    await agent.close();
    holder = lockHolder(path, LET_GO_MS);
    await holder.line('locked');
    released = holder.release();
    began = Date.now();
    const second = open(path, new MockManager(), 5000);
    expect(began, 'open began under the lock').toBeLessThan(await released);
    count('lock waited out');

    expect(result).toMatchObject({ ok: true, sent: 2 });
    expect(Object.keys(managerDocuments(manager))).toEqual(['a', 'b']);
    expect(second.agent.pendingCount).toBe(0);
  });

  it('past the busy timeout: a StorageError or a storage result from the call, then works again', async () => {
    const path = join(tempDir(), 'queue.db');
    const { agent, manager } = open(path, new MockManager(), 300);
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'));
    agent.persistDifference('b', Operation.Create, INDEX, doc('b'));

    // Held until every call below has failed: however slow they are, none meets a free file.
    const holder = lockHolder(path, 0);
    await holder.line('locked');
    // Persists go to the intent log until it is full; the one that must first move the full log
    // into SQLite waits for the lock, then fails and stores nothing.
    const accepted: string[] = [];
    let error: unknown;
    let waited = 0;
    for (let n = 0; n < 5000 && error === undefined; n++) {
      const started = Date.now();
      error = thrown(() => agent.persistDifference(`c${n}`, Operation.Create, INDEX, doc(`c${n}`)));
      if (error === undefined) accepted.push(`c${n}`);
      else waited = Date.now() - started;
    }
    expect(error).toBeInstanceOf(StorageError);
    expect((error as Error).message).toMatch(/cannot persist a change: .*locked/);
    expect((error as Error).message).toMatch(/another connection for more than 300 ms/);
    expect(((error as Error).cause as { code: string }).code).toMatch(/^SQLITE_BUSY/);
    expect(waited).toBeGreaterThan(150);
    expect(accepted.length).toBeGreaterThan(0);
    count('lock: persist');

    const counting = thrown(() => agent.pendingCount);
    expect(counting).toBeInstanceOf(StorageError);
    expect((counting as Error).message).toMatch(/cannot count pending rows: .*more than 300 ms/);
    count('lock: count');
    const result = await agent.synchronizeModule(Mode.Delta, { timeoutMs: 5000 });
    expect(result).toMatchObject({ ok: false, reason: 'storage' });
    expect((result as { message: string }).message).toMatch(/cannot take: .*more than 300 ms/);
    count('lock: sync');
    const opening = thrown(() => open(path, new MockManager(), 300));
    expect(opening).toBeInstanceOf(StorageError);
    expect((opening as Error).message).toMatch(/cannot open .*queue\.db: .*more than 300 ms/);
    count('lock: open');

    await holder.release();
    // Every accepted persist is there, the refused one is not.
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({
      ok: true,
      sent: 2 + accepted.length,
    });
    expect(managerDocuments(manager)).toEqual(
      Object.fromEntries(['a', 'b', ...accepted].map((id) => [id, { id, v: 1 }])),
    );
  });

  it('a lock taken while a sync waits for EndAck: storage result, and the next sync sends it all', async () => {
    const path = join(tempDir(), 'queue.db');
    const manager = new MockManager();
    const { agent, transport } = open(path, manager, 300);
    for (const id of ['a', 'b', 'c']) agent.persistDifference(id, Operation.Create, INDEX, doc(id));
    // The manager indexes at End; its EndAck reaches the agent only once another process holds
    // the write lock (taken when End goes out), so recording the success fails.
    const holder = lockHolder(path, 0, true);
    await holder.line('ready');
    transport.hook = (message, when) => {
      if (message.type === 'End' && when === 'after') holder.child.stdin.write('lock\n');
    };
    transport.responseHook = (message) =>
      message.type === 'EndAck' ? holder.line('locked') : undefined;
    const first = await agent.synchronizeModule(Mode.Delta, { timeoutMs: 20_000 });
    transport.hook = undefined;
    transport.responseHook = undefined;
    expect(first).toMatchObject({ ok: false, reason: 'storage' });
    expect((first as { message: string }).message).toMatch(/cannot complete the take/);
    count('lock: completing a sync');

    await holder.release();
    agent.persistDifference('a', Operation.Delete, INDEX, doc('a', 2));
    agent.persistDifference('d', Operation.Create, INDEX, doc('d'));
    const next = await agent.synchronizeModule(Mode.Delta, { timeoutMs: 5000 });
    expect(next, show(next)).toMatchObject({ ok: true });
    expect(agent.pendingCount).toBe(0);
    expect(managerDocuments(manager)).toEqual({
      b: { id: 'b', v: 1 },
      c: { id: 'c', v: 1 },
      d: { id: 'd', v: 1 },
    });
  });
});

describe('a full disk (SQLite max_page_count caps the file)', () => {
  it('persist and sync fail with a clear error, lose nothing, and work again once space is freed', async () => {
    const path = join(tempDir(), 'queue.db');
    const { agent, manager } = open(path);
    const queue = queueOf(agent);
    const big = (id: string, v: number) => JSON.stringify({ id, v, pad: 'x'.repeat(600) });
    const model = new Map<string, string>();
    for (let i = 0; i < 20; i++) {
      agent.persistDifference(`s${i}`, Operation.Create, INDEX, big(`s${i}`, 1));
      model.set(`s${i}`, big(`s${i}`, 1));
    }
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 20 });
    for (let i = 0; i < 10; i++) {
      agent.persistDifference(`p${i}`, Operation.Create, INDEX, big(`p${i}`, 1));
      model.set(`p${i}`, big(`p${i}`, 1));
    }
    // Many small pending rows: numbering them for a sync needs pages of its own.
    for (let i = 0; i < 400; i++) {
      agent.persistDifference(`m${i}`, Operation.Create, INDEX, doc(`m${i}`));
      model.set(`m${i}`, doc(`m${i}`));
    }

    // The disk fills: the cap is the current size (SQLite never sets it lower). Persists go to
    // the intent log until it is full; moving it into SQLite then fails, and that persist stores
    // nothing (checked below: the manager ends up without it).
    expect(agent.pendingCount).toBe(410);
    const cap = queue.setMaxPageCount(1);
    let error: unknown;
    let n = 0;
    for (; n < 5000 && error === undefined; n++) {
      error = thrown(() =>
        agent.persistDifference(`f${n}`, Operation.Create, INDEX, big(`f${n}`, 1)),
      );
      if (error === undefined) model.set(`f${n}`, big(`f${n}`, 1));
    }
    expect(error, `no failure after ${n} persists under a ${cap}-page cap`).toBeInstanceOf(
      StorageError,
    );
    expect((error as Error).message).toMatch(/cannot persist a change: database or disk is full/);
    expect(((error as Error).cause as { code: string }).code).toBe('SQLITE_FULL');
    count('full: persist');

    // Counting and syncing need the logged changes in SQLite first; they say why they can't.
    const counting = thrown(() => agent.pendingCount);
    expect(counting).toBeInstanceOf(StorageError);
    expect((counting as Error).message).toMatch(/cannot count pending rows: database or disk/);
    const during: SyncResult = await agent.synchronizeModule(Mode.Delta, { timeoutMs: 5000 });
    expect(during).toMatchObject({ ok: false, reason: 'storage' });
    expect((during as { message: string }).message).toMatch(/database or disk is full/);
    count('full: sync');

    // Space is freed: the same instance carries on, nothing accepted was lost, and the refused
    // persist stored nothing.
    queue.setMaxPageCount();
    const expected = () =>
      Object.fromEntries([...model].map(([id, data]) => [id, JSON.parse(data)]));
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true });
    expect(agent.pendingCount).toBe(0);
    const refused = `f${n - 1}`;
    expect(managerDocuments(manager)).toEqual(expected());
    expect(managerDocuments(manager)).not.toHaveProperty(refused);
    agent.persistDifference(refused, Operation.Create, INDEX, big(refused, 2));
    model.set(refused, big(refused, 2));
    expect(await agent.synchronizeModule(Mode.Delta)).toMatchObject({ ok: true, sent: 1 });
    expect(managerDocuments(manager)).toEqual(expected());
  });
});

/**
 * Whether this process may mount a tmpfs in a private mount namespace (root with CAP_SYS_ADMIN,
 * and `unshare` installed). Then the full-disk test also runs on a real, full file system.
 */
function canMountTmpfs(): boolean {
  const dir = mkdtempSync(join(tmpdir(), 'reliability-probe-'));
  try {
    const probe = spawnSync(
      'unshare',
      [
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-c',
        'mount -t tmpfs -o size=64k tmpfs "$1"',
        'sh',
        dir,
      ],
      { stdio: 'ignore', timeout: 5000 },
    );
    return probe.status === 0;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('a real full disk (a 1 MB tmpfs, when this process may mount one)', () => {
  it.skipIf(!canMountTmpfs())(
    'ENOSPC: persist and sync report it, lose nothing, and the instance carries on once space is freed',
    async () => {
      const dir = tempDir();
      // The tmpfs exists only in the child's mount namespace; it vanishes with the child.
      const child = spawn(
        'unshare',
        [
          '--mount',
          '--propagation',
          'private',
          'sh',
          '-c',
          'mount -t tmpfs -o size=1m,mode=0700 tmpfs "$1" && exec "$2" --import tsx "$3" "$1"',
          'sh',
          dir,
          process.execPath,
          fixture('enospc-child.ts'),
        ],
        { cwd: REPO },
      );
      let out = '';
      let err = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
      });
      child.stderr.on('data', (c: Buffer) => {
        err += c.toString();
      });
      const code = await new Promise((resolve) => child.on('close', resolve));
      expect(code, err).toBe(0);
      const report = JSON.parse(out.trim().split('\n').pop() ?? '{}');
      expect(report).toMatchObject({
        firstSync: true,
        persistError: { name: 'StorageError' },
        refusedAbsent: true,
        syncAfter: true,
        pendingAfter: 0,
        converged: true,
      });
      // The intent log's write fails with ENOSPC; moving the log into SQLite, with SQLITE_FULL.
      expect(report.persistError.message).toMatch(
        /^persistent queue: cannot persist a change: (ENOSPC: no space left on device|database or disk is full)/,
      );
      expect(report.persistError.code).toMatch(/^(ENOSPC|SQLITE_FULL)$/);
      // A sync on a full disk may still find room to number its rows; if not it says so.
      if (report.syncDuringFull !== 'ok') {
        expect(report.syncDuringFull).toMatchObject({ reason: 'storage' });
        expect(report.syncDuringFull.message).toMatch(/database or disk is full/);
      }
      count('real full disk (tmpfs)');
    },
  );
});

// ---- read-only file or directory, in a process that is not root -------------------------------

// Root ignores file modes, so these run the library in a child process as `nobody` (when the
// tests run as root), or as the current user with modes that exclude it. The fault is real: the
// kernel refuses the open or the write, and SQLite reports it.
const ROOT = process.getuid?.() === 0;
const NOBODY = 65534;

/**
 * How the child runs without the right to write. As root it starts as root, so it can load its
 * modules from a checkout only root may read (a build in a 0700 directory), and switches to
 * nobody (uid and gid 65534, no supplementary groups) before it opens anything; `skip` says why
 * that is impossible here (a user namespace without that uid...). Not root: it runs as this user.
 */
const CHILD_USER = unprivilegedChild();

function unprivilegedChild(): { env: Record<string, string>; skip?: undefined } | { skip: string } {
  if (!ROOT) return { env: {} };
  const probe = spawnSync(
    process.execPath,
    ['-e', `process.setgroups([]); process.setgid(${NOBODY}); process.setuid(${NOBODY});`],
    { encoding: 'utf8', timeout: 30_000 },
  );
  if (probe.status === 0) return { env: { ASP_STORAGE_CHILD_UID: String(NOBODY) } };
  const why = probe.error?.message ?? probe.stderr.split('\n').find((l) => /Error/.test(l));
  return {
    skip:
      `running as root, and a child process cannot switch to uid ${NOBODY} ` +
      `(${why?.trim() ?? `exit ${probe.status}`}); root ignores file modes, so there is no ` +
      'read-only storage to test here',
  };
}

/** Skips the test, with the reason printed, when the child cannot run unprivileged. */
function needUnprivilegedChild(ctx: TestContext): Record<string, string> {
  if (CHILD_USER.skip === undefined) return CHILD_USER.env;
  console.warn(`storage: skipped '${ctx.task.name}': ${CHILD_USER.skip}`);
  return ctx.skip(CHILD_USER.skip);
}

interface ChildReport {
  opened: boolean;
  error?: { name: string; message: string; code?: string };
  pending?: number;
  persisted?: boolean;
  synced?: unknown;
  documents?: string[];
}

function runStorageChild(
  childEnv: Record<string, string>,
  dbPath: string,
  id: string,
): Promise<ChildReport> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fixture('storage-child.ts'), dbPath, id],
    // As root, the child drops to nobody itself once its modules are loaded (CHILD_USER).
    { cwd: REPO, env: { ...process.env, ...childEnv } },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    err += c.toString();
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as ChildReport);
      } catch {
        reject(new Error(`storage child failed (${code}): ${out} ${err}`));
      }
    });
  });
}

/** A directory the child may traverse but not write (dir mode and ownership). */
function lockedDownDir(): string {
  const dir = tempDir();
  chmodSync(dir, 0o755);
  if (!ROOT) chmodSync(dir, 0o555);
  cleanup.push(() => chmodSync(dir, 0o700));
  return dir;
}

/** The fault goes away: the child's user may write the directory and the file. */
function giveToChild(dir: string, ...files: string[]): void {
  if (ROOT) {
    chownSync(dir, NOBODY, NOBODY);
    for (const file of files) if (existsSync(file)) chownSync(file, NOBODY, NOBODY);
  } else {
    chmodSync(dir, 0o700);
    for (const file of files) if (existsSync(file)) chmodSync(file, 0o600);
  }
}

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

describe('read-only storage', () => {
  it('a read-only database file: clear error at open, file untouched, works once writable', async (ctx) => {
    const childEnv = needUnprivilegedChild(ctx);
    const dir = tempDir();
    const path = join(dir, 'queue.db');
    const q = new PersistentQueue(path);
    for (let i = 0; i < 5; i++) q.persist(`k${i}`, Operation.Create, INDEX, doc(`k${i}`));
    q.close();
    expect(existsSync(`${path}-wal`)).toBe(false); // a clean close checkpoints the WAL away
    // The directory and the lock file are the child's; the database is readable by it but not
    // writable.
    giveToChild(dir, `${path}-lock`);
    chmodSync(path, ROOT ? 0o644 : 0o444);
    const before = sha(path);

    const refused = await runStorageChild(childEnv, path, 'x');
    expect(refused.opened, show(refused)).toBe(false);
    expect(refused.error).toMatchObject({ name: 'StorageError', code: 'SQLITE_READONLY' });
    expect(refused.error?.message).toMatch(
      /persistent queue: cannot open .*queue\.db: attempt to write a readonly database/,
    );
    expect(sha(path)).toBe(before);
    count('read-only file');

    giveToChild(dir, path);
    const works = await runStorageChild(childEnv, path, 'x');
    expect(works, show(works)).toMatchObject({
      opened: true,
      pending: 5,
      persisted: true,
      synced: true,
    });
    expect(works.documents).toEqual(['k0', 'k1', 'k2', 'k3', 'k4', 'x']);
  });

  it('a read-only directory: a new database cannot be created, with a clear error', async (ctx) => {
    const childEnv = needUnprivilegedChild(ctx);
    const dir = lockedDownDir();
    const path = join(dir, 'queue.db');
    const refused = await runStorageChild(childEnv, path, 'x');
    expect(refused.opened, show(refused)).toBe(false);
    expect(refused.error).toMatchObject({ name: 'StorageError', code: 'EACCES' });
    expect(refused.error?.message).toMatch(/cannot open .*queue\.db: EACCES: permission denied/);
    expect(existsSync(path)).toBe(false);
    count('read-only directory');

    giveToChild(dir);
    const works = await runStorageChild(childEnv, path, 'x');
    expect(works, show(works)).toMatchObject({ opened: true, pending: 0, synced: true });
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('an existing database in a read-only directory (WAL files cannot be created)', async (ctx) => {
    const childEnv = needUnprivilegedChild(ctx);
    const dir = lockedDownDir();
    const path = join(dir, 'queue.db');
    const q = new PersistentQueue(path);
    for (let i = 0; i < 3; i++) q.persist(`k${i}`, Operation.Create, INDEX, doc(`k${i}`));
    q.close();
    for (const file of [path, `${path}-lock`]) {
      if (ROOT) chownSync(file, NOBODY, NOBODY);
      else chmodSync(file, 0o600);
    }
    const before = sha(path);
    const refused = await runStorageChild(childEnv, path, 'x');
    expect(refused.opened, show(refused)).toBe(false);
    expect(refused.error).toMatchObject({
      name: 'StorageError',
      code: 'SQLITE_READONLY_DIRECTORY',
    });
    expect(refused.error?.message).toMatch(/cannot open .*queue\.db: attempt to write a readonly/);
    expect(sha(path)).toBe(before);
    count('read-only directory, existing file');

    giveToChild(dir, path);
    const works = await runStorageChild(childEnv, path, 'x');
    expect(works, show(works)).toMatchObject({ opened: true, pending: 3, synced: true });
  });
});

describe('missing and corrupt files', () => {
  it('a missing directory: StorageError naming it, nothing created', () => {
    const dir = join(tempDir(), 'no', 'such');
    const error = thrown(() => open(join(dir, 'queue.db')));
    expect(error).toBeInstanceOf(StorageError);
    expect((error as Error).message).toMatch(
      /cannot open .*queue\.db: directory .*no\/such does not exist/,
    );
    expect(existsSync(join(dir, '..'))).toBe(false);
    count('missing directory');
  });

  it('a file of garbage: StorageError at open, the file left as it was', () => {
    const path = join(tempDir(), 'queue.db');
    writeFileSync(path, randomBytes(8192));
    const before = sha(path);
    const error = thrown(() => open(path));
    expect(error).toBeInstanceOf(StorageError);
    expect((error as Error).message).toMatch(/cannot open .*queue\.db: file is not a database/);
    expect(sha(path)).toBe(before);
    count('garbage file');
  });

  it('a truncated database: every call works or throws StorageError; syncs say storage', async () => {
    for (const fraction of [0.15, 0.4, 0.5, 0.7, 0.95]) {
      const path = join(tempDir(), 'queue.db');
      const q = new PersistentQueue(path);
      q.persistMany(
        Array.from({ length: 400 }, (_, i) => ({
          id: `t${i}`,
          operation: Operation.Create,
          index: INDEX,
          data: JSON.stringify({ i, pad: 'y'.repeat(300) }),
        })),
      );
      q.close();
      const size = statSync(path).size;
      // 0.5 cuts at a page boundary, the others mid-page.
      const cut = fraction === 0.5 ? Math.floor((size * fraction) / 4096) * 4096 : size * fraction;
      truncateSync(path, Math.floor(cut));
      count('truncated file');

      const errors: unknown[] = [];
      let agent: AgentSyncProtocol | undefined;
      try {
        agent = open(path).agent;
      } catch (error) {
        errors.push(error);
      }
      if (agent) {
        const a = agent;
        for (const call of [
          () => a.pendingCount,
          () => a.persistDifference('new', Operation.Create, INDEX, doc('new')),
          () => a.pendingCount,
        ]) {
          const error = thrown(call);
          if (error !== undefined) errors.push(error);
        }
        const result = await a.synchronizeModule(Mode.Delta, { timeoutMs: 5000 });
        if (!result.ok) {
          expect(result.reason, show(result)).toBe('storage');
          errors.push(new StorageError(result.message));
        }
        await a.close();
      }
      expect(errors.length, `truncated to ${fraction}`).toBeGreaterThan(0);
      for (const error of errors) {
        expect(error, `truncated to ${fraction}`).toBeInstanceOf(StorageError);
        expect((error as Error).message).toMatch(/database disk image is malformed|not a database/);
      }
      expect(existsSync(path)).toBe(true);
    }
  });
});

describe('file modes', () => {
  it('creates the database, its -wal and -shm, the intent log and the lock file owner-only (0600)', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'sub'));
    const path = join(dir, 'sub', 'queue.db');
    const { agent } = open(path);
    agent.persistDifference('a', Operation.Create, INDEX, doc('a'));
    expect(statSync(`${path}-intent`).size).toBeGreaterThan(0);
    expect(agent.pendingCount).toBe(1);
    for (const file of [path, `${path}-wal`, `${path}-shm`, `${path}-intent`, `${path}-lock`]) {
      expect(existsSync(file), file).toBe(true);
      expect((statSync(file).mode & 0o777).toString(8), file).toBe('600');
    }
  });
});
