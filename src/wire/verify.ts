import {
  buf,
  countTables,
  fieldOffset,
  follow,
  len,
  MAX_BUFFER_SIZE,
  vectorLength,
  verifyBuffer,
  verifyString,
  verifyTableStart,
} from './flatbuffers-verifier.js';
import { MessageType } from './generated/wazuh/sync-schema/message-type.js';

// A FlatBuffers verifier for schemas/inventorySync.fbs. The JS runtime has
// none, and its generated readers trust every offset, so a corrupt or hostile
// buffer must pass through here before any generated reader touches it.
//
// The rules follow flatbuffers::Verifier (C++), with a few extra checks that
// the C++ one skips and that real builders always satisfy:
// - a vtable must be at least 4 bytes (its own size + the table size);
// - a present field must lie after the soffset and within the table's inline
//   size given by the vtable;
// - vtable sizes and field offsets must be < 0x8000, because the JS runtime
//   reads them as signed 16-bit values;
// - offsets held in vectors follow the same rules as offset fields (non-zero,
//   < 2^31, in bounds);
// - a union must have a known tag (1..8) and a value; C++ accepts NONE,
//   unknown tags and missing values, but none of those is a usable message.
//
// Offsets are unsigned and point forward, so following them cannot loop; a
// table's soffset may point anywhere but vtables are leaves. All arithmetic
// uses plain numbers on values < 2^32, so nothing overflows. Nothing here
// allocates, throws on bad input, or iterates more than the buffer's size
// allows (and at most MAX_TABLES elements in total).

// Field kinds of the schema.
const SCALAR = 0; // u8/i8/bool/u64, checked for bounds and alignment only
const STRING = 1;
const VECTOR_OF_BYTES = 2;
const VECTOR_OF_STRINGS = 3;
const VECTOR_OF_TABLES = 4;

interface FieldDesc {
  /** vtable offset of the field: 4 + 2 * declaration index. */
  readonly slot: number;
  readonly kind: number;
  /** Scalar size in bytes (also its alignment); 4 for offset fields. */
  readonly size: number;
  /** Element table of a VECTOR_OF_TABLES. */
  readonly table?: TableDesc;
}

type TableDesc = readonly FieldDesc[];

const u8 = (index: number): FieldDesc => ({ slot: 4 + 2 * index, kind: SCALAR, size: 1 });
const u64 = (index: number): FieldDesc => ({ slot: 4 + 2 * index, kind: SCALAR, size: 8 });
const str = (index: number): FieldDesc => ({ slot: 4 + 2 * index, kind: STRING, size: 4 });
const strs = (index: number): FieldDesc => ({
  slot: 4 + 2 * index,
  kind: VECTOR_OF_STRINGS,
  size: 4,
});

const PAIR: TableDesc = [u64(0), u64(1)];

/** Table descriptors indexed by MessageType tag; other tags have none. */
const CONTENT: (TableDesc | undefined)[] = [];
CONTENT[MessageType.DataValue] = [
  u64(0), // seq
  u64(1), // session
  u8(2), // operation
  str(3), // id
  str(4), // index
  str(5), // version
  { slot: 16, kind: VECTOR_OF_BYTES, size: 4 }, // data
];
CONTENT[MessageType.DataClean] = [u64(0), u64(1), str(2)];
CONTENT[MessageType.ChecksumModule] = [u64(0), str(1), str(2)];
CONTENT[MessageType.Start] = [
  u8(0), // mode
  u64(1), // size
  strs(2), // index
  u8(3), // first
  str(4), // architecture
  str(5), // hostname
  str(6), // osname
  str(7), // ostype
  str(8), // osversion
  str(9), // agentversion
  str(10), // agentname
  str(11), // agentid
  strs(12), // groups
  str(13), // checksum_metadata
  str(14), // global_version
];
CONTENT[MessageType.StartAck] = [u8(0), u64(1)];
CONTENT[MessageType.End] = [u64(0)];
CONTENT[MessageType.EndAck] = [u8(0), u64(1)];
CONTENT[MessageType.ReqRet] = [
  { slot: 4, kind: VECTOR_OF_TABLES, size: 4, table: PAIR }, // seq
  u64(1), // session
];

/** Shared by vectors of strings and of tables: verify each element through its offset. */
function verifyOffsetVector(at: number, table: TableDesc | undefined): boolean {
  const n = vectorLength(at, 4);
  if (n < 0) return false;
  // Tables count themselves; strings count here, so vectors of either are
  // capped (C++ only counts tables).
  if (table === undefined && !countTables(n)) return false;
  for (let i = 0, p = at + 4; i < n; i++, p += 4) {
    const target = follow(p);
    if (target < 0) return false;
    if (table === undefined ? !verifyString(target) : !verifyTable(target, table)) return false;
  }
  return true;
}

function verifyTable(at: number, desc: TableDesc): boolean {
  const vtable = verifyTableStart(at);
  if (vtable < 0) return false;
  for (const field of desc) {
    const offset = fieldOffset(vtable, field.slot, field.size);
    if (offset === 0) continue;
    if (offset < 0) return false;
    const pos = at + offset;
    // Alignment is relative to the buffer start, as in C++; builders align
    // every scalar to its size there.
    if (pos % field.size !== 0) return false;
    if (field.kind === SCALAR) continue;
    const target = follow(pos);
    if (target < 0) return false;
    switch (field.kind) {
      case STRING:
        if (!verifyString(target)) return false;
        break;
      case VECTOR_OF_BYTES:
        if (vectorLength(target, 1) < 0) return false;
        break;
      default:
        if (!verifyOffsetVector(target, field.table)) return false;
    }
  }
  return true;
}

function verifyRoot(): MessageType | null {
  // C++ needs 4 bytes for the root uoffset plus more than that (its bounds
  // check is strict), and the root table's soffset at offset >= 4: 8 bytes.
  // Any real Message (two tables, two vtables) is far larger.
  if (len < 8 || len >= MAX_BUFFER_SIZE) return null;
  const root = follow(0);
  if (root < 0) return null;
  const vtable = verifyTableStart(root);
  if (vtable < 0) return null;
  // Message { content_type: MessageType (u8, slot 4); content: union (slot 6) }
  const typeOffset = fieldOffset(vtable, 4, 1);
  if (typeOffset <= 0) return null; // absent means NONE
  const type = buf[root + typeOffset] as number;
  const desc = CONTENT[type];
  if (desc === undefined) return null;
  const contentOffset = fieldOffset(vtable, 6, 4);
  if (contentOffset <= 0) return null;
  const content = follow(root + contentOffset);
  if (content < 0 || !verifyTable(content, desc)) return null;
  return type as MessageType;
}

/**
 * Checks that `bytes` is a well-formed Message of schemas/inventorySync.fbs
 * whose union holds a known message type, and returns that type; null for
 * anything else. Safe on arbitrary input: never throws, never allocates, and
 * its work is bounded by the buffer size. `bytes` may be a subarray;
 * alignment is checked relative to its first byte.
 */
export function verifyMessage(bytes: Uint8Array): MessageType | null {
  return verifyBuffer(bytes, verifyRoot);
}
