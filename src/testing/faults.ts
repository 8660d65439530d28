// The network between the agents and the mock manager, and what a test breaks on it: scripted
// faults on messages in both directions (drop, duplicate, delay, reorder), forced answer
// statuses, silence, and how answers are handed back (in the call, a microtask or a macrotask).
// A front decides what the manager answers; everything here decides whether and when it arrives.
import type { LogFunction } from '../interfaces/logger.js';
import { errorMessage } from '../session/sync-error.js';
import { Status } from '../wire/index.js';
import { Timers } from './timers.js';

/**
 * Receives one manager response (the FlatBuffers bytes of a StartAck, EndAck or ReqRet); the
 * bytes are the receiver's to keep. It may throw: the manager logs it and goes on.
 */
export type ReplyFunction = (response: Uint8Array) => void;

/**
 * How the manager hands its answers back to the sender:
 * - 'sync': inside the sender's `send()` call, before it returns.
 * - 'microtask': on the next microtask, after the sender's synchronous code.
 * - 'macrotask': on the next `setImmediate` turn, like a reply over a socket.
 */
export type ResponseDelivery = 'sync' | 'microtask' | 'macrotask';

/** The answers whose status `MockManager.forceStatus` can force. */
export type AckType = 'StartAck' | 'EndAck';

/** The manager's answers (internal: fault matching). */
export type ResponseType = AckType | 'ReqRet';

/** Which way a faulty message travels: from an agent to the manager, or back. */
export type FaultDirection = 'to-manager' | 'to-agent';

/** The message a fault rule matches, by its wire type. */
export type FaultMessageType =
  | 'Start'
  | 'DataValue'
  | 'DataClean'
  | 'ChecksumModule'
  | 'End'
  | 'StartAck'
  | 'EndAck'
  | 'ReqRet';

/**
 * - drop: the message is lost.
 * - duplicate: it is delivered twice in a row.
 * - delay: it is delivered `delayMs` later.
 * - reorder: it is held and delivered right after the next message in the same direction.
 */
export type FaultAction = 'drop' | 'duplicate' | 'delay' | 'reorder';

/**
 * A scripted network fault. A message matches when every filter given matches;
 * the first `skip` matches pass untouched, then each match is affected (with
 * `probability`, drawn from the seeded PRNG) until `times` messages were
 * affected. When several rules fire on one message, the earliest injected wins.
 *
 * @example Lose the third DataValue of every session once:
 * ```ts
 * manager.inject({ type: 'DataValue', seq: 2, action: 'drop', times: Infinity });
 * ```
 */
export interface FaultRule {
  /** Which way the message travels. Default 'to-manager'. */
  direction?: FaultDirection;
  /** Only messages of this type. Default: any type. */
  type?: FaultMessageType;
  /**
   * Only DataValues with this seq (or for which the predicate holds): a rule
   * with `seq` never matches other messages. Default: any message.
   */
  seq?: number | bigint | ((seq: bigint) => boolean);
  /**
   * Only messages of this module: the one that sent it (to-manager) or whose
   * session it answers (to-agent). Default: any module.
   */
  module?: string;
  /** What happens to a matching message. */
  action: FaultAction;
  /** For 'delay': how long the message is held, in ms. Default 10. */
  delayMs?: number;
  /** Let this many matches pass first. Default 0. */
  skip?: number;
  /** How many matches it affects; then the rule is removed. Default 1; Infinity allowed. */
  times?: number;
  /** Chance, 0..1, that a match is affected (drawn from the seeded PRNG). Default 1. */
  probability?: number;
}

/** How many messages each fault affected. */
export interface FaultStats {
  /** Messages lost by a 'drop' rule. */
  dropped: number;
  /** Messages delivered twice by a 'duplicate' rule. */
  duplicated: number;
  /** Messages held back by a 'delay' rule. */
  delayed: number;
  /** Messages held until the next one by a 'reorder' rule. */
  reordered: number;
  /** Answers whose status `MockManager.forceStatus` replaced. */
  forcedStatus: number;
}

interface RuleState {
  rule: FaultRule;
  direction: FaultDirection;
  seq: bigint | ((seq: bigint) => boolean) | undefined;
  skip: number;
  times: number;
  probability: number;
  matched: number;
  applied: number;
}

interface Held {
  bytes: Uint8Array;
  module: string;
  reply: ReplyFunction;
}

/** Handles a message that already went through the faults (they do not apply twice). */
export type Redeliver = (bytes: Uint8Array, module: string, reply: ReplyFunction) => void;

const DEFAULT_DELAY_MS = 10;

/** The network between agents and the manager; MockManager's fault methods forward here. */
export class FaultInjector {
  readonly #log: LogFunction;
  readonly #random: () => number;
  readonly #delivery: ResponseDelivery;
  readonly #timers = new Timers();
  #rules: RuleState[] = [];
  #heldToManager: Held[] = [];
  #heldToAgent: Held[] = [];
  readonly #forced: Record<AckType, { status: Status; times: number }> = {
    StartAck: { status: Status.Ok, times: 0 },
    EndAck: { status: Status.Ok, times: 0 },
  };
  #silent = false;
  #closed = false;
  readonly #counters: FaultStats = {
    dropped: 0,
    duplicated: 0,
    delayed: 0,
    reordered: 0,
    forcedStatus: 0,
  };

  constructor(log: LogFunction, random: () => number, delivery: ResponseDelivery) {
    this.#log = log;
    this.#random = random;
    this.#delivery = delivery;
  }

  /** Whether any rule is in place (when not, messages skip the matching). */
  get active(): boolean {
    return this.#rules.length > 0;
  }

  get stats(): FaultStats {
    return { ...this.#counters };
  }

  inject(rule: FaultRule): void {
    const { action } = rule;
    if (action !== 'drop' && action !== 'duplicate' && action !== 'delay' && action !== 'reorder') {
      throw new RangeError(`unknown fault action '${String(action)}'`);
    }
    const probability = rule.probability ?? 1;
    if (!(probability >= 0 && probability <= 1)) {
      throw new RangeError('probability must be between 0 and 1');
    }
    const seq =
      rule.seq === undefined || typeof rule.seq === 'function' ? rule.seq : BigInt(rule.seq);
    this.#rules.push({
      rule: { ...rule },
      direction: rule.direction ?? 'to-manager',
      seq,
      skip: rule.skip ?? 0,
      times: rule.times ?? 1,
      probability,
      matched: 0,
      applied: 0,
    });
  }

  clear(): void {
    this.#rules = [];
  }

  forceStatus(response: AckType, status: Status, times: number): void {
    this.#forced[response] = { status, times: Math.max(0, times) };
  }

  setSilent(silent: boolean): void {
    this.#silent = silent;
  }

  /** Whether answers are withheld (setSilent); the 5.0 front withholds its answers too. */
  get silent(): boolean {
    return this.#silent;
  }

  /** The status to answer instead of `status`, when one is forced. */
  ackStatus(type: AckType, status: Status): Status {
    const forced = this.#forced[type];
    if (this.#silent || forced.times <= 0) return status;
    forced.times--;
    this.#counters.forcedStatus++;
    return forced.status;
  }

  /** Messages held by 'reorder' on their way to the manager, which go right after the next one. */
  takeHeldToManager(): Held[] | undefined {
    if (this.#heldToManager.length === 0) return undefined;
    const held = this.#heldToManager;
    this.#heldToManager = [];
    return held;
  }

  /**
   * Apply the to-manager faults to `message` (of `type`, with `seq` for a DataValue): `deliver`
   * handles it now; held, delayed and duplicated copies go to `redeliver`. `message` is only
   * read during the call.
   */
  toManager(
    message: Uint8Array,
    type: string,
    seq: bigint | undefined,
    module: string,
    reply: ReplyFunction,
    deliver: () => void,
    redeliver: Redeliver,
  ): void {
    const rule = this.#pick('to-manager', type, seq, module);
    switch (rule?.action) {
      case undefined:
        deliver();
        return;
      case 'drop':
        this.#counters.dropped++;
        this.#log('debug', `fault: dropped ${type} from '${module}'`);
        return;
      case 'duplicate': {
        this.#counters.duplicated++;
        // Handling the first copy may answer a sender that then reuses its buffer.
        const again = message.slice();
        deliver();
        redeliver(again, module, reply);
        return;
      }
      case 'delay': {
        this.#counters.delayed++;
        // The sender reuses its buffer once receive() returns.
        const bytes = message.slice();
        this.#timers.schedule(rule.delayMs ?? DEFAULT_DELAY_MS, () =>
          redeliver(bytes, module, reply),
        );
        return;
      }
      case 'reorder':
        this.#counters.reordered++;
        this.#heldToManager.push({ bytes: message.slice(), module, reply });
        return;
    }
  }

  /** Send an answer through the to-agent faults. `view` is an encoder's buffer, copied here. */
  toAgent(type: ResponseType, view: Uint8Array, module: string, reply: ReplyFunction): void {
    if (this.#silent || this.#closed) return;
    const bytes = view.slice();
    const held = this.#heldToAgent.length > 0 ? this.#heldToAgent : undefined;
    if (held !== undefined) this.#heldToAgent = [];
    const rule = this.active ? this.#pick('to-agent', type, undefined, module) : undefined;
    switch (rule?.action) {
      case undefined:
        this.#deliver(bytes, reply);
        break;
      case 'drop':
        this.#counters.dropped++;
        this.#log('debug', `fault: dropped ${type} to '${module}'`);
        break;
      case 'duplicate':
        this.#counters.duplicated++;
        this.#deliver(bytes, reply);
        this.#deliver(bytes.slice(), reply);
        break;
      case 'delay':
        this.#counters.delayed++;
        this.#timers.schedule(rule.delayMs ?? DEFAULT_DELAY_MS, () => this.#invoke(bytes, reply));
        break;
      case 'reorder':
        this.#counters.reordered++;
        this.#heldToAgent.push({ bytes, module, reply });
        break;
    }
    if (held !== undefined) for (const h of held) this.#deliver(h.bytes, h.reply);
  }

  /** Remove every rule and forced status, answer again, and zero the counters. */
  reset(): void {
    this.#rules = [];
    this.#forced.StartAck.times = 0;
    this.#forced.EndAck.times = 0;
    this.#silent = false;
    for (const key of Object.keys(this.#counters) as Array<keyof FaultStats>) {
      this.#counters[key] = 0;
    }
  }

  /** Cancel delayed messages and forget held ones; answers after this are not sent. */
  close(): void {
    this.#closed = true;
    this.#timers.clear();
    this.#heldToManager = [];
    this.#heldToAgent = [];
  }

  #deliver(bytes: Uint8Array, reply: ReplyFunction): void {
    switch (this.#delivery) {
      case 'sync':
        this.#invoke(bytes, reply);
        return;
      case 'microtask':
        queueMicrotask(() => this.#invoke(bytes, reply));
        return;
      case 'macrotask':
        setImmediate(() => this.#invoke(bytes, reply));
        return;
    }
  }

  #invoke(bytes: Uint8Array, reply: ReplyFunction): void {
    if (this.#closed) return;
    try {
      reply(bytes);
    } catch (error) {
      // In 'sync' mode this would otherwise surface inside the agent's send().
      this.#log('error', `response listener threw: ${errorMessage(error)}`);
    }
  }

  #pick(
    direction: FaultDirection,
    type: string,
    seq: bigint | undefined,
    module: string,
  ): FaultRule | undefined {
    let chosen: RuleState | undefined;
    for (const state of this.#rules) {
      if (!matches(state, direction, type, seq, module)) continue;
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
    return chosen.rule;
  }
}

function matches(
  state: RuleState,
  direction: FaultDirection,
  type: string,
  seq: bigint | undefined,
  module: string,
): boolean {
  const { rule } = state;
  if (state.direction !== direction) return false;
  if (rule.type !== undefined && rule.type !== type) return false;
  if (rule.module !== undefined && rule.module !== module) return false;
  if (state.seq === undefined) return true;
  if (seq === undefined) return false;
  return typeof state.seq === 'function' ? state.seq(seq) : state.seq === seq;
}
