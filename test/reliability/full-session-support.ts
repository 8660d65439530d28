// Shared pieces of the Wazuh 5.0 ("fullSession") reliability tests; also loaded by child
// processes, so no vitest here. The seed wire's helpers are in support.ts.
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { AgentSyncProtocol } from '../../src/agent-sync-protocol.js';
import { computeIndexChecksum } from '../../src/checksum.js';
import type { Logger } from '../../src/interfaces/logger.js';
import type { SyncOptions } from '../../src/interfaces/options.js';
import type { SessionTransport } from '../../src/interfaces/session-transport.js';
import type { StoredDocument } from '../../src/testing/document-index.js';
import type { MockManager } from '../../src/testing/mock-manager.js';
import { AGENT_ID, buildModel, MODULE, type State } from './support.js';

export { divergence } from './support.js';

export const CLUSTER = 'wazuh';

/** Short waits and no backoff: the tests drive every fault themselves. */
export const FAST: SyncOptions = {
  timeoutMs: 5000,
  retries: 0,
  backoff: { minMs: 0 },
  checkAttempts: 1,
  checkRetryDelayMs: 1,
};

export function openAgent5(
  dbPath: string,
  transport: SessionTransport,
  logger?: Logger,
): AgentSyncProtocol {
  return new AgentSyncProtocol({
    moduleName: MODULE,
    dbPath,
    wire: 'fullSession',
    clusterName: CLUSTER,
    transport,
    agentInfo: { id: AGENT_ID },
    ...(logger ? { logger } : {}),
  });
}

/** The state a module holds for one id: its document (JSON text) and the version it sent. */
export interface ItemState {
  data: string;
  version: number;
}

/** What the module holds: id -> its current state; an id it deleted (or never had) is absent. */
export type ModuleState = Map<string, ItemState>;

/**
 * A document as the module writes it: its version in `state.document_version` (what the
 * manager's versioned upsert compares) when versioned, and a `checksum.hash.sha1` (what the
 * manager's Check hashes).
 */
export function makeDocument(id: string, tag: number | string, version: number): string {
  const sha1 = createHash('sha1').update(`${id}/${tag}/${version}`).digest('hex');
  return JSON.stringify({
    id,
    tag,
    checksum: { hash: { sha1 } },
    ...(version > 0 ? { state: { document_version: version } } : {}),
  });
}

/** The documents the module state should leave on the manager, keyed by item id. */
export function expectedDocuments5(state: ModuleState): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const id of [...state.keys()].sort()) out[id] = JSON.parse(state.get(id)?.data as string);
  return out;
}

/**
 * The manager's documents of AGENT_ID keyed by item id, without the `wazuh` fields the 5.0
 * manager writes over each document; checks each `_id` is `<cluster>_<agent>_<item>`. Takes the
 * manager itself, or its documents as `GET /documents` of a standalone one returned them.
 */
export function managerDocuments5(
  source: MockManager | readonly StoredDocument[],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const docs = ('documents' in source ? source.documents() : [...source]).sort((a, b) =>
    a.itemId.localeCompare(b.itemId),
  );
  for (const doc of docs) {
    if (
      doc.id !== `${CLUSTER}_${AGENT_ID}_${doc.itemId}` ||
      doc.agentId !== AGENT_ID ||
      doc.itemId in out
    ) {
      throw new Error(`unexpected document ${doc.id} (item ${doc.itemId}, agent ${doc.agentId})`);
    }
    const { wazuh: _overlay, ...data } = doc.data as Record<string, unknown>;
    out[doc.itemId] = data;
  }
  return out;
}

/**
 * The model of killed generations of fixtures/full-session-crash-child.ts, whose event lines are
 * `T|P <id> <op> <version> <tag>` (see {@link buildModel}).
 */
export function buildModel5(kills: readonly { lines: readonly string[] }[]): {
  acked: State;
  maybe: State;
} {
  return buildModel(kills, (id, [version, tag]) => {
    if (version === undefined || tag === undefined) throw new Error(`event of ${id} without a tag`);
    return makeDocument(id, tag, Number(version));
  });
}

/** The crash fixture, and the repository root to run it from. */
export const CRASH_CHILD = fileURLToPath(
  new URL('./fixtures/full-session-crash-child.ts', import.meta.url),
);
export const REPO = fileURLToPath(new URL('../..', import.meta.url));

/** The Check checksum of a module state (what the module would pass to checkIntegrity). */
export function stateChecksum(state: ModuleState): string {
  return computeIndexChecksum([...state.values()].map((s) => JSON.parse(s.data) as unknown));
}

/** Messages of the crash fixture's IPC channel (child <-> parent). */
export type ChildToParent =
  | { type: 'session'; n: number; id: string; body: string }
  | { type: 'ready' };
export type ParentToChild = {
  type: 'answer';
  n: number;
  status: number;
  body?: string;
  retryAfterSeconds?: number;
};
