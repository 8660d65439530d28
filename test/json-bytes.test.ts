// The JSON check (the validator's and the mock manager's) must accept exactly what JSON.parse (on strict UTF-8) accepts:
// a document it wrongly refused would fail a session a real manager indexes, and one it wrongly
// accepted would be indexed where a real manager fails the session.
import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isJsonBytes, isJsonText } from '../src/json-bytes.js';

function reference(bytes: Uint8Array): boolean {
  if (!isUtf8(bytes)) return false;
  try {
    JSON.parse(Buffer.from(bytes).toString('utf8'));
    return true;
  } catch {
    return false;
  }
}

const utf8 = (text: string) => new Uint8Array(Buffer.from(text, 'utf8'));

// Valid JSON texts, then byte-level damage: flips, cuts, insertions of grammar characters.
const damaged = fc
  .tuple(
    fc.json(),
    fc.array(
      fc.tuple(
        fc.nat(),
        fc.constantFrom(
          ...'{}[]",:\\-+.0123456789eEtfn u\t\n\x00\x7f'.split('').map((c) => c.charCodeAt(0)),
          0xc3,
          0xa9,
          0xff,
          0xed,
        ),
      ),
      { maxLength: 3 },
    ),
    fc.nat(),
  )
  .map(([text, edits, cut]) => {
    const bytes = Array.from(utf8(text));
    for (const [at, byte] of edits) {
      if (bytes.length === 0) bytes.push(byte);
      else if (at % 3 === 0) bytes.splice(at % bytes.length, 1);
      else if (at % 3 === 1) bytes[at % bytes.length] = byte;
      else bytes.splice(at % (bytes.length + 1), 0, byte);
    }
    return new Uint8Array(cut % 5 === 0 ? bytes.slice(0, cut % (bytes.length + 1)) : bytes);
  });

// Property runs of 10,000-20,000 documents: CPU-bound, so seconds longer when other processes
// share the cores. Only the outcome is tested; the time limit is there to catch a hang.
describe('isJsonBytes', { timeout: 120_000 }, () => {
  it('agrees with JSON.parse on valid JSON and on damaged JSON', () => {
    let tried = 0;
    fc.assert(
      fc.property(fc.oneof(fc.json().map(utf8), damaged), (bytes) => {
        tried++;
        expect(isJsonBytes(bytes)).toBe(reference(bytes));
      }),
      { numRuns: 20_000 },
    );
    console.log(`json-bytes: ${tried} documents checked against JSON.parse`);
  });

  it('agrees on edge cases: numbers, escapes, surrogates, whitespace, depth, UTF-8', () => {
    const cases = [
      '0',
      '-0',
      '01',
      '1.',
      '.5',
      '1e',
      '1e+',
      '1E-7',
      '-',
      '--1',
      '2.5e10',
      'tru',
      'true ',
      ' null',
      'nul',
      'falsey',
      '"\\u12"',
      '"\\u12G4"',
      '"\\uD800"',
      '"\\x"',
      '"a\tb"',
      '"\\/"',
      '[1,]',
      '[,1]',
      '{"a":1,}',
      '{"a" 1}',
      '{1:2}',
      '{"a":1}{"b":2}',
      '\u00a0"x"',
      '"é"',
      '"\ud83d\ude00"',
      '',
      '   ',
      '[]',
      '{}',
      '[[[]]]',
      `${'['.repeat(300)}${']'.repeat(300)}`,
      `${'['.repeat(300)}]`,
      '\ufeff{}',
      '"\u2028"',
    ];
    for (const text of cases) expect(isJsonBytes(utf8(text)), text).toBe(reference(utf8(text)));
    // Invalid UTF-8 inside a string: lone continuation, overlong, surrogate, truncated sequence.
    for (const bad of [[0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xff]]) {
      const bytes = new Uint8Array([0x22, ...bad, 0x22]);
      expect(isJsonBytes(bytes)).toBe(false);
    }
  });

  it('looks only at the range it is given', () => {
    const bytes = utf8('xx{"a":[1,2]}yy');
    expect(isJsonBytes(bytes, 2, 13)).toBe(true);
    expect(isJsonBytes(bytes, 2, 12)).toBe(false);
    expect(isJsonBytes(bytes, 0, 13)).toBe(false);
  });
});

describe('isJsonText (the change validator check)', { timeout: 120_000 }, () => {
  it('agrees with JSON.parse on strings, lone surrogates and long documents included', () => {
    const parses = (text: string) => {
      try {
        JSON.parse(text);
        return true;
      } catch {
        return false;
      }
    };
    let tried = 0;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.json(),
          fc.json().map((t) => t.slice(0, -1)),
          fc.string({ unit: 'binary' }),
          fc.string({ unit: 'binary' }).map((t) => JSON.stringify({ t })),
        ),
        (text) => {
          tried++;
          expect(isJsonText(text)).toBe(parses(text));
        },
      ),
      { numRuns: 10_000 },
    );
    for (const text of [
      '"\ud800"',
      '\ud800',
      '["\udfff", 1]',
      `"${'x'.repeat(100_000)}"`,
      `[${'1,'.repeat(40_000)}1]`,
    ]) {
      expect(isJsonText(text), text.slice(0, 20)).toBe(parses(text));
    }
    console.log(`json-text: ${tried} strings checked against JSON.parse`);
  });
});
