// A FaultRule from JSON (the mock manager server's POST /faults and the CLI's --fault), checked
// field by field so that a typo is a clear error instead of a rule that silently never matches.
import type { FaultAction, FaultDirection, FaultMessageType, FaultRule } from './faults.js';

const ACTIONS: readonly FaultAction[] = ['drop', 'duplicate', 'delay', 'reorder'];
const DIRECTIONS: readonly FaultDirection[] = ['to-manager', 'to-agent'];
const TYPES: readonly FaultMessageType[] = [
  'Start',
  'DataValue',
  'DataClean',
  'ChecksumModule',
  'End',
  'StartAck',
  'EndAck',
  'ReqRet',
];
const FIELDS = new Set([
  'direction',
  'type',
  'seq',
  'module',
  'action',
  'delayMs',
  'skip',
  'times',
  'probability',
]);
const MAX_U64 = 2n ** 64n - 1n;

/**
 * The FaultRule a parsed JSON value describes. JSON has no functions and no Infinity, so `seq`
 * is a number or a decimal string (for seqs beyond 2^53), and `times` may be the string
 * "Infinity". Throws TypeError naming the first bad field.
 */
export function parseFaultRule(value: unknown): FaultRule {
  const fields = fieldsOf(value, FIELDS, 'fault rule');
  const rule: FaultRule = { action: oneOf(fields, 'action', ACTIONS, true) as FaultAction };
  const direction = oneOf(fields, 'direction', DIRECTIONS, false);
  if (direction !== undefined) rule.direction = direction as FaultDirection;
  const type = oneOf(fields, 'type', TYPES, false);
  if (type !== undefined) rule.type = type as FaultMessageType;
  if (fields.seq !== undefined) rule.seq = seqOf(fields.seq);
  if (fields.module !== undefined) {
    if (typeof fields.module !== 'string' || fields.module === '') {
      throw new TypeError("'module' must be a non-empty string");
    }
    rule.module = fields.module;
  }
  if (fields.delayMs !== undefined) rule.delayMs = numberIn(fields, 'delayMs', 0, 2 ** 31 - 1);
  if (fields.skip !== undefined) rule.skip = integerIn(fields, 'skip', 0);
  if (fields.times !== undefined) rule.times = timesOf(fields);
  if (fields.probability !== undefined) rule.probability = numberIn(fields, 'probability', 0, 1);
  return rule;
}

/** `value` as an object whose keys are all in `allowed`; throws TypeError naming a stray one. */
export function fieldsOf(
  value: unknown,
  allowed: ReadonlySet<string>,
  what: string,
): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`a ${what} must be a JSON object`);
  }
  const fields = value as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (!allowed.has(key)) throw new TypeError(`unknown ${what} field '${key}'`);
  }
  return fields;
}

/** The `times` field: an integer >= 1 or the string "Infinity". */
export function timesOf(fields: Record<string, unknown>): number {
  return fields.times === 'Infinity' ? Number.POSITIVE_INFINITY : integerIn(fields, 'times', 1);
}

/** The string field `name`, one of `allowed`; undefined when absent and not `required`. */
export function oneOf(
  fields: Record<string, unknown>,
  name: string,
  allowed: readonly string[],
  required: boolean,
): string | undefined {
  const value = fields[name];
  if (value === undefined && !required) return undefined;
  if (typeof value !== 'string' || !allowed.includes(value)) {
    throw new TypeError(`'${name}' must be one of ${allowed.join(', ')}, got ${show(value)}`);
  }
  return value;
}

function seqOf(value: unknown): bigint {
  const text = typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : value;
  if (typeof text !== 'string' || !/^\d{1,20}$/.test(text) || BigInt(text) > MAX_U64) {
    throw new TypeError(
      `'seq' must be an integer in 0..2^64-1 (a decimal string above 2^53), got ${show(value)}`,
    );
  }
  return BigInt(text);
}

/** The number field `name`, in `min..max`; throws TypeError naming it otherwise. */
export function numberIn(
  fields: Record<string, unknown>,
  name: string,
  min: number,
  max: number,
): number {
  const value = fields[name];
  if (typeof value !== 'number' || !(value >= min && value <= max)) {
    throw new TypeError(`'${name}' must be a number in ${min}..${max}, got ${show(value)}`);
  }
  return value;
}

/** The safe-integer field `name`, at least `min`; throws TypeError naming it otherwise. */
export function integerIn(fields: Record<string, unknown>, name: string, min: number): number {
  const value = fields[name];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    const extra = name === 'times' ? ' or "Infinity"' : '';
    throw new TypeError(`'${name}' must be an integer >= ${min}${extra}, got ${show(value)}`);
  }
  return value;
}

/** A value as an error message shows it. */
export function show(value: unknown): string {
  return value === undefined ? 'nothing' : JSON.stringify(value);
}
