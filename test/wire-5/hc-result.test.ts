// agentd's HCRESULT report: parsed strictly, never throwing, bounded.
import { describe, expect, it } from 'vitest';
import {
  encodeHcResult,
  isHcResult,
  MAX_HC_RESULT_BYTES,
  parseHcResult,
} from '../../src/wire-5/hc-result.js';

const bytes = (text: string) => new TextEncoder().encode(text);

describe('parseHcResult', () => {
  it.each([
    ['HCRESULT:42:200:', { sessionNumber: '42', status: 200, body: '' }],
    [
      'HCRESULT:7661382398715981825:200:{"noop":true}',
      { sessionNumber: '7661382398715981825', status: 200, body: '{"noop":true}' },
    ],
    // The body may hold colons: only the first two split.
    [
      'HCRESULT:1:503:{"error":"Service unavailable","code":503}',
      { sessionNumber: '1', status: 503, body: '{"error":"Service unavailable","code":503}' },
    ],
    ['HCRESULT:1:0:', { sessionNumber: '1', status: 0, body: '' }],
    [
      'HCRESULT:18446744073709551615:409:x',
      { sessionNumber: '18446744073709551615', status: 409, body: 'x' },
    ],
    // Leading zeros are the same number (the reference reads it with stoull).
    ['HCRESULT:007:200:', { sessionNumber: '7', status: 200, body: '' }],
  ])('%s', (text, expected) => {
    expect(parseHcResult(bytes(text))).toEqual(expected);
  });

  it.each([
    ['empty', ''],
    ['no prefix', '42:200:'],
    ['lower-case prefix', 'hcresult:42:200:'],
    ['a seed-wire answer', '\x10\x00\x00\x00\x0c\x00'],
    ['prefix only', 'HCRESULT:'],
    ['no status', 'HCRESULT:42'],
    ['no second colon', 'HCRESULT:42:200'],
    ['empty session', 'HCRESULT::200:'],
    ['empty status', 'HCRESULT:42::'],
    ['non-decimal session', 'HCRESULT:4a:200:'],
    ['hex session', 'HCRESULT:0x2a:200:'],
    ['signed session', 'HCRESULT:+42:200:'],
    ['negative session', 'HCRESULT:-42:200:'],
    ['blank before the session', 'HCRESULT: 42:200:'],
    ['session above u64', 'HCRESULT:18446744073709551616:200:'],
    ['21-digit session', `HCRESULT:${'1'.repeat(21)}:200:`],
    ['negative status', 'HCRESULT:42:-1:'],
    ['4-digit status', 'HCRESULT:42:2000:'],
    ['status with junk', 'HCRESULT:42:20x:'],
    ['module id instead of the number', 'HCRESULT:syscollector-42:200:'],
  ])('refuses %s', (_name, text) => {
    expect(parseHcResult(bytes(text))).toBeNull();
  });

  it('refuses a payload over MAX_HC_RESULT_BYTES, takes one just within', () => {
    const head = bytes('HCRESULT:1:200:');
    const within = new Uint8Array(MAX_HC_RESULT_BYTES).fill(0x61);
    within.set(head);
    expect(parseHcResult(within)?.body.length).toBe(MAX_HC_RESULT_BYTES - head.length);
    const over = new Uint8Array(MAX_HC_RESULT_BYTES + 1).fill(0x61);
    over.set(head);
    expect(parseHcResult(over)).toBeNull();
  });

  it('a body that is not UTF-8 is decoded with replacements, not refused', () => {
    const payload = Uint8Array.from([...bytes('HCRESULT:1:200:'), 0xff, 0xfe]);
    expect(parseHcResult(payload)?.body).toBe('\ufffd\ufffd');
  });

  it('never throws on arbitrary bytes', () => {
    let seed = 1;
    const next = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    const alphabet = bytes('HCRESULT:0123456789-+ x');
    for (let i = 0; i < 2000; i++) {
      const length = next() % 40;
      const payload = Uint8Array.from({ length }, () =>
        next() % 4 === 0 ? next() & 0xff : (alphabet[next() % alphabet.length] as number),
      );
      if (i % 2 === 0) payload.set(bytes('HCRESULT:').subarray(0, Math.min(9, length)));
      expect(() => parseHcResult(payload)).not.toThrow();
    }
    expect(parseHcResult(null as unknown as Uint8Array)).toBeNull();
  });

  it('encodeHcResult writes what agentd writes, and parses back', () => {
    const encoded = encodeHcResult('12', 413, '{"error":"too large"}');
    expect(new TextDecoder().decode(encoded)).toBe('HCRESULT:12:413:{"error":"too large"}');
    expect(isHcResult(encoded)).toBe(true);
    expect(parseHcResult(encoded)).toEqual({
      sessionNumber: '12',
      status: 413,
      body: '{"error":"too large"}',
    });
  });
});
