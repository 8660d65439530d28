/**
 * The pluggable "MQueue": how protocol messages leave the agent and, for
 * transports that can, how the manager's answers come back.
 *
 * The package ships {@link WazuhQueueTransport} (a real agent's queue socket),
 * {@link TcpTransport} and {@link InProcessTransport}; any object with these
 * methods will do.
 *
 * @example
 * ```ts
 * const transport: MQueueTransport = {
 *   start: () => queue.connect(), // throw when unavailable
 *   send: (message, moduleName) => queue.write(moduleName, message), // throw on failure
 *   onResponse: (listener) => queue.onReply(listener), // optional
 * };
 * ```
 */
export interface MQueueTransport {
  /**
   * Open the transport. Called before a sync's first message, and again to
   * re-open after a failed send; an open transport should return at once.
   *
   * @throws when the transport is unavailable (or reject): the sync then
   *   fails `'queue-unavailable'` without sending anything.
   */
  start(): void | Promise<void>;
  /**
   * Send one protocol message (FlatBuffers bytes, without any framing) on
   * behalf of `moduleName`. Throw (or reject) on failure.
   *
   * The bytes are only valid until `send` returns or its promise settles: the
   * protocol reuses the buffer for the next message, so copy it if you keep it.
   *
   * @throws on failure (or reject). The protocol then calls `start()` and
   *   sends the message once more; a second failure fails the sync
   *   `'send-failed'`.
   */
  send(message: Uint8Array, moduleName: string): void | Promise<void>;
  /**
   * Transports that receive responses register the protocol's listener here;
   * call it with the bare FlatBuffers bytes of each response. Without it, hand
   * responses to `AgentSyncProtocol.parseResponseBuffer` yourself.
   */
  onResponse?(listener: (message: Uint8Array) => void): void;
  /**
   * Release the transport. The protocol never calls it (`close()` of
   * `AgentSyncProtocol` leaves the transport to its owner); it is here so
   * that owners can treat every transport alike.
   */
  close?(): void | Promise<void>;
}
