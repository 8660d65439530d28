import type { LogFunction } from '../interfaces/logger.js';
import type { MQueueTransport } from '../interfaces/transport.js';
import { errorMessage, SyncError } from '../session/sync-error.js';

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | undefined)?.then === 'function';
}

/**
 * The protocol's side of a transport: opens it on first use and applies the
 * reference rule for a failed send (re-open once, send that message once
 * more, then give up). A transport whose `send` is synchronous stays
 * synchronous here, so the hot path creates no promise per message.
 */
export class TransportLink {
  #started = false;
  /** Messages and bytes the transport accepted, over the link's life. */
  readonly counters = { messages: 0, bytes: 0 };

  readonly #transport: MQueueTransport;
  readonly #moduleName: string;
  readonly #log: LogFunction;

  constructor(transport: MQueueTransport, moduleName: string, log: LogFunction) {
    this.#transport = transport;
    this.#moduleName = moduleName;
    this.#log = log;
  }

  /** Open the transport unless it is open. Throws SyncError('queue-unavailable'). */
  async open(): Promise<void> {
    if (this.#started) return;
    try {
      await this.#transport.start();
      this.#started = true;
    } catch (error) {
      throw new SyncError('queue-unavailable', `transport unavailable: ${errorMessage(error)}`);
    }
  }

  /** Send one message. Throws (or rejects with) SyncError('send-failed'). */
  send(message: Uint8Array): void | Promise<void> {
    let result: void | Promise<void>;
    const length = message.length;
    try {
      result = this.#transport.send(message, this.#moduleName);
    } catch (error) {
      return this.#resend(message, error);
    }
    if (isPromiseLike(result)) {
      return Promise.resolve(result).then(
        () => this.#count(length),
        (error: unknown) => this.#resend(message, error),
      );
    }
    this.#count(length);
  }

  #count(bytes: number): void {
    this.counters.messages++;
    this.counters.bytes += bytes;
  }

  async #resend(message: Uint8Array, firstError: unknown): Promise<void> {
    this.#log('warn', `send failed (${errorMessage(firstError)}); re-opening the transport`);
    try {
      this.#started = false;
      await this.#transport.start();
      this.#started = true;
      await this.#transport.send(message, this.#moduleName);
      this.#count(message.length);
    } catch (error) {
      throw new SyncError('send-failed', `send failed after re-opening: ${errorMessage(error)}`);
    }
  }
}
