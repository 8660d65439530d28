import type { MQueueTransport } from '../interfaces/transport.js';

/** Receives the messages an {@link InProcessTransport} sends. */
export type InProcessHandler = (message: Uint8Array, moduleName: string) => void;

/**
 * A transport that hands each message to a function in the same process and
 * lets that function's side answer through {@link InProcessTransport.respond}.
 * The mock manager's `transport(module)` is one of these; it is also the
 * simplest way to embed the protocol next to your own code in tests.
 *
 * @example
 * ```ts
 * const transport = new InProcessTransport((message, moduleName) => {
 *   // decide on an answer, then, like a manager, reply later:
 *   setImmediate(() => transport.respond(answer));
 * });
 * ```
 */
export class InProcessTransport implements MQueueTransport {
  readonly #listeners: Array<(message: Uint8Array) => void> = [];
  #open = false;

  readonly #handler: InProcessHandler;

  /** @param handler - called synchronously with every message `send` gets. */
  constructor(handler: InProcessHandler) {
    this.#handler = handler;
  }

  /** Open the transport; `send` throws until then. */
  start(): void {
    this.#open = true;
  }

  /**
   * Hand `message` to the handler, synchronously. The bytes are valid only
   * during the call: a handler that keeps them must copy them.
   *
   * @throws Error when the transport is not started (or was closed), and
   *   whatever the handler throws.
   */
  send(message: Uint8Array, moduleName: string): void {
    if (!this.#open) throw new Error('in-process transport is not started');
    this.#handler(message, moduleName);
  }

  /** Register a listener for {@link InProcessTransport.respond}; the protocol registers its own. */
  onResponse(listener: (message: Uint8Array) => void): void {
    this.#listeners.push(listener);
  }

  /** Deliver a response to every registered listener, synchronously. */
  respond(message: Uint8Array): void {
    for (const listener of this.#listeners) listener(message);
  }

  /** Whether `start()` was called and `close()` was not. */
  get isOpen(): boolean {
    return this.#open;
  }

  /** Close the transport: `send` throws until `start()` is called again. */
  close(): void {
    this.#open = false;
  }
}
