import { Operation } from '../enums/operation.js';
import type { Wire } from '../interfaces/options.js';
import { documentShapeError, isDocumentBytes, isJsonText } from '../json-bytes.js';
import {
  DEFAULT_MAX_SESSION_BYTES,
  estimateItemBytes,
  SESSION_OVERHEAD_BYTES,
  sessionBudget,
} from '../queue/sessions.js';
import { MessageEncoder } from '../wire/encode.js';
import { dataValueSizeBound, frameHeader, MAX_DATAGRAM_BYTES } from '../wire/framing.js';
import { WireOperation } from '../wire/index.js';

const MAX_U64 = 2n ** 64n - 1n;

/**
 * The agent daemon drops a message whose module name is longer than this (in UTF-8 bytes) before
 * it reaches the manager, so such a module could never sync.
 */
export const MAX_MODULE_NAME_BYTES = 64;

/**
 * UTF-8 of the document being checked. Any document that fits a datagram fits here (3 bytes per
 * UTF-16 unit at most); module-wide, since checks never overlap (JavaScript runs one at a time).
 */
const scratch = Buffer.allocUnsafe(3 * MAX_DATAGRAM_BYTES);

/** C0 controls and DEL: they break the manager's logs and the `s:<module>:` header. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;

/**
 * Checks a module name for the constructor: a non-empty string of at most
 * {@link MAX_MODULE_NAME_BYTES} UTF-8 bytes without control characters.
 * Throws TypeError (not a string, empty, control characters) or RangeError (too long).
 */
export function validateModuleName(moduleName: unknown): asserts moduleName is string {
  if (typeof moduleName !== 'string' || moduleName.length === 0) {
    throw new TypeError(
      `options.moduleName must be a non-empty string, got ${describe(moduleName)}`,
    );
  }
  if (CONTROL_CHARACTER.test(moduleName)) {
    throw new TypeError(
      `options.moduleName must not contain control characters (U+0000-U+001F, U+007F), got ${JSON.stringify(moduleName)}`,
    );
  }
  const bytes = Buffer.byteLength(moduleName);
  if (bytes > MAX_MODULE_NAME_BYTES) {
    throw new RangeError(
      `options.moduleName must be at most ${MAX_MODULE_NAME_BYTES} bytes in UTF-8 (the agent daemon drops longer ones), got ${bytes} bytes`,
    );
  }
}

/**
 * Checks one change before anything stores it, so that a rejected call leaves
 * the queue exactly as it was, and a stored change can always be sent: its
 * DataValue, framed as `s:<module>:<bytes>`, fits in one datagram, and its
 * document is one the manager stores intact.
 */
/** The largest change the 5.0 wire takes: what a default session holds beside its overhead. */
const MAX_FULL_SESSION_ITEM_BYTES =
  sessionBudget(DEFAULT_MAX_SESSION_BYTES) - SESSION_OVERHEAD_BYTES;

export class ChangeValidator {
  readonly #headerBytes: number;
  readonly #wire: Wire;
  #encoder: MessageEncoder | undefined;

  /**
   * @param moduleName The module whose `s:<module>:` header every datagram carries.
   * @param wire What bounds one change: a datagram on the seed wire, a session on the 5.0 one.
   */
  constructor(moduleName: string, wire: Wire = 'seed') {
    this.#headerBytes = frameHeader(moduleName).length;
    this.#wire = wire;
  }

  /** Throws TypeError or RangeError naming what is wrong; returns when the change may be stored. */
  validate(id: unknown, operation: unknown, index: unknown, data: unknown): void {
    if (typeof id !== 'string' || id.length === 0) {
      throw new TypeError(`id must be a non-empty string, got ${describe(id)}`);
    }
    if (id.trim().length === 0) {
      throw new TypeError(`id must not be blank, got ${JSON.stringify(id)}`);
    }
    if (CONTROL_CHARACTER.test(id)) {
      throw new TypeError(
        `id must not contain control characters (U+0000-U+001F, U+007F), got ${JSON.stringify(id.slice(0, 64))}`,
      );
    }
    if (typeof operation !== 'number') {
      throw new TypeError(
        `operation must be an Operation (Create, Modify or Delete), got ${describe(operation)}`,
      );
    }
    if (
      operation !== Operation.Create &&
      operation !== Operation.Modify &&
      operation !== Operation.Delete
    ) {
      throw new RangeError(
        `operation must be Create (0), Modify (1) or Delete (2), got ${operation}`,
      );
    }
    if (typeof index !== 'string' || index.length === 0) {
      throw new TypeError(`index must be a non-empty string, got ${describe(index)}`);
    }
    if (typeof data !== 'string') {
      throw new TypeError(`data must be a string, got ${describe(data)}`);
    }
    if (operation !== Operation.Delete) this.#checkDocument(id, data);
    this.#checkSize(id, operation, index, data);
  }

  /** Create/Modify data: valid JSON, and a document the manager does not corrupt (see documentShapeError). */
  #checkDocument(id: string, data: string): void {
    // The common case in one scan of the bytes; the two checks below only explain a refusal (or
    // decide for a document too large for the scratch buffer, which #checkSize refuses anyway).
    if (3 * data.length <= scratch.length && isDocumentBytes(scratch, 0, scratch.write(data))) {
      return;
    }
    if (!isJsonText(data)) {
      throw new TypeError(`data of '${id.slice(0, 64)}' is not valid JSON: ${parseError(data)}`);
    }
    const shape = documentShapeError(data);
    if (shape !== undefined) {
      throw new TypeError(
        `data of '${id.slice(0, 64)}' would be corrupted by the manager, which stores it after its first byte: ${shape}`,
      );
    }
  }

  #checkSize(id: string, operation: Operation, index: string, data: string): void {
    if (this.#wire === 'fullSession') {
      // No datagram on this wire: a change must fit a session of the default size by the
      // reference's estimate, so it never waits for a cap it cannot meet (an item over the cap
      // would go alone, larger than the manager may take).
      const estimate = estimateItemBytes(id, index, data);
      if (estimate > MAX_FULL_SESSION_ITEM_BYTES) {
        throw new RangeError(
          `change '${id.slice(0, 64)}' is ${estimate} bytes by the session estimate; the limit is ${MAX_FULL_SESSION_ITEM_BYTES} bytes (a ${DEFAULT_MAX_SESSION_BYTES}-byte session less its margins)`,
        );
      }
      return;
    }
    // A UTF-16 unit takes at most 3 UTF-8 bytes: most changes fit without counting bytes.
    const worst = dataValueSizeBound(3 * id.length, 3 * index.length, 3 * data.length);
    if (this.#headerBytes + worst <= MAX_DATAGRAM_BYTES) return;
    const bound =
      this.#headerBytes +
      dataValueSizeBound(Buffer.byteLength(id), Buffer.byteLength(index), Buffer.byteLength(data));
    if (bound <= MAX_DATAGRAM_BYTES) return;
    // Close to the limit: encode the worst case (largest seq and session) to decide exactly.
    this.#encoder ??= new MessageEncoder();
    const wireOperation =
      operation === Operation.Delete ? WireOperation.Delete : WireOperation.Upsert;
    const size =
      this.#headerBytes +
      this.#encoder.dataValue(MAX_U64, MAX_U64, wireOperation, id, index, data).length;
    if (size > MAX_DATAGRAM_BYTES) {
      throw new RangeError(
        `change '${id.slice(0, 64)}' would need a ${size}-byte datagram; the limit is ${MAX_DATAGRAM_BYTES} bytes including the module header`,
      );
    }
  }
}

/** JSON.parse's own words for what is wrong (the error path only). */
function parseError(data: string): string {
  try {
    JSON.parse(data);
  } catch (error) {
    return (error as Error).message;
  }
  return 'refused by the JSON check';
}

function describe(value: unknown): string {
  if (typeof value === 'string')
    return value.length === 0 ? 'an empty string' : `'${value.slice(0, 32)}'`;
  return value === null ? 'null' : typeof value;
}
