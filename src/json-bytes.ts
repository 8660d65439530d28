// JSON validation over UTF-8 bytes, without building the value: a scan of the JSON grammar
// (RFC 8259, what JSON.parse accepts), 2-3x cheaper than JSON.parse. The change validator checks
// every Create/Modify document with it (see documentShapeError), and the mock manager every
// Upsert it receives (see isDocumentBytes): the same rule on both sides. The scan may refuse valid documents (nesting deeper than MAX_DEPTH); isJsonBytes then
// parses for real, which decides. test/json-bytes.test.ts checks it against JSON.parse.
import { isUtf8 } from 'node:buffer';

let scratch = Buffer.allocUnsafe(64 * 1024);

/**
 * Whether JSON.parse accepts `text`. Encoded to UTF-8 first (a lone surrogate becomes U+FFFD,
 * which is valid exactly where the surrogate was: inside a string).
 */
export function isJsonText(text: string): boolean {
  const most = 3 * text.length; // UTF-8 bytes per UTF-16 unit, at most
  if (most > scratch.length) {
    if (most > 16 * 1024 * 1024) return parses(text); // not worth a buffer that size
    scratch = Buffer.allocUnsafe(most);
  }
  return isJsonBytes(scratch, 0, scratch.write(text));
}

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** Whether `b[start, end)` is UTF-8 JSON text that JSON.parse accepts. */
export function isJsonBytes(b: Uint8Array, start = 0, end = b.length): boolean {
  const scan = scanJson(b, start, end);
  if (scan === JSON_ASCII) return true;
  const bytes = b.subarray(start, end);
  if (scan === JSON_NON_ASCII) return isUtf8(bytes);
  if (!isUtf8(bytes)) return false;
  return parses(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
}

/**
 * Why the manager would corrupt `text` as a stored document, or undefined when it would not.
 * The manager writes `{"agent":…,"wazuh":…,` and then the document without its first byte, so a
 * document must be a JSON object with at least one member whose first byte is `{`: `{}`,
 * leading whitespace, arrays and scalars all become broken documents that the indexer refuses
 * one by one while the session still ends Ok.
 */
export function documentShapeError(text: string): string | undefined {
  if (text.charCodeAt(0) !== 0x7b) {
    return /^\s/.test(text)
      ? 'it starts with whitespace; its first byte must be {'
      : 'it is not a JSON object; documents must be objects ({...}) with at least one member';
  }
  if (!isJsonText(text)) return undefined; // the JSON check says what is wrong
  if (/^\{\s*\}/.test(text)) return 'it is an empty object; documents need at least one member';
  return undefined;
}

/** Whether `b[start, end)` is a document the manager stores intact (see documentShapeError). */
export function isDocumentBytes(b: Uint8Array, start = 0, end = b.length): boolean {
  if (start >= end || b[start] !== 0x7b) return false;
  let i = start + 1;
  while (i < end && isSpace(b[i] as number)) i++;
  if (i < end && b[i] === 0x7d) return false;
  return isJsonBytes(b, start, end);
}

export const JSON_INVALID = 0;
/** Valid and all ASCII. */
export const JSON_ASCII = 1;
/** Valid if its bytes are valid UTF-8 (strings hold other bytes). */
export const JSON_NON_ASCII = 2;

const MAX_DEPTH = 256;
/** Open containers of the running scan: 1 object, 0 array (scanJson is not re-entrant). */
const containers = new Uint8Array(MAX_DEPTH);

// Byte classes inside a string.
const PLAIN = 0;
const QUOTE = 1;
const BACKSLASH = 2;
const CONTROL = 3;
const HIGH = 4;
const inString = new Uint8Array(256);
inString.fill(CONTROL, 0, 0x20);
inString.fill(HIGH, 0x80);
inString[0x22] = QUOTE;
inString[0x5c] = BACKSLASH;

/** Characters allowed after a backslash; 'u' is handled apart. */
const ESCAPES = new Set([0x22, 0x5c, 0x2f, 0x62, 0x66, 0x6e, 0x72, 0x74]);

const isSpace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isHex = (c: number): boolean =>
  (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);

let sawHigh = false;

/** Scans the string whose opening quote is at `i`; returns the index after it, or -1. */
function scanString(b: Uint8Array, i: number, end: number): number {
  i++;
  for (;;) {
    let c = PLAIN;
    while (i < end) {
      c = inString[b[i] as number] as number;
      if (c !== PLAIN) break;
      i++;
    }
    if (i >= end) return -1;
    i++;
    if (c === QUOTE) return i;
    if (c === HIGH) {
      sawHigh = true;
    } else if (c === BACKSLASH) {
      if (i >= end) return -1;
      const e = b[i++] as number;
      if (e === 0x75) {
        if (end - i < 4) return -1;
        for (const stop = i + 4; i < stop; i++) if (!isHex(b[i] as number)) return -1;
      } else if (!ESCAPES.has(e)) {
        return -1;
      }
    } else {
      return -1; // an unescaped control character
    }
  }
}

/** Scans a number starting at `i`; returns the index after it, or -1. */
function scanNumber(b: Uint8Array, i: number, end: number): number {
  if (b[i] === 0x2d) i++;
  if (i >= end) return -1;
  if (b[i] === 0x30) {
    i++;
  } else if (isDigit(b[i] as number)) {
    while (i < end && isDigit(b[i] as number)) i++;
  } else {
    return -1;
  }
  if (i < end && b[i] === 0x2e) {
    i++;
    if (i >= end || !isDigit(b[i] as number)) return -1;
    while (i < end && isDigit(b[i] as number)) i++;
  }
  if (i < end && (b[i] === 0x65 || b[i] === 0x45)) {
    i++;
    if (i < end && (b[i] === 0x2b || b[i] === 0x2d)) i++;
    if (i >= end || !isDigit(b[i] as number)) return -1;
    while (i < end && isDigit(b[i] as number)) i++;
  }
  return i;
}

/** Whether `b[i..]` starts with `word` (ASCII) before `end`. */
function startsWith(b: Uint8Array, i: number, end: number, word: string): boolean {
  if (end - i < word.length) return false;
  for (let k = 0; k < word.length; k++) if (b[i + k] !== word.charCodeAt(k)) return false;
  return true;
}

/** Scans `b[start, end)` as one JSON text; see JSON_*. Never reads outside that range. */
export function scanJson(b: Uint8Array, start: number, end: number): number {
  let i = start;
  let depth = 0;
  sawHigh = false;
  value: for (;;) {
    while (i < end && isSpace(b[i] as number)) i++;
    if (i >= end) return JSON_INVALID;
    const c = b[i] as number;
    if (c === 0x22) {
      i = scanString(b, i, end);
    } else if (c === 0x7b || c === 0x5b) {
      i++;
      while (i < end && isSpace(b[i] as number)) i++;
      if (i < end && b[i] === c + 2) {
        i++; // {} or []
      } else {
        if (depth === MAX_DEPTH) return JSON_INVALID;
        containers[depth++] = c === 0x7b ? 1 : 0;
        if (c === 0x5b) continue;
        i = scanKey(b, i, end);
        if (i < 0) return JSON_INVALID;
        continue;
      }
    } else if (c === 0x2d || isDigit(c)) {
      i = scanNumber(b, i, end);
    } else if (c === 0x74) {
      i = startsWith(b, i, end, 'true') ? i + 4 : -1;
    } else if (c === 0x66) {
      i = startsWith(b, i, end, 'false') ? i + 5 : -1;
    } else if (c === 0x6e) {
      i = startsWith(b, i, end, 'null') ? i + 4 : -1;
    } else {
      return JSON_INVALID;
    }
    if (i < 0) return JSON_INVALID;
    // After a value: close containers, or a comma and the next value.
    for (;;) {
      while (i < end && isSpace(b[i] as number)) i++;
      if (depth === 0) {
        if (i !== end) return JSON_INVALID;
        return sawHigh ? JSON_NON_ASCII : JSON_ASCII;
      }
      if (i >= end) return JSON_INVALID;
      const next = b[i++] as number;
      const inObject = containers[depth - 1] === 1;
      if (next === 0x2c) {
        if (inObject) {
          while (i < end && isSpace(b[i] as number)) i++;
          i = scanKey(b, i, end);
          if (i < 0) return JSON_INVALID;
        }
        continue value;
      }
      if (next !== (inObject ? 0x7d : 0x5d)) return JSON_INVALID;
      depth--;
    }
  }
}

/** Scans `"key" :` at `i`; returns the index after the colon, or -1. */
function scanKey(b: Uint8Array, i: number, end: number): number {
  if (i >= end || b[i] !== 0x22) return -1;
  i = scanString(b, i, end);
  if (i < 0) return -1;
  while (i < end && isSpace(b[i] as number)) i++;
  return i < end && b[i] === 0x3a ? i + 1 : -1;
}
