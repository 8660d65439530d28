import {
  closeSync,
  constants,
  fstatSync,
  ftruncateSync,
  openSync,
  readSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { crc32 } from 'node:zlib';
import { Operation } from '../enums/operation.js';
import type { Change } from '../interfaces/change.js';

/** A change read back from the log, with the serial it was appended under. */
export interface LoggedChange extends Change {
  serial: number;
  /** The item's version (u64; 0 = unversioned, and for every record written by 0.1.x). */
  version: bigint;
  /** A DataContext item (false for every record written by 0.1.x). */
  dataContext: boolean;
}

// Record: u32 payload length, u32 CRC-32 of the payload, then the payload. Little-endian
// throughout. Two payload formats, told apart by the byte after the serial (the tag):
// - 0.1.x (format 1): f64 serial, u8 operation (0..2), then id, index, data as u32 byte length
//   + UTF-8.
// - format 2 (written since): f64 serial, u8 tag = FORMAT_2 | DATA_CONTEXT (when set) |
//   operation, u64 version, then id, index, data as above.
// A format-1 tag is 0..2, so it never has the FORMAT_2 bit: a log a crash left behind 0.1.x
// replays as changes with version 0 and no DataContext flag. Every record is written in format 2.
const HEADER_BYTES = 8;
const FIXED_PAYLOAD_BYTES = 8 + 1 + 4 * 3;
const VERSION_BYTES = 8;
const FORMAT_2 = 0x80;
const DATA_CONTEXT = 0x40;
const OPERATION_BITS = 0x03;
const OPERATIONS: ReadonlySet<number> = new Set([
  Operation.Create,
  Operation.Modify,
  Operation.Delete,
]);

/**
 * An append-only file of changes not yet moved into SQLite: `<database>-intent`.
 *
 * Why: a SQLite commit per change costs about 40 µs here, most of it the kernel writing WAL
 * frames and taking file locks; one `write()` of the change costs about 4 µs and survives a
 * process crash just as a WAL commit under `synchronous = NORMAL` does (both live in the page
 * cache until the kernel writes them back; both may lose their tail on power loss). The queue
 * moves logged changes into SQLite in batches and then empties the log. Each record carries a
 * serial and a checksum: after a crash, records past the serial SQLite recorded with the last
 * batch are applied again, up to the first torn or corrupt one.
 *
 * Records are written at an explicit offset, so a write that fails half-way (a full disk) leaves
 * no gap: the next record overwrites it.
 */
export class IntentLog {
  readonly path: string;
  #fd: number | undefined;
  /** Bytes of valid records in the file; where the next record goes. */
  #end = 0;
  #buffer = Buffer.allocUnsafe(4096);

  /** Opens (creating, owner-only) the log at `path`. */
  constructor(path: string) {
    this.path = path;
    // Not O_APPEND: writes go to an explicit offset (see above).
    this.#fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o600);
  }

  /**
   * The records with serials `after + 1`, `after + 2`, ... in order, up to the first one that is
   * missing, torn or corrupt. Records at or before `after` (already in SQLite) are skipped.
   */
  read(after: number): LoggedChange[] {
    const fd = this.#open();
    const size = fstatSync(fd).size;
    const bytes = Buffer.allocUnsafe(size);
    let got = 0;
    while (got < size) {
      const n = readSync(fd, bytes, got, size - got, got);
      if (n === 0) break;
      got += n;
    }
    const out: LoggedChange[] = [];
    let next = after + 1;
    let at = 0;
    while (at + HEADER_BYTES <= got) {
      const length = bytes.readUInt32LE(at);
      const start = at + HEADER_BYTES;
      if (length < FIXED_PAYLOAD_BYTES || start + length > got) break;
      const payload = bytes.subarray(start, start + length);
      if (crc32(payload) !== bytes.readUInt32LE(at + 4)) break;
      const change = decode(payload);
      if (change === undefined) break;
      if (change.serial > after) {
        if (change.serial !== next) break;
        out.push(change);
        next++;
      }
      at = start + length;
    }
    this.#end = at;
    return out;
  }

  /**
   * Appends one change; when this returns, it survives a crash of the process. `version` must be
   * a u64 (0..2^64-1): the caller checks it.
   */
  append(
    serial: number,
    id: string,
    operation: Operation,
    index: string,
    data: string,
    version = 0n,
    dataContext = false,
  ): void {
    const fd = this.#open();
    const need =
      HEADER_BYTES +
      FIXED_PAYLOAD_BYTES +
      VERSION_BYTES +
      3 * (id.length + index.length + data.length); // UTF-8 takes at most 3 bytes per UTF-16 unit
    if (this.#buffer.length < need) this.#buffer = Buffer.allocUnsafe(need * 2);
    const b = this.#buffer;
    let at = HEADER_BYTES;
    b.writeDoubleLE(serial, at);
    at += 8;
    b[at++] = FORMAT_2 | (dataContext ? DATA_CONTEXT : 0) | operation;
    b.writeBigUInt64LE(version, at);
    at += VERSION_BYTES;
    at = writeString(b, at, id);
    at = writeString(b, at, index);
    at = writeString(b, at, data);
    const length = at - HEADER_BYTES;
    b.writeUInt32LE(length, 0);
    b.writeUInt32LE(crc32(b.subarray(HEADER_BYTES, at)), 4);
    let written = 0;
    while (written < at) {
      written += writeSync(fd, b, written, at - written, this.#end + written);
    }
    this.#end += at;
  }

  /** Empties the log once its records are in SQLite. */
  clear(): void {
    ftruncateSync(this.#open(), 0);
    this.#end = 0;
  }

  /** Bytes of records in the log. */
  get bytes(): number {
    return this.#end;
  }

  /** Closes the file, and deletes it when it holds no record: a clean close leaves no log. */
  close(): void {
    const fd = this.#fd;
    this.#fd = undefined;
    if (fd === undefined) return;
    closeSync(fd);
    if (this.#end === 0) rmSync(this.path, { force: true });
  }

  #open(): number {
    if (this.#fd === undefined) throw new Error('intent log: closed');
    return this.#fd;
  }
}

function writeString(b: Buffer, at: number, s: string): number {
  const n = b.write(s, at + 4, 'utf8');
  b.writeUInt32LE(n, at);
  return at + 4 + n;
}

function decode(p: Buffer): LoggedChange | undefined {
  const serial = p.readDoubleLE(0);
  const tag = p[8] as number;
  if (!Number.isSafeInteger(serial)) return undefined;
  let at = 9;
  let version = 0n;
  let operation = tag;
  let dataContext = false;
  if ((tag & FORMAT_2) !== 0) {
    if ((tag & ~(FORMAT_2 | DATA_CONTEXT | OPERATION_BITS)) !== 0) return undefined;
    if (at + VERSION_BYTES > p.length) return undefined;
    operation = tag & OPERATION_BITS;
    dataContext = (tag & DATA_CONTEXT) !== 0;
    version = p.readBigUInt64LE(at);
    at += VERSION_BYTES;
  }
  if (!OPERATIONS.has(operation)) return undefined;
  const fields: string[] = [];
  for (let k = 0; k < 3; k++) {
    if (at + 4 > p.length) return undefined;
    const n = p.readUInt32LE(at);
    at += 4;
    if (at + n > p.length) return undefined;
    fields.push(p.toString('utf8', at, at + n));
    at += n;
  }
  if (at !== p.length) return undefined;
  const [id, index, data] = fields as [string, string, string];
  return { serial, id, operation, index, data, version, dataContext };
}
