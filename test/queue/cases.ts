import { Operation } from '../../src/enums/operation.js';
import type { QueueChange } from '../../src/queue/index.js';

const { Create: C, Modify: M, Delete: D } = Operation;

export type Event = Operation | [id: string, op: Operation];

export interface Case {
  name: string;
  before: Event[];
  during?: Event[];
  outcome?: 'success' | 'failure';
  rows: number;
  firstOp?: Operation;
}

// The contract's table: events before a sync; events during it; how it ends -> what the next
// take returns.
export const cases: Case[] = [
  { name: '1 C -> 1 C', before: [C], rows: 1, firstOp: C },
  { name: '2 C,M -> 1 M', before: [C, M], rows: 1, firstOp: M },
  { name: '3 C,D -> 0', before: [C, D], rows: 0 },
  { name: '4 M,D -> 1 D', before: [M, D], rows: 1, firstOp: D },
  { name: '5 D -> 1 D', before: [D], rows: 1, firstOp: D },
  {
    name: '6 C; M; success -> 1 M',
    before: [C],
    during: [M],
    outcome: 'success',
    rows: 1,
    firstOp: M,
  },
  {
    name: '7 C; D; success -> 1 D',
    before: [C],
    during: [D],
    outcome: 'success',
    rows: 1,
    firstOp: D,
  },
  { name: '8 C; D; failure -> 0', before: [C], during: [D], outcome: 'failure', rows: 0 },
  {
    name: '9 C; M; failure -> 1 M',
    before: [C],
    during: [M],
    outcome: 'failure',
    rows: 1,
    firstOp: M,
  },
  { name: '10 D,M -> 1 M', before: [D, M], rows: 1, firstOp: M },
  { name: '11 C; -; success -> 0', before: [C], during: [], outcome: 'success', rows: 0 },
  { name: '12 M,M -> 1 M', before: [M, M], rows: 1, firstOp: M },
  {
    name: '13 C(id1),M(id2) -> 2, first C',
    before: [
      ['id1', C],
      ['id2', M],
    ],
    rows: 2,
    firstOp: C,
  },
  {
    name: '14 M; D,C,D; failure -> 1 D',
    before: [M],
    during: [D, C, D],
    outcome: 'failure',
    rows: 1,
    firstOp: D,
  },
  { name: '15 C,D,C -> 1 C', before: [C, D, C], rows: 1, firstOp: C },
  {
    name: '16 C; M,D,M; success -> 1 M',
    before: [C],
    during: [M, D, M],
    outcome: 'success',
    rows: 1,
    firstOp: M,
  },
  {
    name: '17 C; D,C; failure -> 1 C',
    before: [C],
    during: [D, C],
    outcome: 'failure',
    rows: 1,
    firstOp: C,
  },
];

/** The events of one phase as changes, all to item 'item' unless the event names an id. */
export function toChanges(events: Event[], step: number): QueueChange[] {
  return events.map((e, i) => {
    const [id, operation] = Array.isArray(e) ? e : ['item', e];
    return { id, operation, index: 'idx-a', data: JSON.stringify({ step, i }) };
  });
}
