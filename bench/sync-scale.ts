// Child processes of the benchmark suite: fill a queue with N items in one
// process, then sync it in a fresh one through a manager stand-in that keeps
// nothing, so the sync's own time and resident memory are what is measured.
//   tsx bench/sync-scale.ts fill <db> <count> [seed|fullSession]
//   node --expose-gc --import tsx bench/sync-scale.ts sync <db> <count> [seed|fullSession]
//     -> prints JSON
// On the 'fullSession' wire the sync is Delta calls until the queue is empty
// (each sends at most 10 sessions of at most 5 MiB, the defaults).
import { AgentSyncProtocol, Mode } from '../src/index.js';
import {
  AcceptingSessionTransport,
  AckingTransport,
  changes,
  deltaUntilEmpty,
  FULL_SESSION,
  seconds,
} from './workload.js';

const [command, dbPath, countText, wire = 'seed'] = process.argv.slice(2);
const count = Number(countText);
const BATCH = 10_000;
const stand_in = wire === 'fullSession' ? new AcceptingSessionTransport() : new AckingTransport();
const agent =
  stand_in instanceof AcceptingSessionTransport
    ? new AgentSyncProtocol({
        moduleName: 'bench',
        dbPath: dbPath as string,
        ...FULL_SESSION,
        transport: stand_in,
      })
    : new AgentSyncProtocol({ moduleName: 'bench', dbPath: dbPath as string, transport: stand_in });

if (command === 'fill') {
  for (let from = 0; from < count; from += BATCH) {
    agent.persistDifferences(changes(from, Math.min(BATCH, count - from)));
  }
} else if (command === 'sync') {
  (globalThis as { gc?: () => void }).gc?.();
  const rssBefore = process.memoryUsage.rss();
  let rssPeak = rssBefore;
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
  }, 5);
  const began = performance.now();
  if (stand_in instanceof AcceptingSessionTransport) {
    await deltaUntilEmpty(agent);
  } else {
    const result = await agent.synchronizeModule(Mode.Delta);
    if (!result.ok) throw new Error(`sync of ${count} failed: ${JSON.stringify(result)}`);
  }
  const elapsed = seconds(began);
  clearInterval(sampler);
  rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
  if (stand_in.received !== count) {
    throw new Error(`sync of ${count}: ${stand_in.received} received`);
  }
  console.log(JSON.stringify({ seconds: elapsed, rssGrowthMiB: (rssPeak - rssBefore) / 2 ** 20 }));
} else {
  throw new Error('usage: sync-scale.ts fill|sync <db> <count> [seed|fullSession]');
}
await agent.close();
