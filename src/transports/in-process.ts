import type { MQueueTransport } from '../interfaces/transport.js';

/** Receives the messages an {@link InProcessTransport} sends. */
export type InProcessHandler = (message: Uint8Array, moduleName: string) => void;

/**
 * A transport that hands each message to a function in the same process and
 * lets that function's side answer through {@link InProcessTransport.respond}.
 * The mock manager's `transport(module)` is one of these; it is also the
 * simplest way to embed the protocol next to your own code in tests.
 */
export class InProcessTransport implements MQueueTransport {
  private readonly listeners: Array<(message: Uint8Array) => void> = [];
  private open = false;

  constructor(private readonly handler: InProcessHandler) {}

  start(): void {
    this.open = true;
  }

  send(message: Uint8Array, moduleName: string): void {
    if (!this.open) throw new Error('in-process transport is not started');
    this.handler(message, moduleName);
  }

  onResponse(listener: (message: Uint8Array) => void): void {
    this.listeners.push(listener);
  }

  /** Deliver a response to every registered listener, synchronously. */
  respond(message: Uint8Array): void {
    for (const listener of this.listeners) listener(message);
  }

  /** Whether `start()` was called and `close()` was not. */
  get isOpen(): boolean {
    return this.open;
  }

  close(): void {
    this.open = false;
  }
}
