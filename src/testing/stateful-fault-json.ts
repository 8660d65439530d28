// A StatefulFault from JSON (the mock manager server's POST /stateful-faults and the CLI's
// --stateful-fault), checked field by field like fault-rule-json.ts does for seed-wire rules.
import { fieldsOf, integerIn, numberIn, oneOf, show, timesOf } from './fault-rule-json.js';
import type { StatefulFault, StatefulFaultAction } from './stateful-faults.js';

const ACTIONS: readonly StatefulFaultAction[] = ['unavailable', 'internal-error', 'delay', 'drop'];
const FIELDS = new Set([
  'action',
  'module',
  'retryAfterSeconds',
  'delayMs',
  'applied',
  'skip',
  'times',
  'probability',
]);

/**
 * The StatefulFault a parsed JSON value describes; `times` may be the string "Infinity".
 * Throws TypeError naming the first bad field.
 */
export function parseStatefulFault(value: unknown): StatefulFault {
  const fields = fieldsOf(value, FIELDS, 'stateful fault');
  const fault: StatefulFault = {
    action: oneOf(fields, 'action', ACTIONS, true) as StatefulFaultAction,
  };
  if (fields.module !== undefined) {
    if (typeof fields.module !== 'string' || fields.module === '') {
      throw new TypeError("'module' must be a non-empty string");
    }
    fault.module = fields.module;
  }
  if (fields.retryAfterSeconds !== undefined) {
    fault.retryAfterSeconds = integerIn(fields, 'retryAfterSeconds', 0);
  }
  if (fields.delayMs !== undefined) fault.delayMs = numberIn(fields, 'delayMs', 0, 2 ** 31 - 1);
  if (fields.applied !== undefined) {
    if (typeof fields.applied !== 'boolean') {
      throw new TypeError(`'applied' must be true or false, got ${show(fields.applied)}`);
    }
    fault.applied = fields.applied;
  }
  if (fields.skip !== undefined) fault.skip = integerIn(fields, 'skip', 0);
  if (fields.times !== undefined) fault.times = timesOf(fields);
  if (fields.probability !== undefined) fault.probability = numberIn(fields, 'probability', 0, 1);
  return fault;
}
