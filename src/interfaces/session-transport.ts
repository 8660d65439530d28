/**
 * One Wazuh 5.0 session as a {@link SessionTransport} gets it: the whole session as one
 * FlatBuffers `Message{FullSession}`.
 */
export interface SessionRequest {
  /**
   * The session id, `<module>-<decimal u64>` (characters `[0-9A-Za-z._-]`, 1 to 256 bytes), as
   * the reference agent names it: the `X-Session-Id` header of a `POST /stateful`, or the id of
   * a `WZSY` frame on the agent's `queue-sync` socket. A retry of the session keeps its id.
   */
  id: string;
  /** The module that sends the session (`options.moduleName`). */
  moduleName: string;
  /** The `Message{FullSession}` bytes; a copy the transport may keep. A retry sends the same bytes. */
  body: Uint8Array;
}

/**
 * The manager's answer to one session: its HTTP status. A transport that got no answer rejects
 * instead (or never settles: the sync's `timeoutMs` ends the wait).
 */
export interface SessionAnswer {
  /** The HTTP status: 2xx applied, 400/401/403/413 refused, 409 checksum mismatch (Check), 429/5xx transient. */
  status: number;
  /** The response body (JSON text), for the logs. */
  body?: string;
  /** The `Retry-After` header, in seconds, when the answer has one: the next attempt waits at least this long. */
  retryAfterSeconds?: number;
}

/**
 * How Wazuh 5.0 sessions (the `'fullSession'` wire) reach the manager: one call per session, and
 * the manager's HTTP status back. Implement it over `POST /stateful` (a test rig, an agent that
 * is its own client) or over the agent's `queue-sync` socket plus its HCRESULT answers; the
 * testing entry point's `MockManager.sessionTransport(agentId)` is one in process.
 *
 * @example
 * ```ts
 * const transport: SessionTransport = {
 *   async send(session, signal) {
 *     const res = await fetch(`${manager}/stateful`, {
 *       method: 'POST',
 *       headers: { 'X-Session-Id': session.id, 'protocol-version': '1', authorization: sign(session.body) },
 *       body: session.body,
 *       signal,
 *     });
 *     const retryAfter = Number(res.headers.get('retry-after'));
 *     return { status: res.status, body: await res.text(), ...(retryAfter > 0 ? { retryAfterSeconds: retryAfter } : {}) };
 *   },
 * };
 * ```
 */
export interface SessionTransport {
  /**
   * Deliver one session and resolve with the manager's answer. Reject when the session could
   * not be delivered or no answer came: the protocol retries it (with the same id and bytes)
   * within the sync's `retries`. `signal` aborts when the sync is aborted, the instance closes,
   * or the attempt's `timeoutMs` passes; stop waiting then.
   */
  send(session: SessionRequest, signal: AbortSignal): Promise<SessionAnswer>;
}

/**
 * The manager's answer to one session as the Wazuh 5.0 agent daemon reports it back to the
 * module: `HCRESULT:<session number>:<http status>:<body>` on the module's command socket,
 * behind its `<module>_sync ` header.
 */
export interface SessionResult {
  /** The module whose command socket carried the result (the `AgentSyncProtocol`'s `moduleName`). */
  moduleName: string;
  /** The decimal part of the session id (`<module>-<number>`), without leading zeros. */
  sessionNumber: string;
  /**
   * The HTTP status agentd got from the manager, after its own retries; 0 when it got no HTTP
   * answer at all (timeout, connection or TLS failure).
   */
  status: number;
  /** The manager's response body (JSON text, may be empty), for the logs. */
  body: string;
}

/**
 * A {@link SessionTransport} whose answers arrive apart from `send`, as agentd's HCRESULT
 * reports do: `AgentSyncProtocol.parseResponseBuffer` hands each well-formed result on the
 * `'fullSession'` wire to its transport's `receiveResult` when it has one.
 * `QueueSyncTransport` is one.
 */
export interface SessionResultReceiver {
  /**
   * Take one result. Returns true when a `send` was waiting for it (it settles with it), false
   * for a stale or unknown session (nothing changes). Must not throw.
   */
  receiveResult(result: SessionResult): boolean;
}
