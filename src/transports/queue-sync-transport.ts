// Beside a Wazuh 5.0 agent: each session handed to agentd on its `queue-sync` STREAM socket, one
// connection per hand-off, and the manager's verdict read back from agentd's HCRESULT report.
// Composed as the reference module does (wazuh/wazuh f838614611,
// src/shared_modules/sync_protocol/src/sync_socket_transport.cpp: sendSession, checkStatus;
// src/agent_sync_protocol.cpp: runSession's hand-off retries and result wait).
//
// Where the reference code says more than, or other than, the summary of the contract we
// started from, the code was followed:
// - agentd refusing a session because its /stateful queue (64 sessions) is full also reports
//   `HCRESULT:<n>:503:` for it (src/client-agent/https_client/src/httpsClientFacade.cpp,
//   startSyncIntake), on another socket than the 0 byte; the page names only the byte. The
//   reference keeps such a result and fails the retried hand-off with it; here a result that
//   came before a refusal is dropped with it, and one that comes later may still be taken as
//   the retry's answer (a 503: the protocol sends the session again).
// - The intake answers 0 for a malformed frame too (bad magic, id, length; syncFrame.cpp), not
//   only for a full queue.
// - HCRESULT status 0 is agentd's "no HTTP answer at all" (timeout, connection, TLS; the
//   reference's applyHttpResult case 0); it comes after agentd's own 5 POST attempts
//   (statefulStream.cpp, STATEFUL_MAX_ATTEMPTS).
// - The reference's parseResponseBuffer returns true for a stale result ("an expected race");
//   here it returns false, the result having matched nothing. Both log it at debug.
// - The reference pauses 1 s after every failed hand-off, the last one included, before it
//   gives up; here the last failure rejects at once.
// - agentd finds the module by splitting the id at its last '-' and wants only digits after
//   it (https_client_bridge.c, bridge_module_of_session): an id of another shape gets no
//   result even for a module in the table, so send refuses such ids.
import { createConnection, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LogFunction, Logger } from '../interfaces/logger.js';
import type {
  SessionAnswer,
  SessionRequest,
  SessionResult,
  SessionResultReceiver,
  SessionTransport,
} from '../interfaces/session-transport.js';
import { toLogFunction } from '../logging.js';
import { attemptLimit } from '../session/attempt-limit.js';
import {
  encodeSyncFrameHeader,
  isValidSyncSessionId,
  SYNC_FRAME_ACCEPTED,
  SYNC_FRAME_MAX_BODY_BYTES,
} from './sync-frame.js';
import { checkSocketPath } from './unix-socket-file.js';

/**
 * The modules agentd reports a session's HTTP outcome to (`SYNC_ROUTES` in
 * src/client-agent/src/https_client_bridge.c): for any other module name, agentd taking the
 * session is the last word the module gets.
 */
export const QUEUE_SYNC_RESULT_MODULES: readonly string[] = Object.freeze([
  'fim',
  'syscollector',
  'syscollector_vd',
  'sca',
  'agent-info',
]);

/**
 * The answer {@link QueueSyncTransport} resolves for a module agentd reports no result to, once
 * agentd took the session: 202 Accepted, a success to the protocol (the rows leave the queue,
 * as the reference's do: agentd owns the session and retries it on its own).
 */
export const AGENTD_ACCEPTED_ANSWER: Readonly<SessionAnswer> = Object.freeze({
  status: 202,
  body: '{"accepted":"agentd","result":"not reported for this module"}',
});

/** Options of {@link QueueSyncTransport}. */
export interface QueueSyncTransportOptions {
  /** The agent's intake socket, `<home>/queue/sockets/queue-sync` (e.g. `/var/ossec/queue/sockets/queue-sync`). */
  socketPath: string;
  /**
   * Hand-offs tried again after the first one fails (refused, no connection, no answer byte).
   * Default 3, as the reference (SYNC_HANDOFF_RETRIES).
   */
  handoffRetries?: number;
  /** Pause after a failed hand-off before the next, in ms. Default 1000, as the reference. */
  handoffRetryPauseMs?: number;
  /**
   * How long one hand-off may go without progress, in ms: connecting, each write of the frame,
   * and the answer byte (agentd spools the whole body to disk before it answers). Default
   * 60000, as the reference's SyncSocketTransport (its SO_SNDTIMEO/SO_RCVTIMEO).
   */
  ioTimeoutMs?: number;
  /**
   * How long to wait for agentd's HCRESULT after it took a session, in ms. Default 15 minutes,
   * as the reference (SESSION_RESPONSE_TIMEOUT): agentd retries the POST on its own first. The
   * sync's `timeoutMs` ends the wait sooner when it is shorter.
   */
  resultTimeoutMs?: number;
  /**
   * Whether agentd reports results for a module: `true` or `false` for every module, or a
   * function of the module name. Default: the module is in {@link QUEUE_SYNC_RESULT_MODULES}.
   * Saying true for a module agentd does not report leaves every session waiting until
   * `resultTimeoutMs` (or the sync's `timeoutMs`).
   */
  expectsResult?: boolean | ((moduleName: string) => boolean);
  /** Default: silent. */
  logger?: Logger;
}

interface Pending {
  /** Whether the hand-off is still under way (a result then is kept for when it is taken). */
  handingOff: boolean;
  /** A result that came during the hand-off. */
  early: SessionResult | undefined;
  settle: (result: SessionResult) => void;
}

const DEFAULTS = {
  handoffRetries: 3,
  handoffRetryPauseMs: 1000,
  ioTimeoutMs: 60_000,
  resultTimeoutMs: 15 * 60_000,
};

/**
 * A {@link SessionTransport} for a module running beside a Wazuh 5.0 agent: each session is
 * handed to the agent daemon on its `queue-sync` Unix stream socket as one `WZSY` frame, on a
 * connection of its own; agentd answers one byte (1 took it, 0 refused it). A refused or failed
 * hand-off is tried again `handoffRetries` times, `handoffRetryPauseMs` apart, then `send`
 * rejects. Once agentd took the session it POSTs it to the manager (retrying on its own) and
 * reports the HTTP status as `HCRESULT:<number>:<status>:<body>` on the module's command
 * socket; `AgentSyncProtocol.parseResponseBuffer` hands it here ({@link receiveResult}) and
 * `send` resolves with it. For a module agentd reports nothing to, `send` resolves
 * {@link AGENTD_ACCEPTED_ANSWER} (202) as soon as agentd took the session.
 *
 * One transport may serve several modules. Nothing stays open between sessions.
 *
 * @example
 * ```ts
 * const transport = new QueueSyncTransport({ socketPath: '/var/ossec/queue/sockets/queue-sync' });
 * const sync = new AgentSyncProtocol({
 *   moduleName: 'syscollector', dbPath, transport, wire: 'fullSession', clusterName: 'wazuh',
 *   agentInfo: { id: '001' },
 * });
 * const listener = new WazuhResponseListener();
 * listener.register('syscollector', sync); // HCRESULT reports reach the transport through it
 * await listener.listen('/var/ossec/queue/sockets/wmodules');
 * ```
 */
export class QueueSyncTransport implements SessionTransport, SessionResultReceiver {
  /** The intake socket this transport hands sessions to. */
  readonly socketPath: string;
  readonly #retries: number;
  readonly #pauseMs: number;
  readonly #ioTimeoutMs: number;
  readonly #resultTimeoutMs: number;
  readonly #expects: (moduleName: string) => boolean;
  readonly #log: LogFunction;
  /** Sessions sent and not yet settled, by `<module>\0<number>`. */
  readonly #pending = new Map<string, Pending>();
  /** Hand-off connections open now (close() destroys them). */
  readonly #sockets = new Set<Socket>();
  readonly #closing = new AbortController();

  /**
   * Nothing connects until `send` or `isReachable`.
   *
   * @throws TypeError when `socketPath` is missing; RangeError when it is longer than 107
   *   bytes (a Unix socket address), or a count or duration is out of range.
   */
  constructor(options: QueueSyncTransportOptions) {
    if (typeof options?.socketPath !== 'string' || options.socketPath === '') {
      throw new TypeError('options.socketPath must be the path of the agent queue-sync socket');
    }
    this.socketPath = checkSocketPath(options.socketPath);
    this.#retries = options.handoffRetries ?? DEFAULTS.handoffRetries;
    this.#pauseMs = options.handoffRetryPauseMs ?? DEFAULTS.handoffRetryPauseMs;
    this.#ioTimeoutMs = options.ioTimeoutMs ?? DEFAULTS.ioTimeoutMs;
    this.#resultTimeoutMs = options.resultTimeoutMs ?? DEFAULTS.resultTimeoutMs;
    if (!Number.isInteger(this.#retries) || this.#retries < 0) {
      throw new RangeError('handoffRetries must be a non-negative integer');
    }
    if (!(this.#pauseMs >= 0)) throw new RangeError('handoffRetryPauseMs must be >= 0');
    for (const [name, value] of [
      ['ioTimeoutMs', this.#ioTimeoutMs],
      ['resultTimeoutMs', this.#resultTimeoutMs],
    ] as const) {
      if (!(value > 0 && value <= 2 ** 31 - 1)) {
        throw new RangeError(`${name} must be positive and at most 2^31-1 ms`);
      }
    }
    const expects = options.expectsResult;
    this.#expects =
      typeof expects === 'function'
        ? expects
        : typeof expects === 'boolean'
          ? () => expects
          : (moduleName) => QUEUE_SYNC_RESULT_MODULES.includes(moduleName);
    this.#log = toLogFunction(options.logger, 'queue-sync: ', { component: 'queue-sync' });
  }

  /**
   * Hand `session` to agentd and resolve with the manager's answer as agentd reports it (or
   * {@link AGENTD_ACCEPTED_ANSWER} for a module without results).
   *
   * @throws Error (rejects) when the id is not `<module>-<decimal>` within agentd's charset and
   *   256 bytes, the body is over 512 MiB, every hand-off failed, agentd reported no HTTP
   *   answer (status 0), no result came within `resultTimeoutMs`, `signal` aborted, or the
   *   transport is closed.
   */
  async send(session: SessionRequest, signal: AbortSignal): Promise<SessionAnswer> {
    if (this.#closing.signal.aborted) throw new Error('QueueSyncTransport is closed');
    const { id, body } = session;
    const number = /-([0-9]+)$/.exec(id)?.[1];
    if (!isValidSyncSessionId(id) || number === undefined) {
      throw new Error(
        `session id ${JSON.stringify(id)} is not <module>-<decimal> of [0-9A-Za-z._-], 1 to 256 bytes: agentd would refuse it`,
      );
    }
    if (body.length > SYNC_FRAME_MAX_BODY_BYTES) {
      throw new Error(
        `session of ${body.length} bytes exceeds agentd's ${SYNC_FRAME_MAX_BODY_BYTES}-byte frame limit`,
      );
    }
    const moduleName = id.slice(0, -number.length - 1);
    const stop = AbortSignal.any([signal, this.#closing.signal]);
    if (!this.#expects(moduleName)) {
      await this.#handOffWithRetries(id, body, stop);
      return { ...AGENTD_ACCEPTED_ANSWER };
    }
    const key = `${moduleName}\0${BigInt(number)}`;
    // Registered before the hand-off: agentd may report the result before its answer byte
    // reaches us (the report travels on another socket).
    let settle: (result: SessionResult) => void = () => {};
    const result = new Promise<SessionResult>((resolve) => {
      settle = resolve;
    });
    const pending: Pending = { handingOff: true, early: undefined, settle };
    // A retry of the session (same id) takes over from an attempt still letting go: a result
    // for either is the answer to the same bytes.
    this.#pending.set(key, pending);
    try {
      await this.#handOffWithRetries(id, body, stop, pending);
      pending.handingOff = false;
      if (pending.early) pending.settle(pending.early);
      return toAnswer(id, await this.#wait(result, stop));
    } finally {
      if (this.#pending.get(key) === pending) this.#pending.delete(key);
    }
  }

  /**
   * Take agentd's report of a session's outcome (AgentSyncProtocol calls this from
   * `parseResponseBuffer`). True when a `send` was waiting for it; false for a stale one (a
   * session that timed out, was aborted, or was never sent by this transport), which is
   * logged and dropped.
   */
  receiveResult(result: SessionResult): boolean {
    const pending = this.#pending.get(`${result.moduleName}\0${result.sessionNumber}`);
    if (pending === undefined) {
      this.#log(
        'debug',
        `dropped a stale result for session ${result.moduleName}-${result.sessionNumber} (HTTP ${result.status}): no send waits for it`,
        { module: result.moduleName, session: result.sessionNumber, status: result.status },
      );
      return false;
    }
    if (pending.handingOff) pending.early = result;
    else pending.settle(result);
    return true;
  }

  /**
   * Whether the intake socket takes a connection now (connect, then close), as the reference's
   * checkStatus. Never rejects; false within `ioTimeoutMs` at most.
   */
  isReachable(): Promise<boolean> {
    if (this.#closing.signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const socket = this.#connect();
      const done = (reachable: boolean) => {
        socket.destroy();
        resolve(reachable);
      };
      socket.once('connect', () => done(true));
      socket.once('error', () => done(false));
      socket.once('timeout', () => done(false));
      socket.once('close', () => done(false));
    });
  }

  /** Sessions waiting for a hand-off or a result now. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /**
   * Stop: sends under way reject, connections close. Idempotent; a closed transport does not
   * send again.
   */
  close(): void {
    if (this.#closing.signal.aborted) return;
    this.#closing.abort(new Error('QueueSyncTransport closed'));
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
  }

  #connect(): Socket {
    const socket = createConnection(this.socketPath);
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    socket.setTimeout(this.#ioTimeoutMs);
    return socket;
  }

  /** Hand-offs until one is taken, at most `1 + handoffRetries` of them. */
  async #handOffWithRetries(
    id: string,
    body: Uint8Array,
    signal: AbortSignal,
    pending?: Pending,
  ): Promise<void> {
    const frameHeader = encodeSyncFrameHeader(id, body.length);
    let why = '';
    for (let attempt = 1; attempt <= this.#retries + 1; attempt++) {
      const failure = await this.#handOff(frameHeader, body, signal);
      if (failure === undefined) return;
      why = failure;
      // A result reported with a refusal (agentd's full queue answers 503 too) is not the
      // answer to the next hand-off.
      if (pending) pending.early = undefined;
      this.#log('debug', `session ${id}: hand-off ${attempt} failed: ${failure}`, {
        session: id,
        attempt,
      });
      if (attempt <= this.#retries) {
        try {
          await sleep(this.#pauseMs, undefined, { signal });
        } catch {
          throw aborted(signal);
        }
      }
    }
    throw new Error(
      `agentd did not take session ${id} on ${this.#retries + 1} hand-offs to ${this.socketPath}; last: ${why}`,
    );
  }

  /** One hand-off on its own connection: undefined once agentd took it, else why not. */
  #handOff(header: Buffer, body: Uint8Array, signal: AbortSignal): Promise<string | undefined> {
    if (signal.aborted) return Promise.reject(aborted(signal));
    return new Promise((resolve, reject) => {
      const socket = this.#connect();
      const finish = (outcome: () => void) => {
        signal.removeEventListener('abort', onAbort);
        socket.removeAllListeners('data');
        socket.destroy();
        outcome();
      };
      const onAbort = () => finish(() => reject(aborted(signal)));
      signal.addEventListener('abort', onAbort, { once: true });
      socket.once('connect', () => {
        socket.cork();
        socket.write(header);
        if (body.length > 0) socket.write(body);
        socket.uncork();
      });
      socket.on('data', (chunk: Buffer) => {
        const accepted = chunk[0] === SYNC_FRAME_ACCEPTED;
        finish(() => resolve(accepted ? undefined : `refused (answer byte ${chunk[0]})`));
      });
      socket.once('timeout', () =>
        finish(() => resolve(`no progress for ${this.#ioTimeoutMs} ms (ioTimeoutMs)`)),
      );
      socket.once('error', (error: NodeJS.ErrnoException) =>
        finish(() => resolve(`${error.code ?? 'error'}: ${error.message}`)),
      );
      socket.once('close', () =>
        finish(() => resolve('agentd closed the connection without an answer byte')),
      );
    });
  }

  /** The result, or a rejection at `resultTimeoutMs` or on abort. */
  async #wait(result: Promise<SessionResult>, signal: AbortSignal): Promise<SessionResult> {
    const limit = attemptLimit(signal, this.#resultTimeoutMs);
    try {
      const settled = await Promise.race([result, limit.ended]);
      if ('sessionNumber' in settled) return settled;
      throw signal.aborted
        ? aborted(signal)
        : new Error(`no result from agentd within ${this.#resultTimeoutMs} ms`);
    } finally {
      limit.dispose();
    }
  }
}

function aborted(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('the send was aborted');
}

/** A result as the protocol's answer; status 0 (no HTTP answer at all) is a failed send. */
function toAnswer(id: string, result: SessionResult): SessionAnswer {
  if (result.status < 100 || result.status > 599) {
    throw new Error(
      result.status === 0
        ? `agentd got no HTTP answer from the manager for session ${id} (HCRESULT status 0)`
        : `agentd reported HTTP status ${result.status} for session ${id}, not a valid status`,
    );
  }
  return { status: result.status, ...(result.body === '' ? {} : { body: result.body }) };
}
