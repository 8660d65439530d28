// Child processes of the benchmark suite: fill a queue with N items in one
// process, then sync it in a fresh one through a manager stand-in that keeps
// nothing, so the sync's own time and resident memory are what is measured.
//   tsx bench/sync-scale.ts fill <db> <count>
//   node --expose-gc --import tsx bench/sync-scale.ts sync <db> <count>   -> prints JSON
import { AgentSyncProtocol, Mode } from '../src/index.js';
import { AckingTransport, changes, seconds } from './workload.js';

const [command, dbPath, countText] = process.argv.slice(2);
const count = Number(countText);
const BATCH = 10_000;
const transport = new AckingTransport();
const agent = new AgentSyncProtocol({ moduleName: 'bench', dbPath: dbPath as string, transport });

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
  const result = await agent.synchronizeModule(Mode.Delta);
  const elapsed = seconds(began);
  clearInterval(sampler);
  rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
  if (!result.ok || transport.received !== count) {
    throw new Error(
      `sync of ${count} failed: ${JSON.stringify(result)}, ${transport.received} received`,
    );
  }
  console.log(JSON.stringify({ seconds: elapsed, rssGrowthMiB: (rssPeak - rssBefore) / 2 ** 20 }));
} else {
  throw new Error('usage: sync-scale.ts fill|sync <db> <count>');
}
await agent.close();
