import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach } from 'vitest';
import { PersistentQueue, type PersistentQueueOptions } from '../../src/queue/index.js';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
export const fixture = (name: string): string =>
  fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

/**
 * A fresh temp dir per test, plus an `open` that closes every queue it opened after the test
 * (so a failing assertion does not leak handles into the next test).
 */
export function useTempDir(): {
  dir: () => string;
  dbPath: (name?: string) => string;
  open: (path?: string, options?: PersistentQueueOptions) => PersistentQueue;
} {
  let current = '';
  const opened: PersistentQueue[] = [];
  beforeEach(() => {
    current = mkdtempSync(join(tmpdir(), 'persistent-queue-'));
  });
  afterEach(() => {
    for (const q of opened.splice(0)) q.close();
    rmSync(current, { recursive: true, force: true });
  });
  const dbPath = (name = 'queue.db') => join(current, name);
  return {
    dir: () => current,
    dbPath,
    open: (path = dbPath(), options = {}) => {
      const q = new PersistentQueue(path, options);
      opened.push(q);
      return q;
    },
  };
}

/** Everything the next take would return, without leaving the take active. */
export function peekNextTake(q: PersistentQueue): { size: number; ops: number[]; ids: string[] } {
  const { size } = q.take();
  const rows = q.readSeqs(0, size - 1, size);
  q.complete(false);
  return { size, ops: rows.map((r) => r.operation), ids: rows.map((r) => r.id) };
}
