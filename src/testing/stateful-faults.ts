// What a test breaks on the 5.0 wire: scripted faults on `POST /stateful` requests (a 503 with
// Retry-After, a 500, a delay, a lost request or answer). Rules match like the seed wire's
// FaultRule (module filter, skip, times, probability from the seeded PRNG); the manager's own
// answers are the front's business (see FullSessionFront).

/**
 * What a {@link StatefulFault} does to a matching `/stateful` request:
 * - 'unavailable': answered 503 `{"error":"Service unavailable","code":503}` with a
 *   `Retry-After` of `retryAfterSeconds`, without looking at the body (nothing applied), as
 *   when the manager is starting, stopping or at capacity.
 * - 'internal-error': answered 500 `{"error":"Internal error","code":500}`, nothing applied,
 *   as when the manager fails for a reason of its own.
 * - 'delay': handled and answered normally, `delayMs` later (the session's effects appear
 *   then). A later request is not held behind it, so it may be overtaken.
 * - 'drop': never answered: the returned promise never settles. With `applied: true` the
 *   manager handles the session first (its effects stay), as when only the answer is lost;
 *   otherwise the request is lost on its way.
 */
export type StatefulFaultAction = 'unavailable' | 'internal-error' | 'delay' | 'drop';

/**
 * A scripted fault on `/stateful` requests (see {@link MockManager.injectStateful}). A request
 * matches when every filter given matches; the first `skip` matches pass untouched, then each
 * match is affected (with `probability`, drawn from the seeded PRNG) until `times` requests
 * were affected. When several rules match one request, the earliest injected wins. Faults act
 * before the manager reads the body, so they hit invalid sessions too.
 *
 * @example The next two sessions of 'fim' are answered 503 with Retry-After 1:
 * ```ts
 * manager.injectStateful({ action: 'unavailable', module: 'fim', retryAfterSeconds: 1, times: 2 });
 * ```
 */
export interface StatefulFault {
  /** What happens to a matching request (see {@link StatefulFaultAction}). */
  action: StatefulFaultAction;
  /**
   * Only sessions whose Start names this module. A body that does not decode has no module and
   * matches only rules without one. Default: any module.
   */
  module?: string;
  /** For 'unavailable': the `Retry-After` value, in whole seconds. Default 60. */
  retryAfterSeconds?: number;
  /** For 'delay': how long the request is held, in ms. Default 10. */
  delayMs?: number;
  /** For 'drop': whether the manager handles the session before its answer is lost. Default false. */
  applied?: boolean;
  /** Let this many matches pass first. Default 0. */
  skip?: number;
  /** How many matches it affects; then the rule is removed. Default 1; Infinity allowed. */
  times?: number;
  /** Chance, 0..1, that a match is affected (drawn from the seeded PRNG). Default 1. */
  probability?: number;
}

interface RuleState {
  fault: StatefulFault;
  skip: number;
  times: number;
  probability: number;
  matched: number;
  applied: number;
}

/** The `/stateful` fault rules; MockManager.injectStateful forwards here. */
export class StatefulFaults {
  readonly #random: () => number;
  #rules: RuleState[] = [];

  constructor(random: () => number) {
    this.#random = random;
  }

  /** @throws RangeError for an unknown action or an option out of its range. */
  inject(fault: StatefulFault): void {
    const { action } = fault;
    if (
      action !== 'unavailable' &&
      action !== 'internal-error' &&
      action !== 'delay' &&
      action !== 'drop'
    ) {
      throw new RangeError(`unknown stateful fault action '${String(action)}'`);
    }
    const probability = fault.probability ?? 1;
    if (!(probability >= 0 && probability <= 1)) {
      throw new RangeError('probability must be between 0 and 1');
    }
    const retryAfter = fault.retryAfterSeconds ?? 60;
    if (!Number.isSafeInteger(retryAfter) || retryAfter < 0) {
      throw new RangeError('retryAfterSeconds must be a non-negative integer');
    }
    const delayMs = fault.delayMs ?? 10;
    if (!(delayMs >= 0) || !Number.isFinite(delayMs)) {
      throw new RangeError('delayMs must be a non-negative finite number');
    }
    const skip = fault.skip ?? 0;
    const times = fault.times ?? 1;
    if (!(skip >= 0) || !(times >= 0)) throw new RangeError('skip and times must be >= 0');
    this.#rules.push({
      fault: { ...fault, retryAfterSeconds: retryAfter, delayMs },
      skip,
      times,
      probability,
      matched: 0,
      applied: 0,
    });
  }

  clear(): void {
    this.#rules = [];
  }

  /** The fault that hits a request of `module` (undefined: the body did not decode), if any. */
  pick(module: string | undefined): StatefulFault | undefined {
    let chosen: RuleState | undefined;
    for (const state of this.#rules) {
      if (state.fault.module !== undefined && state.fault.module !== module) continue;
      // Every matching rule counts the match, so `skip` means the same whichever rule fires.
      state.matched++;
      if (chosen !== undefined || state.matched <= state.skip || state.applied >= state.times) {
        continue;
      }
      if (state.probability < 1 && this.#random() >= state.probability) continue;
      chosen = state;
    }
    if (chosen === undefined) return undefined;
    chosen.applied++;
    if (chosen.applied >= chosen.times) this.#rules = this.#rules.filter((s) => s !== chosen);
    return chosen.fault;
  }
}
