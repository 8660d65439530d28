import { describe, expect, it } from 'vitest';
import { coversExactly } from '../../src/session/seq-ranges.js';

const r = (begin: bigint, end: bigint) => ({ begin, end });

describe('coversExactly (what a probe ReqRet must ask for)', () => {
  it('accepts 0..size-1 in one range, or split, overlapping and in any order', () => {
    expect(coversExactly([r(0n, 4n)], 5)).toBe(true);
    expect(coversExactly([r(3n, 4n), r(0n, 2n)], 5)).toBe(true);
    expect(coversExactly([r(0n, 3n), r(2n, 4n), r(1n, 1n)], 5)).toBe(true);
    expect(coversExactly([r(0n, 0n)], 1)).toBe(true);
  });

  it('refuses fewer seqs, more seqs, gaps, inverted ranges and empty lists', () => {
    expect(coversExactly([r(0n, 3n)], 5)).toBe(false);
    expect(coversExactly([r(0n, 5n)], 5)).toBe(false);
    expect(coversExactly([r(1n, 4n)], 5)).toBe(false);
    expect(coversExactly([r(0n, 1n), r(3n, 4n)], 5)).toBe(false);
    expect(coversExactly([r(0n, 4n), r(3n, 1n)], 5)).toBe(false);
    expect(coversExactly([r(0n, 2n ** 64n - 1n)], 5)).toBe(false);
    expect(coversExactly([], 5)).toBe(false);
    expect(coversExactly([r(0n, 0n)], 0)).toBe(false);
  });
});
