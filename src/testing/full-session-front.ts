// The Wazuh 5.0 front: what the manager's inventory_sync_server does with one `POST /stateful`
// body (one FlatBuffers Message{FullSession}) and the HTTP answer it gives. Ported rule by rule
// from wazuh/wazuh at f838614611, src/wazuh_modules/inventory_sync_server: the transport's body
// limit (http_server/), the endpoint (endpoints/syncEndpoint.cpp), the validator
// (sync/fullSessionValidator.cpp), the allowlist (sync/stateIndexAllowlist.hpp), the session
// processor (sync/sessionProcessor.cpp, sync/syncQueryBuilder.hpp), the pipeline's failure
// mapping (sync/syncPipeline.cpp) and the VD lane's feed-offset gate (vd/vdScanLane.cpp), plus
// the indexer connector's versioned upsert (shared_modules/indexer_connector). Documents go to
// the shared DocumentIndex; docs/mock-manager-5.md says what was compared with the real module.
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { ByteBuffer } from 'flatbuffers';
import type { LogFunction } from '../interfaces/logger.js';
import { errorMessage } from '../session/sync-error.js';
import { DataValue } from '../wire-5/generated/wazuh/sync-schema/data-value.js';
import { FullSession } from '../wire-5/generated/wazuh/sync-schema/full-session.js';
import { Message } from '../wire-5/generated/wazuh/sync-schema/message.js';
import { SyncData } from '../wire-5/generated/wazuh/sync-schema/sync-data.js';
import {
  type DecodedFullSession,
  type DecodedStart,
  type DecodedSyncData,
  decodeFullSession,
  Mode,
  Operation,
  Option,
} from '../wire-5/index.js';
import type { DocumentIndex, StoredDocument } from './document-index.js';
import type { StatefulFault, StatefulFaults } from './stateful-faults.js';
import { Timers } from './timers.js';

/**
 * The manager's answer to one `POST /stateful`: the HTTP status and the JSON body exactly as
 * the real manager writes it (see {@link MockManager.stateful} for every status and body).
 */
export interface StatefulAnswer {
  /** The HTTP status. */
  status: number;
  /** The response body, JSON text byte for byte as the manager sends it. */
  body: string;
  /** The `Retry-After` header, in seconds, when the answer has one (an injected 503). */
  retryAfterSeconds?: number;
}

/** Who sends a `/stateful` body: what remoted adds to the request it forwards. */
export interface StatefulRequest {
  /**
   * The authenticated agent id (the `X-Wazuh-Agent-Id` header remoted sets after checking the
   * request's signature). Compared with the session's `Start.agentid` as an integer, so `1`,
   * `'1'` and `'001'` are the same agent. An empty string is a missing header (400).
   */
  agentId: string | number;
  /** The `X-Session-Id` header; the manager does not read it, the mock only logs it. */
  sessionId?: string;
}

/** What {@link MockManager.statefulStats} counts since the manager was created (or reset). */
export interface StatefulStats {
  /** `/stateful` requests received. */
  requests: number;
  /** Requests answered, by HTTP status (`{ 200: 3, 409: 1 }`). */
  answered: Record<number, number>;
  /** Requests never answered: dropped by a fault, or handled while the manager is silent. */
  unanswered: number;
}

/** The index agents may clean but never write (sync/stateIndexAllowlist.hpp). */
export const VULNERABILITIES_INDEX = 'wazuh-states-vulnerabilities';

/**
 * The real manager's allowlist of the indices an agent session may touch
 * (`isAgentScopedStateIndex`): `wazuh-states-inventory-*`, `wazuh-states-fim-*`,
 * `wazuh-states-sca` and `wazuh-states-sca-*`, and `wazuh-states-vulnerabilities` (for Cleans
 * only: a document written there is skipped).
 */
export function isAgentScopedStateIndex(index: string): boolean {
  return (
    index.startsWith('wazuh-states-inventory-') ||
    index === VULNERABILITIES_INDEX ||
    index.startsWith('wazuh-states-fim-') ||
    index === 'wazuh-states-sca' ||
    index.startsWith('wazuh-states-sca-')
  );
}

/**
 * The budget every request is charged on top of its body, with the transport's default limits
 * (asioUdsHttpServer.cpp `perRequestOverhead`): 32 headers of 256 + 8192 bytes, the 8 KiB read
 * buffer and 4 KiB of fixed session state.
 */
export const REQUEST_OVERHEAD_BYTES = 32 * (256 + 8192) + 8192 + 4096;

/** The real default of `max_inflight_bytes` (udsHttpServerConfig.cpp): 256 MiB. */
export const DEFAULT_MAX_INFLIGHT_BYTES = 256 * 1024 * 1024;

/** The smallest body a budget must fit (AsioUdsHttpServer::start raises a smaller budget). */
const MIN_UNCAPPED_BODY = 1024 * 1024;

/**
 * The largest body the manager reads under an in-flight budget of `maxInflightBytes`: with no
 * `max_body_size` of its own (the default), the budget minus one request's overhead; a larger
 * declared Content-Length is answered 413 before the body is read. Infinity: no limit.
 */
export function maxBodyBytes(maxInflightBytes: number): number {
  if (maxInflightBytes === Number.POSITIVE_INFINITY) return maxInflightBytes;
  const budget = Math.max(maxInflightBytes, REQUEST_OVERHEAD_BYTES + MIN_UNCAPPED_BODY);
  return budget - REQUEST_OVERHEAD_BYTES;
}

/** `{"error":"<reason>","code":<status>}`, the shape of every refusal (syncEndpoint.cpp). */
const errorBody = (status: number, reason: string): string =>
  `{"error":"${reason}","code":${status}}`;

const OK_BODY = '{"status":"ok"}';
const NOOP_BODY = '{"status":"ok","noop":true}';
const CHECKSUM_MISMATCH_BODY = '{"status":"checksum_mismatch"}';
const UNAVAILABLE_BODY = errorBody(503, 'Service unavailable');
const INTERNAL_ERROR_BODY = errorBody(500, 'Internal error');

const answer = (status: number, body: string): StatefulAnswer => ({ status, body });
const refusal = (status: number, reason: string): StatefulAnswer =>
  answer(status, errorBody(status, reason));

/** What the connector's `isSafeIndexName` accepts; any other name throws (a 500). */
const SAFE_INDEX = /^[A-Za-z0-9._*-]+$/;

/** The checksum search's page size (sessionProcessor.cpp `calculateChecksumOfChecksums`). */
const CHECKSUM_PAGE = 1000;

const MAX_LONG = (1n << 63n) - 1n;

/** A body as the validator sees it, before the validation rules. */
export type Parsed =
  | {
      ok: true;
      session: DecodedFullSession;
      /** `Start.mode` as sent, which may be outside the enum (then decoded as ModuleDelta). */
      rawMode: number;
      /** Whether the payload's union tag is unknown (then decoded as no payload). */
      unknownPayload: boolean;
      /** Whether a DataValue's operation is outside the enum (then decoded as Upsert). */
      invalidOperation: boolean;
    }
  | { ok: false; reason: string };

/** A session that passed validation (fullSessionValidator.cpp `ValidatedSession`). */
interface Validated {
  session: DecodedFullSession;
  start: DecodedStart;
  /** Start.agentid padded to 3 digits. */
  agentId: string;
  invalidOperation: boolean;
}

/** A write staged by a data session; applied in order when the session flushes. */
type Write =
  | { op: 'index'; doc: StoredDocument; version: bigint }
  | { op: 'delete'; index: string; id: string };

/** Thrown inside a step the real connector would throw in: the session answers 500. */
class ConnectorError extends Error {}

export interface FullSessionFrontOptions {
  clusterName: string;
  /** See MockManagerOptions.maxInflightBytes. */
  maxInflightBytes: number;
  vdFeedOffset: bigint;
  indexAllowlist: (index: string) => boolean;
  log: LogFunction;
  index: DocumentIndex;
  faults: StatefulFaults;
  /** Whether the manager answers nothing (MockManager.setSilent). */
  silent: () => boolean;
}

/** What the 5.0 manager does with `/stateful` requests; MockManager.stateful forwards here. */
export class FullSessionFront {
  readonly #cluster: string;
  readonly #maxBody: number;
  readonly #vdFeedOffset: bigint;
  readonly #allowed: (index: string) => boolean;
  readonly #log: LogFunction;
  readonly #index: DocumentIndex;
  readonly #faults: StatefulFaults;
  readonly #silent: () => boolean;
  readonly #timers = new Timers();
  /** Resolvers of delayed answers, answered 503 on close like the real pipeline's stop. */
  readonly #pending = new Set<(answer: StatefulAnswer) => void>();
  #closed = false;
  #stats: StatefulStats = { requests: 0, answered: {}, unanswered: 0 };

  constructor(options: FullSessionFrontOptions) {
    this.#cluster = options.clusterName;
    this.#maxBody = maxBodyBytes(options.maxInflightBytes);
    this.#vdFeedOffset = options.vdFeedOffset;
    this.#allowed = options.indexAllowlist;
    this.#log = options.log;
    this.#index = options.index;
    this.#faults = options.faults;
    this.#silent = options.silent;
  }

  /** The largest body read; a longer one is answered 413 unread. */
  get maxBody(): number {
    return this.#maxBody;
  }

  get stats(): StatefulStats {
    return { ...this.#stats, answered: { ...this.#stats.answered } };
  }

  resetStats(): void {
    this.#stats = { requests: 0, answered: {}, unanswered: 0 };
  }

  /** Handle one request; never rejects (an unexpected error is answered 500). */
  stateful(body: Uint8Array, request: StatefulRequest): Promise<StatefulAnswer> {
    this.#stats.requests++;
    if (this.#closed) return Promise.resolve(this.#count(answer(503, UNAVAILABLE_BODY)));
    // A body over the limit is refused before it is read (413), so it is not decoded either.
    const parsed = body.length > this.#maxBody ? UNREAD : safeParse(body);
    const fault = this.#faults.pick(parsed.ok ? parsed.session.start.module : undefined);
    if (fault !== undefined) return this.#fault(fault, body, parsed, request);
    return this.#settle(this.#handle(body, parsed, request));
  }

  /** Cancel delayed requests (answered 503, as the real pipeline answers on stop); later ones get 503. */
  close(): void {
    this.#closed = true;
    this.#timers.clear();
    for (const resolve of this.#pending) resolve(this.#count(answer(503, UNAVAILABLE_BODY)));
    this.#pending.clear();
  }

  #fault(
    fault: StatefulFault,
    body: Uint8Array,
    parsed: Parsed,
    request: StatefulRequest,
  ): Promise<StatefulAnswer> {
    this.#log('debug', `fault: ${fault.action} on a /stateful request of agent ${request.agentId}`);
    switch (fault.action) {
      case 'unavailable':
        return Promise.resolve(
          this.#count({
            status: 503,
            body: UNAVAILABLE_BODY,
            retryAfterSeconds: fault.retryAfterSeconds ?? 60,
          }),
        );
      case 'internal-error':
        return Promise.resolve(this.#count(answer(500, INTERNAL_ERROR_BODY)));
      case 'drop':
        if (fault.applied === true) this.#handle(body, parsed, request);
        this.#stats.unanswered++;
        return new Promise(() => {});
      case 'delay': {
        // The caller may reuse its buffer once this returns, and `parsed` holds views into it.
        const copy = body.slice();
        return new Promise((resolve) => {
          this.#pending.add(resolve);
          this.#timers.schedule(fault.delayMs ?? 10, () => {
            this.#pending.delete(resolve);
            const reread = copy.length > this.#maxBody ? UNREAD : safeParse(copy);
            void this.#settle(this.#handle(copy, reread, request)).then(resolve);
          });
        });
      }
    }
  }

  /** The answer, or a promise that never settles while the manager is silent. */
  #settle(result: StatefulAnswer): Promise<StatefulAnswer> {
    if (this.#silent()) {
      this.#stats.unanswered++;
      return new Promise(() => {});
    }
    return Promise.resolve(this.#count(result));
  }

  #count(result: StatefulAnswer): StatefulAnswer {
    const answered = this.#stats.answered;
    answered[result.status] = (answered[result.status] ?? 0) + 1;
    return result;
  }

  /** Everything the real manager does with a request, in its order. */
  #handle(body: Uint8Array, parsed: Parsed, request: StatefulRequest): StatefulAnswer {
    try {
      const result = this.#process(body, parsed, request);
      this.#log(
        result.status >= 500 ? 'error' : result.status >= 400 ? 'warn' : 'debug',
        `stateful${request.sessionId === undefined ? '' : ` ${request.sessionId}`} (agent ${request.agentId}): ${result.status} ${result.body}`,
      );
      return result;
    } catch (error) {
      // The transport answers a handler that threw with 500 Internal error.
      this.#log('error', `stateful: unexpected error: ${errorMessage(error)}`);
      return answer(500, INTERNAL_ERROR_BODY);
    }
  }

  #process(body: Uint8Array, parsed: Parsed, request: StatefulRequest): StatefulAnswer {
    // Transport, at headers-complete: a declared length over the budget is refused unread.
    if (body.length > this.#maxBody) return refusal(413, 'Request body is too large');
    // Endpoint: the authenticated id header, then the body.
    const headerId = String(request.agentId);
    if (headerId === '') return refusal(400, 'Missing agent id header');
    if (body.length === 0) return refusal(400, 'Empty body');
    const validated = this.#validate(parsed, headerId);
    if (!('session' in validated)) return validated;
    const { session, start } = validated;
    const payload = session.payload;
    // VD data sessions ride the scan lane; everything else the pipeline. Both check the indexer.
    const isVD = start.option === Option.VDFirst || start.option === Option.VDSync;
    if (!this.#index.available) return answer(503, UNAVAILABLE_BODY);
    if (isVD && payload?.type === 'SyncData' && start.feedOffset !== this.#vdFeedOffset) {
      // nlohmann's object keys are sorted, hence current_version first.
      return answer(409, `{"current_version":${this.#vdFeedOffset},"error":"version_mismatch"}`);
    }
    try {
      switch (payload?.type) {
        case 'SyncData':
          return this.#stageBulk(validated, payload);
        case 'Cleans':
          return this.#cleans(validated, payload.indices);
        case 'ChecksumModule':
          return this.#checksum(validated, payload.index, payload.checksum);
        default:
          return this.#metadataOrGroups(validated);
      }
    } catch (error) {
      if (!(error instanceof ConnectorError)) throw error;
      // The pipeline's mapping of a connector failure: 503 if the indexer is down, else 500.
      this.#log('error', `stateful: indexer operation failed: ${error.message}`);
      return this.#index.available
        ? answer(500, INTERNAL_ERROR_BODY)
        : answer(503, UNAVAILABLE_BODY);
    }
  }

  /** fullSessionValidator.cpp `validateFullSession`, in its order. */
  #validate(parsed: Parsed, headerId: string): Validated | StatefulAnswer {
    if (!parsed.ok) return refusal(400, parsed.reason);
    const { session, rawMode } = parsed;
    const { start } = session;
    if (start.module === '') return refusal(400, 'Start is missing the module name');
    const claimed = start.agentid;
    if (!isNumeric(claimed) || !isNumeric(headerId)) {
      return refusal(400, 'Agent id must be numeric');
    }
    if (atoi(headerId) !== atoi(claimed)) return refusal(403, 'identity mismatch');
    if (start.clusterName === '') return refusal(400, 'Start is missing the cluster name');
    if (start.clusterName !== this.#cluster) return refusal(403, 'identity mismatch');
    const payloadType = parsed.unknownPayload ? 'unknown' : session.payload?.type;
    if (!modeAcceptsPayload(rawMode, payloadType)) {
      return refusal(400, 'Invalid mode/payload combination');
    }
    const payload = session.payload;
    if (payload?.type === 'SyncData' && payload.values.length === 0) {
      return refusal(400, 'SyncData must carry at least one value');
    }
    if (payload?.type === 'Cleans' && payload.indices.length === 0) {
      return refusal(400, 'Cleans must carry at least one item');
    }
    if (payload?.type === 'ChecksumModule') {
      if (payload.index === '' || !this.#allowed(payload.index)) {
        return refusal(400, 'ChecksumModule index must be an agent-scoped state index');
      }
      if (payload.checksum === '') return refusal(400, 'ChecksumModule is missing the checksum');
    }
    return {
      session,
      start,
      agentId: padAgentId(claimed),
      invalidOperation: parsed.invalidOperation,
    };
  }

  /** sessionProcessor.cpp `stageBulk`, then the pipeline's flush. */
  #stageBulk(v: Validated, payload: DecodedSyncData): StatefulAnswer {
    // The pre-scan: a bad operation fails the request before anything is staged.
    if (v.invalidOperation) return refusal(400, 'Invalid operation');
    const writes: Write[] = [];
    let skipped = 0;
    for (const value of payload.values) {
      const index = value.index;
      if (!this.#allowed(index) || index === VULNERABILITIES_INDEX || value.id === '') {
        skipped++;
        continue;
      }
      const id = `${v.start.clusterName}_${v.agentId}_${value.id}`;
      try {
        if (value.operation === Operation.Upsert) {
          const data = parseDocument(value.data);
          if (data === undefined) {
            skipped++;
            continue;
          }
          overlay(data, v);
          checkIndexName(index);
          writes.push({
            op: 'index',
            doc: this.#document(v, index, id, value.id, data),
            version: value.version,
          });
        } else {
          checkIndexName(index);
          writes.push({ op: 'delete', index, id });
        }
      } catch (error) {
        // A staging failure: the session is answered 500 and the connector's buffer (what this
        // session staged before the failure) is flushed anyway (syncPipeline.cpp workerLoop).
        if (!this.#index.takeFailure()) this.#apply(writes);
        throw new ConnectorError(errorMessage(error));
      }
    }
    if (writes.length === 0) {
      this.#log('warn', `agent ${v.agentId}: session staged nothing (${skipped} skipped); no-op`);
      return answer(200, NOOP_BODY);
    }
    this.#flush();
    this.#apply(writes);
    return answer(200, OK_BODY);
  }

  /** A flush, a search or an update-by-query: fails when failIndexing scripted it. */
  #flush(): void {
    if (this.#index.takeFailure()) throw new ConnectorError('indexer failure (scripted)');
  }

  #document(v: Validated, index: string, id: string, itemId: string, data: object): StoredDocument {
    return { index, id, itemId, agentId: v.agentId, module: v.start.module, data };
  }

  /** Applies staged writes in order, as the bulk request does. */
  #apply(writes: readonly Write[]): void {
    for (const write of writes) {
      if (write.op === 'delete') {
        this.#index.remove(write.index, write.id);
        continue;
      }
      const { doc, version } = write;
      // version > 0: the connector's scripted upsert (external_gte on state.document_version),
      // whose script also runs on a missing document, against the new document itself.
      if (version > 0n) {
        const stored = this.#index.get(doc.index, doc.id);
        if (!versionAllows(stored === undefined ? doc.data : stored.data, version)) continue;
      }
      this.#index.put(doc);
    }
  }

  /** sessionProcessor.cpp `executeCleans`: a delete-by-query of the agent's documents per index. */
  #cleans(v: Validated, items: readonly string[]): StatefulAnswer {
    const indices = new Set<string>();
    for (const index of items) if (index !== '' && this.#allowed(index)) indices.add(index);
    if (indices.size === 0) return answer(200, NOOP_BODY);
    for (const index of indices) checkIndexName(index);
    this.#flush();
    let deleted = 0;
    for (const index of indices) {
      for (const doc of this.#agentDocuments(index, v.agentId)) {
        if (this.#index.remove(doc.index, doc.id)) deleted++;
      }
    }
    this.#log('debug', `agent ${v.agentId}: Cleans deleted ${deleted} document(s)`);
    return answer(200, OK_BODY);
  }

  /** sessionProcessor.cpp `executeChecksum`, with its paged search emulated exactly. */
  #checksum(v: Validated, index: string, claimed: string): StatefulAnswer {
    checkIndexName(index);
    this.#flush();
    const keys: Buffer[] = [];
    for (const doc of this.#agentDocuments(index, v.agentId)) {
      const sha1 = field(field(field(doc.data, 'checksum'), 'hash'), 'sha1');
      // The manager reads each hit's sort value (and _source) as a string: a document without a
      // string checksum.hash.sha1 throws there, and the session is answered 500.
      if (typeof sha1 !== 'string') {
        throw new ConnectorError(`document ${doc.id} has no string checksum.hash.sha1`);
      }
      keys.push(Buffer.from(sha1, 'utf8'));
    }
    // Keyword sort: ascending by bytes. Then pages of 1000 with search_after = the last key of
    // the page, which skips a key equal to it on the next page, as the real one does.
    keys.sort(Buffer.compare);
    const hash = createHash('sha1');
    let next = 0;
    while (next < keys.length) {
      const end = Math.min(next + CHECKSUM_PAGE, keys.length);
      for (let i = next; i < end; i++) hash.update(keys[i] as Buffer);
      if (end - next < CHECKSUM_PAGE) break;
      const after = keys[end - 1] as Buffer;
      next = end;
      while (next < keys.length && Buffer.compare(keys[next] as Buffer, after) <= 0) next++;
    }
    const calculated = hash.digest('hex');
    if (calculated !== claimed) {
      this.#log(
        'debug',
        `agent ${v.agentId} '${index}': checksum ${claimed}, manager ${calculated}`,
      );
      return answer(409, CHECKSUM_MISMATCH_BODY);
    }
    return answer(200, OK_BODY);
  }

  /** sessionProcessor.cpp `executeMetadataOrGroups`: the painless scripts of syncQueryBuilder.hpp. */
  #metadataOrGroups(v: Validated): StatefulAnswer {
    const indices = v.start.index.filter((index) => this.#allowed(index));
    if (indices.length === 0) return answer(200, NOOP_BODY);
    for (const index of indices) checkIndexName(index);
    this.#flush();
    const { start } = v;
    const mode = start.mode;
    const timestamp = new Date().toISOString();
    const seen = new Set<string>();
    for (const index of indices) {
      for (const doc of this.#agentDocuments(index, v.agentId)) {
        const key = `${doc.index}\u0000${doc.id}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const data = structuredClone(doc.data) as Record<string, unknown>;
        let changed: boolean;
        switch (mode) {
          case Mode.MetadataDelta:
            changed = versionAtMost(data, start.globalVersion);
            if (changed) {
              setMetadata(data, v);
              stampVersion(data, start.globalVersion, timestamp);
            }
            break;
          case Mode.GroupDelta:
            changed = versionAtMost(data, start.globalVersion);
            if (changed) {
              agentObject(data).groups = [...start.groups];
              stampVersion(data, start.globalVersion, timestamp);
            }
            break;
          case Mode.MetadataCheck:
            changed = metadataDiffers(data, v);
            if (changed) setMetadata(data, v);
            break;
          default:
            changed = groupsDiffer(data, start.groups);
            if (changed) agentObject(data).groups = [...start.groups];
            break;
        }
        if (changed) this.#index.put({ ...doc, data });
      }
    }
    return answer(200, OK_BODY);
  }

  /**
   * The agent's documents in the indices `pattern` names, as the manager's queries select them:
   * `wazuh.agent.id` equal to the padded id and `wazuh.cluster.name` to the manager's cluster.
   */
  #agentDocuments(pattern: string, agentId: string): StoredDocument[] {
    return this.#index
      .matching(pattern)
      .filter(
        (doc) =>
          termMatches(field(field(field(doc.data, 'wazuh'), 'agent'), 'id'), agentId) &&
          termMatches(field(field(field(doc.data, 'wazuh'), 'cluster'), 'name'), this.#cluster),
      );
  }
}

const UNREAD: Parsed = { ok: false, reason: 'Body is not a valid inventory sync message' };

/** parse(), which does not throw; the catch keeps a gap there from rejecting a caller's promise. */
function safeParse(body: Uint8Array): Parsed {
  try {
    return parse(body);
  } catch {
    return UNREAD;
  }
}

/**
 * The body as the manager's validator reads it, where the codec is stricter:
 * - unions the C++ verifier does not look into (see CppView): a Message of another or no
 *   content type is `Unsupported message type`; a FullSession whose payload tag is unknown or
 *   NONE with a value is read without its payload (an unknown tag then fails the mode x
 *   payload matrix, after the identity checks);
 * - enums outside their range, which the manager reads as they are: an unknown mode fails the
 *   matrix (after the identity checks), an unknown option is not a VD one, an unknown
 *   operation fails the data session's pre-scan. Such a body is read again from a copy with
 *   those bytes set to 0, remembering what they were.
 * Exported for the tests.
 */
export function parse(body: Uint8Array): Parsed {
  let bytes = body;
  let unknownPayload = false;
  let result = decodeFullSession(bytes);
  if (!result.ok && result.error === 'malformed') {
    if (isOtherMessage(bytes)) {
      return { ok: false, reason: 'Unsupported message type: expected FullSession' };
    }
    const relaxed = withoutPayloadUnion(bytes);
    if (relaxed !== undefined) {
      bytes = relaxed.bytes;
      unknownPayload = relaxed.unknown;
      result = decodeFullSession(bytes);
    }
  }
  let rawMode: number | undefined;
  let invalidOperation = false;
  if (!result.ok && result.error === 'enum-out-of-range') {
    const copy = bytes.slice();
    const bb = new ByteBuffer(copy);
    const session = Message.getRootAsMessage(bb).content(new FullSession()) as FullSession;
    const start = session.start();
    if (start !== null) {
      rawMode = clearEnum(bb, start.bb_pos, 6, 5);
      clearEnum(bb, start.bb_pos, 10, 2);
    }
    const data = session.payloadType() === 1 ? (session.payload(new SyncData()) as SyncData) : null;
    if (data !== null) {
      const value = new DataValue();
      for (let i = 0; i < data.valuesLength(); i++) {
        if (data.values(i, value) === null) continue;
        if (clearEnum(bb, value.bb_pos, 4, 1) !== 0 && value.operation() === 0) {
          invalidOperation = true;
        }
      }
    }
    result = decodeFullSession(copy);
  }
  if (result.ok) {
    return {
      ok: true,
      session: result.session,
      rawMode: rawMode ?? result.session.start.mode,
      unknownPayload,
      invalidOperation,
    };
  }
  switch (result.error) {
    case 'not-full-session':
      return { ok: false, reason: 'Unsupported message type: expected FullSession' };
    case 'missing-start':
      return { ok: false, reason: 'FullSession is missing its start table' };
    default:
      return { ok: false, reason: 'Body is not a valid inventory sync message' };
  }
}

/**
 * The few rules of the manager's verifier (flatbuffers::Verifier, C++, flatbuffers 2.0
 * verifier.h) needed where it is laxer than the codec's, about unions: it does not look into a
 * union whose tag is NONE or unknown, nor into a known tag without a value. `Verify(at, n)` is
 * `n < size && at <= size - n`; scalars are aligned to their size; an offset is non-zero,
 * below 2^31 and points at least one byte inside the buffer; a table's vtable is 2-aligned,
 * its size 2-aligned and inside the buffer (no minimum); a field is present when its slot is
 * below the vtable size and non-zero.
 */
class CppView {
  readonly #b: Uint8Array;

  constructor(b: Uint8Array) {
    this.#b = b;
  }

  inside(at: number, n: number): boolean {
    return at >= 0 && n < this.#b.length && at <= this.#b.length - n;
  }

  u16(at: number): number {
    return (this.#b[at] as number) | ((this.#b[at + 1] as number) << 8);
  }

  u32(at: number): number {
    return (this.u16(at) | (this.u16(at + 2) << 16)) >>> 0;
  }

  /** Verifier::VerifyOffset: the target of the uoffset at `at`, or -1. */
  follow(at: number): number {
    if (at % 4 !== 0 || !this.inside(at, 4)) return -1;
    const o = this.u32(at);
    if (o === 0 || o >= 0x8000_0000 || !this.inside(at + o, 1)) return -1;
    return at + o;
  }

  /** VerifyTableStart: the table's vtable position, or -1. */
  vtable(table: number): number {
    if (table < 0 || table % 4 !== 0 || !this.inside(table, 4)) return -1;
    const vtable = table - (this.u32(table) | 0);
    if (vtable % 2 !== 0 || !this.inside(vtable, 2)) return -1;
    const size = this.u16(vtable);
    return size % 2 === 0 && this.inside(vtable, size) ? vtable : -1;
  }

  /** GetOptionalFieldOffset: a field's offset in its table, 0 when absent. */
  field(vtable: number, slot: number): number {
    return slot < this.u16(vtable) ? this.u16(vtable + slot) : 0;
  }

  /**
   * The union whose tag is the u8 at `tagSlot` and whose value is the offset at the next slot
   * of `table`: its tag, where the tag and value fields are, and whether they verify (the value
   * is not followed).
   */
  union(table: number, vtable: number, tagSlot: number) {
    const tagOffset = this.field(vtable, tagSlot);
    const valueOffset = this.field(vtable, tagSlot + 2);
    const ok =
      (tagOffset === 0 || this.inside(table + tagOffset, 1)) &&
      (valueOffset === 0 || this.follow(table + valueOffset) >= 0);
    const tag = tagOffset === 0 ? 0 : (this.#b[table + tagOffset] as number);
    return { ok, tag, tagOffset, valueOffset };
  }
}

/**
 * Whether the manager's verifier accepts `b` as a Message whose content it does not look into
 * (tag NONE, an unknown tag, or a known one other than FullSession without a value); the
 * manager answers those 400 `Unsupported message type`, where the codec sees a broken buffer.
 * (FullSession without a value passes too, and crashes the manager: see docs/mock-manager-5.md.)
 */
export function isOtherMessage(b: Uint8Array): boolean {
  if (b.length >= 0x7fff_ffff) return false;
  const view = new CppView(b);
  const root = view.follow(0);
  const vtable = view.vtable(root);
  if (vtable < 0) return false;
  const content = view.union(root, vtable, 4);
  if (!content.ok) return false;
  return content.tag === 0 || content.tag > 6 || (content.valueOffset === 0 && content.tag !== 6);
}

/**
 * A FullSession whose payload union the manager's verifier skips (an unknown tag, or NONE with
 * a value) as the codec can read it: a copy with the union cleared, and whether its tag was an
 * unknown one (which no mode accepts). Undefined for any other buffer.
 */
function withoutPayloadUnion(b: Uint8Array): { bytes: Uint8Array; unknown: boolean } | undefined {
  if (b.length >= 0x7fff_ffff) return undefined;
  const view = new CppView(b);
  const root = view.follow(0);
  const vtable = view.vtable(root);
  if (vtable < 0) return undefined;
  const content = view.union(root, vtable, 4);
  if (!content.ok || content.tag !== 6 || content.valueOffset === 0) return undefined;
  const session = view.follow(root + content.valueOffset);
  const sessionVtable = view.vtable(session);
  if (sessionVtable < 0) return undefined;
  const payload = view.union(session, sessionVtable, 6);
  if (!payload.ok || (payload.tag >= 1 && payload.tag <= 3)) return undefined;
  if (payload.tag === 0 && payload.valueOffset === 0) return undefined;
  const bytes = b.slice();
  if (payload.tagOffset !== 0) bytes[session + payload.tagOffset] = 0;
  if (payload.valueOffset !== 0) bytes.fill(0, sessionVtable + 8, sessionVtable + 10);
  return { bytes, unknown: payload.tag !== 0 };
}

/**
 * Reads the int8 enum at vtable `slot` of the table at `pos`; when it is outside 0..max, sets
 * it to 0. Returns the value read (0 when the field is absent).
 */
function clearEnum(bb: ByteBuffer, pos: number, slot: number, max: number): number {
  const offset = bb.__offset(pos, slot);
  if (offset === 0) return 0;
  const value = bb.readInt8(pos + offset);
  if (value < 0 || value > max) bb.writeInt8(pos + offset, 0);
  return value;
}

/** The matrix of fullSessionValidator.cpp `modeAcceptsPayload`; an unknown mode takes nothing. */
function modeAcceptsPayload(mode: number, payload: string | undefined): boolean {
  switch (mode) {
    case Mode.ModuleDelta:
      return payload === 'SyncData' || payload === 'Cleans';
    case Mode.ModuleCheck:
      return payload === 'ChecksumModule';
    case Mode.MetadataDelta:
    case Mode.MetadataCheck:
    case Mode.GroupDelta:
    case Mode.GroupCheck:
      return payload === undefined;
    default:
      return false;
  }
}

/** `isNumericAgentId`: non-empty, ASCII digits only. */
const isNumeric = (value: string): boolean => /^[0-9]+$/.test(value);

/**
 * C's `atoi` on a string of digits, as glibc computes it: `(int) strtol(s, NULL, 10)`. strtol
 * saturates at LONG_MAX and the cast keeps the low 32 bits, so `4294967297` equals `1`.
 */
function atoi(digits: string): number {
  const significant = digits.replace(/^0+/, '');
  const value = significant.length > 19 ? MAX_LONG : BigInt(significant === '' ? 0 : significant);
  return Number(BigInt.asIntN(32, value > MAX_LONG ? MAX_LONG : value));
}

/** `padAgentId`: left-padded with zeros to 3 characters; longer ids stay as they are. */
export function padAgentId(agentId: string): string {
  return agentId.padStart(3, '0');
}

/** The connector's `isSafeIndexName`; a name it refuses makes the operation throw. */
function checkIndexName(index: string): void {
  if (!SAFE_INDEX.test(index)) throw new ConnectorError(`Unsafe index name '${index}'`);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * A DataValue's document as the manager parses it (nlohmann::json::parse, strict), or
 * undefined when it skips the document: not UTF-8, not JSON, not an object. Like nlohmann it
 * skips a leading UTF-8 BOM and refuses numbers that overflow a double and escaped lone
 * surrogates, which JSON.parse would take.
 */
function parseDocument(data: Uint8Array): Record<string, unknown> | undefined {
  let bytes = data;
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
  if (bytes.length === 0 || !isUtf8(bytes)) return undefined;
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  let strict = true;
  let value: unknown;
  try {
    value = JSON.parse(text, (key, item: unknown) => {
      if (
        (typeof item === 'number' && !Number.isFinite(item)) ||
        (typeof item === 'string' && LONE_SURROGATE.test(item)) ||
        LONE_SURROGATE.test(key)
      ) {
        strict = false;
      }
      return item;
    });
  } catch {
    return undefined;
  }
  if (!strict || typeof value !== 'object' || value === null || Array.isArray(value)) {
    return undefined;
  }
  return value as Record<string, unknown>;
}

/**
 * The object at `parent[key]`, created when absent or null, as nlohmann's `operator[]` does;
 * any other value there makes it throw (the session then fails with 500).
 */
function child(parent: Record<string, unknown>, key: string): Record<string, unknown> {
  const value = parent[key];
  if (value === undefined || value === null) {
    const created: Record<string, unknown> = {};
    parent[key] = created;
    return created;
  }
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(`cannot overlay wazuh fields: '${key}' is not an object`);
  }
  return value as Record<string, unknown>;
}

/** The manager's authoritative `wazuh.*` fields, written over whatever the agent sent. */
function overlay(document: Record<string, unknown>, v: Validated): void {
  const s = v.start;
  const wazuh = child(document, 'wazuh');
  const agent = child(wazuh, 'agent');
  agent.id = v.agentId;
  agent.name = s.agentname;
  agent.version = s.agentversion;
  agent.groups = [...s.groups];
  const host = child(agent, 'host');
  host.architecture = s.architecture;
  host.hostname = s.hostname;
  const os = child(host, 'os');
  os.name = s.osname;
  os.platform = s.osplatform;
  os.type = s.ostype;
  os.version = s.osversion;
  child(wazuh, 'cluster').name = s.clusterName;
}

/** `value.name` when `value` is a plain object that has it. */
function field(value: unknown, name: string): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  return Object.hasOwn(value, name) ? (value as Record<string, unknown>)[name] : undefined;
}

/** A term query on a keyword: the value, one of an array's values, or a number's text. */
function termMatches(value: unknown, expected: string): boolean {
  if (Array.isArray(value)) return value.some((item) => termMatches(item, expected));
  if (typeof value === 'number') return String(value) === expected;
  return value === expected;
}

/**
 * The versioned upsert's script: `state.document_version` absent or null, or at most
 * `version`. Any other value (a string...) keeps the stored document, like the real harness.
 */
function versionAllows(current: unknown, version: bigint): boolean {
  const stored = field(field(current, 'state'), 'document_version');
  if (stored === undefined || stored === null) return true;
  if (typeof stored !== 'number') return false;
  return Number.isSafeInteger(stored) ? BigInt(stored) <= version : stored <= Number(version);
}

/** The update-by-query guard: `state.document_version` missing or <= `globalVersion`. */
function versionAtMost(data: unknown, globalVersion: bigint): boolean {
  const stored = field(field(data, 'state'), 'document_version');
  if (stored === undefined || stored === null) return true;
  if (typeof stored !== 'number') return false;
  return Number.isSafeInteger(stored)
    ? BigInt(stored) <= globalVersion
    : stored <= Number(globalVersion);
}

function agentObject(data: Record<string, unknown>): Record<string, unknown> {
  return child(child(data, 'wazuh'), 'agent');
}

/** The metadata scripts' assignments (buildMetadataUpdateQuery / buildMetadataCheckQuery). */
function setMetadata(data: Record<string, unknown>, v: Validated): void {
  const s = v.start;
  const agent = agentObject(data);
  agent.id = v.agentId;
  agent.name = s.agentname;
  agent.version = s.agentversion;
  const host = child(agent, 'host');
  host.architecture = s.architecture;
  host.hostname = s.hostname;
  const os = child(host, 'os');
  os.name = s.osname;
  os.platform = s.osplatform;
  os.type = s.ostype;
  os.version = s.osversion;
}

/** state.document_version = globalVersion (a JSON number), state.modified_at = now. */
function stampVersion(
  data: Record<string, unknown>,
  globalVersion: bigint,
  timestamp: string,
): void {
  const state = field(data, 'state');
  const target =
    typeof state === 'object' && state !== null && !Array.isArray(state)
      ? (state as Record<string, unknown>)
      : {};
  data.state = target;
  target.document_version = Number(globalVersion);
  target.modified_at = timestamp;
}

/** buildMetadataCheckQuery's comparison: any field differs from the session's. */
function metadataDiffers(data: unknown, v: Validated): boolean {
  const s = v.start;
  const agent = field(field(data, 'wazuh'), 'agent');
  const host = field(agent, 'host');
  const os = field(host, 'os');
  return (
    field(agent, 'id') !== v.agentId ||
    field(agent, 'name') !== s.agentname ||
    field(agent, 'version') !== s.agentversion ||
    field(host, 'architecture') !== s.architecture ||
    field(host, 'hostname') !== s.hostname ||
    field(os, 'name') !== s.osname ||
    field(os, 'platform') !== s.osplatform ||
    field(os, 'type') !== s.ostype ||
    field(os, 'version') !== s.osversion
  );
}

/** buildGroupsCheckQuery's comparison: the groups differ as sorted lists. */
function groupsDiffer(data: unknown, groups: readonly string[]): boolean {
  const current = field(field(field(data, 'wazuh'), 'agent'), 'groups');
  if (current === undefined || current === null) return groups.length > 0;
  if (!Array.isArray(current) || current.length !== groups.length) return true;
  const a = [...current].sort();
  const b = [...groups].sort();
  return a.some((item, i) => item !== b[i]);
}
