// The Wazuh 5.0 HTTP front of MockManagerServer: `POST /stateful` as the manager's
// inventory_sync_server serves it over its Unix socket (wazuh/wazuh f838614611,
// src/wazuh_modules/inventory_sync_server/src/http_server/), plus what remoted does before
// forwarding that an agent talking to a test rig sees: Content-Encoding (from
// src/remoted/remoted_module/src/decoding/bodyDecoder.cpp) and, with agent keys, the request
// signature (auth/authMiddleware.cpp, endpoints/authGateway.cpp, endpoints/statefulEndpoint.cpp).
// Each request-level check below cites the source it mirrors; what the body means is
// MockManager.stateful's business.
import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Socket } from 'node:net';
import * as zlib from 'node:zlib';
import type { LogFunction } from '../interfaces/logger.js';
import { errorMessage } from '../session/sync-error.js';
import {
  SIGNATURE_PROTOCOL_VERSION,
  verifyRequestSignature,
} from '../transports/request-signature.js';
import { type BoundUnixSocket, bindUnixSocket } from '../transports/unix-socket-file.js';
import type { MockManager, StatefulAnswer } from './mock-manager.js';

/** The real default of `max_parallel_connections` (http_server/IUdsHttpServer.hpp). */
export const DEFAULT_STATEFUL_MAX_CONNECTIONS = 1024;

/** `{"error":"<reason>","code":<status>}`, the shape of every refusal (asioUdsHttpServer.cpp). */
const refusal = (status: number, reason: string): StatefulAnswer => ({
  status,
  body: `{"error":"${reason}","code":${status}}`,
});

/** What the headers of a `/stateful` request say, once the head-level checks passed. */
interface StatefulHead {
  /** `X-Wazuh-Agent-Id`; '' when missing (the manager answers 400 for it). */
  agentId: string;
  /** `X-Session-Id`, logged by the manager. */
  sessionId: string | undefined;
  /** `Content-Encoding`: none, zstd, or one that is refused 415 once the body is read. */
  encoding: 'none' | 'zstd' | 'unsupported';
}

type Zstd = (buffer: Buffer, options?: { maxOutputLength?: number }) => Buffer;

/**
 * `zlib.zstdDecompressSync` where the runtime has it (Node 22.15 / 23.8 and later); Node 20
 * lacks it, and then `Content-Encoding: zstd` is refused 415, as remoted refuses it when its
 * decoder is turned off.
 */
const zstdDecompress = (zlib as unknown as { zstdDecompressSync?: Zstd }).zstdDecompressSync;

/** The key of an agent by its id as signed; empty bytes for an unusable key (see client-keys.ts). */
export type KeyLookup = (signedAgentId: string) => Uint8Array | undefined;

/** Answers `POST /stateful` for a {@link MockManager}; MockManagerServer routes requests here. */
export class StatefulHttp {
  readonly #manager: MockManager;
  readonly #log: LogFunction;
  readonly #keyFor: KeyLookup | undefined;

  /** With `keyFor`, every request must be signed, as remoted requires (see {@link authenticate}). */
  constructor(manager: MockManager, log: LogFunction, keyFor?: KeyLookup) {
    this.#manager = manager;
    this.#log = log;
    this.#keyFor = keyFor;
  }

  /** Answer one `POST /stateful`; the response always closes the connection. */
  handle(request: IncomingMessage, response: ServerResponse): void {
    const head = this.#statefulRequest(request);
    if ('status' in head) {
      // Decided at headers-complete: answered without reading one byte of the body.
      send(response, head);
      return;
    }
    const cap = this.#manager.statefulMaxBodyBytes;
    readBounded(request, cap).then(
      (body) => {
        // Only a peer sending more than it declared gets here (Node's parser stops at
        // Content-Length); requestParser.cpp `onBody` checks each chunk the same way.
        if (body === undefined) return send(response, refusal(413, 'Request body is too large'));
        let agentId = head.agentId;
        if (this.#keyFor !== undefined) {
          const checked = this.#authenticate(request, body, this.#keyFor);
          if (typeof checked !== 'string') return send(response, checked);
          agentId = checked;
        }
        const decoded = decode(head.encoding, body, cap);
        if ('status' in decoded) return send(response, decoded);
        this.#manager
          .stateful(decoded, { agentId, sessionId: head.sessionId })
          .then((answer) => send(response, answer));
      },
      (error: unknown) => this.#log('debug', `stateful request lost: ${errorMessage(error)}`),
    );
  }

  /**
   * remoted's part, when agent keys are configured, once the body is read and before it is
   * decoded (endpoints/authGateway.cpp: authentication, then the body decoder): the agent id
   * the request goes on with (the signed one, as client.keys spells it), or the refusal.
   * - 400 `Missing required header: protocol-version` / `Unsupported protocol-version`
   *   (auth/authMiddleware.cpp `beginSession` step 1, `publicErrorFor`).
   * - 401 `Invalid client authentication`: no, malformed, expired or future `Authorization`, an
   *   unknown agent, an unusable key, a MAC that does not match; one answer for all, so a client
   *   cannot tell which (`publicErrorFor`); the reason is logged, as `errorResponseFor` does.
   * - 400 `Empty request body` (endpoints/statefulEndpoint.cpp `makeHandler`).
   *
   * The agent's own `X-Wazuh-Agent-Id` is not used: remoted writes the header itself from the
   * verified signature (statefulEndpoint.cpp `target`), so a different one changes nothing.
   */
  #authenticate(
    request: IncomingMessage,
    body: Buffer,
    keyFor: KeyLookup,
  ): string | StatefulAnswer {
    const version = request.headers['protocol-version'];
    if (version === undefined || version === '') {
      return refusal(400, 'Missing required header: protocol-version');
    }
    if (version !== SIGNATURE_PROTOCOL_VERSION) return refusal(400, 'Unsupported protocol-version');
    const verdict = verifyRequestSignature(request.headers.authorization, {
      method: request.method ?? 'POST',
      target: request.url ?? '/stateful',
      body,
      keyFor,
    });
    if (!verdict.ok) {
      this.#log('debug', `stateful request refused 401 (${verdict.reason}): ${verdict.message}`, {
        reason: verdict.reason,
      });
      return refusal(401, 'Invalid client authentication');
    }
    if (body.length === 0) return refusal(400, 'Empty request body');
    return verdict.agentId;
  }

  /**
   * The request-level checks and header parsing of a `/stateful` request, in one place; the
   * signature, when checked, is verified over the body once it is read (see #authenticate).
   */
  #statefulRequest(request: IncomingMessage): StatefulHead | StatefulAnswer {
    // requestParser.cpp `onHeadersComplete`: a chunked body is refused (411), and a declared
    // length over the body cap (the in-flight budget minus one request's overhead) is refused
    // unread (413).
    const transfer = request.headers['transfer-encoding'];
    if (transfer?.toLowerCase().includes('chunked')) {
      return refusal(411, 'Content-Length is required; chunked transfer encoding is not supported');
    }
    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > this.#manager.statefulMaxBodyBytes) {
      return refusal(413, 'Request body is too large');
    }
    // remoted's decoding/bodyDecoder.cpp `parseContentEncoding`: none, or `zstd` in any case;
    // anything else (`identity` included) is refused 415 after the body is read, as is zstd
    // where it cannot be decoded (as with remoted's decoder turned off).
    const header = request.headers['content-encoding'] ?? '';
    const zstd = header.toLowerCase() === 'zstd' && zstdDecompress !== undefined;
    const encoding = header === '' ? 'none' : zstd ? 'zstd' : 'unsupported';
    // endpoints/syncEndpoint.cpp reads the agent id header remoted sets; a missing one is
    // answered 400 by the manager after the body is read, as there. With agent keys, the signed
    // id replaces it (#authenticate).
    const agentId = request.headers['x-wazuh-agent-id'];
    const sessionId = request.headers['x-session-id'];
    return {
      agentId: typeof agentId === 'string' ? agentId : '',
      sessionId: typeof sessionId === 'string' ? sessionId : undefined,
      encoding,
    };
  }
}

/**
 * The whole body, or undefined once it passes `cap` bytes (what was read is dropped and the
 * rest is not read).
 */
function readBounded(request: IncomingMessage, cap: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    request.on('data', (chunk: Buffer) => {
      length += chunk.length;
      if (length > cap) {
        chunks.length = 0;
        request.pause();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    });
    request.once('end', () => resolve(Buffer.concat(chunks)));
    request.once('error', reject);
    request.once('close', () => {
      if (!request.complete) reject(new Error('the client went away before sending the body'));
    });
  });
}

/**
 * remoted's bodyDecoder.cpp `decode`: an unsupported encoding is 415; a zstd body decoded to
 * over the cap is 413, one zstd cannot read is 400.
 */
function decode(
  encoding: StatefulHead['encoding'],
  body: Buffer,
  cap: number,
): Buffer | StatefulAnswer {
  if (encoding === 'none') return body;
  if (encoding === 'unsupported') return refusal(415, 'Unsupported Content-Encoding');
  const decompress = zstdDecompress as Zstd;
  try {
    return decompress(body, Number.isFinite(cap) ? { maxOutputLength: Math.max(cap, 1) } : {});
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      return refusal(413, 'Request payload is too large');
    }
    return refusal(400, 'Malformed compressed body');
  }
}

/**
 * The answer as the real transport writes it (asioUdsHttpServer.cpp `serializeHead`):
 * `Content-Type: application/json`, `Connection: close` (one request per connection), and
 * `Retry-After` when the answer has one (endpoints/syncEndpoint.cpp, VD feed not ready; the
 * mock's injected 503s).
 */
function send(response: ServerResponse, answer: StatefulAnswer): void {
  if (response.headersSent || response.destroyed) return;
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(answer.body),
    connection: 'close',
  };
  if (answer.retryAfterSeconds !== undefined) headers['retry-after'] = answer.retryAfterSeconds;
  response.writeHead(answer.status, headers);
  response.end(answer.body);
}

/**
 * The HTTP endpoint served on a Unix STREAM socket, as the real module serves it, with its
 * connection cap: a connection beyond `maxConnections` is answered 503 `Too many concurrent
 * connections` and closed without being read (asioUdsHttpServer.cpp `doAccept`).
 */
export class UnixHttpListener {
  readonly #http: HttpServer;
  readonly #maxConnections: number;
  readonly #log: LogFunction;
  readonly #sockets = new Set<Socket>();
  #served = 0;
  /** The socket listened on; its close() never removes a successor's file. */
  #bound: BoundUnixSocket | undefined;

  /** Accepted connections are handed to `http`. */
  constructor(http: HttpServer, maxConnections: number, log: LogFunction) {
    this.#http = http;
    this.#maxConnections = maxConnections;
    this.#log = log;
  }

  /**
   * Listen on `path`, created mode 0660 (the real `socketMode`). A stale socket file (nothing
   * accepts on it) is replaced; a live one, or a file that is not a socket, is an error.
   */
  async listen(path: string): Promise<void> {
    const server = createServer((socket) => this.#accept(socket));
    try {
      this.#bound = await bindUnixSocket(server, path, 0o660, this.#sockets);
    } catch (error) {
      const named = new Error(`cannot serve the stateful socket ${path}: ${errorMessage(error)}`, {
        cause: error,
      });
      Object.assign(named, { code: (error as NodeJS.ErrnoException).code });
      throw named;
    }
    server.on('error', (error) => this.#log('error', `socket error: ${error.message}`));
  }

  /** Stop listening, drop every connection, and remove the socket file if it is still ours. */
  async close(): Promise<void> {
    const bound = this.#bound;
    this.#bound = undefined;
    await bound?.close();
  }

  #accept(socket: Socket): void {
    this.#sockets.add(socket);
    socket.on('error', (error) => this.#log('debug', `connection error: ${error.message}`));
    if (this.#served >= this.#maxConnections) {
      socket.once('close', () => this.#sockets.delete(socket));
      this.#log('warn', `connection refused with 503: ${this.#maxConnections} already open`);
      const { status, body } = refusal(503, 'Too many concurrent connections');
      socket.resume();
      socket.end(
        `HTTP/1.1 ${status} Service Unavailable\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
      return;
    }
    this.#served++;
    socket.once('close', () => {
      this.#served--;
      this.#sockets.delete(socket);
    });
    this.#http.emit('connection', socket);
  }
}
