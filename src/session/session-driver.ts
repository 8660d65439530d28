import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import pRetry, { AbortError } from 'p-retry';
import { Mode } from '../enums/mode.js';
import type { LogFunction } from '../interfaces/logger.js';
import type { SyncProgress } from '../interfaces/options.js';
import type { SyncFailureReason } from '../interfaces/results.js';
import { Pacer } from '../limiter/pacer.js';
import type { SyncRow } from '../queue/index.js';
import type { TransportLink } from '../transports/transport-link.js';
import { MessageEncoder } from '../wire/encode.js';
import { Status, WireMode, WireOperation } from '../wire/index.js';
import type { ManagerResponse, StartFields } from '../wire/types.js';
import { Mailbox, TIMEOUT } from './mailbox.js';
import { coversExactly, selectSeqs } from './seq-ranges.js';
import { errorMessage, SyncError } from './sync-error.js';

/** Rows read from the queue (or the recovery buffer) per round trip; bounds memory during a sync. */
export const PAGE_SIZE = 512;

/** Where a session's items come from, by seq. */
export interface ItemSource {
  /** Up to `limit` items with seqs fromSeq..toSeq (inclusive), in seq order. */
  read(fromSeq: number, toSeq: number, limit: number): readonly SyncRow[];
}

/** What one session sends. */
export interface SessionPlan {
  /** The Start's mode. */
  mode: WireMode;
  /** Number of items; seqs are 0..size-1. */
  size: number;
  /** Sorted unique index names for Start. */
  indices: readonly string[];
  /** The items by seq; absent for sessions without data (Check, metadata, groups). */
  items?: ItemSource;
  /** Check mode: the ChecksumModule to send after StartAck. */
  checksum?: { index: string; checksum: string };
}

/** Every option resolved to a value. */
export interface SessionOptions {
  /** Wait for each StartAck / EndAck, in ms. */
  timeoutMs: number;
  /** Extra sends of Start and of End. */
  retries: number;
  /** Messages per second; 0 = unlimited. */
  maxEps: number;
  /** Pause before each re-send after a timeout (see SyncOptions.backoff). */
  backoff: { minMs: number; maxMs: number; factor: number };
  /** ReqRet rounds answered before the session fails. */
  maxReqRetRounds: number;
  /** The caller's signal joined with the instance's close. */
  signal: AbortSignal;
  /** The caller's progress callback. */
  onProgress?: ((progress: SyncProgress) => void) | undefined;
  /** 5.0 wire: cap on one session's bytes. */
  maxSessionBytes: number;
  /** 5.0 wire: sessions one Delta sends at most. */
  maxSessions: number;
  /** 5.0 wire: Check sessions sent before a 409 is trusted. */
  checkAttempts: number;
  /** 5.0 wire: pause between Check attempts, in ms. */
  checkRetryDelayMs: number;
}

/** Where a session was when it ended: before StartAck Ok, sending data, or after End. */
export type Stage = 'start' | 'data' | 'end';

/** How one session ended; `run` never throws. */
export type SessionOutcome =
  | {
      ok: true;
      /** The manager's session id. */
      session: bigint;
      /** Items sent once. */
      sent: number;
      /** Items resent for ReqRets. */
      retransmitted: number;
    }
  | {
      ok: false;
      /** Why, as the SyncResult will say it. */
      reason: SyncFailureReason;
      /** Why, in words. */
      message: string;
      /** Where the session was when it ended. */
      stage: Stage;
      /** The session, when the manager had started one. */
      session?: bigint;
      /** The manager's status, when its answer ended the session. */
      status?: Status;
    };

/** The agent metadata fields of Start (everything but mode, size and index). */
export type StartMetadata = Omit<StartFields, 'mode' | 'size' | 'index'>;

class WaitTimeout extends Error {}

function failureStatus(stage: string, status: Status): SyncError {
  return status === Status.Offline
    ? new SyncError('manager-offline', `${stage}: the manager is offline`, status)
    : new SyncError(
        'manager-error',
        `${stage}: the manager answered ${Status[status] ?? status}`,
        status,
      );
}

/**
 * Runs one session of the protocol: Start -> StartAck -> (probe End -> ReqRet
 * for every seq) -> data -> End -> EndAck, with ReqRet retransmission,
 * timeouts and retries. One driver per
 * AgentSyncProtocol; sessions never overlap (the caller guarantees it).
 */
export class SessionDriver {
  readonly #mailbox = new Mailbox();
  readonly #encoder = new MessageEncoder();
  readonly #link: TransportLink;
  readonly #metadata: () => StartMetadata;
  readonly #log: LogFunction;

  /**
   * @param link Where messages go (opened on each session's first send).
   * @param metadata The agent metadata for each Start, read when the Start is built.
   * @param log Where the driver logs; structured fields carry the session and mode.
   */
  constructor(link: TransportLink, metadata: () => StartMetadata, log: LogFunction) {
    this.#link = link;
    this.#metadata = metadata;
    this.#log = log;
  }

  /** Hand a decoded response to the running session. Returns whether it was accepted. */
  deliver(message: ManagerResponse): boolean {
    const accepted = this.#mailbox.offer(message);
    if (!accepted) {
      this.#log(
        'debug',
        `ignored ${message.type} for session ${message.session}: not expected now`,
        { session: String(message.session), response: message.type },
      );
    }
    return accepted;
  }

  /**
   * Run one session of `plan` to its end. Never throws: every failure (timeout, the manager's
   * answer, a send that failed, an abort, a storage error while reading items) is an outcome.
   */
  async run(plan: SessionPlan, options: SessionOptions): Promise<SessionOutcome> {
    const pacer = options.maxEps > 0 ? new Pacer(options.maxEps) : undefined;
    const counts = { sent: 0, retransmitted: 0 };
    const mode = Mode[plan.mode as number] ?? String(plan.mode);
    const report = (phase: SyncProgress['phase']) => {
      try {
        options.onProgress?.({ phase, total: plan.size, ...counts });
      } catch (error) {
        this.#log('warn', `onProgress threw: ${errorMessage(error)}`, { mode, phase });
      }
    };
    let stage: Stage = 'start';
    let session: bigint | undefined;
    try {
      await this.#link.open();
      session = await this.#startSession(plan, options, pacer);
      stage = 'data';
      report('start');
      // After a probe the End is out: its EndAck (or a ReqRet) may come as soon as the last
      // item arrives, so the doors stay open for them.
      const probed = plan.size > 0;
      if (!probed) this.#mailbox.closeDoors();
      if (plan.checksum) {
        const { index, checksum } = plan.checksum;
        await this.#paced(this.#encoder.checksumModule(session, index, checksum), pacer, options);
      }
      if (plan.items && plan.size > 0) {
        await this.#sendItems(
          plan.items,
          session,
          0,
          plan.size - 1,
          pacer,
          options,
          () => {
            counts.sent++;
          },
          () => report('data'),
        );
      }
      stage = 'end';
      await this.#endSession(plan, session, probed, options, pacer, counts, report);
      return { ok: true, session, ...counts };
    } catch (error) {
      const failure = this.#toSyncError(error, options.signal);
      return {
        ok: false,
        reason: failure.reason,
        message: failure.message,
        stage,
        session,
        status: failure.status,
      };
    } finally {
      this.#mailbox.closeDoors();
    }
  }

  #toSyncError(error: unknown, signal: AbortSignal): SyncError {
    if (signal.aborted) {
      return signal.reason instanceof SyncError
        ? signal.reason
        : new SyncError('aborted', 'the sync was aborted');
    }
    if (error instanceof SyncError) return error;
    return new SyncError('storage', errorMessage(error));
  }

  #retryOptions(options: SessionOptions, what: string) {
    return {
      retries: options.retries,
      minTimeout: options.backoff.minMs,
      maxTimeout: options.backoff.maxMs,
      factor: options.backoff.factor,
      randomize: false,
      signal: options.signal,
      onFailedAttempt: ({
        attemptNumber,
        retriesLeft,
      }: {
        attemptNumber: number;
        retriesLeft: number;
      }) =>
        this.#log(
          'debug',
          `${what}: attempt ${attemptNumber} got no answer, ${retriesLeft} retries left`,
          { attempt: attemptNumber, retriesLeft },
        ),
      shouldRetry: ({ error }: { error: Error }) => error instanceof WaitTimeout,
    };
  }

  /** Run a p-retry attempt function; a last timeout becomes SyncError('timeout'). */
  async #withRetries<T>(
    what: string,
    options: SessionOptions,
    attempt: () => Promise<T>,
  ): Promise<T> {
    try {
      return await pRetry(attempt, this.#retryOptions(options, what));
    } catch (error) {
      if (error instanceof WaitTimeout) {
        throw new SyncError(
          'timeout',
          `${what}: no answer after ${options.retries + 1} attempts of ${options.timeoutMs} ms`,
        );
      }
      throw error;
    }
  }

  /**
   * Start -> StartAck Ok, and for a plan with items, the probe (see #probe). A session the
   * probe shows is not this Start's is never used again, and Start is sent again (an attempt).
   */
  async #startSession(
    plan: SessionPlan,
    options: SessionOptions,
    pacer: Pacer | undefined,
  ): Promise<bigint> {
    const refused = new Set<bigint>();
    return this.#withRetries('Start', options, async () => {
      this.#mailbox.expect(['StartAck']);
      const start = this.#encoder.start({
        ...this.#metadata(),
        mode: plan.mode,
        size: BigInt(plan.size),
        index: plan.indices,
      });
      await this.#sendOrAbort(start, pacer, options);
      for (;;) {
        const answer = await this.#mailbox.next(options.timeoutMs, options.signal);
        if (answer === TIMEOUT) throw new WaitTimeout();
        if (answer.type !== 'StartAck') throw new WaitTimeout(); // unreachable: only StartAck is expected
        if (answer.status !== Status.Ok)
          throw new AbortError(failureStatus('StartAck', answer.status));
        if (refused.has(answer.session)) continue;
        if (plan.size > 0 && !(await this.#probe(plan, answer.session, options, pacer))) {
          refused.add(answer.session);
          throw new WaitTimeout();
        }
        this.#log(
          'debug',
          `session ${answer.session} started (${WireMode[plan.mode]}, ${plan.size} items)`,
          { session: String(answer.session), mode: Mode[plan.mode as number], total: plan.size },
        );
        return answer.session;
      }
    });
  }

  /**
   * Whether `session` is the one this Start opened. A StartAck names no Start, so a late answer
   * to an earlier sync's Start (one that timed out, was duplicated on the way, or came from a
   * process that died) looks like this sync's own; its session may hold fewer items, and the
   * manager would drop the rest yet answer EndAck Ok. So End goes first: a manager answers an
   * End for a session it has no data of with a ReqRet for every seq, 0..size-1, which tells
   * the session's size. Only the exact range proves it; anything else (an EndAck, other ranges,
   * no answer) refuses the session. The data then goes out in answer to that ReqRet.
   */
  async #probe(
    plan: SessionPlan,
    session: bigint,
    options: SessionOptions,
    pacer: Pacer | undefined,
  ): Promise<boolean> {
    this.#mailbox.expect(['EndAck', 'ReqRet'], session);
    await this.#sendOrAbort(this.#encoder.end(session), pacer, options);
    const answer = await this.#mailbox.next(options.timeoutMs, options.signal);
    if (answer !== TIMEOUT && answer.type === 'ReqRet' && coversExactly(answer.ranges, plan.size))
      return true;
    this.#log(
      'warn',
      `session ${session} is not the one this Start opened (its End got ${
        answer === TIMEOUT
          ? 'no answer'
          : answer.type === 'ReqRet'
            ? 'a ReqRet for other seqs'
            : `an EndAck ${Status[answer.status] ?? answer.status}`
      }); it is left to expire and Start is sent again`,
      { session: String(session), mode: Mode[plan.mode as number] },
    );
    this.#mailbox.expect(['StartAck']);
    return false;
  }

  /**
   * End -> EndAck, answering ReqRets. After a probe the manager already has an End and answers
   * as soon as the last item arrives; this End is what makes it ask for items lost on the way
   * (without it, a loss would cost a whole timeout). It may reach the manager after the session
   * is indexed, which ignores it.
   */
  async #endSession(
    plan: SessionPlan,
    session: bigint,
    probed: boolean,
    options: SessionOptions,
    pacer: Pacer | undefined,
    counts: { sent: number; retransmitted: number },
    report: (phase: 'end' | 'retransmit') => void,
  ): Promise<void> {
    let rounds = 0;
    let endReported = false;
    // expect() empties the mailbox, so it runs once, before the first End: after a probe the
    // EndAck may already wait there, and an answer that arrives during the backoff between
    // two End attempts is the answer to the first one, kept for the next attempt to read.
    if (!probed) this.#mailbox.expect(['EndAck', 'ReqRet'], session);
    await this.#withRetries('End', options, async () => {
      await this.#sendOrAbort(this.#encoder.end(session), pacer, options);
      if (!endReported) {
        endReported = true;
        report('end');
      }
      for (;;) {
        const answer = await this.#mailbox.next(options.timeoutMs, options.signal);
        if (answer === TIMEOUT) throw new WaitTimeout();
        if (answer.type === 'EndAck') {
          if (answer.status !== Status.Ok)
            throw new AbortError(failureStatus('EndAck', answer.status));
          return;
        }
        if (answer.type !== 'ReqRet') continue;
        rounds++;
        if (rounds > options.maxReqRetRounds) {
          throw new AbortError(
            new SyncError(
              'retransmit-invalid',
              `the manager asked for retransmission more than ${options.maxReqRetRounds} times`,
            ),
          );
        }
        const spans = selectSeqs(answer.ranges, plan.size);
        if (typeof spans === 'string' || !plan.items) {
          throw new AbortError(
            new SyncError(
              'retransmit-invalid',
              typeof spans === 'string' ? spans : 'ReqRet in a session without items',
            ),
          );
        }
        // One report per page of resent items, and at least one per round, however the
        // round's ranges split them.
        let unreported = 0;
        for (const span of spans) {
          await this.#sendItems(
            plan.items,
            session,
            span.from,
            span.to,
            pacer,
            options,
            () => {
              counts.retransmitted++;
              if (++unreported === PAGE_SIZE) {
                unreported = 0;
                report('retransmit');
              }
            },
            () => {},
          );
        }
        if (unreported > 0) report('retransmit');
        // Wait again without resending End: the manager answers once the last missing seq arrives.
      }
    });
  }

  /** Stream items fromSeq..toSeq page by page, counting each send as it happens. */
  async #sendItems(
    items: ItemSource,
    session: bigint,
    fromSeq: number,
    toSeq: number,
    pacer: Pacer | undefined,
    options: SessionOptions,
    onSent: () => void,
    onPage: () => void,
  ): Promise<void> {
    let next = fromSeq;
    while (next <= toSeq) {
      const rows = items.read(next, toSeq, PAGE_SIZE);
      if (rows.length === 0) break;
      for (const row of rows) {
        const operation = row.operation === 2 ? WireOperation.Delete : WireOperation.Upsert;
        const bytes = this.#encoder.dataValue(
          BigInt(row.seq),
          session,
          operation,
          row.id,
          row.index,
          row.data,
        );
        const pending = this.#paced(bytes, pacer, options);
        if (pending) await pending;
        onSent();
      }
      next = (rows[rows.length - 1] as SyncRow).seq + 1;
      onPage();
      // Let responses, aborts and the host's other work in between pages.
      await yieldToEventLoop();
      options.signal.throwIfAborted();
    }
  }

  /** Pace, then send; synchronous when neither pacing nor the transport needs to wait. */
  #paced(
    message: Uint8Array,
    pacer: Pacer | undefined,
    options: SessionOptions,
  ): void | Promise<void> {
    if (!pacer) return this.#link.send(message);
    // The encoder's bytes stay untouched while we wait: nothing else encodes until we return.
    if (pacer.tryAcquire() !== 0)
      return pacer.acquire(options.signal).then(() => this.#sendMarked(message, pacer));
    return this.#sendMarked(message, pacer);
  }

  #sendMarked(message: Uint8Array, pacer: Pacer): void | Promise<void> {
    const pending = this.#link.send(message);
    if (pending) return pending.then(() => pacer.markSent());
    pacer.markSent();
  }

  /** Inside p-retry, SyncErrors must stop the retries, not count as attempts. */
  async #sendOrAbort(
    message: Uint8Array,
    pacer: Pacer | undefined,
    options: SessionOptions,
  ): Promise<void> {
    try {
      await this.#paced(message, pacer, options);
    } catch (error) {
      throw new AbortError(error instanceof Error ? error : new Error(String(error)));
    }
  }
}
