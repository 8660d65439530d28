import { createHash } from 'node:crypto';

/**
 * The manager's checksum of one agent's documents in one index, as compared in
 * Check mode: SHA-1 (lowercase hex) of the concatenation of every document's
 * `checksum.hash.sha1` string, sorted ascending. A document without that field
 * (or where it is not a string) contributes nothing; no documents at all give
 * the SHA-1 of the empty string.
 *
 * `documents` are the parsed JSON documents, not their serialized form.
 */
export function computeIndexChecksum(documents: Iterable<unknown>): string {
  const hashes: string[] = [];
  for (const document of documents) {
    const sha1 = documentSha1(document);
    if (sha1 !== undefined) hashes.push(sha1);
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
