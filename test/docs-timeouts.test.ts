// What docs/lifecycle.md ("Waiting for EndAck") and the README say about
// `timeoutMs`, against a manager that answers the last End only after its
// indexer flush, as the real one does (about 20 s, plus the HTTP request),
// and ignores an End for a session it is indexing. Fake timers: no test waits
// for real.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AgentSyncProtocol, Mode, Operation, type SyncOptions } from '../src/index.js';
import { Status } from '../src/wire/index.js';
import { doc, scriptedManager } from './helpers.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const FLUSH_MS = 20_000;
const HTTP_MS = 1_500;

/**
 * Let fake time pass in small steps: between steps, the real event loop runs
 * the work the sync does between timers (replies are delivered on real
 * setImmediate), as it would while real time passes.
 */
async function pass(ms: number, step = 50): Promise<void> {
  for (let elapsed = 0; elapsed < ms; elapsed += step) {
    await vi.advanceTimersByTimeAsync(Math.min(step, ms - elapsed));
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** The default the README's SyncOptions table documents for `timeoutMs`. */
function documentedDefaultTimeoutMs(): number {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const row = /^\| `timeoutMs` \| `(\d+)` \|/m.exec(readme);
  if (!row) throw new Error('README has no timeoutMs row');
  return Number(row[1]);
}

function slowManager() {
  let indexed = 0;
  const transport = scriptedManager({
    // EndAck once the flush is done; End meanwhile gets no answer (the
    // scripted manager ignores End after completion).
    complete: (t, session) => {
      setTimeout(() => {
        indexed++;
        t.reply(t.encoder.endAck(Status.Ok, session));
      }, FLUSH_MS + HTTP_MS);
    },
  });
  return { transport, indexed: () => indexed };
}

async function syncOnce(options?: SyncOptions) {
  const manager = slowManager();
  const sync = new AgentSyncProtocol({
    moduleName: 'fim',
    dbPath: ':memory:',
    transport: manager.transport,
    agentInfo: { id: '001' },
  });
  sync.persistDifference('a', Operation.Create, 'idx', doc('a'));
  const pending = sync.synchronizeModule(Mode.Delta, options);
  await pass(5 * 60_000);
  const result = await pending;
  const left = sync.pendingCount;
  await sync.close();
  return { result, left, ends: manager.transport.count('End'), indexed: manager.indexed() };
}

describe('timeoutMs against a manager that flushes before EndAck', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('the documented default is above the flush interval, and one wait covers the flush', async () => {
    expect(documentedDefaultTimeoutMs()).toBeGreaterThan(FLUSH_MS + HTTP_MS);
    const { result, ends, left } = await syncOnce();
    expect(result).toMatchObject({ ok: true });
    // The probe End and the final End; none sent again while the manager flushed.
    expect(ends).toBe(2);
    expect(left).toBe(0);
  });

  it('the documented default is the one in force', async () => {
    const manager = scriptedManager({ complete: () => {} }); // never answers the last End
    const sync = new AgentSyncProtocol({
      moduleName: 'fim',
      dbPath: ':memory:',
      transport: manager,
      agentInfo: { id: '001' },
    });
    sync.persistDifference('a', Operation.Create, 'idx', doc('a'));
    const pending = sync.synchronizeModule(Mode.Delta, { retries: 1 });
    await pass(1_000);
    expect(manager.count('End')).toBe(2);
    await pass(documentedDefaultTimeoutMs() - 1_000 - 100);
    expect(manager.count('End')).toBe(2);
    await pass(200);
    expect(manager.count('End')).toBe(3);
    await pass(documentedDefaultTimeoutMs());
    expect(await pending).toMatchObject({ ok: false, reason: 'timeout' });
    await sync.close();
  });

  it('a timeout below the flush fails the sync though the manager indexes the data, and the rows are sent again', async () => {
    const { result, ends, left, indexed } = await syncOnce({ timeoutMs: 5_000, retries: 3 });
    expect(result).toMatchObject({ ok: false, reason: 'timeout' });
    expect(ends).toBe(5); // the probe End, then End and its 3 re-sends, all ignored
    expect(indexed).toBe(1);
    expect(left).toBe(1);
  });
});
