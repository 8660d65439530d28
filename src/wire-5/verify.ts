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
} from '../wire/flatbuffers-verifier.js';
import { MessageType } from './generated/wazuh/sync-schema/message-type.js';
import { SessionPayload } from './generated/wazuh/sync-schema/session-payload.js';

// A FlatBuffers verifier for schemas/fullSession.fbs (the Wazuh 5.0 wire).
// The JS runtime has none, and its generated readers trust every offset, so a
// corrupt or hostile buffer must pass through here before any generated
// reader touches it.
//
// The rules follow flatbuffers::Verifier (C++), which the manager runs first
// on every body, with the same extra checks as src/wire/verify.ts (the seed
// wire's verifier), which real builders always satisfy:
// - a vtable must be at least 4 bytes (its own size + the table size);
// - a table's inline size (from its vtable) must be 4..0x7fff bytes inside
//   the buffer, and a present field must lie after the soffset and within it;
// - vtable sizes and field offsets must be < 0x8000, because the JS runtime
//   reads them as signed 16-bit values;
// - offsets held in vectors follow the same rules as offset fields (non-zero,
//   < 2^31, in bounds);
// and these for the two unions, where C++ is laxer too:
// - Message.content must have a known tag (1..6) and a value (C++ accepts
//   NONE and unknown tags; the manager then answers 400 to them);
// - FullSession.payload must be NONE without a value (C++ ignores a stray
//   value) or a known tag (1..3) with one. C++ accepts unknown tags, which the
//   manager then refuses, and a known tag without a value, on which the
//   manager's validator (fullSessionValidator.cpp) would read through a null
//   payload pointer.
//
// Offsets are unsigned and point forward, so following them cannot loop; a
// table's soffset may point anywhere but vtables are leaves, and the schema's
// tables nest at most four deep. All arithmetic uses plain numbers on values
// < 2^32, so nothing overflows. Nothing here allocates, throws on bad input,
// or iterates more than the buffer's size allows (and at most MAX_TABLES
// tables and strings in lists in total, shared ones counted at each use).

// Field kinds of the schema, exported for the fixture tests.
/** u8/i8/u64, checked for bounds and alignment only. @internal */
export const SCALAR = 0;
/** @internal */
export const STRING = 1;
/** @internal */
export const VECTOR_OF_BYTES = 2;
/** @internal */
export const VECTOR_OF_STRINGS = 3;
/** @internal */
export const VECTOR_OF_TABLES = 4;
/** @internal */
export const TABLE = 5;
/** A union's value; its tag is the SCALAR in the slot before. @internal */
export const UNION = 6;

/** @internal */
export interface FieldDesc {
  /** The field's name in the schema (for the fixture tests and for reading this file). */
  readonly name: string;
  /** vtable offset of the field: 4 + 2 * declaration index (a union takes two). */
  readonly slot: number;
  readonly kind: number;
  /** Scalar size in bytes (also its alignment); 4 for offset fields. */
  readonly size: number;
  /** Element table of a VECTOR_OF_TABLES, or the TABLE. */
  readonly table?: TableDesc;
  /** UNION members by tag; tag 0 (NONE) never has one. */
  readonly members?: readonly (TableDesc | undefined)[];
}

/** @internal */
export type TableDesc = readonly FieldDesc[];

const u8 = (name: string, index: number): FieldDesc => ({
  name,
  slot: 4 + 2 * index,
  kind: SCALAR,
  size: 1,
});
const u64 = (name: string, index: number): FieldDesc => ({
  name,
  slot: 4 + 2 * index,
  kind: SCALAR,
  size: 8,
});
const offset = (
  name: string,
  index: number,
  kind: number,
  more: Pick<FieldDesc, 'table' | 'members'> = {},
): FieldDesc => ({ name, slot: 4 + 2 * index, kind, size: 4, ...more });
const str = (name: string, index: number): FieldDesc => offset(name, index, STRING);

const DATA_VALUE: TableDesc = [
  u8('operation', 0),
  str('id', 1),
  str('index', 2),
  u64('version', 3),
  offset('data', 4, VECTOR_OF_BYTES),
];
const DATA_CONTEXT: TableDesc = [str('id', 0), str('index', 1), offset('data', 2, VECTOR_OF_BYTES)];
const START: TableDesc = [
  str('module', 0),
  u8('mode', 1),
  offset('index', 2, VECTOR_OF_STRINGS),
  u8('option', 3),
  str('architecture', 4),
  str('hostname', 5),
  str('osname', 6),
  str('osplatform', 7),
  str('ostype', 8),
  str('osversion', 9),
  str('agentversion', 10),
  str('agentname', 11),
  str('agentid', 12),
  offset('groups', 13, VECTOR_OF_STRINGS),
  u64('global_version', 14),
  str('cluster_name', 15),
  u64('feed_offset', 16),
];
const DATA_CLEAN: TableDesc = [str('index', 0)];
const CHECKSUM_MODULE: TableDesc = [str('index', 0), str('checksum', 1)];
const SYNC_DATA: TableDesc = [
  offset('values', 0, VECTOR_OF_TABLES, { table: DATA_VALUE }),
  offset('contexts', 1, VECTOR_OF_TABLES, { table: DATA_CONTEXT }),
];
const CLEANS: TableDesc = [offset('items', 0, VECTOR_OF_TABLES, { table: DATA_CLEAN })];

const PAYLOADS: (TableDesc | undefined)[] = [];
PAYLOADS[SessionPayload.SyncData] = SYNC_DATA;
PAYLOADS[SessionPayload.Cleans] = CLEANS;
PAYLOADS[SessionPayload.ChecksumModule] = CHECKSUM_MODULE;

const FULL_SESSION: TableDesc = [
  offset('start', 0, TABLE, { table: START }),
  u8('payload_type', 1),
  offset('payload', 2, UNION, { members: PAYLOADS }),
];

const CONTENTS: (TableDesc | undefined)[] = [];
CONTENTS[MessageType.DataValue] = DATA_VALUE;
CONTENTS[MessageType.DataClean] = DATA_CLEAN;
CONTENTS[MessageType.ChecksumModule] = CHECKSUM_MODULE;
CONTENTS[MessageType.Start] = START;
CONTENTS[MessageType.DataContext] = DATA_CONTEXT;
CONTENTS[MessageType.FullSession] = FULL_SESSION;

const MESSAGE: TableDesc = [
  u8('content_type', 0),
  offset('content', 1, UNION, { members: CONTENTS }),
];

/**
 * Every table this verifier knows, by schema name: the fixture tests check
 * these slots and kinds against the schema text.
 * @internal
 */
export const TABLES: Readonly<Record<string, TableDesc>> = {
  DataValue: DATA_VALUE,
  DataContext: DATA_CONTEXT,
  Start: START,
  DataClean: DATA_CLEAN,
  ChecksumModule: CHECKSUM_MODULE,
  SyncData: SYNC_DATA,
  Cleans: CLEANS,
  FullSession: FULL_SESSION,
  Message: MESSAGE,
};

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

/**
 * A union whose value is the field `desc` and whose tag is the u8 in the slot
 * before (already verified as a scalar of the same table). Returns the tag,
 * or -1 when the union is broken: an unknown tag, a known one without a value
 * or with a bad one, or NONE with a value (`noneAllowed` false: NONE at all).
 */
function verifyUnion(at: number, vtable: number, desc: FieldDesc, noneAllowed: boolean): number {
  const tagOffset = fieldOffset(vtable, desc.slot - 2, 1);
  const tag = tagOffset <= 0 ? 0 : (buf[at + tagOffset] as number);
  const valueOffset = fieldOffset(vtable, desc.slot, 4);
  if (valueOffset < 0) return -1;
  if (tag === 0) return noneAllowed && valueOffset === 0 ? 0 : -1;
  const member = desc.members?.[tag];
  if (member === undefined || valueOffset === 0) return -1;
  const target = follow(at + valueOffset);
  return target >= 0 && verifyTable(target, member) ? tag : -1;
}

function verifyTable(at: number, desc: TableDesc): boolean {
  const vtable = verifyTableStart(at);
  if (vtable < 0) return false;
  for (const field of desc) {
    if (field.kind === UNION) {
      // The only union inside a table is FullSession.payload, where NONE is a
      // session without payload.
      if (verifyUnion(at, vtable, field, true) < 0) return false;
      continue;
    }
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
      case TABLE:
        if (!verifyTable(target, field.table as TableDesc)) return false;
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
  // Any real Message is far larger.
  if (len < 8 || len >= MAX_BUFFER_SIZE) return null;
  const root = follow(0);
  if (root < 0) return null;
  const vtable = verifyTableStart(root);
  if (vtable < 0) return null;
  const typeOffset = fieldOffset(vtable, 4, 1);
  if (typeOffset < 0) return null;
  const tag = verifyUnion(root, vtable, MESSAGE[1] as FieldDesc, false);
  return tag > 0 ? (tag as MessageType) : null;
}

/**
 * Checks that `bytes` is a well-formed Message of schemas/fullSession.fbs
 * whose union holds a known message type, and returns that type
 * (MessageType.FullSession for a 5.0 session); null for anything else. Safe
 * on arbitrary input: never throws, never allocates, and its work is bounded
 * by the buffer size. `bytes` may be a subarray; alignment is checked
 * relative to its first byte.
 */
export function verifyMessage(bytes: Uint8Array): MessageType | null {
  return verifyBuffer(bytes, verifyRoot);
}
