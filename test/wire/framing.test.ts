import { describe, expect, it } from 'vitest';
import {
  dataValueSizeBound,
  escapeModuleName,
  frameHeader,
  frameMessage,
  MAX_DATAGRAM_BYTES,
  MessageEncoder,
  WireOperation,
} from '../../src/wire/index.js';

const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe('module name framing', () => {
  it('escapes | and : in one pass', () => {
    expect(escapeModuleName('a|b:c')).toBe('a||b|:c');
    expect(escapeModuleName('syscollector')).toBe('syscollector');
    expect(escapeModuleName('')).toBe('');
    expect(escapeModuleName('||')).toBe('||||');
    expect(escapeModuleName('::')).toBe('|:|:');
    // One pass: the | added for : is not escaped again.
    expect(escapeModuleName('|:')).toBe('|||:');
    expect(escapeModuleName(':|')).toBe('|:||');
  });

  it('builds the s:<escaped>: header as UTF-8', () => {
    expect(text(frameHeader('a|b:c'))).toBe('s:a||b|:c:');
    expect(frameHeader('fim')).toEqual(new TextEncoder().encode('s:fim:'));
    expect(frameHeader('módulo')).toEqual(new TextEncoder().encode('s:módulo:'));
    // The cached header follows the name.
    expect(text(frameHeader('x'))).toBe('s:x:');
    expect(text(frameHeader('y'))).toBe('s:y:');
    expect(text(frameHeader('x'))).toBe('s:x:');
    // Callers get their own copy.
    frameHeader('x').fill(0);
    expect(text(frameHeader('x'))).toBe('s:x:');
    expect(text(frameMessage('x', new Uint8Array(0)))).toBe('s:x:');
  });

  it('frames a message as header + bytes in a new buffer', () => {
    const message = Uint8Array.of(1, 2, 3, 0, 255);
    const framed = frameMessage('a|b', message);
    expect(Array.from(framed)).toEqual([...new TextEncoder().encode('s:a||b:'), 1, 2, 3, 0, 255]);
    expect(framed.buffer).not.toBe(message.buffer);
    expect(frameMessage('m', new Uint8Array(0))).toEqual(new TextEncoder().encode('s:m:'));
  });

  it('exposes the datagram limit', () => {
    expect(MAX_DATAGRAM_BYTES).toBe(65536);
  });
});

describe('dataValueSizeBound', () => {
  const encoder = new MessageEncoder();
  const MAX_U64 = 2n ** 64n - 1n;
  // Default-valued fields are omitted, so (0, 0, Upsert) is the smallest case.
  const scalars: [bigint, bigint, WireOperation][] = [
    [0n, 0n, WireOperation.Upsert],
    [1n, 0n, WireOperation.Upsert],
    [1n, 1n, WireOperation.Delete],
    [MAX_U64, MAX_U64, WireOperation.Delete],
  ];

  /** Largest real encode for these byte lengths, over scalars, data as string/bytes and version forms. */
  function worstCase(id: string, index: string, data: number, version: string): number {
    const versions: (string | undefined)[] = version === '' ? [undefined, ''] : [version];
    let worst = 0;
    for (const [seq, session, op] of scalars) {
      for (const v of versions) {
        for (const payload of ['d'.repeat(data), new Uint8Array(data)]) {
          const n = encoder.dataValue(seq, session, op, id, index, payload, v).length;
          worst = Math.max(worst, n);
        }
      }
    }
    return worst;
  }

  it('bounds real encodes over all length alignments mod 8, at most 16 bytes above', () => {
    let combos = 0;
    let maxSlack = 0;
    for (let id = 0; id < 8; id++) {
      for (let index = 0; index < 8; index++) {
        for (let data = 0; data < 8; data++) {
          for (let version = 0; version < 8; version++) {
            // Vary the magnitude too, so alignment is not the only thing tested.
            const scale = [0, 8, 64, 296][(id + index + data + version) % 4] as number;
            const lengths = [id + scale, index + scale, data + 37 * scale, version];
            const [i, x, d, v] = lengths as [number, number, number, number];
            const worst = worstCase('i'.repeat(i), 'x'.repeat(x), d, 'v'.repeat(v));
            const bound = dataValueSizeBound(i, x, d, v);
            expect(bound).toBeGreaterThanOrEqual(worst);
            expect(bound - worst).toBeLessThanOrEqual(16);
            maxSlack = Math.max(maxSlack, bound - worst);
            combos++;
          }
        }
      }
    }
    console.log(`dataValueSizeBound: ${combos} length combinations, max slack ${maxSlack} bytes`);
  });

  it('counts UTF-8 bytes, not characters', () => {
    const id = 'ñ日🦊'; // 2 + 3 + 4 bytes
    const bytes = new TextEncoder().encode(id).length;
    expect(bytes).toBe(9);
    const worst = worstCase(id, id, 10, id);
    expect(dataValueSizeBound(bytes, bytes, 10, bytes)).toBeGreaterThanOrEqual(worst);
  });

  it('stays a bound for documents near the datagram limit', () => {
    const data = MAX_DATAGRAM_BYTES - 200;
    const worst = worstCase('id', 'wazuh-states-inventory-packages', data, '12');
    const bound = dataValueSizeBound(2, 31, data, 2);
    expect(bound).toBeGreaterThanOrEqual(worst);
    expect(bound - worst).toBeLessThanOrEqual(16);
  });
});
