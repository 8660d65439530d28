// A stand-in for the Wazuh 5.0 agent daemon's side of the queue-sync hand-off, for tests of
// modules that use QueueSyncTransport. Modelled on wazuh/wazuh f838614611:
// src/client-agent/https_client/src/syncIntake.cpp (one frame per connection, one answer byte,
// a peer idle for 30 s dropped), syncFrame.cpp (the frame checks), httpsClientFacade.cpp (a full
// /stateful queue refuses the session and reports 503 for it) and
// src/client-agent/src/https_client_bridge.c (bridge_on_sync_response: HCRESULT only for the
// SYNC_ROUTES modules, module split off the id at its last '-').
import { unlink } from 'node:fs/promises';
import { createConnection, createServer, type Socket } from 'node:net';
import type { LogFunction, Logger } from '../interfaces/logger.js';
import type { SessionAnswer, SessionTransport } from '../interfaces/session-transport.js';
import { toLogFunction } from '../logging.js';
import { QUEUE_SYNC_RESULT_MODULES } from '../transports/queue-sync-transport.js';
import { encodeFrame, syncPrefix } from '../transports/stream-framing.js';
import {
  SYNC_FRAME_ACCEPTED,
  SYNC_FRAME_MAX_BODY_BYTES,
  SYNC_FRAME_REFUSED,
  SyncFrameReader,
} from '../transports/sync-frame.js';
import { type BoundUnixSocket, bindUnixSocket } from '../transports/unix-socket-file.js';
import { encodeHcResult } from '../wire-5/hc-result.js';
import type { MockManager } from './mock-manager.js';

/** Options of {@link AgentdIntake}. */
export interface AgentdIntakeOptions {
  /** Where to listen: the agent's `queue-sync` socket (in a test, a path in a temp directory). */
  socketPath: string;
  /**
   * Where each session agentd took goes, as agentd POSTs it to `/stateful`. Default:
   * `manager.sessionTransport(agentId)`; one of the two is required.
   */
  transport?: SessionTransport;
  /** The mock manager the sessions go to when no `transport` is given. */
  manager?: MockManager;
  /** The agent id the sessions are sent as when no `transport` is given. Default '001'. */
  agentId?: string | number;
  /**
   * The command socket of each module, where its HCRESULT reports are written (framed
   * `<module>_sync HCRESULT:...` with a 4-byte little-endian length, as `WazuhResponseListener`
   * reads): a map of module name to path, or a function. A result module without a socket has
   * its report dropped (logged). Default: none.
   */
  commandSockets?: Readonly<Record<string, string>> | ((moduleName: string) => string | undefined);
  /** Modules that get HCRESULT reports. Default {@link QUEUE_SYNC_RESULT_MODULES}, as agentd. */
  resultModules?: readonly string[];
  /** Largest body taken; a larger frame is refused (answer byte 0) and its connection closed. Default 512 MiB. */
  maxBodyBytes?: number;
  /** A connection quiet this long before its frame is complete is dropped, in ms. Default 30000, as agentd. */
  idleTimeoutMs?: number;
  /** Default: silent. */
  logger?: Logger;
}

/** What an {@link AgentdIntake} has done since it was created. */
export interface AgentdIntakeStats {
  /** Sessions taken (answered 1). */
  accepted: number;
  /** Well-formed sessions refused (answered 0) by `refuseNext`. */
  refused: number;
  /** Frames out of contract (bad magic, id, or body length): answered 0, connection closed. */
  malformed: number;
  /** Connections that closed or went quiet before their frame was complete: no answer. */
  truncated: number;
  /** HCRESULT reports written to a command socket. */
  resultsSent: number;
  /** Outcomes not reported: a module without results, or without a command socket, or a failed write. */
  resultsDropped: number;
}

/** One session the intake took, as it was handed to the manager. */
export interface AgentdIntakeSession {
  /** The frame's session id, `<module>-<number>`. */
  id: string;
  /** The module part of the id. */
  moduleName: string;
  /** The frame's body. */
  body: Uint8Array;
  /** The manager's answer, once it came (undefined while the POST is under way or when it failed). */
  answer?: SessionAnswer;
}

/**
 * A test double of the Wazuh 5.0 agent daemon's session intake: it listens on a `queue-sync`
 * Unix stream socket, reads one `WZSY` frame per connection (split across reads or not),
 * checks it as agentd does (magic, id of `[0-9A-Za-z._-]` 1 to 256 bytes, body within
 * `maxBodyBytes`), answers the one status byte, hands each session it took to a
 * `SessionTransport` (by default a `MockManager`'s), and writes the manager's answer as
 * `HCRESULT:<number>:<status>:<body>` to the module's command socket, for the result modules
 * only. Unlike agentd it reads several connections at once, and does not retry the POST.
 *
 * @example
 * ```ts
 * const intake = new AgentdIntake({
 *   socketPath: join(dir, 'queue-sync'), manager, agentId: '001',
 *   commandSockets: { syscollector: join(dir, 'wmodules') },
 * });
 * await intake.listen();
 * ```
 */
export class AgentdIntake {
  /** The socket this intake listens on. */
  readonly socketPath: string;
  /** Sessions taken, in order. */
  readonly sessions: AgentdIntakeSession[] = [];
  readonly #transport: SessionTransport;
  readonly #commandSocket: (moduleName: string) => string | undefined;
  readonly #resultModules: ReadonlySet<string>;
  readonly #maxBodyBytes: number;
  readonly #idleTimeoutMs: number;
  readonly #log: LogFunction;
  readonly #stats: AgentdIntakeStats = {
    accepted: 0,
    refused: 0,
    malformed: 0,
    truncated: 0,
    resultsSent: 0,
    resultsDropped: 0,
  };
  readonly #connections = new Set<Socket>();
  readonly #inflight = new Set<Promise<void>>();
  readonly #closing = new AbortController();
  #refusals: Array<{ report: boolean }> = [];
  #server: BoundUnixSocket | undefined;

  /**
   * Nothing listens until `listen()`.
   *
   * @throws TypeError when neither `transport` nor `manager` is given.
   */
  constructor(options: AgentdIntakeOptions) {
    this.socketPath = options.socketPath;
    const transport =
      options.transport ?? options.manager?.sessionTransport(options.agentId ?? '001');
    if (transport === undefined) throw new TypeError('AgentdIntake needs a transport or a manager');
    this.#transport = transport;
    const sockets = options.commandSockets;
    this.#commandSocket =
      typeof sockets === 'function'
        ? sockets
        : (moduleName) =>
            sockets && Object.hasOwn(sockets, moduleName) ? sockets[moduleName] : undefined;
    this.#resultModules = new Set(options.resultModules ?? QUEUE_SYNC_RESULT_MODULES);
    this.#maxBodyBytes = options.maxBodyBytes ?? SYNC_FRAME_MAX_BODY_BYTES;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
    this.#log = toLogFunction(options.logger, 'agentd intake: ', { component: 'agentd-intake' });
  }

  /** Listen on `socketPath`, replacing a file already there as agentd does. */
  async listen(): Promise<void> {
    if (this.#server) throw new Error(`already listening on ${this.socketPath}`);
    // agentd replaces whatever is at the path; binding goes through the shared helper, whose
    // close never removes a file a successor put there.
    await unlink(this.socketPath).catch(() => {});
    const server = createServer((socket) => this.#accept(socket));
    this.#server = await bindUnixSocket(server, this.socketPath, 0o660, this.#connections);
  }

  /**
   * Refuse the next `count` well-formed sessions (answer byte 0), as agentd does when its
   * /stateful queue is full. With `report` (the default, as agentd) a result module is also
   * sent `HCRESULT:<number>:503:` for each.
   */
  refuseNext(count: number, options: { report?: boolean } = {}): void {
    for (let i = 0; i < count; i++) this.#refusals.push({ report: options.report ?? true });
  }

  /**
   * Write an HCRESULT report to `moduleName`'s command socket as agentd would, for any session
   * number (a stale one, in a test). Resolves false when the module has no command socket or the
   * write failed.
   */
  report(moduleName: string, sessionNumber: string, status: number, body = ''): Promise<boolean> {
    const path = this.#commandSocket(moduleName);
    if (path === undefined) return Promise.resolve(false);
    const frame = encodeFrame(syncPrefix(moduleName), encodeHcResult(sessionNumber, status, body));
    return new Promise((resolve) => {
      const socket = createConnection(path, () => socket.end(frame));
      socket.once('error', (error) => {
        this.#log('warn', `could not write to ${path}: ${error.message}`);
        resolve(false);
      });
      socket.once('close', (hadError) => resolve(!hadError));
    });
  }

  /** Counters since the intake was created (a copy). */
  get stats(): AgentdIntakeStats {
    return { ...this.#stats };
  }

  /** Resolves once every session taken so far has been answered and its report written. */
  async drain(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.all(this.#inflight);
  }

  /** Stop listening, drop connections, abort the POSTs under way, remove the socket file if it is still ours. */
  async close(): Promise<void> {
    const bound = this.#server;
    this.#server = undefined;
    this.#closing.abort(new Error('AgentdIntake closed'));
    for (const socket of this.#connections) socket.destroy();
    this.#connections.clear();
    await bound?.close();
  }

  #accept(socket: Socket): void {
    this.#connections.add(socket);
    const reader = new SyncFrameReader(this.#maxBodyBytes);
    let answered = false;
    socket.setTimeout(this.#idleTimeoutMs, () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      if (answered) return;
      const state = reader.push(chunk);
      if (state.kind === 'more') return;
      answered = true;
      socket.setTimeout(0);
      if (state.kind === 'malformed') {
        this.#stats.malformed++;
        this.#log('warn', `refused a malformed frame: ${state.why}`);
        socket.end(Uint8Array.of(SYNC_FRAME_REFUSED));
        return;
      }
      this.#take(socket, state.id, state.body);
    });
    socket.on('error', (error) => this.#log('debug', `connection error: ${error.message}`));
    socket.on('close', () => {
      this.#connections.delete(socket);
      if (!answered) {
        this.#stats.truncated++;
        this.#log('debug', `connection closed mid-frame (${reader.pendingBytes} bytes read)`);
      }
    });
  }

  #take(socket: Socket, id: string, body: Buffer): void {
    const moduleName = moduleOfSession(id);
    const refusal = this.#refusals.shift();
    if (refusal !== undefined) {
      this.#stats.refused++;
      this.#log('info', `refused session ${id} (the /stateful queue is full)`);
      const reported =
        refusal.report && moduleName !== undefined
          ? this.#reportOutcome(id, moduleName, { status: 503, body: '' })
          : Promise.resolve();
      // agentd reports the 503 before it answers the byte.
      void reported.then(() => socket.end(Uint8Array.of(SYNC_FRAME_REFUSED)));
      return;
    }
    this.#stats.accepted++;
    socket.end(Uint8Array.of(SYNC_FRAME_ACCEPTED));
    const session: AgentdIntakeSession = { id, moduleName: moduleName ?? id, body };
    this.sessions.push(session);
    const work = this.#post(session).finally(() => this.#inflight.delete(work));
    this.#inflight.add(work);
  }

  async #post(session: AgentdIntakeSession): Promise<void> {
    let answer: SessionAnswer;
    try {
      answer = await this.#transport.send(
        { id: session.id, moduleName: session.moduleName, body: session.body },
        this.#closing.signal,
      );
      session.answer = answer;
    } catch (error) {
      if (this.#closing.signal.aborted) return;
      this.#log('debug', `session ${session.id}: no HTTP answer: ${(error as Error).message}`);
      // As agentd: no HTTP response at all is reported as status 0.
      answer = { status: 0, body: '' };
    }
    if (this.#closing.signal.aborted) return;
    await this.#reportOutcome(session.id, moduleOfSession(session.id), answer);
  }

  /** The HCRESULT for a session, when agentd would send one. */
  async #reportOutcome(
    id: string,
    moduleName: string | undefined,
    answer: SessionAnswer,
  ): Promise<void> {
    if (moduleName === undefined || !this.#resultModules.has(moduleName)) {
      this.#stats.resultsDropped++;
      this.#log('debug', `no sync route for session ${id}; dropping its result`);
      return;
    }
    const number = id.slice(moduleName.length + 1);
    if (await this.report(moduleName, number, answer.status, answer.body ?? '')) {
      this.#stats.resultsSent++;
    } else {
      this.#stats.resultsDropped++;
    }
  }
}

/** The module of `<module>-<decimal>`, split at the last '-' (as agentd); undefined otherwise. */
function moduleOfSession(id: string): string | undefined {
  const dash = id.lastIndexOf('-');
  if (dash <= 0 || !/^[0-9]+$/.test(id.slice(dash + 1))) return undefined;
  return id.slice(0, dash);
}
