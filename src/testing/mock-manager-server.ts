import {
  createServer as createHttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer, type Server, type Socket } from 'node:net';
import type { LogFunction, Logger } from '../interfaces/logger.js';
import { toLogFunction } from '../logging.js';
import {
  DEFAULT_MAX_FRAME_BYTES,
  encodeFrame,
  FrameReader,
  parseQueueMessage,
  syncPrefix,
} from '../transports/stream-framing.js';
import { type AgentKeys, agentKeyLookup } from './client-keys.js';
import { parseFaultRule } from './fault-rule-json.js';
import {
  type FaultRule,
  MockManager,
  type MockManagerOptions,
  type ReplyFunction,
  type StatefulFault,
} from './mock-manager.js';
import { parseStatefulFault } from './stateful-fault-json.js';
import {
  DEFAULT_STATEFUL_MAX_CONNECTIONS,
  StatefulHttp,
  UnixHttpListener,
} from './stateful-http.js';

/** Options of {@link MockManagerServer}; every one is optional. */
export interface MockManagerServerOptions {
  /** The manager to serve; it stays the caller's (`close()` leaves it open). Default: a new one. */
  manager?: MockManager;
  /** Options of the manager created when `manager` is not given. */
  managerOptions?: MockManagerOptions;
  /** Address of both listeners. Default `127.0.0.1`. */
  host?: string;
  /** TCP port of the protocol listener; 0 (default) picks a free one. */
  port?: number;
  /** TCP port of the HTTP endpoint; 0 (default) picks a free one. */
  httpPort?: number;
  /** Largest frame accepted from an agent; a longer one closes its connection. Default 65536 + 256. */
  maxFrameBytes?: number;
  /**
   * Also serve the HTTP endpoint (`POST /stateful` and the JSON endpoints) on a Unix STREAM
   * socket at this path, as the real 5.0 manager module serves `/stateful`. The file is created
   * mode 0660; a stale socket there (nothing accepts on it) is replaced, a live one or another
   * kind of file makes {@link MockManagerServer.start} fail. `close()` removes the file if it is
   * still the one it created. Default: no socket.
   */
  statefulSocketPath?: string;
  /**
   * Connections the Unix socket of `statefulSocketPath` serves at once; one more is answered 503
   * `Too many concurrent connections` and closed, as the real module's
   * `max_parallel_connections` does. Default 1024, the real default.
   */
  statefulMaxConnections?: number;
  /**
   * Check `/stateful` request signatures with these agent keys, as remoted does in front of the
   * manager module: the client.keys hex of each agent by id (`'001'` and `'1'` are the same
   * agent), or a function given the id as client.keys spells it (see {@link parseClientKeys} to
   * read a client.keys file). Every `/stateful` request (on the HTTP port and on
   * `statefulSocketPath`) must then carry `protocol-version: 1` (else 400) and a valid
   * `Authorization: Wazuh <id>:<ts>:<mac>` (else 401 `Invalid client authentication`, whatever
   * the cause: no header, a malformed one, a timestamp outside 300 s back or 30 s ahead, an
   * unknown agent, a key that is not lowercase hex of 16, 24 or 32 bytes, a wrong MAC); an
   * empty body is 400 `Empty request body`. The check runs after the body is read and before
   * its Content-Encoding is acted on (415 only for an authenticated request). The session goes
   * to the manager as sent by the signed agent: `X-Wazuh-Agent-Id` is ignored, as remoted
   * writes its own. Default: none, the module reached directly (`X-Wazuh-Agent-Id` names the
   * agent).
   */
  agentKeys?: AgentKeys;
  /**
   * Where the server logs listening, dropped connections and injected faults, each message
   * prefixed `mock-manager-server: ` (the manager logs through its own `logger`). Default: silent.
   */
  logger?: Logger;
}

/** Where a started server listens. */
export interface MockManagerServerAddress {
  /** The address both listeners are bound to. */
  host: string;
  /** TCP port of the protocol listener (give it to `TcpTransport`). */
  port: number;
  /** TCP port of the HTTP endpoint. */
  httpPort: number;
  /** The Unix socket serving the HTTP endpoint too, when `statefulSocketPath` was given. */
  statefulSocketPath?: string;
}

/** An agent that stops reading its answers is dropped beyond this much unsent data. */
const MAX_UNSENT_BYTES = 16 * 1024 * 1024;

interface Connection {
  socket: Socket;
  /** One reply function per module, so the manager's sessions route answers back here. */
  replies: Map<string, ReplyFunction>;
}

/**
 * A {@link MockManager} served over TCP (the framing of the `TcpTransport`:
 * 4-byte little-endian length, then `s:<module>:<bytes>` in and
 * `<module>_sync <bytes>` out), plus a small JSON endpoint over HTTP for
 * tests in other processes:
 * - `GET /health`: `{"status":"ok"}`.
 * - `GET /stats`: {@link MockManager.stats} plus `sessionCount`, `connections` and
 *   `statefulStats` ({@link MockManager.statefulStats}).
 * - `GET /documents[?index=NAME&agent=ID]`: the stored documents, of both wires.
 * - `POST /faults` with a {@link FaultRule} as JSON body (`seq` a number or decimal string,
 *   `times` a number or "Infinity"): injects it; 201, or 400 saying which field is wrong.
 * - `POST /stateful-faults` with a {@link StatefulFault} as JSON body (`times` a number or
 *   "Infinity"): injects it; 201, or 400 saying which field is wrong.
 * - `DELETE /faults`: removes every rule, of both wires.
 * - `POST /reset`: {@link MockManager.reset} (documents, faults, forced statuses, counters).
 * - `POST /stateful`: a Wazuh 5.0 session, as the real manager's Unix socket takes it
 *   (`X-Wazuh-Agent-Id`, `Content-Length`, optional `X-Session-Id` and `Content-Encoding:
 *   zstd`), answered by {@link MockManager.stateful} with its status, JSON body, `Retry-After`
 *   when it has one, and `Connection: close`. Refused before the manager sees it, like the real
 *   front: 411 for a chunked body, 413 for a declared length over
 *   {@link MockManager.statefulMaxBodyBytes} (the body is not read), 415 for a
 *   `Content-Encoding` other than zstd (or zstd where the runtime lacks it, as Node 20 does).
 *   With `statefulSocketPath` the whole HTTP endpoint is also served on that Unix socket.
 *   With `agentKeys`, requests must also be signed, as remoted requires in front of the module
 *   (see {@link MockManagerServerOptions.agentKeys}).
 *
 * Each seed-wire answer goes to the connection that started the session.
 *
 * Also available as the `agent-sync-mock-manager` command.
 *
 * @example
 * ```ts
 * const server = new MockManagerServer({ managerOptions: { endAckDelayMs: 100 } });
 * const { port, httpPort } = await server.start();
 * const transport = new TcpTransport({ port });
 * // ... sync, then from anywhere:
 * await fetch(`http://127.0.0.1:${httpPort}/faults`, {
 *   method: 'POST',
 *   body: JSON.stringify({ type: 'DataValue', action: 'drop', probability: 0.1, times: 'Infinity' }),
 * });
 * await server.close();
 * ```
 */
export class MockManagerServer {
  /** The manager served: a test in the same process can script it directly. */
  readonly manager: MockManager;
  readonly #ownsManager: boolean;
  readonly #host: string;
  readonly #requestedPort: number;
  readonly #requestedHttpPort: number;
  readonly #maxFrameBytes: number;
  readonly #log: LogFunction;
  readonly #connections = new Set<Connection>();
  readonly #prefixes = new Map<string, Uint8Array>();
  readonly #stateful: StatefulHttp;
  readonly #socketPath: string | undefined;
  readonly #maxSocketConnections: number;
  #unix: UnixHttpListener | undefined;
  #tcp: Server | undefined;
  #http: ReturnType<typeof createHttpServer> | undefined;
  #address: MockManagerServerAddress | undefined;
  #starting: Promise<MockManagerServerAddress> | undefined;
  #closed = false;

  /**
   * Nothing listens until {@link start}.
   *
   * @throws RangeError for `statefulMaxConnections` out of range; TypeError for an `agentKeys`
   *   record naming an agent id that is not decimal digits.
   */
  constructor(options: MockManagerServerOptions = {}) {
    this.#ownsManager = options.manager === undefined;
    this.manager = options.manager ?? new MockManager(options.managerOptions);
    this.#host = options.host ?? '127.0.0.1';
    this.#requestedPort = options.port ?? 0;
    this.#requestedHttpPort = options.httpPort ?? 0;
    this.#maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.#log = toLogFunction(options.logger, 'mock-manager-server: ', {
      component: 'mock-manager-server',
    });
    const keyFor = options.agentKeys === undefined ? undefined : agentKeyLookup(options.agentKeys);
    this.#stateful = new StatefulHttp(this.manager, this.#log, keyFor);
    this.#socketPath = options.statefulSocketPath;
    const cap = options.statefulMaxConnections ?? DEFAULT_STATEFUL_MAX_CONNECTIONS;
    if (!Number.isSafeInteger(cap) || cap < 1) {
      throw new RangeError('statefulMaxConnections must be a positive integer');
    }
    this.#maxSocketConnections = cap;
  }

  /**
   * Open both listeners; resolves with the ports actually bound. Calling it again returns the
   * same promise.
   *
   * @throws Error (rejects) when the server is closed, or a port cannot be bound (EADDRINUSE...).
   */
  start(): Promise<MockManagerServerAddress> {
    if (this.#closed) return Promise.reject(new Error('MockManagerServer is closed'));
    this.#starting ??= this.#open().catch((error: unknown) => {
      this.#starting = undefined;
      throw error;
    });
    return this.#starting;
  }

  async #open(): Promise<MockManagerServerAddress> {
    const tcp = createServer((socket) => this.#accept(socket));
    const http = createHttpServer((request, response) => this.#handle(request, response));
    const unix =
      this.#socketPath === undefined
        ? undefined
        : new UnixHttpListener(http, this.#maxSocketConnections, this.#log);
    try {
      const port = await listen(tcp, this.#requestedPort, this.#host);
      const httpPort = await listen(http, this.#requestedHttpPort, this.#host);
      if (unix && this.#socketPath !== undefined) await unix.listen(this.#socketPath);
      this.#tcp = tcp;
      this.#http = http;
      this.#unix = unix;
      this.#address = { host: this.#host, port, httpPort };
      if (this.#socketPath !== undefined) this.#address.statefulSocketPath = this.#socketPath;
    } catch (error) {
      tcp.close();
      http.close();
      throw error;
    }
    tcp.on('error', (error) => this.#log('error', `server error: ${error.message}`));
    const socket = this.#socketPath === undefined ? '' : `, HTTP on ${this.#socketPath}`;
    this.#log(
      'info',
      `listening on ${this.#host}:${this.#address.port}, HTTP ${this.#address.httpPort}${socket}`,
    );
    return this.#address;
  }

  /**
   * TCP port of the protocol listener.
   *
   * @throws Error before `start()` resolved or after `close()`.
   */
  get port(): number {
    return this.#started().port;
  }

  /**
   * TCP port of the HTTP endpoint.
   *
   * @throws Error before `start()` resolved or after `close()`.
   */
  get httpPort(): number {
    return this.#started().httpPort;
  }

  /** Open agent connections. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /**
   * Stop both listeners and drop every connection (agents see the drop and
   * reconnect to whatever listens next). Closes the manager only if this
   * server created it. Final: to serve again, create a new server (it may
   * serve the same manager).
   */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#starting?.catch(() => {});
    this.#starting = undefined;
    const tcp = this.#tcp;
    const http = this.#http;
    const unix = this.#unix;
    this.#tcp = undefined;
    this.#http = undefined;
    this.#unix = undefined;
    this.#address = undefined;
    for (const connection of this.#connections) connection.socket.destroy();
    this.#connections.clear();
    const closing: Promise<void>[] = [];
    if (tcp) closing.push(new Promise((resolve) => tcp.close(() => resolve())));
    if (unix) closing.push(unix.close());
    if (http) {
      http.closeAllConnections();
      closing.push(new Promise((resolve) => http.close(() => resolve())));
    }
    await Promise.all(closing);
    if (this.#ownsManager) await this.manager.close();
  }

  #started(): MockManagerServerAddress {
    if (!this.#address) throw new Error('MockManagerServer is not started');
    return this.#address;
  }

  #accept(socket: Socket): void {
    const connection: Connection = { socket, replies: new Map() };
    this.#connections.add(connection);
    socket.setNoDelay(true);
    const reader = new FrameReader(this.#maxFrameBytes);
    const onFrame = (payload: Buffer) => this.#receive(connection, payload);
    socket.on('data', (chunk: Buffer) => {
      const oversized = reader.push(chunk, onFrame);
      if (oversized !== undefined) {
        this.#log('warn', `frame of ${oversized} bytes from an agent: connection closed`);
        socket.destroy();
      }
    });
    socket.on('error', (error) => this.#log('debug', `connection error: ${error.message}`));
    socket.on('close', () => this.#connections.delete(connection));
  }

  #receive(connection: Connection, payload: Buffer): void {
    const parsed = parseQueueMessage(payload);
    if (parsed === undefined) {
      this.#log('warn', `ignored a frame of ${payload.length} bytes without an s:<module>: header`);
      return;
    }
    const { moduleName, message } = parsed;
    let reply = connection.replies.get(moduleName);
    if (reply === undefined) {
      reply = (response) => this.#respond(connection.socket, moduleName, response);
      connection.replies.set(moduleName, reply);
    }
    this.manager.receive(message, moduleName, reply);
  }

  #respond(socket: Socket, moduleName: string, response: Uint8Array): void {
    if (socket.destroyed || !socket.writable) return;
    if (socket.writableLength > MAX_UNSENT_BYTES) {
      this.#log('warn', `agent of '${moduleName}' does not read its answers: connection closed`);
      socket.destroy();
      return;
    }
    let prefix = this.#prefixes.get(moduleName);
    if (prefix === undefined) {
      prefix = syncPrefix(moduleName);
      this.#prefixes.set(moduleName, prefix);
    }
    socket.write(encodeFrame(prefix, response));
  }

  #handle(request: IncomingMessage, response: ServerResponse): void {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const route = ROUTES[url.pathname];
    if (route === undefined) {
      sendJson(response, 404, { error: `no such endpoint: ${url.pathname}` });
      return;
    }
    const method = request.method === 'HEAD' ? 'GET' : (request.method ?? 'GET');
    if (!route.includes(method)) {
      response.setHeader('allow', route.join(', '));
      sendJson(response, 405, { error: `${url.pathname} takes ${route.join(' or ')}` });
      return;
    }
    if (url.pathname === '/stateful') {
      this.#stateful.handle(request, response);
      return;
    }
    if (method !== 'POST') {
      this.#answer(method, url, undefined, response);
      return;
    }
    readBody(request).then(
      (body) => this.#answer(method, url, body, response),
      (error: unknown) =>
        sendJson(response, error instanceof BodyTooLarge ? 413 : 400, {
          error: error instanceof Error ? error.message : String(error),
        }),
    );
  }

  /** `body`: the parsed JSON of a POST (undefined when empty). */
  #answer(method: string, url: URL, body: unknown, response: ServerResponse): void {
    const manager = this.manager;
    switch (`${method} ${url.pathname}`) {
      case 'GET /health':
        sendJson(response, 200, { status: 'ok' });
        return;
      case 'GET /stats':
        sendJson(response, 200, {
          ...manager.stats,
          sessionCount: manager.sessionCount,
          connections: this.#connections.size,
          statefulStats: manager.statefulStats,
        });
        return;
      case 'GET /documents': {
        const index = url.searchParams.get('index') ?? undefined;
        const agent = url.searchParams.get('agent');
        let documents = manager.documents(index);
        if (agent !== null) documents = documents.filter((doc) => doc.agentId === agent);
        sendJson(response, 200, documents);
        return;
      }
      case 'POST /faults':
        this.#inject(body, response, parseFaultRule, (rule) => manager.inject(rule));
        return;
      case 'POST /stateful-faults':
        this.#inject(body, response, parseStatefulFault, (fault) => manager.injectStateful(fault));
        return;
      case 'DELETE /faults':
        manager.clearFaults();
        sendJson(response, 200, { status: 'ok' });
        return;
      case 'POST /reset':
        if (body !== undefined) {
          sendJson(response, 400, { error: '/reset takes no body' });
          return;
        }
        manager.reset();
        sendJson(response, 200, { status: 'ok' });
        return;
    }
  }

  /** Parse a fault from a POST body and inject it: 201, or 400 naming the bad field. */
  #inject<T>(
    body: unknown,
    response: ServerResponse,
    parse: (json: unknown) => T,
    inject: (fault: T) => void,
  ): void {
    try {
      inject(parse(body));
    } catch (error) {
      sendJson(response, 400, { error: (error as Error).message });
      return;
    }
    this.#log('info', `fault injected: ${JSON.stringify(body)}`);
    sendJson(response, 201, { status: 'ok' });
  }
}

/** The endpoints and the methods each takes (HEAD goes with GET). */
const ROUTES: Record<string, string[] | undefined> = {
  '/health': ['GET'],
  '/stats': ['GET'],
  '/documents': ['GET'],
  '/faults': ['POST', 'DELETE'],
  '/reset': ['POST'],
  '/stateful': ['POST'],
  '/stateful-faults': ['POST'],
};

/** A fault rule is a few hundred bytes; anything near this is a mistake. */
const MAX_BODY_BYTES = 64 * 1024;

class BodyTooLarge extends Error {}

/** The request body parsed as JSON; undefined when empty. Rejects with a message for a 400. */
async function readBody(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > MAX_BODY_BYTES) throw new BodyTooLarge(`body above ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new Error(`body is not JSON: ${(error as Error).message}`);
  }
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  response.end(text);
}

/** Works for the HTTP server too: it is a net.Server. */
function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
