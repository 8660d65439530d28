/**
 * The pluggable "MQueue": how protocol messages leave the agent and, for
 * transports that can, how the manager's answers come back.
 */
export interface MQueueTransport {
  /** Open the transport. Throw when it is unavailable. Called again to re-open after a failed send. */
  start(): void | Promise<void>;
  /**
   * Send one protocol message (FlatBuffers bytes, without any framing) on
   * behalf of `moduleName`. Throw (or reject) on failure.
   *
   * The bytes are only valid until `send` returns or its promise settles: the
   * protocol reuses the buffer for the next message, so copy it if you keep it.
   */
  send(message: Uint8Array, moduleName: string): void | Promise<void>;
  /** Transports that receive responses register the protocol's listener here. */
  onResponse?(listener: (message: Uint8Array) => void): void;
  close?(): void | Promise<void>;
}
