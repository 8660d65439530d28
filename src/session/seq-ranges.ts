import type { SeqRange } from '../wire/types.js';

/** Inclusive seq range as plain numbers (every seq of a session is below `size`, a safe integer). */
export interface SeqSpan {
  from: number;
  to: number;
}

/**
 * Turn the ranges of a ReqRet into the sorted, merged spans of seqs that
 * exist in a session of `size` items. Returns an error message instead when
 * the request is invalid: no range, an inverted range, or nothing selected.
 * Works on bigint so a range up to 2^64-1 costs nothing.
 */
export function selectSeqs(ranges: readonly SeqRange[], size: number): SeqSpan[] | string {
  if (ranges.length === 0) return 'ReqRet without any range';
  const last = BigInt(size) - 1n;
  const spans: SeqSpan[] = [];
  for (const { begin, end } of ranges) {
    if (end < begin) return `ReqRet with an inverted range [${begin}, ${end}]`;
    if (begin > last) continue;
    spans.push({ from: Number(begin), to: Number(end < last ? end : last) });
  }
  if (spans.length === 0) return `ReqRet selects no item of this session (size ${size})`;
  spans.sort((a, b) => a.from - b.from);
  const merged: SeqSpan[] = [spans[0] as SeqSpan];
  for (const span of spans) {
    const tail = merged[merged.length - 1] as SeqSpan;
    if (span.from <= tail.to + 1) tail.to = Math.max(tail.to, span.to);
    else merged.push({ ...span });
  }
  return merged;
}

/**
 * Whether `ranges` (in any order, possibly overlapping or split) cover exactly the seqs
 * 0..size-1: what a manager asks for when it has a session of `size` items and none of its data.
 */
export function coversExactly(ranges: readonly SeqRange[], size: number): boolean {
  if (ranges.length === 0 || size <= 0) return false;
  const sorted = [...ranges].sort((a, b) => (a.begin < b.begin ? -1 : a.begin > b.begin ? 1 : 0));
  let covered = -1n; // highest seq covered so far
  for (const { begin, end } of sorted) {
    if (end < begin || begin > covered + 1n) return false;
    if (end > covered) covered = end;
  }
  return (sorted[0] as SeqRange).begin === 0n && covered === BigInt(size) - 1n;
}
