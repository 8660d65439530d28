// Reading fields straight out of a message that verifyMessage accepted, without decoding it:
// the seed front reads DataValues this way (most messages), which keeps a large session cheap.
// verifyMessage checked every offset these follow, so they stay in bounds.

// vtable slots of DataValue's and DataClean's fields.
export const DV_SEQ = 4;
export const DV_SESSION = 6;
export const DV_OPERATION = 8;
export const DV_ID = 10;
export const DV_INDEX = 12;
export const DV_DATA = 16;
export const DC_INDEX = 8;

export function u16(bytes: Uint8Array, at: number): number {
  return (bytes[at] as number) | ((bytes[at + 1] as number) << 8);
}

export function u32(bytes: Uint8Array, at: number): number {
  return (
    ((bytes[at] as number) |
      ((bytes[at + 1] as number) << 8) |
      ((bytes[at + 2] as number) << 16) |
      ((bytes[at + 3] as number) << 24)) >>>
    0
  );
}

export function putU32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value;
  bytes[at + 1] = value >>> 8;
  bytes[at + 2] = value >>> 16;
  bytes[at + 3] = value >>> 24;
}

export function toBigInt(low: number, high: number): bigint {
  return (BigInt(high) << 32n) | BigInt(low);
}

/** Offset of a field in the table at `table`; 0 when absent. */
export function fieldAt(bytes: Uint8Array, table: number, slot: number): number {
  const vtable = table - (u32(bytes, table) | 0);
  return slot < u16(bytes, vtable) ? u16(bytes, vtable + slot) : 0;
}

/** Position of the Message's content table (the verifier requires one). */
export function contentTable(bytes: Uint8Array): number {
  const root = u32(bytes, 0);
  const at = root + fieldAt(bytes, root, 6);
  return at + u32(bytes, at);
}

export function readU8(bytes: Uint8Array, table: number, slot: number): number {
  const at = fieldAt(bytes, table, slot);
  return at === 0 ? 0 : (bytes[table + at] as number);
}

/** Position of the length word of a string or vector field; -1 when absent. */
export function vectorAt(bytes: Uint8Array, table: number, slot: number): number {
  const at = fieldAt(bytes, table, slot);
  return at === 0 ? -1 : table + at + u32(bytes, table + at);
}

export function readU64(bytes: Uint8Array, table: number, slot: number): bigint {
  const at = fieldAt(bytes, table, slot);
  return at === 0 ? 0n : toBigInt(u32(bytes, table + at), u32(bytes, table + at + 4));
}
