// The primitives of a FlatBuffers verifier, shared by both wires' verifiers (src/wire/verify.ts,
// src/wire-5/verify.ts), which describe their own schema's tables and unions on top of them.
// They follow flatbuffers::Verifier (C++); see src/wire/verify.ts for the rules and the checks
// added to it. Nothing here allocates, throws on bad input, or iterates more than the buffer's
// size allows.

/** FLATBUFFERS_MAX_BUFFER_SIZE: C++ verifiers reject buffers of this size or more. */
export const MAX_BUFFER_SIZE = 0x7fff_ffff;
/**
 * Like the C++ Verifier's default max_tables (which the manager keeps): caps the work on one
 * buffer. A 5.0 session of more than about a million items fails both verifiers.
 */
export const MAX_TABLES = 1_000_000;

const EMPTY = new Uint8Array(0);

// State of the running verification. A verification is synchronous and not re-entrant, so
// module-level state avoids allocating a context per call. Importers read `buf` and `len`.
export let buf: Uint8Array = EMPTY;
export let len = 0;
let tables = 0;

/**
 * Runs `root` over `bytes` with the state above set up, and returns what it returns; null if it
 * throws (unreachable for any Uint8Array; kept so the "never throws" promise holds even for
 * something that only looks like one). The caller's buffer is not kept afterwards.
 */
export function verifyBuffer<T>(bytes: Uint8Array, root: () => T | null): T | null {
  try {
    buf = bytes;
    len = bytes.length;
    tables = 0;
    return root();
  } catch {
    return null;
  } finally {
    buf = EMPTY;
    len = 0;
  }
}

/** Counts `n` more tables or strings in lists; false once past MAX_TABLES. */
export function countTables(n: number): boolean {
  tables += n;
  return tables <= MAX_TABLES;
}

export function u16(at: number): number {
  return (buf[at] as number) | ((buf[at + 1] as number) << 8);
}

/** Unsigned 32-bit read; the caller has checked the 4 bytes are in bounds. */
export function u32(at: number): number {
  return (
    ((buf[at] as number) |
      ((buf[at + 1] as number) << 8) |
      ((buf[at + 2] as number) << 16) |
      ((buf[at + 3] as number) << 24)) >>>
    0
  );
}

/** C++ Verifier::Verify(elem, elem_len): `size` bytes at `at` lie inside the buffer. */
export function inBounds(at: number, size: number): boolean {
  return size < len && at >= 0 && at <= len - size;
}

/**
 * C++ Verifier::VerifyOffset: the uoffset stored at `at` is aligned, in bounds,
 * non-zero, < 2^31 and lands inside the buffer. Returns the target or -1.
 */
export function follow(at: number): number {
  if ((at & 3) !== 0 || !inBounds(at, 4)) return -1;
  const o = u32(at);
  if (o === 0 || o > 0x7fff_ffff) return -1;
  const target = at + o;
  return inBounds(target, 1) ? target : -1;
}

/**
 * C++ VerifyVectorOrString: aligned length word, no size overflow, all
 * elements inside the buffer. Returns the element count or -1.
 */
export function vectorLength(at: number, elemSize: number): number {
  if ((at & 3) !== 0 || !inBounds(at, 4)) return -1;
  const n = u32(at);
  if (n >= Math.floor(MAX_BUFFER_SIZE / elemSize)) return -1;
  return inBounds(at, 4 + n * elemSize) ? n : -1;
}

export function verifyString(at: number): boolean {
  const n = vectorLength(at, 1);
  if (n < 0) return false;
  const end = at + 4 + n;
  return inBounds(end, 1) && buf[end] === 0;
}

/**
 * C++ VerifyTableStart + generated Table::Verify. Returns the vtable position
 * (so the caller can read union fields) or -1.
 */
export function verifyTableStart(at: number): number {
  if (!countTables(1)) return -1;
  if ((at & 3) !== 0 || !inBounds(at, 4)) return -1;
  // soffset: signed, vtable = table - soffset (may lie before or after).
  const vtable = at - (u32(at) | 0);
  if ((vtable & 1) !== 0 || !inBounds(vtable, 4)) return -1;
  const vtableSize = u16(vtable);
  if ((vtableSize & 1) !== 0 || vtableSize < 4 || vtableSize >= 0x8000) return -1;
  if (!inBounds(vtable, vtableSize)) return -1;
  const tableSize = u16(vtable + 2);
  if (tableSize < 4 || tableSize >= 0x8000 || !inBounds(at, tableSize)) return -1;
  return vtable;
}

/** Offset of a field inside its table, or 0 when absent; -1 when it breaks the table. */
export function fieldOffset(vtable: number, slot: number, size: number): number {
  if (slot >= u16(vtable)) return 0;
  const offset = u16(vtable + slot);
  if (offset === 0) return 0;
  // Inside the table (after its soffset, within its inline size). The
  // vtable's table size was bounds-checked, so this keeps it in the buffer.
  return offset >= 4 && offset + size <= u16(vtable + 2) ? offset : -1;
}
