import { createRequire } from 'node:module';
import { connect, type Socket } from 'node:net';
import { encodeFrame, parseQueueMessage } from '../../src/transports/stream-framing.js';

/** The part of unix-dgram a test's stand-in for the agent daemon uses. */
interface DgramServerSocket {
  on(event: 'message', listener: (buf: Buffer) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  bind(path: string): void;
  close(): void;
}

const require = createRequire(import.meta.url);
const unix = require('unix-dgram') as { createSocket(type: 'unix_dgram'): DgramServerSocket };

/**
 * Stands in for the agent daemon: a Unix datagram socket bound to `path` that
 * records every datagram and hands each to `onDatagram`.
 */
export class DatagramServer {
  readonly received: Buffer[] = [];
  private readonly socket: DgramServerSocket;
  private waiters: Array<{ count: number; resolve: () => void }> = [];

  constructor(
    readonly path: string,
    private readonly onDatagram?: (datagram: Buffer) => void,
  ) {
    this.socket = unix.createSocket('unix_dgram');
    let failure: Error | undefined;
    this.socket.on('error', (error) => {
      failure = error;
    });
    this.socket.on('message', (datagram) => {
      this.received.push(datagram);
      this.onDatagram?.(datagram);
      this.waiters = this.waiters.filter((w) => {
        if (this.received.length < w.count) return true;
        w.resolve();
        return false;
      });
    });
    this.socket.bind(path);
    if (failure) throw failure;
  }

  /** Resolves once `count` datagrams in all have arrived. */
  waitFor(count: number): Promise<void> {
    if (this.received.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  close(): void {
    this.socket.close();
  }
}

export { encodeFrame, parseQueueMessage };

export const utf8 = new TextEncoder();

/** A length-prefixed frame carrying `text` (or bytes) as its whole payload. */
export function frame(payload: string | Uint8Array): Buffer {
  return encodeFrame(
    new Uint8Array(0),
    typeof payload === 'string' ? utf8.encode(payload) : payload,
  );
}

/** A connected stream client on a Unix socket path. */
export function connectUnix(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(path, () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Write and wait until the bytes were handed to the kernel. */
export function write(socket: Socket, bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) =>
    socket.write(bytes, (error) => (error ? reject(error) : resolve())),
  );
}

/** Resolves when the socket closes. */
export function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.closed) resolve();
    else socket.once('close', () => resolve());
  });
}

/**
 * Polls `check` until it holds or `timeoutMs` passes. The default is generous: only the outcome
 * is tested, and a loaded machine may take seconds to deliver a local socket's events.
 */
export async function until(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Records log lines for assertions. */
export function recordingLogger(): {
  lines: string[];
  log: (level: string, message: string) => void;
} {
  const lines: string[] = [];
  return { lines, log: (level, message) => lines.push(`${level} ${message}`) };
}
