// The mock indexer: the documents sessions wrote, the checksum Check mode compares, and the
// indexer's availability and scripted failures. It knows nothing of the wire: the seed front
// hands it the items of a complete session (see IndexBatch); the 5.0 front reads and writes
// single documents (get, put, remove, matching) and applies its manager's rules itself.
import { isUtf8 } from 'node:buffer';
import { computeIndexChecksum } from '../checksum.js';
import type { LogFunction } from '../interfaces/logger.js';
import { documentShapeError, isDocumentBytes } from '../json-bytes.js';
import { errorMessage } from '../session/sync-error.js';
import { WireMode, WireOperation } from '../wire/index.js';
import { CLEAN, type ItemRecords, itemRecord } from './session-items.js';

/** A document in the mock indexer. */
export interface StoredDocument {
  /** The index the DataValue named. */
  index: string;
  /**
   * The document's `_id`: `<agentId>_<itemId>` from a seed session; `<cluster>_<agentId>_<itemId>`
   * from a 5.0 (`stateful`) session, as the 5.0 manager keys it.
   */
  id: string;
  /** The item id the agent sent. */
  itemId: string;
  /**
   * The `agentid` of the session's Start: as sent on the seed wire; left-padded with zeros to 3
   * digits on the 5.0 wire (`7` becomes `007`, `1234` stays), the form the 5.0 manager writes in
   * `_id` and `wazuh.agent.id`.
   */
  agentId: string;
  /** Module whose session wrote it. */
  module: string;
  /** The parsed JSON document. */
  data: unknown;
}

/** The items of one complete Full or Delta session, ready to index. */
export interface IndexBatch {
  /** Session id, for the log. */
  session: bigint;
  mode: WireMode;
  agentId: string;
  module: string;
  items: ItemRecords;
}

/**
 * A document as indexed. Its JSON was validated when its session ended; it is
 * parsed on first read (`raw[start, end)` until then), which keeps that cost
 * out of the session.
 */
interface IndexedDocument extends StoredDocument {
  raw: Buffer | undefined;
  start: number;
  end: number;
}

/** Above this many pending items, add() writes them at once instead of waiting for a read. */
const MAX_PENDING_ITEMS = 1_000_000;

/** The decoder of src/wire/decode.ts: keeps a leading BOM, replaces invalid UTF-8. */
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

/** The mock indexer: documents by index, written by the sessions a front completes. */
export class DocumentIndex {
  readonly #log: LogFunction;
  readonly #indices = new Map<string, Map<string, IndexedDocument>>();
  /**
   * Batches validated but not written to `#indices` yet, oldest first: every
   * read of the index writes them first, so nobody can tell.
   */
  #pending: IndexBatch[] = [];
  #pendingItems = 0;
  #available = true;
  #failures = 0;

  constructor(log: LogFunction) {
    this.#log = log;
  }

  /** While false, Starts are answered Offline and indexing fails. */
  get available(): boolean {
    return this.#available;
  }

  set available(available: boolean) {
    this.#available = available;
  }

  /** The next `times` indexings fail. */
  failNext(times: number): void {
    this.#failures = Math.max(0, times);
  }

  /** Use up one scripted failure (see failNext); whether one was due. */
  takeFailure(): boolean {
    if (this.#failures <= 0) return false;
    this.#failures--;
    return true;
  }

  /**
   * Whether the indexer takes `batch` whole: it is available, no scripted
   * failure is due, every operation is valid and every Upsert is a document the real
   * manager stores intact: a JSON object with at least one member whose first byte is `{`
   * (see isDocumentBytes). The real one silently loses any other document (it answers EndAck
   * Ok while its indexer drops it), so the mock fails the session instead: a test sees it.
   * Refusing applies nothing; the reason goes to the log.
   */
  accepts(batch: IndexBatch): boolean {
    const id = batch.session;
    if (!this.#available) {
      this.#log('error', `session ${id}: indexer unavailable, nothing indexed`);
      return false;
    }
    if (this.#failures > 0) {
      this.#failures--;
      this.#log('error', `session ${id}: indexer failure (scripted), nothing indexed`);
      return false;
    }
    const item = itemRecord();
    for (let seq = 0; seq < batch.items.size; seq++) {
      const { kind, chunk, dataStart: start, idStart: end } = batch.items.read(seq, item);
      if (kind === WireOperation.Upsert) {
        if (isDocumentBytes(chunk, start, end)) continue;
        this.#log(
          'error',
          `session ${id}: seq ${seq} refused: ${documentRefusal(chunk, start, end)}`,
        );
        return false;
      } else if (kind !== WireOperation.Delete && kind !== CLEAN) {
        this.#log('error', `session ${id}: seq ${seq} has invalid operation ${kind}`);
        return false;
      }
    }
    return true;
  }

  /** Apply a batch that {@link accepts} took; it is written (atomically) before the next read. */
  add(batch: IndexBatch): void {
    this.#pending.push(batch);
    this.#pendingItems += batch.items.size;
    // Bounds what a manager whose index nobody reads keeps pending.
    if (this.#pendingItems > MAX_PENDING_ITEMS) this.#flush();
    this.#log('debug', `session ${batch.session}: indexed ${batch.items.size} item(s)`);
  }

  /** Copies of the stored documents, of one index or of all. */
  documents(index?: string): StoredDocument[] {
    this.#flush();
    const out: StoredDocument[] = [];
    const maps = index === undefined ? this.#indices.values() : [this.#indices.get(index)];
    for (const docs of maps) {
      if (docs === undefined) continue;
      for (const doc of docs.values()) {
        const { id, itemId, agentId, module } = doc;
        out.push({ index: doc.index, id, itemId, agentId, module, data: documentData(doc) });
      }
    }
    return out;
  }

  /** How many documents are stored, in one index or in all. */
  count(index?: string): number {
    this.#flush();
    if (index !== undefined) return this.#indices.get(index)?.size ?? 0;
    let count = 0;
    for (const docs of this.#indices.values()) count += docs.size;
    return count;
  }

  /** The checksum Check mode compares for this agent and index (see computeIndexChecksum). */
  checksum(agentId: string, index: string): string {
    return computeIndexChecksum(this.#agentDocuments(agentId, index));
  }

  /** The document `id` of `index` (its JSON parsed), or undefined. Do not modify it: put a new one. */
  get(index: string, id: string): StoredDocument | undefined {
    this.#flush();
    const doc = this.#indices.get(index)?.get(id);
    if (doc === undefined) return undefined;
    documentData(doc);
    return doc;
  }

  /** Store `doc` under its index and id, replacing the document there. The index keeps `doc`. */
  put(doc: StoredDocument): void {
    this.#flush();
    let docs = this.#indices.get(doc.index);
    if (docs === undefined) {
      docs = new Map();
      this.#indices.set(doc.index, docs);
    }
    docs.set(doc.id, { ...doc, raw: undefined, start: 0, end: 0 });
  }

  /** Remove the document `id` of `index`; whether there was one. */
  remove(index: string, id: string): boolean {
    this.#flush();
    return this.#indices.get(index)?.delete(id) ?? false;
  }

  /**
   * The documents of every index `pattern` names (JSON parsed), in a snapshot: the caller may
   * put and remove while iterating. `*` in `pattern` matches any run of characters, as in an
   * indexer URL; without one, `pattern` names one index. Do not modify the documents.
   */
  matching(pattern: string): StoredDocument[] {
    this.#flush();
    const out: StoredDocument[] = [];
    const matches = indexMatcher(pattern);
    for (const [name, docs] of this.#indices) {
      if (!matches(name)) continue;
      for (const doc of docs.values()) {
        documentData(doc);
        out.push(doc);
      }
    }
    return out;
  }

  clear(): void {
    this.#pending = [];
    this.#pendingItems = 0;
    this.#indices.clear();
  }

  /** Write the pending batches to the index, in the order they were added. */
  #flush(): void {
    if (this.#pending.length === 0) return;
    const pending = this.#pending;
    this.#pending = [];
    this.#pendingItems = 0;
    for (const batch of pending) this.#write(batch);
  }

  #write(batch: IndexBatch): void {
    const { agentId, module, items } = batch;
    const indices = this.#indices;
    if (batch.mode === WireMode.ModuleFull) {
      // Delete-by-query of everything this agent's module had before.
      for (const docs of indices.values()) {
        for (const [key, doc] of docs) {
          if (doc.agentId === agentId && doc.module === module) docs.delete(key);
        }
      }
    }
    const item = itemRecord();
    for (let seq = 0; seq < items.size; seq++) {
      const { kind, chunk, dataStart, idStart, indexStart, indexEnd } = items.read(seq, item);
      const index = utf8.decode(chunk.subarray(indexStart, indexEnd));
      if (kind === CLEAN) {
        const docs = indices.get(index);
        if (docs === undefined) continue;
        for (const [key, doc] of docs) if (doc.agentId === agentId) docs.delete(key);
        continue;
      }
      const itemId = utf8.decode(chunk.subarray(idStart, indexStart));
      const docId = `${agentId}_${itemId}`;
      if (kind === WireOperation.Delete) {
        indices.get(index)?.delete(docId);
        continue;
      }
      let docs = indices.get(index);
      if (docs === undefined) {
        docs = new Map();
        indices.set(index, docs);
      }
      docs.set(docId, {
        index,
        id: docId,
        itemId,
        agentId,
        module,
        data: undefined,
        raw: chunk,
        start: dataStart,
        end: idStart,
      });
    }
  }

  *#agentDocuments(agentId: string, index: string): Generator<unknown> {
    this.#flush();
    const docs = this.#indices.get(index);
    if (docs === undefined) return;
    for (const doc of docs.values()) if (doc.agentId === agentId) yield documentData(doc);
  }
}

/**
 * Why the document `chunk[start, end)` is refused, for the log: invalid UTF-8 or JSON (the real
 * decoding and parse say what is wrong), or a shape the real manager would corrupt.
 */
function documentRefusal(chunk: Buffer, start: number, end: number): string {
  try {
    // Buffer's own decoding is much faster than TextDecoder for small documents; isUtf8 keeps
    // the strictness (invalid UTF-8 fails the session, as a real parser would).
    if (!isUtf8(chunk.subarray(start, end))) throw new Error('invalid UTF-8');
    const text = chunk.toString('utf8', start, end);
    JSON.parse(text);
    return `the manager would corrupt this document: ${documentShapeError(text) ?? 'its shape'}`;
  } catch (error) {
    return `not valid JSON (${errorMessage(error)})`;
  }
}

/** Whether an index name matches `pattern`, where `*` stands for any run of characters. */
function indexMatcher(pattern: string): (name: string) => boolean {
  if (!pattern.includes('*')) return (name) => name === pattern;
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  const regex = new RegExp(`^${source}$`, 's');
  return (name) => regex.test(name);
}

/** The parsed JSON of a document, parsed on first use. */
function documentData(doc: IndexedDocument): unknown {
  if (doc.raw !== undefined) {
    // Validated when its session ended, so this does not throw.
    doc.data = JSON.parse(doc.raw.toString('utf8', doc.start, doc.end));
    doc.raw = undefined;
  }
  return doc.data;
}
