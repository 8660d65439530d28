import { closeSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

/**
 * Makes one open queue the only owner of its database: `<database>-lock`, held from open to close.
 *
 * Why: two queues on one database would append to the same intent log at their own offsets
 * (overwriting each other's records: changes lost) and each open's crash recovery would reset
 * the other's take. A second opener, in this process or another, waits for the owner to close
 * up to the busy timeout and then fails with a clear error.
 *
 * Why SQLite holds it: its locks are POSIX record locks, which the kernel drops when a process
 * dies (no stale lock after SIGKILL, unlike a pid file), and it also keeps two connections of
 * one process apart, which bare POSIX locks do not. Node has no `flock`. The lock file is never
 * written and never removed: removing it on close would let a waiter lock the unlinked file
 * while a newcomer locks a new one.
 */
export class OwnerLock {
  #db: Database.Database | undefined;

  /** Takes the lock, waiting up to `busyTimeoutMs` for an owner to close. */
  constructor(path: string, busyTimeoutMs: number) {
    createOwnerOnlyFile(path);
    const db = new Database(path, { timeout: busyTimeoutMs });
    try {
      // Held until release(): the transaction is never committed and writes nothing. Fails with
      // SQLITE_BUSY when another queue still holds it after the busy timeout.
      db.exec('BEGIN EXCLUSIVE');
    } catch (err) {
      db.close();
      throw err;
    }
    this.#db = db;
  }

  /** Releases the lock; idempotent. */
  release(): void {
    const db = this.#db;
    this.#db = undefined;
    db?.close();
  }
}

/**
 * Creates `path` readable by its owner only, if it does not exist: SQLite gives the database's
 * -wal and -shm files the database's mode. A missing directory is an error, not something to
 * create.
 */
export function createOwnerOnlyFile(path: string): void {
  try {
    // 'wx' opens nothing when the file exists: closing a descriptor of a file this process has
    // locked would drop the lock (POSIX), so an existing file is never opened here.
    closeSync(openSync(path, 'wx', 0o600));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    if (code === 'ENOENT') {
      throw new Error(`directory ${dirname(path)} does not exist`, { cause: err });
    }
    throw err;
  }
}
