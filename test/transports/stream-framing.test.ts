import { describe, expect, it } from 'vitest';
import {
  encodeFrame,
  FrameReader,
  matchSyncResponse,
  parseQueueMessage,
  syncPrefix,
} from '../../src/transports/stream-framing.js';
import { frameMessage } from '../../src/wire/framing.js';

const bytes = (text: string) => new TextEncoder().encode(text);

describe('stream framing', () => {
  it('reads frames fed one byte at a time, and many at once', () => {
    const frames = [bytes('a'), bytes(''), new Uint8Array(20_000).fill(3), bytes('last')];
    const stream = Buffer.concat(frames.map((f) => encodeFrame(new Uint8Array(0), f)));
    const reader = new FrameReader(100_000);
    const out: Buffer[] = [];
    let oversized = 0;
    for (const byte of stream) {
      if (reader.push(Buffer.of(byte), (p) => out.push(Buffer.from(p))) !== undefined) oversized++;
    }
    expect(oversized).toBe(0);
    expect(out.map((b) => b.length)).toEqual(frames.map((f) => f.length));
    expect(out.every((b, i) => b.equals(frames[i] as Uint8Array))).toBe(true);
    expect(reader.pendingBytes).toBe(0);

    const all: Buffer[] = [];
    new FrameReader(100_000).push(stream, (p) => all.push(Buffer.from(p)));
    expect(all.every((b, i) => b.equals(out[i] as Buffer))).toBe(true);
    expect(all).toHaveLength(out.length);
  });

  it('reports an oversized frame from its length alone', () => {
    const reader = new FrameReader(10);
    const header = Buffer.alloc(4);
    header.writeUInt32LE(11);
    expect(reader.push(header, () => {})).toBe(11);
    const partial = new FrameReader(10);
    partial.push(encodeFrame(new Uint8Array(0), bytes('12345')).subarray(0, 6), () => {});
    expect(partial.pendingBytes).toBe(6);
  });

  it('parses s:<escaped module>: headers, escapes included', () => {
    for (const name of ['fim', 'a|b:c', '||', '::', 'módulo', '']) {
      const parsed = parseQueueMessage(frameMessage(name, bytes('x:y|z')));
      expect(parsed?.moduleName).toBe(name);
      expect(Buffer.from(parsed?.message ?? [])).toEqual(Buffer.from('x:y|z'));
    }
    expect(parseQueueMessage(bytes('x:fim:abc'))).toBeUndefined();
    expect(parseQueueMessage(bytes('s:fim'))).toBeUndefined();
    expect(parseQueueMessage(bytes('s:fim|'))).toBeUndefined();
  });

  it('matches the longest <module>_sync prefix', () => {
    const prefixes = new Map([
      ['a', syncPrefix('a')],
      ['a_sync b', syncPrefix('a_sync b')],
    ]);
    expect(matchSyncResponse(bytes('a_sync b_sync xyz'), prefixes)?.moduleName).toBe('a_sync b');
    expect(matchSyncResponse(bytes('a_sync xyz'), prefixes)?.moduleName).toBe('a');
    expect(matchSyncResponse(bytes('b_sync xyz'), prefixes)).toBeUndefined();
  });
});
