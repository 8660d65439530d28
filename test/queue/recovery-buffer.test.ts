import { describe, expect, it } from 'vitest';
import { Operation } from '../../src/enums/operation.js';
import { RecoveryBuffer } from '../../src/queue/index.js';

describe('RecoveryBuffer', () => {
  it('coalesces by id: first position, newest content', () => {
    const buffer = new RecoveryBuffer();
    buffer.add('b', Operation.Create, 'idx-2', 'b1');
    buffer.add('a', Operation.Create, 'idx-1', 'a1');
    buffer.add('b', Operation.Modify, 'idx-3', 'b2');
    buffer.add('c', Operation.Delete, 'idx-1', 'c1');
    expect(buffer.size).toBe(3);
    expect(buffer.snapshot()).toEqual([
      { seq: 0, id: 'b', index: 'idx-3', data: 'b2', operation: Operation.Modify },
      { seq: 1, id: 'a', index: 'idx-1', data: 'a1', operation: Operation.Create },
      { seq: 2, id: 'c', index: 'idx-1', data: 'c1', operation: Operation.Delete },
    ]);
    expect(buffer.indices()).toEqual(['idx-1', 'idx-3']);
  });

  it('snapshots are copies, and clear empties the buffer', () => {
    const buffer = new RecoveryBuffer();
    buffer.add('a', Operation.Create, 'i', '1');
    const snapshot = buffer.snapshot();
    buffer.add('a', Operation.Modify, 'i', '2');
    expect(snapshot[0]?.data).toBe('1');
    buffer.clear();
    expect(buffer.size).toBe(0);
    expect(buffer.snapshot()).toEqual([]);
    expect(buffer.indices()).toEqual([]);
    buffer.add('z', Operation.Create, 'j', '{}');
    expect(buffer.snapshot()).toEqual([
      { seq: 0, id: 'z', index: 'j', data: '{}', operation: Operation.Create },
    ]);
  });
});
