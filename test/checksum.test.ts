// computeIndexChecksum refuses what would silently hash nothing. The
// `@ts-expect-error` lines are half of the test: `npm run typecheck` fails if
// a Map or an entries iterable ever compiles again.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { computeIndexChecksum } from '../src/index.js';

const sha1 = (text: string) => createHash('sha1').update(text).digest('hex');
const doc = (hash: string) => ({ checksum: { hash: { sha1: hash } } });

describe('computeIndexChecksum arguments', () => {
  const byId = new Map([
    ['a', doc('aa')],
    ['b', doc('bb')],
  ]);

  it("hashes a map's values", () => {
    expect(computeIndexChecksum(byId.values())).toBe(sha1('aabb'));
  });

  it('refuses a Map, naming the fix', () => {
    // @ts-expect-error a Map iterates [key, document] entries, not documents
    expect(() => computeIndexChecksum(byId)).toThrow(/not a Map.*map\.values\(\)/);
  });

  it('refuses entries, wherever they come from', () => {
    // @ts-expect-error entries are not documents
    expect(() => computeIndexChecksum(byId.entries())).toThrow(/document 0 is an array/);
    // @ts-expect-error entries are not documents
    expect(() => computeIndexChecksum(Object.entries({ a: doc('aa') }))).toThrow(TypeError);
  });

  it('refuses JSON text: the documents as persisted, not parsed', () => {
    const persisted = [JSON.stringify(doc('aa')), JSON.stringify(doc('bb'))];
    // @ts-expect-error JSON strings are not parsed documents
    expect(() => computeIndexChecksum(persisted)).toThrow(/document 0 is a string.*JSON\.parse/);
    // @ts-expect-error a string iterates its characters
    expect(() => computeIndexChecksum(persisted[0] as string)).toThrow(TypeError);
    expect(() => computeIndexChecksum(persisted as unknown[])).toThrow(TypeError);
    expect(computeIndexChecksum(persisted.map((text) => JSON.parse(text)))).toBe(sha1('aabb'));
  });

  it('accepts documents typed as interfaces, unknown or object', () => {
    interface Scan {
      checksum: { hash: { sha1: string } };
    }
    const scans: Scan[] = [doc('bb'), doc('aa')];
    const parsed: unknown[] = [doc('aa'), doc('bb')];
    const objects: object[] = [doc('aa'), doc('bb')];
    expect(computeIndexChecksum(scans)).toBe(sha1('aabb'));
    expect(computeIndexChecksum(parsed)).toBe(sha1('aabb'));
    expect(computeIndexChecksum(new Set(objects))).toBe(sha1('aabb'));
  });
});
