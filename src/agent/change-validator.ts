import { Operation } from '../enums/operation.js';
import { isJsonText } from '../json-bytes.js';
import { MessageEncoder } from '../wire/encode.js';
import { dataValueSizeBound, frameHeader, MAX_DATAGRAM_BYTES } from '../wire/framing.js';
import { WireOperation } from '../wire/index.js';

const MAX_U64 = 2n ** 64n - 1n;

/**
 * Checks one change before anything stores it, so that a rejected call leaves
 * the queue exactly as it was, and a stored change can always be sent: its
 * DataValue, framed as `s:<module>:<bytes>`, fits in one datagram.
 */
export class ChangeValidator {
  private readonly headerBytes: number;
  private encoder: MessageEncoder | undefined;

  constructor(moduleName: string) {
    this.headerBytes = frameHeader(moduleName).length;
  }

  validate(id: unknown, operation: unknown, index: unknown, data: unknown): void {
    if (typeof id !== 'string' || id.length === 0) {
      throw new TypeError(`id must be a non-empty string, got ${describe(id)}`);
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
    if (operation !== Operation.Delete && !isJsonText(data)) {
      throw new TypeError(`data of '${id}' is not valid JSON: ${parseError(data)}`);
    }
    this.checkSize(id, operation, index, data);
  }

  private checkSize(id: string, operation: Operation, index: string, data: string): void {
    // A UTF-16 unit takes at most 3 UTF-8 bytes: most changes fit without counting bytes.
    const worst = dataValueSizeBound(3 * id.length, 3 * index.length, 3 * data.length);
    if (this.headerBytes + worst <= MAX_DATAGRAM_BYTES) return;
    const bound =
      this.headerBytes +
      dataValueSizeBound(Buffer.byteLength(id), Buffer.byteLength(index), Buffer.byteLength(data));
    if (bound <= MAX_DATAGRAM_BYTES) return;
    // Close to the limit: encode the worst case (largest seq and session) to decide exactly.
    this.encoder ??= new MessageEncoder();
    const wireOperation =
      operation === Operation.Delete ? WireOperation.Delete : WireOperation.Upsert;
    const size =
      this.headerBytes +
      this.encoder.dataValue(MAX_U64, MAX_U64, wireOperation, id, index, data).length;
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
