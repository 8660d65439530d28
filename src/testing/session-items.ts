// What a session has received of its items, by seq, and the received items themselves.
//
// A session keeps what it stores of each DataValue/DataClean as a record in its arena (the
// sender reuses its buffer, and packing copies into shared chunks costs far less than one small
// buffer each): a header of RECORD_HEADER bytes (u32 LE: seq low, seq high, kind, data length,
// id length, index length), then the data (Upsert only), id and index bytes. Records are
// appended in arrival order, so a later arrival of a seq overwrites an earlier one. Strings are
// decoded and documents parsed only when the index is read, and nothing of this is for the GC
// to trace.
import type { SeqRange } from '../wire/types.js';
import { putU32, u32 } from './wire-reader.js';

/** Marks a stored DataClean among the items of a session (others hold a WireOperation). */
export const CLEAN = 0xff;

const RECORD_HEADER = 24;

/** Arena chunks start small (most sessions are small) and double up to this. */
const MIN_CHUNK = 4096;
const MAX_CHUNK = 1 << 20;

/** One item of a complete session, read in place: its bytes stay in `chunk`. */
export interface ItemRecord {
  /** A WireOperation, or CLEAN. */
  kind: number;
  chunk: Buffer;
  /** `chunk[dataStart, idStart)` is the document (empty unless Upsert). */
  dataStart: number;
  /** `chunk[idStart, indexStart)` is the item id. */
  idStart: number;
  /** `chunk[indexStart, indexEnd)` is the index name. */
  indexStart: number;
  indexEnd: number;
}

/** The items of a session of `size` seqs, as received. */
export class SessionItems {
  readonly size: number;
  /** Every seq below this was received (most arrive in order). */
  #contiguous = 0;
  /** Received seqs above `#contiguous`. */
  readonly #scattered = new Set<number>();
  /** Arena chunks of records; the last one is being filled. */
  readonly #chunks: Buffer[] = [];
  /** Bytes used in each chunk. */
  readonly #filled: number[] = [];

  constructor(size: number) {
    this.size = size;
  }

  /** How many distinct seqs arrived. */
  get received(): number {
    return this.#contiguous + this.#scattered.size;
  }

  get complete(): boolean {
    return this.received === this.size;
  }

  /**
   * Store the item of seq `n` (< size; `seqLow`/`seqHigh` are its u32 halves); `data`, `id` and
   * `index` are the positions of vectors in the verified `bytes`, -1 for none. Returns whether
   * that seq had arrived before (its record is then overwritten).
   */
  store(
    n: number,
    seqLow: number,
    seqHigh: number,
    kind: number,
    bytes: Uint8Array,
    data: number,
    id: number,
    index: number,
  ): boolean {
    let duplicate = false;
    if (n === this.#contiguous) {
      let next = n + 1;
      const scattered = this.#scattered;
      while (scattered.size > 0 && scattered.delete(next)) next++;
      this.#contiguous = next;
    } else if (n < this.#contiguous || this.#scattered.has(n)) {
      duplicate = true;
    } else {
      this.#scattered.add(n);
    }

    const dataLength = data < 0 ? 0 : u32(bytes, data);
    const idLength = id < 0 ? 0 : u32(bytes, id);
    const indexLength = index < 0 ? 0 : u32(bytes, index);
    const length = RECORD_HEADER + dataLength + idLength + indexLength;
    const chunks = this.#chunks;
    const filled = this.#filled;
    const last = chunks.length - 1;
    let chunk = chunks[last];
    let at = filled[last] as number;
    if (chunk === undefined || chunk.length - at < length) {
      const grown = chunk === undefined ? MIN_CHUNK : Math.min(chunk.length * 2, MAX_CHUNK);
      chunk = Buffer.allocUnsafe(Math.max(grown, length));
      chunks.push(chunk);
      filled.push(0);
      at = 0;
    }
    putU32(chunk, at, seqLow);
    putU32(chunk, at + 4, seqHigh);
    putU32(chunk, at + 8, kind);
    putU32(chunk, at + 12, dataLength);
    putU32(chunk, at + 16, idLength);
    putU32(chunk, at + 20, indexLength);
    let end = at + RECORD_HEADER;
    if (dataLength > 0) chunk.set(bytes.subarray(data + 4, data + 4 + dataLength), end);
    end += dataLength;
    for (let i = id + 4, stop = i + idLength; i < stop; i++) chunk[end++] = bytes[i] as number;
    for (let i = index + 4, stop = i + indexLength; i < stop; i++) {
      chunk[end++] = bytes[i] as number;
    }
    filled[filled.length - 1] = end;
    return duplicate;
  }

  /** Missing seqs as sorted, merged inclusive ranges. */
  missingRanges(): SeqRange[] {
    // Sorting the scattered seqs costs O(received), not O(size), for sparse sessions.
    const seen = Float64Array.from(this.#scattered).sort();
    const ranges: SeqRange[] = [];
    let next = this.#contiguous;
    for (const seq of seen) {
      if (seq > next) ranges.push({ begin: BigInt(next), end: BigInt(seq - 1) });
      next = seq + 1;
    }
    if (next < this.size) ranges.push({ begin: BigInt(next), end: BigInt(this.size - 1) });
    return ranges;
  }

  /** The last record of each seq; only for a complete session. */
  records(): ItemRecords {
    return new ItemRecords(this.size, this.#chunks, this.#filled);
  }
}

/** Where the record of each seq of a complete session is. */
export class ItemRecords {
  readonly size: number;
  readonly #chunks: readonly Buffer[];
  readonly #chunk: Int32Array;
  readonly #offset: Int32Array;

  constructor(size: number, chunks: readonly Buffer[], filled: readonly number[]) {
    this.size = size;
    this.#chunks = chunks;
    this.#chunk = new Int32Array(size);
    this.#offset = new Int32Array(size);
    for (let c = 0; c < chunks.length; c++) {
      const chunk = chunks[c] as Buffer;
      for (let at = 0, end = filled[c] as number; at < end; ) {
        const seq = u32(chunk, at) + u32(chunk, at + 4) * 2 ** 32;
        this.#chunk[seq] = c;
        this.#offset[seq] = at;
        at += RECORD_HEADER + u32(chunk, at + 12) + u32(chunk, at + 16) + u32(chunk, at + 20);
      }
    }
  }

  /** Fill `into` with the item of `seq` (reused by the caller: no allocation per item). */
  read(seq: number, into: ItemRecord): ItemRecord {
    const chunk = this.#chunks[this.#chunk[seq] as number] as Buffer;
    const at = this.#offset[seq] as number;
    into.kind = u32(chunk, at + 8);
    into.chunk = chunk;
    into.dataStart = at + RECORD_HEADER;
    into.idStart = into.dataStart + u32(chunk, at + 12);
    into.indexStart = into.idStart + u32(chunk, at + 16);
    into.indexEnd = into.indexStart + u32(chunk, at + 20);
    return into;
  }
}

/** A blank record for {@link ItemRecords.read} to fill. */
export function itemRecord(): ItemRecord {
  return { kind: 0, chunk: EMPTY, dataStart: 0, idStart: 0, indexStart: 0, indexEnd: 0 };
}

const EMPTY = Buffer.alloc(0);
