// Fault soak: for a bounded number of rounds a module keeps persisting (also while its syncs run)
// and syncing, while the mock manager drops, duplicates, reorders and delays messages in both
// directions (seeded probabilities) and answers random Error/Offline statuses. Then the faults
// stop and one sync must bring the manager to the model: the final state of every id.
//
// Every fault hits every message type, with delays up to twice the agent's timeout, so answers
// outlive the sync that asked for them. Nothing in a StartAck says which Start it answers, so a
// late one can reach the NEXT sync, whose Start may announce more items than that stale session
// holds; the manager would ignore the extra seqs and still answer EndAck Ok. This soak found that
// loss twice (a duplicated Start whose second answer reached the next sync, seed 1981734248; a
// Start held by 'reorder' past the timeout, 600 rounds, seed 605805594). The session driver now
// probes each session's size before sending data (SessionDriver.probe); the last test of this
// file replays the first case.
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
/** Past the agent's timeout: some answers come after the agent gave up on them. */
const MAX_DELAY_MS = 2 * TIMEOUT_MS;
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
        manager.inject({
          direction,
          type,
          action,
          probability: 0.015 + rand() * 0.03,
          delayMs: 1 + Math.floor(rand() * MAX_DELAY_MS),
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

  it('a StartAck answering an earlier sync reaches the next one: the probe refuses its session', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reliability-soak-'));
    const manager = new MockManager({ seed: 7 });
    const transport = new HookTransport(manager.transport(MODULE));
    const warnings: string[] = [];
    const agent = new AgentSyncProtocol({
      moduleName: MODULE,
      dbPath: join(dir, 'queue.db'),
      transport,
      agentInfo: { id: AGENT_ID },
      logger: (level: LogLevel, message: string) => {
        if (level === 'warn') warnings.push(message);
      },
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
      // answer ends sync A), the second opens a session of size 2 whose StartAck is late: it
      // reaches the agent only once sync B has sent its Start. Sync B's own StartAck is later
      // still (after B is over), so the stale one comes first. No timer orders them.
      manager.inject({ type: 'Start', action: 'duplicate' });
      manager.forceStatus('StartAck', Status.Offline, 1);
      let starts = 0;
      let bStarted = () => {};
      const bStart = new Promise<void>((resolve) => {
        bStarted = resolve;
      });
      let bEnded = () => {};
      const bOver = new Promise<void>((resolve) => {
        bEnded = resolve;
      });
      transport.hook = (message, when) => {
        if (message.type === 'Start' && when === 'after' && ++starts === 2) bStarted();
      };
      let startAcks = 0;
      transport.responseHook = (message) => {
        if (message.type !== 'StartAck') return undefined;
        startAcks++;
        return startAcks === 2 ? bStart : startAcks === 3 ? bOver : undefined;
      };
      const a = await agent.synchronizeModule(Mode.Delta, { timeoutMs: 10_000 });
      expect(a).toMatchObject({ ok: false, reason: 'manager-offline' });
      for (const id of ['c', 'd', 'e']) persist(id);
      const b = await agent.synchronizeModule(Mode.Delta, { timeoutMs: 10_000 });
      bEnded();
      expect(b).toMatchObject({ ok: true, sent: 5 });
      expect(startAcks).toBe(4); // A's two, B's first (held back) and the one B used
      // Without the probe, sync B sent its 5 items into the stale session of size 2: the
      // manager dropped c, d and e and still answered EndAck Ok.
      expect(managerDocuments(manager)).toEqual(expectedDocuments(model));
      expect(warnings.some((w) => /is not the one this Start opened/.test(w))).toBe(true);
    } finally {
      await agent.close();
      await manager.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
