// The Wazuh 5.0 wire ("FullSession"): each session is one FlatBuffers Message{FullSession},
// handed to a SessionTransport, and the manager's HTTP status is the whole answer. Composed as
// the reference agent composes its syncs (wazuh/wazuh f838614611,
// src/shared_modules/sync_protocol/src/agent_sync_protocol.cpp: runSession, applyHttpResult,
// requiresFullSync, synchronizeDeltaByBlocks, nextSessionId).
import { setTimeout as sleep } from 'node:timers/promises';
import { Mode } from '../enums/mode.js';
import { Operation } from '../enums/operation.js';
import type { LogFunction } from '../interfaces/logger.js';
import type { SyncProgress } from '../interfaces/options.js';
import type { SyncFailureReason } from '../interfaces/results.js';
import type { SessionAnswer, SessionTransport } from '../interfaces/session-transport.js';
import { type PersistentQueue, StorageError, type SyncRow } from '../queue/index.js';
import {
  estimateItemBytes,
  type QueueSession,
  runSessions,
  SESSION_OVERHEAD_BYTES,
  sessionBudget,
} from '../queue/sessions.js';
import { FullSessionEncoder } from '../wire-5/encode.js';
import {
  type DataValueInput,
  type PayloadInput,
  type StartFields,
  Option as W5Option,
  Mode as WireMode5,
  Operation as WireOperation5,
} from '../wire-5/index.js';
import { attemptLimit } from './attempt-limit.js';
import { retryDelayMs } from './retry-delay.js';
import type { SessionOptions, StartMetadata } from './session-driver.js';
import { errorMessage, SyncError } from './sync-error.js';

/** Characters of a session id (the reference's and agentd's rule), also of a module name on this wire. */
export const SESSION_ID_CHARSET = /^[0-9A-Za-z._-]+$/;
/** Longest session id, in bytes. */
export const MAX_SESSION_ID_BYTES = 256;

let counter = 0n;

/**
 * A session number as the reference's nextSessionId: microseconds since the epoch shifted left
 * 12 bits, with a per-process counter in the low 12 bits, so two sessions of the same
 * microsecond still differ. A u64.
 */
export function nextSessionNumber(): bigint {
  const micros = BigInt(Math.floor((performance.timeOrigin + performance.now()) * 1000));
  counter = (counter + 1n) & 0xfffn;
  return ((micros << 12n) | counter) & 0xffff_ffff_ffff_ffffn;
}

/** How one Wazuh 5.0 sync ended; never thrown. */
export type FullSessionOutcome =
  | {
      ok: true;
      /** The last session's number (absent when nothing was sent). */
      session?: bigint;
      /** Items sent in sessions the manager applied. */
      sent: number;
    }
  | {
      ok: false;
      reason: SyncFailureReason;
      message: string;
      /** The failed session's number, when one was sent. */
      session?: bigint;
      /** The last HTTP status, when one came. */
      status?: number;
    }
  | {
      /** Check: the manager answered 409 on every attempt. */
      mismatch: true;
      session: bigint;
    };

type Attempted =
  | { ok: true; session: bigint; status: number }
  | {
      ok: false;
      session: bigint;
      reason: SyncFailureReason;
      message: string;
      status?: number;
      /** Whether the manager may have applied the session (false: it refused it before). */
      dataSent: boolean;
    };

/**
 * A Delta's or Cleans' Start option: Sync (the default), or VDFirst/VDSync with the manager's
 * feed offset (> 0; the encoder refuses 0).
 */
export interface StartOption {
  option: W5Option;
  feedOffset?: bigint;
}

const SYNC: StartOption = { option: W5Option.Sync };

const isVD = (o: StartOption): boolean =>
  o.option === W5Option.VDFirst || o.option === W5Option.VDSync;

/** What the 5.0 Start needs besides mode and indices. */
export interface FullSessionIdentity {
  moduleName: string;
  clusterName: string;
  metadata: () => StartMetadata & { osplatform: string };
}

const REFUSALS: Record<number, [SyncFailureReason, string]> = {
  400: ['invalid-session', 'the manager refused the session as invalid (400)'],
  401: ['unauthorized', "the manager refused the request's authentication (401)"],
  403: ['forbidden', "the manager refused the session's identity: agent id or cluster name (403)"],
  413: ['too-large', "the session is over the manager's byte budget (413); lower maxSessionBytes"],
};

/** Answers worth the same bytes again (the reference's transient set, 415 as it treats it). */
const TRANSIENT = new Set([415, 429, 500, 502, 503, 504]);

/** The 5.0 wire's mode for a library Mode (the wire has no ModuleFull, and is renumbered). */
function wireMode(mode: Mode): WireMode5 {
  switch (mode) {
    case Mode.Check:
      return WireMode5.ModuleCheck;
    case Mode.MetadataDelta:
      return WireMode5.MetadataDelta;
    case Mode.MetadataCheck:
      return WireMode5.MetadataCheck;
    case Mode.GroupDelta:
      return WireMode5.GroupDelta;
    case Mode.GroupCheck:
      return WireMode5.GroupCheck;
    default:
      return WireMode5.ModuleDelta;
  }
}

function toValue(row: {
  id: string;
  index: string;
  data: string;
  operation: Operation;
  version?: bigint;
}): DataValueInput {
  return {
    operation: row.operation === Operation.Delete ? WireOperation5.Delete : WireOperation5.Upsert,
    id: row.id,
    index: row.index,
    data: row.data,
    version: row.version ?? 0n,
  };
}

/** A queue session's DataValue rows as the encoder's values, converted as it pulls them. */
function* sessionValues(session: QueueSession): Generator<DataValueInput, void, undefined> {
  for (const row of session.rows(false)) yield toValue(row);
}

/** A queue session's payload, read from the queue while it is encoded. */
function syncData(session: QueueSession): PayloadInput {
  return { type: 'SyncData', values: sessionValues(session), contexts: session.rows(true) };
}

/** Sorted unique indices of rows. */
function indicesOf(rows: readonly { index: string }[]): string[] {
  return [...new Set(rows.map((r) => r.index))].sort();
}

/**
 * Cuts `rows` into sessions as the queue's takeSession does: the longest prefix whose estimate
 * stays within the budget, or one item alone when it does not fit by itself.
 */
export function cutByBytes<T extends { id: string; index: string; data: string }>(
  rows: readonly T[],
  maxSessionBytes: number,
): T[][] {
  const budget = sessionBudget(maxSessionBytes);
  const sessions: T[][] = [];
  let current: T[] = [];
  let bytes = SESSION_OVERHEAD_BYTES;
  for (const row of rows) {
    const size = estimateItemBytes(row.id, row.index, row.data);
    if (current.length > 0 && budget > 0 && bytes + size > budget) {
      sessions.push(current);
      current = [];
      bytes = SESSION_OVERHEAD_BYTES;
    }
    current.push(row);
    bytes += size;
  }
  if (current.length > 0) sessions.push(current);
  return sessions;
}

/**
 * Runs the syncs of one AgentSyncProtocol on the Wazuh 5.0 wire. One per instance; syncs never
 * overlap (the caller guarantees it). Methods never throw for a failed sync: every failure is
 * an outcome (the queue's storage errors excepted, which the caller maps).
 */
export class FullSessionDriver {
  readonly #encoder = new FullSessionEncoder();
  readonly #transport: SessionTransport;
  readonly #identity: FullSessionIdentity;
  readonly #log: LogFunction;
  /** Sessions handed to the transport (retries included) and their bytes. */
  readonly counters = { messages: 0, bytes: 0 };

  constructor(transport: SessionTransport, identity: FullSessionIdentity, log: LogFunction) {
    this.#transport = transport;
    this.#identity = identity;
    this.#log = log;
  }

  /**
   * Delta: the queue cut into sessions by bytes, at most `maxSessions` of them; each applied
   * session's rows leave the queue, the first failure stops the rest and leaves them queued.
   * A VD option (VDFirst, VDSync) lifts the byte cap, as the reference's uncapped fetch does.
   */
  async delta(
    queue: PersistentQueue,
    options: SessionOptions,
    report: (phase: SyncProgress['phase'], sent: number, total: number) => void,
    startOption: StartOption = SYNC,
  ): Promise<FullSessionOutcome> {
    const total = queue.pendingCount();
    let sent = 0;
    let last: bigint | undefined;
    let failure: FullSessionOutcome | undefined;
    if (total > 0) report('start', 0, total);
    const result = await runSessions(
      queue,
      async (session: QueueSession) => {
        const outcome = await this.#send(
          Mode.Delta,
          session.indices,
          syncData(session),
          options,
          undefined,
          startOption,
        );
        if (!outcome.ok) {
          failure = outcome;
          return { success: false, dataSent: outcome.dataSent };
        }
        last = outcome.session;
        sent += session.count;
        report('data', sent, total);
        return true;
      },
      {
        maxSessionBytes: isVD(startOption) ? 0 : options.maxSessionBytes,
        maxSessions: options.maxSessions,
        signal: options.signal,
      },
    );
    if (failure) return failure;
    if (options.signal.aborted) return this.#aborted(options.signal);
    if (result.succeeded > 0) report('end', sent, total);
    return { ok: true, sent, ...(last === undefined ? {} : { session: last }) };
  }

  /**
   * Full, composed the 5.0 way: a Cleans session for `rows`' indices, then `rows` as Delta
   * sessions cut by bytes (no cap on their number: the buffer is the module's whole state).
   */
  async full(
    rows: readonly SyncRow[],
    options: SessionOptions,
    report: (phase: SyncProgress['phase'], sent: number, total: number) => void,
  ): Promise<FullSessionOutcome> {
    const indices = indicesOf(rows);
    report('start', 0, rows.length);
    const cleans = await this.#send(Mode.Delta, indices, { type: 'Cleans', indices }, options);
    if (!cleans.ok) return cleans;
    let sent = 0;
    let last = cleans.session;
    for (const part of cutByBytes(rows, options.maxSessionBytes)) {
      const outcome = await this.#send(
        Mode.Delta,
        indicesOf(part),
        { type: 'SyncData', values: part.map(toValue) },
        options,
      );
      if (!outcome.ok) return outcome;
      last = outcome.session;
      sent += part.length;
      report('data', sent, rows.length);
    }
    report('end', sent, rows.length);
    return { ok: true, sent, session: last };
  }

  /**
   * notifyDataClean: one Cleans session for `indices` (ModuleDelta, the option in its Start);
   * the manager deletes this agent's documents there.
   */
  async cleans(
    indices: readonly string[],
    options: SessionOptions,
    startOption: StartOption = SYNC,
  ): Promise<FullSessionOutcome> {
    // As the reference's notifyDataClean: the indices as given, in Start and in the DataCleans.
    const outcome = await this.#send(
      Mode.Delta,
      indices,
      { type: 'Cleans', indices },
      options,
      undefined,
      startOption,
    );
    return outcome.ok ? { ok: true, sent: 0, session: outcome.session } : outcome;
  }

  /**
   * Check: ModuleCheck with a ChecksumModule; 200 match, 409 mismatch. A 409 is retried
   * `checkAttempts - 1` times, `checkRetryDelayMs` apart, before it is trusted (the indexer
   * may not have caught up with a recent write); any other failure ends the check at once.
   */
  async check(
    index: string,
    checksum: string,
    options: SessionOptions,
  ): Promise<FullSessionOutcome> {
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.#send(
        Mode.Check,
        [index],
        { type: 'ChecksumModule', index, checksum },
        options,
      );
      if (outcome.ok) return { ok: true, sent: 0, session: outcome.session };
      if (outcome.status !== 409) return outcome;
      if (attempt >= options.checkAttempts) return { mismatch: true, session: outcome.session };
      this.#log(
        'debug',
        `check: mismatch on attempt ${attempt} of ${options.checkAttempts}; the indexer may not have caught up, checking again in ${options.checkRetryDelayMs} ms`,
        { session: String(outcome.session), attempt, index },
      );
      try {
        await sleep(options.checkRetryDelayMs, undefined, { signal: options.signal });
      } catch {
        return this.#aborted(options.signal);
      }
    }
  }

  /** Metadata or group sync: a Start with `indices` and `globalVersion`, no payload. */
  async metadata(
    mode: Mode,
    indices: readonly string[],
    globalVersion: bigint,
    options: SessionOptions,
  ): Promise<FullSessionOutcome> {
    const outcome = await this.#send(
      mode,
      [...new Set(indices)].sort(),
      null,
      options,
      globalVersion,
    );
    return outcome.ok ? { ok: true, sent: 0, session: outcome.session } : outcome;
  }

  #aborted(signal: AbortSignal): FullSessionOutcome {
    const error =
      signal.reason instanceof SyncError
        ? signal.reason
        : new SyncError('aborted', 'the sync was aborted');
    return { ok: false, reason: error.reason, message: error.message };
  }

  /**
   * One session: encoded once, sent with the same id and bytes until the manager answers
   * something other than a transient status, or `retries` extra attempts are spent. Between
   * attempts: full-jitter backoff, at least the answer's Retry-After.
   */
  async #send(
    mode: Mode,
    indices: readonly string[],
    payload: PayloadInput | null,
    options: SessionOptions,
    globalVersion?: bigint,
    startOption: StartOption = SYNC,
  ): Promise<Attempted> {
    const number = nextSessionNumber();
    const id = `${this.#identity.moduleName}-${number}`;
    const fields = { session: String(number), mode: Mode[mode] };
    let body: Uint8Array;
    try {
      const start: StartFields = {
        ...this.#startMetadata(),
        mode: wireMode(mode),
        index: indices,
        option: startOption.option,
        ...(globalVersion === undefined ? {} : { globalVersion }),
        ...(startOption.feedOffset === undefined ? {} : { feedOffset: startOption.feedOffset }),
      };
      body = this.#encoder.encode(start, payload).slice();
    } catch (error) {
      // The payload's rows are read from the queue as they are encoded.
      if (error instanceof StorageError) throw error;
      return {
        ok: false,
        session: number,
        reason: 'unsupported',
        message: `the session cannot be built: ${errorMessage(error)}`,
        dataSent: false,
      };
    }
    let last: Attempted | undefined;
    for (let attempt = 1; attempt <= options.retries + 1; attempt++) {
      if (options.signal.aborted) return this.#abortedAttempt(options.signal, number, last);
      const answer = await this.#attempt(
        { id, moduleName: this.#identity.moduleName, body },
        options,
      );
      if (options.signal.aborted) return this.#abortedAttempt(options.signal, number, last);
      let retryAfterSeconds = 0;
      if ('status' in answer) {
        const { status } = answer;
        this.#log('debug', `session ${id}: HTTP ${status}${answer.body ? ` ${answer.body}` : ''}`, {
          ...fields,
          status,
          attempt,
        });
        if (status >= 200 && status < 300) return { ok: true, session: number, status };
        const refusal = REFUSALS[status];
        if (refusal) {
          return {
            ok: false,
            session: number,
            reason: refusal[0],
            message: withBody(refusal[1], answer.body),
            status,
            dataSent: false,
          };
        }
        if (status === 409) {
          return {
            ok: false,
            session: number,
            reason: 'manager-error',
            message: withBody('the manager answered 409', answer.body),
            status,
            dataSent: false,
          };
        }
        if (!TRANSIENT.has(status)) {
          return {
            ok: false,
            session: number,
            reason: 'manager-error',
            message: withBody(`the manager answered HTTP ${status}`, answer.body),
            status,
            dataSent: true,
          };
        }
        last = {
          ok: false,
          session: number,
          reason: status === 503 ? 'manager-offline' : 'manager-error',
          message: withBody(
            `the manager answered HTTP ${status} on each of ${attempt} attempts`,
            answer.body,
          ),
          status,
          dataSent: true,
        };
        retryAfterSeconds = answer.retryAfterSeconds ?? 0;
      } else {
        this.#log('debug', `session ${id}: ${answer.message}`, { ...fields, attempt });
        last = {
          ok: false,
          session: number,
          reason: answer.reason,
          message: `${answer.message}, on each of ${attempt} attempts`,
          dataSent: true,
        };
      }
      if (attempt > options.retries) break;
      const delay = retryDelayMs(attempt, options.backoff, retryAfterSeconds);
      this.#log('debug', `session ${id}: attempt ${attempt} failed, next in ${delay} ms`, {
        ...fields,
        attempt,
        retriesLeft: options.retries + 1 - attempt,
        delayMs: delay,
      });
      if (delay > 0) {
        try {
          await sleep(delay, undefined, { signal: options.signal });
        } catch {
          return this.#abortedAttempt(options.signal, number, last);
        }
      }
    }
    return last as Attempted;
  }

  #abortedAttempt(signal: AbortSignal, session: bigint, last: Attempted | undefined): Attempted {
    const failure = this.#aborted(signal) as { reason: SyncFailureReason; message: string };
    return {
      ok: false,
      session,
      reason: failure.reason,
      message: failure.message,
      dataSent: last?.ok === false ? last.dataSent : true,
    };
  }

  #startMetadata(): Omit<StartFields, 'mode' | 'index' | 'option'> {
    const m = this.#identity.metadata();
    return {
      module: this.#identity.moduleName,
      architecture: m.architecture ?? '',
      hostname: m.hostname ?? '',
      osname: m.osname ?? '',
      osplatform: m.osplatform ?? '',
      ostype: m.ostype ?? '',
      osversion: m.osversion ?? '',
      agentversion: m.agentversion ?? '',
      agentname: m.agentname ?? '',
      agentid: m.agentid ?? '',
      groups: m.groups ?? [],
      clusterName: this.#identity.clusterName,
    };
  }

  /** One hand-off: the transport's answer, or why none came within `timeoutMs`. */
  async #attempt(
    request: { id: string; moduleName: string; body: Uint8Array },
    options: SessionOptions,
  ): Promise<SessionAnswer | { reason: 'timeout' | 'send-failed'; message: string }> {
    const limit = attemptLimit(options.signal, options.timeoutMs);
    try {
      this.counters.messages++;
      this.counters.bytes += request.body.length;
      const sent = (async () => this.#transport.send(request, limit.signal))().then(
        (answer) => checkAnswer(answer),
        (error: unknown) => ({
          reason: 'send-failed' as const,
          message: `the transport failed: ${errorMessage(error)}`,
        }),
      );
      return await Promise.race([sent, limit.ended]);
    } finally {
      limit.dispose();
    }
  }
}

/** A failure's message, with the manager's response body when it sent one. */
function withBody(text: string, body: string | undefined): string {
  return body ? `${text}: ${body}` : text;
}

/** A transport's answer as the driver reads it: an HTTP status it can trust, or a failed hand-off. */
function checkAnswer(answer: unknown): SessionAnswer | { reason: 'send-failed'; message: string } {
  if (answer === null || typeof answer !== 'object') {
    return { reason: 'send-failed', message: 'the transport resolved without an answer object' };
  }
  const { status, body, retryAfterSeconds } = answer as SessionAnswer;
  if (!Number.isInteger(status) || status < 100 || status > 599) {
    return {
      reason: 'send-failed',
      message: `the transport resolved an invalid HTTP status ${String(status)}`,
    };
  }
  const retryAfter =
    typeof retryAfterSeconds === 'number' &&
    Number.isFinite(retryAfterSeconds) &&
    retryAfterSeconds > 0
      ? retryAfterSeconds
      : undefined;
  return {
    status,
    ...(typeof body === 'string' ? { body } : {}),
    ...(retryAfter === undefined ? {} : { retryAfterSeconds: retryAfter }),
  };
}
