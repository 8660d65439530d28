import { createServer, type Socket } from 'node:net';
import type { LogFunction, Logger } from '../interfaces/logger.js';
import { toLogFunction } from '../logging.js';
import {
  DEFAULT_MAX_FRAME_BYTES,
  describeUnclaimed,
  FrameReader,
  matchSyncResponse,
  syncPrefix,
} from './stream-framing.js';
import { type BoundUnixSocket, bindUnixSocket } from './unix-socket-file.js';

/** What a response is handed to: an `AgentSyncProtocol` fits. */
export interface ResponseTarget {
  /**
   * Take one response: the bytes after `<module>_sync `. Returns false when
   * they are not a valid manager message; must not throw.
   */
  parseResponseBuffer(bytes: Uint8Array): boolean;
}

/** Options of {@link WazuhResponseListener}. */
export interface WazuhResponseListenerOptions {
  /** Default: silent. */
  logger?: Logger;
  /**
   * Largest frame payload accepted (the 4-byte length field excluded); a
   * longer frame closes its connection instead of being buffered. Default
   * 65536 + 256 (a whole message plus its `<module>_sync ` prefix).
   */
  maxFrameBytes?: number;
}

/**
 * The module's command socket: a Unix stream socket on which the agent
 * forwards the manager's answers, each frame a 4-byte little-endian length
 * then `<module>_sync <bytes>`. Each response goes to the protocol
 * registered for its module.
 *
 * ```ts
 * const listener = new WazuhResponseListener({ logger });
 * listener.register('fim', sync);
 * await listener.listen('/var/ossec/queue/sockets/fim_sync');
 * ```
 */
export class WazuhResponseListener {
  readonly #log: LogFunction;
  readonly #maxFrameBytes: number;
  readonly #targets = new Map<string, ResponseTarget>();
  readonly #prefixes = new Map<string, Uint8Array>();
  readonly #connections = new Set<Socket>();
  /** The socket listened on; its close() never removes a successor's file. */
  #bound: BoundUnixSocket | undefined;

  /**
   * Nothing listens until `listen(path)`.
   *
   * @throws RangeError when `maxFrameBytes` is not a positive integer.
   */
  constructor(options: WazuhResponseListenerOptions = {}) {
    this.#log = toLogFunction(options.logger, 'response listener: ', {
      component: 'response-listener',
    });
    this.#maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    if (!Number.isInteger(this.#maxFrameBytes) || this.#maxFrameBytes < 1) {
      throw new RangeError('maxFrameBytes must be a positive integer');
    }
  }

  /**
   * Hand responses for `moduleName` to `target` (replacing an earlier registration).
   *
   * @throws TypeError when `moduleName` is empty or `target` has no `parseResponseBuffer`.
   */
  register(moduleName: string, target: ResponseTarget): void {
    if (typeof moduleName !== 'string' || moduleName.length === 0) {
      throw new TypeError('moduleName must be a non-empty string');
    }
    if (typeof target?.parseResponseBuffer !== 'function') {
      throw new TypeError('target must have parseResponseBuffer(bytes)');
    }
    this.#targets.set(moduleName, target);
    this.#prefixes.set(moduleName, syncPrefix(moduleName));
  }

  /** Stop handing responses for `moduleName` to anyone. */
  unregister(moduleName: string): void {
    this.#targets.delete(moduleName);
    this.#prefixes.delete(moduleName);
  }

  /**
   * Listen on the Unix socket `path`, created mode 0600. A stale socket file
   * (nothing accepts on it) is replaced; a live one, or a file that is not a
   * socket, is an error.
   *
   * @throws Error (rejects) when already listening, when another process
   *   listens on `path`, when `path` exists and is not a socket, or when the
   *   directory does not allow creating the socket.
   */
  async listen(path: string): Promise<void> {
    if (this.#bound) throw new Error(`already listening on ${this.#bound.path}`);
    const server = createServer((socket) => this.#accept(socket));
    this.#bound = await bindUnixSocket(server, path, 0o600, this.#connections);
    server.on('error', (error) => this.#log('error', `server error: ${error.message}`));
    this.#log('info', `listening on ${path}`);
  }

  /** Open connections from the agent. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Stop listening, drop every connection and remove the socket file. */
  async close(): Promise<void> {
    const bound = this.#bound;
    this.#bound = undefined;
    await bound?.close();
  }

  #accept(socket: Socket): void {
    this.#connections.add(socket);
    const reader = new FrameReader(this.#maxFrameBytes);
    const onFrame = (payload: Buffer) => this.#dispatch(payload);
    socket.on('data', (chunk: Buffer) => {
      const oversized = reader.push(chunk, onFrame);
      if (oversized !== undefined) {
        this.#log(
          'warn',
          `frame of ${oversized} bytes exceeds ${this.#maxFrameBytes}: connection closed`,
        );
        socket.destroy();
      }
    });
    socket.on('error', (error) => this.#log('debug', `connection error: ${error.message}`));
    socket.on('close', () => {
      this.#connections.delete(socket);
      if (reader.pendingBytes > 0) {
        this.#log(
          'debug',
          `connection closed mid-frame: ${reader.pendingBytes} byte(s) of it dropped`,
        );
      }
    });
  }

  #dispatch(payload: Buffer): void {
    const match = matchSyncResponse(payload, this.#prefixes);
    if (match === undefined) {
      this.#log(
        'warn',
        `ignored a frame of ${payload.length} bytes: ${describeUnclaimed(payload)}`,
      );
      return;
    }
    const target = this.#targets.get(match.moduleName) as ResponseTarget;
    let accepted = false;
    try {
      accepted = target.parseResponseBuffer(match.message);
    } catch (error) {
      // A target's failure must not take the other modules' responses down with it.
      this.#log(
        'error',
        `'${match.moduleName}' threw on a response: ${error instanceof Error ? error.message : error}`,
      );
      return;
    }
    if (!accepted) {
      this.#log(
        'debug',
        `'${match.moduleName}' rejected a response of ${match.message.length} bytes`,
      );
    }
  }
}
