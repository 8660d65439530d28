// Profiles one Delta sync of 100,000 queued items (not the queue filling):
//   npx tsx bench/profile-sync.ts [ack]   -> sync.cpuprofile in the current directory
// 'ack' syncs to a manager stand-in that keeps nothing instead of the mock manager.
// Open the profile in Chrome DevTools (Performance tab) or any .cpuprofile viewer.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { AgentSyncProtocol, Mode } from '../src/index.js';
import { MockManager } from '../src/testing/index.js';
import { AckingTransport, changes, scratch, seconds } from './workload.js';

const useMock = process.argv[2] !== 'ack';
const { dir, dispose } = scratch();
const manager = new MockManager();
const transport = useMock ? manager.transport('bench') : new AckingTransport();
const agent = new AgentSyncProtocol({ moduleName: 'bench', dbPath: join(dir, 'q.db'), transport });
for (let from = 0; from < 100000; from += 10000) agent.persistDifferences(changes(from, 10000));
const session = new Session();
session.connect();
await session.post('Profiler.enable');
await session.post('Profiler.start');
const t = performance.now();
const r = await agent.synchronizeModule(Mode.Delta);
console.log(r.ok, Math.round(100002 / seconds(t)), 'msg/s');
const { profile } = await session.post('Profiler.stop');
writeFileSync('sync.cpuprofile', JSON.stringify(profile));
console.log('wrote sync.cpuprofile');
await agent.close();
await manager.close();
dispose();
