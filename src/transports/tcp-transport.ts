import { createConnection, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LogFunction, Logger } from '../interfaces/logger.js';
import type { MQueueTransport } from '../interfaces/transport.js';
import { toLogFunction } from '../logging.js';
import { frameHeader } from '../wire/framing.js';
import {
  DEFAULT_MAX_FRAME_BYTES,
  describeUnclaimed,
  encodeFrame,
  FrameReader,
  matchSyncResponse,
  syncPrefix,
} from './stream-framing.js';

/** How {@link TcpTransport} reconnects after a dropped connection. */
export interface TcpReconnectOptions {
  /** Extra connection attempts when `start()` re-opens after a drop. Default 3. */
  retries?: number;
  /** Pause before the first extra attempt; doubles each time. Default 50. */
  minDelayMs?: number;
  /** Cap of that pause. Default 1000. */
  maxDelayMs?: number;
}

/** Options of {@link TcpTransport}. */
export interface TcpTransportOptions {
  /** Default `127.0.0.1`. */
  host?: string;
  /** The server's TCP port, 1..65535. */
  port: number;
  /**
   * Module(s) whose responses this transport delivers to its `onResponse`
   * listeners. Default: every module it has sent a message for.
   */
  moduleName?: string | readonly string[];
  /** Give up a connection attempt after this long. Default 5000. */
  connectTimeoutMs?: number;
  /** Reconnection after a drop; see {@link TcpReconnectOptions} for the defaults. */
  reconnect?: TcpReconnectOptions;
  /** Largest frame accepted from the server; a longer one drops the connection. Default 65536 + 256. */
  maxFrameBytes?: number;
  /** Default: silent. */
  logger?: Logger;
}

/**
 * A transport to a manager (or the testing `MockManagerServer`) over TCP. Each frame
 * is a 4-byte little-endian length then the payload: `s:<escaped module>:<bytes>`
 * to the manager (the agent queue's framing, so the server knows the module),
 * `<module>_sync <bytes>` back.
 *
 * A dropped connection makes the next `send()` reject; the protocol then
 * calls `start()`, which reconnects (with a short capped backoff), and sends
 * that message once more.
 *
 * @example
 * ```ts
 * // Against `npx agent-sync-mock-manager --port 7000`:
 * const sync = new AgentSyncProtocol({
 *   moduleName: 'fim',
 *   dbPath,
 *   transport: new TcpTransport({ host: '127.0.0.1', port: 7000 }),
 * });
 * ```
 */
export class TcpTransport implements MQueueTransport {
  /** The server's host, as given or the default. */
  readonly host: string;
  /** The server's port. */
  readonly port: number;
  readonly #fixedModules: boolean;
  readonly #prefixes = new Map<string, Uint8Array>();
  readonly #headers = new Map<string, Uint8Array>();
  readonly #listeners: Array<(message: Uint8Array) => void> = [];
  readonly #connectTimeoutMs: number;
  readonly #retries: number;
  readonly #minDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #maxFrameBytes: number;
  readonly #log: LogFunction;
  #socket: Socket | undefined;
  #connecting: Promise<void> | undefined;
  /** Set once a connection was up: later starts are reconnects and may retry. */
  #everConnected = false;
  /** Settles when the socket drains (or closes); sends wait for it. */
  #draining: Promise<void> | undefined;
  #closed = false;

  /**
   * Nothing connects until `start()`.
   *
   * @throws RangeError when `port` is not an integer in 1..65535.
   */
  constructor(options: TcpTransportOptions) {
    const { port } = options;
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new RangeError(`port must be an integer in 1..65535, got ${String(port)}`);
    }
    this.host = options.host ?? '127.0.0.1';
    this.port = port;
    const modules =
      options.moduleName === undefined
        ? []
        : typeof options.moduleName === 'string'
          ? [options.moduleName]
          : options.moduleName;
    this.#fixedModules = modules.length > 0;
    for (const name of modules) this.#prefixes.set(name, syncPrefix(name));
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 5000;
    this.#retries = options.reconnect?.retries ?? 3;
    this.#minDelayMs = options.reconnect?.minDelayMs ?? 50;
    this.#maxDelayMs = options.reconnect?.maxDelayMs ?? 1000;
    this.#maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.#log = toLogFunction(options.logger, `tcp transport ${this.host}:${port}: `, {
      component: 'tcp-transport',
      host: this.host,
      port,
    });
  }

  /**
   * Connect unless connected. The first start makes one attempt and rejects
   * when the server is down; after a drop, up to `reconnect.retries` more
   * attempts follow, `minDelayMs` doubling up to `maxDelayMs` apart.
   *
   * @throws Error (rejects) when no attempt connects within
   *   `connectTimeoutMs`, or when the transport is closed.
   */
  start(): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('TcpTransport is closed'));
    if (this.#socket?.writable) return Promise.resolve();
    // Ended by the peer but its 'close' not seen yet: replace it rather than report it open.
    this.#socket?.destroy();
    this.#socket = undefined;
    this.#connecting ??= this.#connectWithRetries().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  /**
   * Send one message as one frame. Resolves once the socket took it, after
   * waiting for 'drain' when its buffer is full; rejects when not connected
   * or the connection drops while waiting.
   *
   * @throws Error (rejects) when not connected, closed, or the connection
   *   drops before the frame is written.
   */
  async send(message: Uint8Array, moduleName: string): Promise<void> {
    // Framed right away: the protocol reuses `message` once this call settles.
    const frame = encodeFrame(this.#header(moduleName), message);
    if (!this.#fixedModules && !this.#prefixes.has(moduleName)) {
      this.#prefixes.set(moduleName, syncPrefix(moduleName));
    }
    while (this.#draining !== undefined) await this.#draining;
    const socket = this.#socket;
    // Not writable: the peer ended it and 'close' is on its way; fail now, not after a timeout.
    if (socket === undefined || !socket.writable) {
      throw new Error(
        this.#closed
          ? 'TcpTransport is closed'
          : `not connected to ${this.host}:${this.port}${this.#everConnected ? ' (connection lost)' : ''}`,
      );
    }
    if (socket.write(frame)) return;
    const drained = new Promise<void>((resolve, reject) => {
      const done = (error?: Error) => {
        socket.off('drain', onDrain);
        socket.off('close', onClose);
        this.#draining = undefined;
        if (error) reject(error);
        else resolve();
      };
      const onDrain = () => done();
      const onClose = () => done(new Error('connection closed before the message was sent'));
      socket.on('drain', onDrain);
      socket.on('close', onClose);
    });
    // Later sends wait for the drain, but must not see this send's rejection.
    this.#draining = drained.catch(() => {});
    await drained;
  }

  /**
   * Register a listener for responses: each `<module>_sync <bytes>` frame for
   * a module this transport serves (see `moduleName`) reaches every listener
   * as the bare bytes. The protocol registers its own.
   */
  onResponse(listener: (message: Uint8Array) => void): void {
    this.#listeners.push(listener);
  }

  /** Whether a connection is up. */
  get connected(): boolean {
    return this.#socket?.writable === true;
  }

  /** Close the connection for good; `start()` afterwards rejects. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#connecting?.catch(() => {});
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket === undefined || socket.destroyed) return;
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.destroy();
    });
  }

  #header(moduleName: string): Uint8Array {
    let header = this.#headers.get(moduleName);
    if (header === undefined) {
      header = frameHeader(moduleName);
      this.#headers.set(moduleName, header);
    }
    return header;
  }

  async #connectWithRetries(): Promise<void> {
    const attempts = this.#everConnected ? 1 + this.#retries : 1;
    let delay = this.#minDelayMs;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#connectOnce();
        return;
      } catch (error) {
        if (attempt >= attempts || this.#closed) throw error;
        this.#log('debug', `reconnect attempt ${attempt} failed (${(error as Error).message})`);
        await sleep(delay);
        delay = Math.min(this.#maxDelayMs, delay * 2);
      }
    }
  }

  #connectOnce(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const socket = createConnection({ host: this.host, port: this.port });
      const fail = (error: Error) => {
        socket.destroy();
        reject(new Error(`cannot connect to ${this.host}:${this.port}: ${error.message}`));
      };
      socket.setTimeout(this.#connectTimeoutMs, () =>
        fail(new Error(`no connection after ${this.#connectTimeoutMs} ms`)),
      );
      socket.once('error', fail);
      socket.once('connect', () => {
        socket.off('error', fail);
        socket.setTimeout(0);
        if (this.#closed) {
          socket.destroy();
          reject(new Error('TcpTransport is closed'));
          return;
        }
        // Start/StartAck and End/EndAck are small round trips: do not let Nagle hold them.
        socket.setNoDelay(true);
        this.#adopt(socket);
        resolve();
      });
    });
  }

  #adopt(socket: Socket): void {
    this.#socket = socket;
    this.#everConnected = true;
    const reader = new FrameReader(this.#maxFrameBytes);
    const onFrame = (payload: Buffer) => this.#dispatch(payload);
    socket.on('data', (chunk: Buffer) => {
      const oversized = reader.push(chunk, onFrame);
      if (oversized !== undefined) {
        this.#log('warn', `frame of ${oversized} bytes from the server: dropping the connection`);
        socket.destroy();
      }
    });
    socket.on('error', (error) => this.#log('warn', `connection error: ${error.message}`));
    socket.on('close', () => {
      if (this.#socket === socket) {
        this.#socket = undefined;
        if (!this.#closed) this.#log('info', 'connection closed; the next start() reconnects');
      }
    });
    this.#log('debug', 'connected');
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
    for (const listener of this.#listeners) {
      try {
        listener(match.message);
      } catch (error) {
        this.#log('error', `response listener threw: ${(error as Error).message}`);
      }
    }
  }
}
