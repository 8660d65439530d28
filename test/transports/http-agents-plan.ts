// What each agent module of test/transports/http-many-agents.test.ts persists, shared with its
// child processes (fixtures/http-agents.ts), so the test knows the documents the manager must end
// with. No vitest here.

import { Operation } from '../../src/enums/operation.js';
import type { Change } from '../../src/interfaces/change.js';
import { CLUSTER, makeDocument } from '../reliability/full-session-support.js';

export { CLUSTER };

/** The two modules every agent runs, each with its own queue file and index. */
export const MODULES = [
  { name: 'syscollector', index: 'wazuh-states-inventory-packages' },
  { name: 'sca', index: 'wazuh-states-sca' },
] as const;

/** Agent number (1-based) -> the 3-digit id of client.keys. */
export const agentId = (n: number): string => String(n).padStart(3, '0');

const itemId = (module: string, n: number) => `${module}-item-${n}`;
/** Distinct per agent, module, item and version. */
const document = (agent: string, module: string, n: number, version: number) =>
  makeDocument(itemId(module, n), `${agent}/${module}/${n}`, version);

/**
 * The two rounds of changes of one agent's module, each synced until its queue is empty: `items`
 * Creates (version 1); then Modify (version 2) of every 5th, Delete of every 7th (so every 35th
 * is a Modify then a Delete in one queue), and `items / 5` more Creates.
 */
export function rounds(agent: string, module: string, index: string, items: number): Change[][] {
  const change = (n: number, operation: Change['operation'], version: number): Change => ({
    id: itemId(module, n),
    operation,
    index,
    data: document(agent, module, n, version),
    version,
  });
  const first = Array.from({ length: items }, (_, n) => change(n, Operation.Create, 1));
  const second: Change[] = [];
  for (let n = 0; n < items; n += 5) second.push(change(n, Operation.Modify, 2));
  for (let n = 0; n < items; n += 7) second.push(change(n, Operation.Delete, 2));
  for (let n = items; n < items + items / 5; n++) second.push(change(n, Operation.Create, 1));
  return [first, second];
}

/** The manager's documents after both rounds, keyed by `_id`, without the manager's `wazuh` fields. */
export function expectedDocuments(
  agents: number,
  items: number,
): Map<string, { index: string; data: unknown }> {
  const out = new Map<string, { index: string; data: unknown }>();
  for (let a = 1; a <= agents; a++) {
    const agent = agentId(a);
    for (const { name, index } of MODULES) {
      const final = new Map<string, Change>();
      for (const round of rounds(agent, name, index, items)) {
        for (const c of round) final.set(c.id, c);
      }
      for (const c of final.values()) {
        if (c.operation === Operation.Delete) continue;
        out.set(`${CLUSTER}_${agent}_${c.id}`, { index, data: JSON.parse(c.data) });
      }
    }
  }
  return out;
}
