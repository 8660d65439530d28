import { join } from 'node:path';
import { getSystemErrorName } from 'node:util';
import type { MQueueTransport } from '../interfaces/transport.js';
import { frameMessage, MAX_DATAGRAM_BYTES } from '../wire/framing.js';
import { checkSocketPath } from './unix-socket-file.js';

/** The part of unix-dgram's socket this transport uses. */
interface DgramSocket {
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'writable', listener: () => void): unknown;
  connect(path: string): void;
  send(buf: Buffer, callback: (error?: Error & { code?: number }) => void): void;
  close(): void;
}

interface UnixDgramModule {
  createSocket(type: 'unix_dgram'): DgramSocket;
}

// A variable specifier keeps TypeScript from requiring type declarations for
// the optional dependency, and keeps bundlers from resolving it eagerly.
const UNIX_DGRAM = 'unix-dgram';
const MISSING_DEPENDENCY =
  'WazuhQueueTransport needs the optional dependency unix-dgram: npm install unix-dgram';

let loaded: UnixDgramModule | undefined;

async function loadUnixDgram(): Promise<UnixDgramModule> {
  if (loaded) return loaded;
  let module: { default?: UnixDgramModule } & Partial<UnixDgramModule>;
  try {
    module = await import(UNIX_DGRAM);
  } catch (error) {
    throw new Error(`${MISSING_DEPENDENCY} (${error instanceof Error ? error.message : error})`, {
      cause: error,
    });
  }
  const api = typeof module.createSocket === 'function' ? module : module.default;
  if (typeof api?.createSocket !== 'function') throw new Error(MISSING_DEPENDENCY);
  loaded = api as UnixDgramModule;
  return loaded;
}

/** Options of {@link WazuhQueueTransport}. */
export interface WazuhQueueTransportOptions {
  /** The agent's installation directory. Default `/var/ossec`. */
  home?: string;
  /** The agent's queue socket. Default `<home>/queue/sockets/queue`. */
  socketPath?: string;
  /**
   * Sends waiting while the agent's queue is full, at most; one more is
   * refused at once instead of buffered. Default 64 (at most 4 MiB held).
   */
  maxPendingSends?: number;
  /** A send still waiting for room after this long is refused. Default 10000. */
  sendTimeoutMs?: number;
}

interface Pending {
  frame: Buffer;
  resolve: () => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/** unix-dgram's errors carry a negative errno; a name like ENOENT is what people search for. */
function errorName(code: number): string {
  try {
    if (code < 0) return getSystemErrorName(code);
  } catch {
    // Not an errno this platform knows.
  }
  return `error ${code}`;
}

/** Errors name the path and the errno, so a log line says what to fix. */
function socketError(action: string, path: string, code: number, hint = ''): Error {
  const name = errorName(code);
  const error = new Error(`WazuhQueueTransport: ${action} ${path} failed: ${name}${hint}`);
  (error as Error & { code: string }).code = name;
  return error;
}

function errno(error: unknown): number {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : 0;
}

/**
 * Sends each message as one datagram on the Wazuh agent's queue socket
 * (`s:<module>:<bytes>`), the way the agent's own modules do. Node has no
 * Unix datagram sockets, so this needs the optional dependency `unix-dgram`,
 * loaded on the first `start()`.
 *
 * Responses come back on a module's own stream socket: see
 * {@link WazuhResponseListener}. While open, the socket keeps the process
 * alive: call `close()` when done.
 *
 * @example
 * ```ts
 * const fim = new AgentSyncProtocol({
 *   moduleName: 'fim',
 *   dbPath: '/var/ossec/queue/fim/db/fim_sync.db',
 *   transport: new WazuhQueueTransport({ home: '/var/ossec' }),
 * });
 * ```
 */
export class WazuhQueueTransport implements MQueueTransport {
  /** The queue socket this transport sends to. */
  readonly socketPath: string;
  readonly #maxPending: number;
  readonly #sendTimeoutMs: number;
  #socket: DgramSocket | undefined;
  /** Sends waiting for the agent to drain its queue, in order. */
  #pending: Pending[] = [];
  #congested = false;
  #closed = false;

  /**
   * Nothing connects, and unix-dgram is not loaded, until `start()`.
   *
   * @throws RangeError when the socket path is longer than 107 bytes (the
   *   limit of a Unix socket address), `maxPendingSends` is not a
   *   non-negative integer or `sendTimeoutMs` is not positive.
   */
  constructor(options: WazuhQueueTransportOptions = {}) {
    this.socketPath = checkSocketPath(
      options.socketPath ?? join(options.home ?? '/var/ossec', 'queue/sockets/queue'),
    );
    this.#maxPending = options.maxPendingSends ?? 64;
    this.#sendTimeoutMs = options.sendTimeoutMs ?? 10_000;
    if (!Number.isInteger(this.#maxPending) || this.#maxPending < 0) {
      throw new RangeError('maxPendingSends must be a non-negative integer');
    }
    if (!(this.#sendTimeoutMs > 0)) throw new RangeError('sendTimeoutMs must be positive');
  }

  /**
   * Connect to the queue socket, replacing any previous connection (the
   * protocol calls this again after a failed send: a restarted agent has a
   * new socket behind the same path).
   *
   * @throws Error (rejects) when unix-dgram is missing, when nothing listens
   *   on the path (`code` `ENOENT` or `ECONNREFUSED`), when the process may
   *   not write to it (`EACCES`), or when the transport is closed.
   */
  async start(): Promise<void> {
    if (this.#closed) throw new Error('WazuhQueueTransport is closed');
    const dgram = await loadUnixDgram();
    this.#disconnect();
    let socket: DgramSocket;
    try {
      socket = dgram.createSocket('unix_dgram');
    } catch (error) {
      throw socketError('creating a socket for', this.socketPath, errno(error));
    }
    let failure: Error | undefined;
    // unix-dgram reports a failed connect as an 'error' event, synchronously.
    socket.on('error', (error) => {
      failure ??= error;
    });
    socket.connect(this.socketPath);
    if (failure !== undefined) {
      socket.close();
      const code = errno(failure);
      const name = errorName(code);
      const hint =
        name === 'ENOENT' || name === 'ECONNREFUSED' ? ' (is the Wazuh agent running?)' : '';
      throw socketError('connecting to', this.socketPath, code, hint);
    }
    socket.on('writable', () => {
      this.#congested = false;
      this.#flush();
    });
    this.#socket = socket;
    this.#congested = false;
    // Sends that waited through a reconnect go out on the new socket.
    this.#flush();
  }

  /**
   * Send one message as one datagram. Resolves once the datagram is written
   * to the agent's queue; while the queue is full, waits for room (up to
   * `sendTimeoutMs`, with at most `maxPendingSends` waiting). Rejects with a
   * RangeError when the framed datagram exceeds 65536 bytes.
   *
   * @throws RangeError (rejects) for a datagram over 65536 bytes; Error when
   *   not started, closed, too many sends wait, a send waited longer than
   *   `sendTimeoutMs`, or the socket reports an error.
   */
  send(message: Uint8Array, moduleName: string): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('WazuhQueueTransport is closed'));
    if (this.#socket === undefined) {
      return Promise.reject(new Error('WazuhQueueTransport is not connected: call start()'));
    }
    // A copy: the protocol reuses `message` once this call settles.
    const framed = frameMessage(moduleName, message);
    const frame = Buffer.from(framed.buffer, framed.byteOffset, framed.length);
    if (frame.length > MAX_DATAGRAM_BYTES) {
      return Promise.reject(
        new RangeError(
          `datagram of ${frame.length} bytes exceeds the agent queue's ${MAX_DATAGRAM_BYTES}`,
        ),
      );
    }
    if (this.#pending.length === 0 && !this.#congested) {
      const outcome = this.#write(frame);
      if (outcome === 'sent') return Promise.resolve();
      if (outcome !== 'congested') return Promise.reject(outcome);
    }
    if (this.#pending.length >= this.#maxPending) {
      return Promise.reject(
        new Error(
          `WazuhQueueTransport: the agent queue is full and ${this.#pending.length} sends are waiting`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const entry: Pending = {
        frame,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#pending = this.#pending.filter((p) => p !== entry);
          reject(
            new Error(
              `WazuhQueueTransport: the agent queue stayed full for ${this.#sendTimeoutMs} ms`,
            ),
          );
        }, this.#sendTimeoutMs),
      };
      this.#pending.push(entry);
    });
  }

  /** Sends waiting for room in the agent's queue. */
  get pendingSends(): number {
    return this.#pending.length;
  }

  /** Close the socket; waiting sends are rejected. A closed transport does not start again. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#disconnect();
    const pending = this.#pending;
    this.#pending = [];
    for (const entry of pending) {
      clearTimeout(entry.timer);
      entry.reject(new Error('WazuhQueueTransport closed before the message was sent'));
    }
  }

  /** Write what waited, in order, until the queue is full again. */
  #flush(): void {
    while (this.#pending.length > 0 && !this.#congested && this.#socket !== undefined) {
      const entry = this.#pending[0] as Pending;
      const outcome = this.#write(entry.frame);
      if (outcome === 'congested') return;
      this.#pending.shift();
      clearTimeout(entry.timer);
      if (outcome === 'sent') entry.resolve();
      else entry.reject(outcome);
    }
  }

  #write(frame: Buffer): 'sent' | 'congested' | Error {
    const socket = this.#socket;
    if (socket === undefined) return new Error('WazuhQueueTransport is not connected');
    // Widened on purpose: TypeScript cannot see the callback assign it.
    let outcome = 'sent' as 'sent' | 'congested' | Error;
    // unix-dgram calls back synchronously: 'congestion' (code 1) means EAGAIN,
    // nothing was written and 'writable' follows when there is room.
    socket.send(frame, (error) => {
      if (error === undefined || error === null) return;
      if (error.code === 1) {
        outcome = 'congested';
        this.#congested = true;
        return;
      }
      outcome = socketError('sending to', this.socketPath, errno(error));
    });
    if (outcome instanceof Error) {
      // The agent went away (ECONNREFUSED...): the next start() reconnects.
      this.#disconnect();
    }
    return outcome;
  }

  #disconnect(): void {
    const socket = this.#socket;
    this.#socket = undefined;
    this.#congested = false;
    if (socket === undefined) return;
    try {
      socket.close();
    } catch {
      // Already closed by the OS; nothing to release.
    }
  }
}
