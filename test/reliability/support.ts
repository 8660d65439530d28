// Shared pieces of the reliability tests (also loaded by the child processes, so no vitest here): the manager-side model, a transport that lets a test
// act at chosen points of a sync, seeding a fresh mock manager, run counts and a seeded PRNG.
import { AgentSyncProtocol } from '../../src/agent-sync-protocol.js';
import { Mode } from '../../src/enums/mode.js';
import { Operation } from '../../src/enums/operation.js';
import type { MQueueTransport } from '../../src/interfaces/transport.js';
import type { MockManager } from '../../src/testing/mock-manager.js';
import type { InProcessTransport } from '../../src/transports/in-process.js';
import { decodeAgentMessage, decodeManagerResponse } from '../../src/wire/index.js';
import type { AgentMessage, ManagerResponse } from '../../src/wire/types.js';

export const AGENT_ID = '001';
export const MODULE = 'fim';
export const INDEX = 'wazuh-states-fim-files';

/**
 * What the manager must hold once a clean sync went through: item id -> the data (JSON text) of
 * its last persisted Create/Modify, or null after a Delete. Ids never persisted are absent.
 */
export type ManagerModel = Map<string, string | null>;

/** The documents the model expects, keyed by item id, parsed. */
export function expectedDocuments(model: ManagerModel): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [id, data] of [...model].sort(([a], [b]) => a.localeCompare(b))) {
    if (data !== null) out[id] = JSON.parse(data);
  }
  return out;
}

/** The manager's documents keyed by item id; checks every key is `<agentId>_<itemId>`. */
export function managerDocuments(manager: MockManager): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const docs = manager.documents().sort((a, b) => a.itemId.localeCompare(b.itemId));
  for (const doc of docs) {
    if (doc.id !== `${AGENT_ID}_${doc.itemId}` || doc.agentId !== AGENT_ID || doc.itemId in out) {
      throw new Error(
        `unexpected document key ${doc.id} (item ${doc.itemId}, agent ${doc.agentId})`,
      );
    }
    out[doc.itemId] = doc.data;
  }
  return out;
}

/**
 * Wraps a mock manager's transport. `hook` sees every message the agent sends, decoded, once
 * before it reaches the manager (`when: 'before'`) and once after (`'after'`), so a test can
 * persist, close, silence the manager... at an exact point of a sync.
 */
export class HookTransport implements MQueueTransport {
  hook: ((message: AgentMessage, when: 'before' | 'after') => void) | undefined;
  /**
   * Sees every manager response, decoded, before the agent does. When it returns a promise, the
   * response reaches the agent only once that settles: a test holds an answer back until
   * something else has happened (another process took a lock...), instead of delaying it by a
   * time a slow machine may overrun.
   */
  responseHook: ((message: ManagerResponse) => Promise<unknown> | undefined) | undefined;
  sent = 0;

  constructor(readonly inner: InProcessTransport) {}

  start(): void {
    this.inner.start();
  }

  send(bytes: Uint8Array, moduleName: string): void {
    this.sent++;
    const hook = this.hook;
    const message = hook ? decodeAgentMessage(bytes) : null;
    if (hook && message === null) throw new Error('the agent sent an undecodable message');
    if (hook && message) hook(message, 'before');
    this.inner.send(bytes, moduleName);
    if (hook && message) hook(message, 'after');
  }

  onResponse(listener: (message: Uint8Array) => void): void {
    this.inner.onResponse((bytes) => {
      const message = this.responseHook ? decodeManagerResponse(bytes) : null;
      const held = message ? this.responseHook?.(message) : undefined;
      if (held === undefined) {
        listener(bytes);
        return;
      }
      // The sender may reuse its buffer once this returns.
      const copy = bytes.slice();
      const deliver = () => listener(copy);
      held.then(deliver, deliver);
    });
  }
}

/** Stored documents as the seed of a fresh manager: `{ itemId, index, data }`. */
export interface SeedDocument {
  itemId: string;
  index: string;
  data: unknown;
}

export function dumpDocuments(manager: MockManager): SeedDocument[] {
  return manager
    .documents()
    .map((d) => ({ itemId: d.itemId, index: d.index, data: d.data }))
    .sort((a, b) => a.itemId.localeCompare(b.itemId));
}

/**
 * Make `manager` hold `docs` for AGENT_ID, the way a real manager would have them: through a
 * Delta sync of a throw-away in-memory agent with the same agent id.
 */
export async function seedManager(manager: MockManager, docs: readonly SeedDocument[]) {
  if (docs.length === 0) return;
  const seeder = new AgentSyncProtocol({
    moduleName: MODULE,
    dbPath: ':memory:',
    transport: manager.transport(MODULE),
    agentInfo: { id: AGENT_ID },
  });
  for (const d of docs) {
    seeder.persistDifference(d.itemId, Operation.Modify, d.index, JSON.stringify(d.data));
  }
  const result = await seeder.synchronizeModule(Mode.Delta, { timeoutMs: 5000 });
  await seeder.close();
  if (!result.ok) throw new Error(`seeding the manager failed: ${result.message}`);
}

/** id -> data (JSON text) of the final state (null: deleted). */
export type State = Map<string, string | null>;

/**
 * The acknowledged final states, and the one change in flight at each kill, from the event logs
 * of killed child generations (each log's lines up to its last whole line): `T <id> <op> ...`
 * before a persist, `P <id> <op> ...` once it returned. `document(id, rest)` is the data a
 * Create/Modify line stands for, from the fields after `<op>`.
 */
export function buildModel(
  kills: readonly { lines: readonly string[] }[],
  document: (id: string, rest: readonly string[]) => string,
): { acked: State; maybe: State } {
  const acked: State = new Map();
  const maybe: State = new Map();
  for (const kill of kills) {
    let inFlight: [string, string | null] | undefined;
    for (const line of kill.lines) {
      const [kind, id, op, ...rest] = line.split(' ');
      if (kind !== 'T' && kind !== 'P') continue;
      if (id === undefined || op === undefined || rest.length === 0) throw new Error(line);
      const state = Number(op) === Operation.Delete ? null : document(id, rest);
      if (kind === 'T') {
        inFlight = [id, state];
      } else {
        acked.set(id, state);
        maybe.delete(id);
        inFlight = undefined;
      }
    }
    if (inFlight) maybe.set(inFlight[0], inFlight[1]);
  }
  return { acked, maybe };
}

/**
 * Where the manager's documents (keyed by item id) differ from the model: every
 * acknowledged final state must be there (a deleted item absent); an id whose change was in
 * flight at a kill may hold either state. Returns one line per wrong id (empty when converged)
 * and how many ids were looked at.
 */
export function divergence(
  docs: Record<string, unknown>,
  { acked, maybe }: { acked: State; maybe: State },
): { wrong: string[]; ids: number } {
  const ids = new Set([...acked.keys(), ...maybe.keys(), ...Object.keys(docs)]);
  const wrong: string[] = [];
  for (const id of ids) {
    const got = id in docs ? JSON.stringify(docs[id]) : null;
    const allowed = [acked.get(id) ?? null];
    if (maybe.has(id)) allowed.push(maybe.get(id) ?? null);
    if (!allowed.includes(got)) {
      wrong.push(`${id}: manager has ${got}, expected ${allowed.join(' or ')}`);
    }
  }
  return { wrong, ids: ids.size };
}

/** An integer from the environment (e.g. ASP_RELIABILITY_RUNS), or `fallback`. */
export function envCount(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer`);
  return n;
}

/** Seeded PRNG (mulberry32), uniform in [0, 1): the mock manager's own. */
export { mulberry32 as prng } from '../../src/testing/prng.js';

/** A seed for this run: ASP_RELIABILITY_SEED when set (to replay a failure), else random. */
export function runSeed(): number {
  const raw = process.env.ASP_RELIABILITY_SEED;
  return raw ? Number(raw) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A sync result as text (session ids are bigints, which JSON.stringify refuses). */
export function show(value: unknown): string {
  return JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? `${v}n` : v));
}
