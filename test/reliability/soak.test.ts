// Fault soak: for a bounded number of rounds a module keeps persisting (also while its syncs run)
// and syncing, while the mock manager drops, duplicates, reorders and delays messages in both
// directions (seeded probabilities) and answers random Error/Offline statuses. Then the faults
// stop and one sync must bring the manager to the model: the final state of every id.
//
// Left out on purpose: the faults that let a StartAck outlive the sync that asked for it. Nothing
// in a StartAck says which Start it answers, so a late one can be taken by the NEXT sync, whose
// Start may announce more items than that stale session holds; the manager ignores the extra
// seqs and still answers EndAck Ok, and those changes are lost. No agent can tell the answers
// apart: it is a limit of the wire protocol (docs/guarantees.md). This soak found it twice, with
// a duplicated Start (one answer ended the sync, the other reached the next one; seed 1981734248)
// and with a Start held by 'reorder' past the timeout whose answer then came late (600 rounds,
// seed 605805594). So: Start is never duplicated or reordered, StartAck never reordered, and a
// Start delay plus a StartAck delay stay below the timeout. The last test of this file
// reproduces the loss (it.fails: it will start failing, as it should, once fixed).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AgentSyncProtocol } from '../../src/agent-sync-protocol.js';
import { Mode } from '../../src/enums/mode.js';
import { Operation } from '../../src/enums/operation.js';
import type { LogLevel } from '../../src/interfaces/logger.js';
import {
  type FaultAction,
  type FaultDirection,
  type FaultMessageType,
  MockManager,
} from '../../src/testing/mock-manager.js';
import { Status } from '../../src/wire/index.js';
import {
  AGENT_ID,
  envCount,
  expectedDocuments,
  HookTransport,
  INDEX,
  type ManagerModel,
  MODULE,
  managerDocuments,
  prng,
  runSeed,
  show,
  sleep,
} from './support.js';

const TIMEOUT_MS = 40;
/** Delays stay below the agent's timeout: a later answer is one the agent has given up on. */
const MAX_DELAY_MS = 30;
/** Start and StartAck: both delays together stay below the timeout. */
const MAX_START_DELAY_MS = 15;
const POOL = 30;

const TO_MANAGER: FaultMessageType[] = ['Start', 'DataValue', 'End'];
const TO_AGENT: FaultMessageType[] = ['StartAck', 'EndAck', 'ReqRet'];
const ACTIONS: FaultAction[] = ['drop', 'duplicate', 'reorder', 'delay'];

async function soak(seed: number, rounds: number) {
  const rand = prng(seed);
  const dir = mkdtempSync(join(tmpdir(), 'reliability-soak-'));
  const manager = new MockManager({ seed });
  const transport = new HookTransport(manager.transport(MODULE));
  const errors: string[] = [];
  const agent = new AgentSyncProtocol({
    moduleName: MODULE,
    dbPath: join(dir, 'queue.db'),
    transport,
    agentInfo: { id: AGENT_ID },
    logger: (level: LogLevel, message: string) => {
      if (level === 'error') errors.push(message);
    },
  });
  const model: ManagerModel = new Map();
  let version = 0;
  const persist = () => {
    const id = `item-${Math.floor(rand() * POOL)}`;
    const held = model.get(id) !== undefined && model.get(id) !== null;
    const r = rand();
    // Create only what the manager should not hold (see model.test.ts), else Modify or Delete.
    const op = held
      ? r < 0.7
        ? Operation.Modify
        : Operation.Delete
      : r < 0.8
        ? Operation.Create
        : Operation.Delete;
    const data = JSON.stringify({ id, v: ++version });
    agent.persistDifference(id, op, INDEX, data);
    model.set(id, op === Operation.Delete ? null : data);
  };

  // Every rule lives for the whole soak; each matching message is hit with its probability.
  for (const [direction, types] of [
    ['to-manager', TO_MANAGER],
    ['to-agent', TO_AGENT],
  ] as [FaultDirection, FaultMessageType[]][]) {
    for (const type of types) {
      for (const action of ACTIONS) {
        // See the top of the file: no StartAck may outlive its sync.
        const start = type === 'Start' || type === 'StartAck';
        if (type === 'Start' && action === 'duplicate') continue;
        if (start && action === 'reorder') continue;
        manager.inject({
          direction,
          type,
          action,
          probability: 0.015 + rand() * 0.03,
          delayMs: 1 + Math.floor(rand() * (start ? MAX_START_DELAY_MS : MAX_DELAY_MS)),
          times: Number.POSITIVE_INFINITY,
        });
      }
    }
  }

  // Retransmissions as seen on the wire: a DataValue seq sent again in the same session.
  let wireRetransmissions = 0;
  let sessionSeqs = new Set<bigint>();
  const stats = { ok: 0, failed: 0, retransmitted: 0, reasons: {} as Record<string, number> };
  for (let round = 0; round < rounds; round++) {
    const changes = 1 + Math.floor(rand() * 6);
    for (let i = 0; i < changes; i++) persist();
    if (rand() < 0.2) {
      const ack = rand() < 0.5 ? 'StartAck' : 'EndAck';
      manager.forceStatus(ack, rand() < 0.5 ? Status.Error : Status.Offline, 1);
    }
    transport.hook = (message, when) => {
      if (when !== 'before') return;
      if (message.type === 'Start') sessionSeqs = new Set();
      if (message.type === 'DataValue') {
        if (sessionSeqs.has(message.seq)) wireRetransmissions++;
        sessionSeqs.add(message.seq);
      }
      if (rand() < 0.05) persist();
    };
    const result = await agent.synchronizeModule(Mode.Delta, {
      timeoutMs: TIMEOUT_MS,
      retries: 2,
    });
    transport.hook = undefined;
    manager.forceStatus('StartAck', Status.Ok, 0);
    manager.forceStatus('EndAck', Status.Ok, 0);
    if (result.ok) {
      stats.ok++;
      stats.retransmitted += result.retransmitted;
    } else {
      stats.failed++;
      stats.reasons[result.reason] = (stats.reasons[result.reason] ?? 0) + 1;
    }
  }

  // Faults stop; what they held back or delayed lands before the last sync starts.
  const faults = manager.stats.faults;
  manager.clearFaults();
  await sleep(MAX_DELAY_MS * 3);
  const result = await agent.synchronizeModule(Mode.Delta, { timeoutMs: 5000 });
  try {
    expect(result.ok, `seed ${seed}: ${show(result)}`).toBe(true);
    expect(agent.pendingCount).toBe(0);
    expect(managerDocuments(manager), `seed ${seed}`).toEqual(expectedDocuments(model));
    expect(errors).toEqual([]);
  } finally {
    await agent.close();
    await manager.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return { faults, stats, wireRetransmissions, ids: model.size, version };
}

describe('fault soak', () => {
  it('drops, duplicates, reorders, delays and failing statuses: the last clean sync converges', async () => {
    const rounds = envCount('ASP_RELIABILITY_ROUNDS', 200);
    const soaks = envCount('ASP_RELIABILITY_SOAKS', 3);
    const seed = runSeed();
    for (let i = 0; i < soaks; i++) {
      const s = (seed + i * 7_777) >>> 0;
      const started = Date.now();
      const { faults, stats, wireRetransmissions, version } = await soak(s, rounds);
      const injected =
        faults.dropped +
        faults.duplicated +
        faults.reordered +
        faults.delayed +
        faults.forcedStatus;
      console.log(
        `soak ${i + 1}/${soaks} (seed ${s}): ${rounds} rounds, ${version} changes, ` +
          `${stats.ok} syncs ok / ${stats.failed} failed ${show(stats.reasons)}, ` +
          `${injected} faults injected ${show(faults)}, ${stats.retransmitted} retransmissions ` +
          `in successful syncs (${wireRetransmissions} on the wire), ${Date.now() - started} ms`,
      );
    }
  }, 300_000);

  // A known limit of the wire protocol (see the top of this file and docs/guarantees.md): the
  // assertion is the guarantee we would want; it fails today, so the test is marked it.fails.
  it.fails('known limit: a StartAck answering an earlier sync is taken by the next one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reliability-soak-'));
    const manager = new MockManager({ seed: 7 });
    const agent = new AgentSyncProtocol({
      moduleName: MODULE,
      dbPath: join(dir, 'queue.db'),
      transport: manager.transport(MODULE),
      agentInfo: { id: AGENT_ID },
    });
    try {
      const model: ManagerModel = new Map();
      const persist = (id: string) => {
        const data = JSON.stringify({ id });
        agent.persistDifference(id, Operation.Create, INDEX, data);
        model.set(id, data);
      };
      persist('a');
      persist('b');
      // Sync A's Start reaches the manager twice: the first copy is answered Offline (that
      // answer ends sync A), the second opens a session of size 2 whose StartAck is late.
      manager.inject({ type: 'Start', action: 'duplicate' });
      manager.forceStatus('StartAck', Status.Offline, 1);
      manager.inject({
        direction: 'to-agent',
        type: 'StartAck',
        action: 'delay',
        delayMs: 20,
        skip: 1,
      });
      // Sync B's own StartAck is slower still, so the stale one comes first.
      manager.inject({
        direction: 'to-agent',
        type: 'StartAck',
        action: 'delay',
        delayMs: 60,
        skip: 2,
      });
      const a = await agent.synchronizeModule(Mode.Delta, { timeoutMs: 1000 });
      expect(a).toMatchObject({ ok: false, reason: 'manager-offline' });
      for (const id of ['c', 'd', 'e']) persist(id);
      const b = await agent.synchronizeModule(Mode.Delta, { timeoutMs: 1000 });
      expect(b).toMatchObject({ ok: true, sent: 5 }); // "ok", in a session of size 2
      await sleep(80);
      expect(managerDocuments(manager)).toEqual(expectedDocuments(model)); // c, d, e are missing
    } finally {
      await agent.close();
      await manager.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
