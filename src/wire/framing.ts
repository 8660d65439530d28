/** Largest datagram the manager's queue accepts, framing header included. */
export const MAX_DATAGRAM_BYTES = 65536;

const utf8 = new TextEncoder();

/**
 * Escapes a module name for the `s:<module>:` header: `|` becomes `||` and
 * `:` becomes `|:`, so the header's closing `:` is unambiguous.
 */
export function escapeModuleName(name: string): string {
  return name.replace(/[|:]/g, (c) => `|${c}`);
}

let lastName: string | undefined;
let lastHeader = new Uint8Array(0);

// Messages of a session all go to the same module: remembering the last
// header saves an escape + encode per framed message.
function cachedHeader(moduleName: string): Uint8Array {
  if (moduleName !== lastName) {
    lastHeader = utf8.encode(`s:${escapeModuleName(moduleName)}:`);
    lastName = moduleName;
  }
  return lastHeader;
}

/** UTF-8 bytes of `s:<escaped module name>:`, in a new buffer. */
export function frameHeader(moduleName: string): Uint8Array {
  return cachedHeader(moduleName).slice();
}

/** A new buffer holding the header for `moduleName` followed by `message`. */
export function frameMessage(moduleName: string, message: Uint8Array): Uint8Array {
  const header = cachedHeader(moduleName);
  const framed = new Uint8Array(header.length + message.length);
  framed.set(header, 0);
  framed.set(message, header.length);
  return framed;
}

const align4 = (n: number): number => (n + 3) & ~3;

/** A string or byte vector: 4-byte length, bytes, a 0 byte (strings), padded to 4. */
const vectorBytes = (n: number): number => 4 + align4(n + 1);

/**
 * Upper bound of the length of `MessageEncoder.dataValue(...)` for the given
 * UTF-8 byte lengths, whatever seq, session and operation are (non-zero
 * values are the worst case: FlatBuffers omits fields equal to their
 * default). `versionBytes` 0 covers both an absent and an empty version.
 * Byte lengths must be small enough for exact integer arithmetic (< 2^31).
 *
 * Derivation (the builder writes back to front): each string/vector takes
 * vectorBytes(n), so the children end 4-aligned; then up to 4 bytes of
 * padding to align the u64s, the DataValue table (soffset 4, seq 8, session
 * 8, four offsets 16, operation 1 + 3 padding = 40), its vtable (2 + 2 + 7
 * slots * 2 = 18), the Message table (2 padding + soffset 4 + content 4 +
 * type 1 + 3 padding = 14), its vtable (8), and the root offset with its
 * alignment to 8 (4 + 4). The test compares this with real encodes.
 */
export function dataValueSizeBound(
  idBytes: number,
  indexBytes: number,
  dataBytes: number,
  versionBytes = 0,
): number {
  const children =
    vectorBytes(idBytes) +
    vectorBytes(indexBytes) +
    vectorBytes(versionBytes) +
    vectorBytes(dataBytes);
  return ((children + 7) & ~7) + 40 + 18 + 14 + 8 + 8;
}
