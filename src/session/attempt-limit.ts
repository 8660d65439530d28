// A wait bounded by a timeout and an outer abort signal, without AbortSignal.any: used for each
// 5.0 session attempt (FullSessionDriver) and for the wait for agentd's result
// (QueueSyncTransport).

/**
 * One wait's end: `signal` aborts (and `ended` resolves) when `outer` does or `timeoutMs` pass;
 * `dispose` clears the timer and the listener on `outer`. Built apart from the caller's data on
 * purpose: a listener closure made beside a session's bytes would share their scope and keep
 * them reachable from the long-lived `outer` (and, through Node 20's AbortSignal.any
 * bookkeeping, past the wait): the 5.0 bench saw RSS grow by each session's size.
 */
export function attemptLimit(
  outer: AbortSignal,
  timeoutMs: number,
): {
  signal: AbortSignal;
  ended: Promise<{ reason: 'timeout'; message: string }>;
  dispose: () => void;
} {
  const controller = new AbortController();
  let onOuterAbort: () => void = () => {};
  let timer: NodeJS.Timeout | undefined;
  const ended = new Promise<{ reason: 'timeout'; message: string }>((resolve) => {
    const end = (message: string, reason?: unknown) => {
      controller.abort(reason);
      resolve({ reason: 'timeout', message });
    };
    onOuterAbort = () => end('aborted', outer.reason);
    timer = setTimeout(() => end(`no answer within ${timeoutMs} ms`), timeoutMs);
  });
  if (outer.aborted) onOuterAbort();
  else outer.addEventListener('abort', onOuterAbort, { once: true });
  return {
    signal: controller.signal,
    ended,
    dispose: () => {
      clearTimeout(timer);
      outer.removeEventListener('abort', onOuterAbort);
      controller.abort();
    },
  };
}
