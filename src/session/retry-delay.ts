// The pause between two attempts at a 5.0 session, shared by the session driver (the sync's
// `retries`) and HttpSessionTransport (its own `retry.attempts`, as the reference agent's
// RetrySender): full jitter, and never shorter than the answer's Retry-After.

/**
 * Longest Retry-After honoured, in seconds (the real manager sends 60). A larger one (a hostile
 * or broken answer) waits this long: timers cannot wait past 2^31-1 ms.
 */
export const MAX_RETRY_AFTER_SECONDS = 3600;

/** An exponential backoff window: attempt n may wait up to min(maxMs, minMs * factor^(n-1)). */
export interface BackoffWindow {
  minMs: number;
  maxMs: number;
  factor: number;
}

/**
 * The pause after failed attempt `attempt` (1 for the first), in ms: uniform in [0, the
 * window's ceiling] (full jitter), and at least `retryAfterSeconds` (capped at
 * {@link MAX_RETRY_AFTER_SECONDS}).
 */
export function retryDelayMs(
  attempt: number,
  { minMs, maxMs, factor }: BackoffWindow,
  retryAfterSeconds = 0,
): number {
  const ceiling = Math.min(maxMs, minMs * factor ** (attempt - 1));
  const server = Math.min(retryAfterSeconds, MAX_RETRY_AFTER_SECONDS) * 1000;
  return Math.max(server, Math.floor(Math.random() * (ceiling + 1)));
}
