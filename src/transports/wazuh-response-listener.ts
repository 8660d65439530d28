import { chmod, lstat, mkdtemp, rename, rm, stat, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import type { LogFunction, Logger } from '../interfaces/logger.js';
import { toLogFunction } from '../logging.js';
import {
  DEFAULT_MAX_FRAME_BYTES,
  describeUnclaimed,
  FrameReader,
  matchSyncResponse,
  syncPrefix,
} from './stream-framing.js';

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
  #server: Server | undefined;
  #path: string | undefined;
  /** Device and inode of the socket file we created, so close() never removes a successor's. */
  #created: { dev: number; ino: number } | undefined;

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
    if (this.#server) throw new Error(`already listening on ${this.#path}`);
    const stale = await assertReplaceable(path);
    const server = createServer((socket) => this.#accept(socket));
    // Bind inside a fresh 0700 directory, restrict the socket, then rename it
    // into place: the socket never exists at `path` with looser permissions,
    // and the process-wide umask is left alone.
    const staging = await mkdtemp(join(dirname(path), '.wrl-'));
    const stagedPath = join(staging, 's');
    const inPlace = Buffer.byteLength(stagedPath) > MAX_SOCKET_PATH_BYTES;
    try {
      // A staged path too long for sockaddr_un: bind in place and restrict it at once.
      if (inPlace && stale) await unlink(path);
      await bind(server, inPlace ? path : stagedPath);
      await chmod(inPlace ? path : stagedPath, 0o600);
      if (!inPlace) await rename(stagedPath, path);
    } catch (error) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      throw error;
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
    server.on('error', (error) => this.#log('error', `server error: ${error.message}`));
    const { dev, ino } = await stat(path);
    this.#created = { dev, ino };
    this.#server = server;
    this.#path = path;
    this.#log('info', `listening on ${path}`);
  }

  /** Open connections from the agent. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Stop listening, drop every connection and remove the socket file. */
  async close(): Promise<void> {
    const server = this.#server;
    const path = this.#path;
    this.#server = undefined;
    this.#path = undefined;
    if (server === undefined || path === undefined) return;
    for (const socket of this.#connections) socket.destroy();
    this.#connections.clear();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const created = this.#created;
    this.#created = undefined;
    try {
      const now = await stat(path);
      if (created && now.dev === created.dev && now.ino === created.ino) await unlink(path);
    } catch {
      // Already gone.
    }
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

/** sockaddr_un holds 108 bytes with the terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 107;

/** Listen on the Unix socket `path` (also used by the mock manager server's stateful socket). */
export function bind(server: Server, path: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Throws unless `path` is absent or a socket nothing accepts on; true for the latter. */
export async function assertReplaceable(path: string): Promise<boolean> {
  let info: Awaited<ReturnType<typeof lstat>>;
  try {
    info = await lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  if (!info.isSocket()) throw new Error(`${path} exists and is not a socket; not replacing it`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = createConnection(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) {
    const error = new Error(`another process is listening on ${path}`);
    (error as NodeJS.ErrnoException).code = 'EADDRINUSE';
    throw error;
  }
  return true;
}
