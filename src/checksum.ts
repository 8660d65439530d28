import { createHash } from 'node:crypto';

/**
 * What {@link computeIndexChecksum} accepts: an iterable of documents, unless
 * its elements are arrays or strings. Iterating a `Map` (or `Object.entries(...)`,
 * or `map.entries()`) yields `[key, value]` pairs, and a JSON string is not a
 * parsed document; hashing either would give the checksum of no documents at
 * all and every Check would report a mismatch. Such an argument fails to
 * compile, with this property name in the error.
 *
 * @typeParam T - the element type, inferred from the argument.
 */
export type IndexDocuments<T> = Iterable<T> &
  // `any` (parsed JSON) and `never` (an empty array literal) stay accepted:
  // neither says the elements are entries.
  (0 extends 1 & T
    ? unknown
    : [T] extends [never]
      ? unknown
      : [T] extends [readonly unknown[]]
        ? {
            readonly 'computeIndexChecksum takes documents, not [key, document] entries: pass map.values()': never;
          }
        : [T] extends [string]
          ? {
              readonly 'computeIndexChecksum takes parsed documents, not JSON text: JSON.parse them': never;
            }
          : unknown);

/**
 * The manager's checksum of one agent's documents in one index, as compared in
 * Check mode: SHA-1 (lowercase hex) of the concatenation of every document's
 * `checksum.hash.sha1` string, sorted ascending. A document without that field
 * (or where it is not a string) contributes nothing; no documents at all give
 * the SHA-1 of the empty string.
 *
 * `documents` are the parsed JSON documents, not their serialized form, in any
 * order (an array, a `Set`, `map.values()`, a generator).
 *
 * A `Map` is refused rather than read as its values: a module that keeps its
 * documents in a map keyed by id would otherwise be one `map.entries()` away
 * from the same silent mismatch, so the call says which part to pass.
 *
 * @param documents - the documents this agent believes the manager holds in
 *   the index.
 * @returns 40 lowercase hex digits, for `requiresFullSync(index, checksum)`.
 * @throws TypeError when `documents` is a `Map` or a string, or when one of its
 *   elements is an array (a `[key, document]` entry is not a document) or a
 *   string (the JSON text the module persisted: parse it first). Compiled
 *   TypeScript callers get a type error instead.
 *
 * @example
 * ```ts
 * const mine = new Map<string, object>(); // item id -> the document last persisted
 * const mismatch = await sync.requiresFullSync(index, computeIndexChecksum(mine.values()));
 * ```
 */
export function computeIndexChecksum<T>(documents: IndexDocuments<T>): string {
  if (documents instanceof Map) {
    throw new TypeError(
      'computeIndexChecksum takes documents, not a Map of them: pass map.values()',
    );
  }
  if (typeof documents === 'string') {
    throw new TypeError('computeIndexChecksum takes parsed documents, not a JSON string');
  }
  const hashes: string[] = [];
  let position = 0;
  for (const document of documents as Iterable<unknown>) {
    if (Array.isArray(document)) {
      // No document the manager indexes is an array, but every entry of a
      // Map or of Object.entries() is: catch that mistake instead of hashing nothing.
      throw new TypeError(
        `computeIndexChecksum: document ${position} is an array; pass the documents, not [key, document] entries (e.g. map.values())`,
      );
    }
    if (typeof document === 'string') {
      // The JSON text the module persisted: hashing it as a document would find no sha1 in it.
      throw new TypeError(
        `computeIndexChecksum: document ${position} is a string; pass parsed documents (JSON.parse the text you persisted)`,
      );
    }
    const sha1 = documentSha1(document);
    if (sha1 !== undefined) hashes.push(sha1);
    position++;
  }
  // Code-unit order, which for hex strings is plain ascending byte order.
  hashes.sort();
  const hash = createHash('sha1');
  // Feeding the parts one by one hashes exactly their concatenation without building it.
  for (const sha1 of hashes) hash.update(sha1, 'utf8');
  return hash.digest('hex');
}

function documentSha1(document: unknown): string | undefined {
  const checksum = field(document, 'checksum');
  const sha1 = field(field(checksum, 'hash'), 'sha1');
  return typeof sha1 === 'string' ? sha1 : undefined;
}

function field(value: unknown, name: string): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  return Object.hasOwn(value, name) ? (value as Record<string, unknown>)[name] : undefined;
}
