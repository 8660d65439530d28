import { MAX_DATAGRAM_BYTES } from '../wire/framing.js';

/** Bytes of the little-endian length that precedes each frame on a stream socket. */
export const LENGTH_BYTES = 4;

/**
 * Default cap of one frame's payload on a stream socket: a whole datagram's
 * worth of message plus room for a `<module>_sync ` or `s:<module>:` prefix.
 */
export const DEFAULT_MAX_FRAME_BYTES = MAX_DATAGRAM_BYTES + 256;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** A new buffer: 4-byte little-endian length of `prefix + message`, then both. */
export function encodeFrame(prefix: Uint8Array, message: Uint8Array): Buffer {
  const length = prefix.length + message.length;
  const frame = Buffer.allocUnsafe(LENGTH_BYTES + length);
  frame.writeUInt32LE(length, 0);
  frame.set(prefix, LENGTH_BYTES);
  frame.set(message, LENGTH_BYTES + prefix.length);
  return frame;
}

/** UTF-8 bytes of `<module>_sync `, the prefix of every manager response for `module`. */
export function syncPrefix(moduleName: string): Uint8Array {
  return utf8.encode(`${moduleName}_sync `);
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

/**
 * Splits a `<module>_sync <bytes>` payload for one of the known modules (a
 * map of module name to its {@link syncPrefix}). Comparing whole prefixes,
 * rather than cutting at the first space, keeps any module name working.
 */
export function matchSyncResponse(
  payload: Uint8Array,
  prefixes: ReadonlyMap<string, Uint8Array>,
): { moduleName: string; message: Uint8Array } | undefined {
  let best: { moduleName: string; length: number } | undefined;
  for (const [moduleName, prefix] of prefixes) {
    // The longest match wins, in case one name is a prefix of another's `_sync ` form.
    if (startsWith(payload, prefix) && (best === undefined || prefix.length > best.length)) {
      best = { moduleName, length: prefix.length };
    }
  }
  if (best === undefined) return undefined;
  return { moduleName: best.moduleName, message: payload.subarray(best.length) };
}

/** For log lines about a payload no known module claims: what it looks like it is for. */
export function describeUnclaimed(payload: Uint8Array): string {
  const space = payload.indexOf(0x20);
  const head = utf8Decoder.decode(
    payload.subarray(0, space < 0 ? Math.min(payload.length, 32) : space),
  );
  if (space > 0 && head.endsWith('_sync')) return `unknown module '${head.slice(0, -5)}'`;
  return `no '<module>_sync ' prefix (starts with ${JSON.stringify(head.slice(0, 32))})`;
}

const COLON = 0x3a;
const PIPE = 0x7c;

/**
 * Parses an agent queue payload, `s:<escaped module>:<bytes>` (`|` escapes the
 * next byte). Undefined when it is not one.
 */
export function parseQueueMessage(
  payload: Uint8Array,
): { moduleName: string; message: Uint8Array } | undefined {
  if (payload.length < 3 || payload[0] !== 0x73 || payload[1] !== COLON) return undefined;
  const name: number[] = [];
  for (let i = 2; i < payload.length; i++) {
    const byte = payload[i] as number;
    if (byte === PIPE) {
      i++;
      if (i >= payload.length) return undefined;
      name.push(payload[i] as number);
    } else if (byte === COLON) {
      return {
        moduleName: utf8Decoder.decode(Uint8Array.from(name)),
        message: payload.subarray(i + 1),
      };
    } else {
      name.push(byte);
    }
  }
  return undefined;
}

/**
 * Reassembles length-prefixed frames from a byte stream, whatever the reads'
 * boundaries. Chunks are kept as received and copied once per frame, so a
 * frame arriving byte by byte costs linear time, not quadratic.
 */
export class FrameReader {
  #chunks: Buffer[] = [];
  #buffered = 0;
  /** Payload length of the frame being read, or -1 while reading its length. */
  #expected = -1;

  readonly #maxFrameBytes: number;

  constructor(maxFrameBytes: number) {
    this.#maxFrameBytes = maxFrameBytes;
  }

  /**
   * Feed bytes; `onFrame` gets each complete payload (valid during the call
   * only). Returns the announced length of a frame above the cap, in which
   * case the stream is unusable and the caller should drop it; else undefined.
   */
  push(chunk: Buffer, onFrame: (payload: Buffer) => void): number | undefined {
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
    }
    for (;;) {
      if (this.#expected < 0) {
        if (this.#buffered < LENGTH_BYTES) return undefined;
        const length = this.#take(LENGTH_BYTES).readUInt32LE(0);
        if (length > this.#maxFrameBytes) {
          this.#chunks = [];
          this.#buffered = 0;
          return length;
        }
        this.#expected = length;
      }
      if (this.#buffered < this.#expected) return undefined;
      const payload = this.#take(this.#expected);
      this.#expected = -1;
      onFrame(payload);
    }
  }

  /** Bytes of an unfinished frame (its length field included). */
  get pendingBytes(): number {
    return this.#buffered + (this.#expected >= 0 ? LENGTH_BYTES : 0);
  }

  #take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.#chunks[0] as Buffer;
    if (first.length >= n) {
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      this.#buffered -= n;
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let offset = 0;
    let used = 0;
    while (offset < n) {
      const chunk = this.#chunks[used] as Buffer;
      const count = Math.min(chunk.length, n - offset);
      chunk.copy(out, offset, 0, count);
      offset += count;
      if (count === chunk.length) used++;
      else this.#chunks[used] = chunk.subarray(count);
    }
    // One splice per frame: shifting chunk by chunk would be quadratic for byte-sized reads.
    this.#chunks.splice(0, used);
    this.#buffered -= n;
    return out;
  }
}
