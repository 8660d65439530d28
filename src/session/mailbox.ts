import type { ManagerResponse } from '../wire/types.js';

/** What `Mailbox.next` resolves with when no answer came in time. */
export const TIMEOUT = Symbol('timeout');

type Kind = ManagerResponse['type'];

/**
 * Where the manager's answers wait for the session driver.
 *
 * The driver says what it expects (`expect`) BEFORE it sends the message that
 * provokes the answer, so an answer that arrives inside `send()` (a
 * synchronous transport, a fast manager) is queued here and not lost.
 * Anything not expected now (another phase, another session) is refused.
 */
export class Mailbox {
  #kinds: ReadonlySet<Kind> = new Set();
  #session: bigint | undefined;
  readonly #inbox: ManagerResponse[] = [];
  #wake: (() => void) | undefined;

  /** Accept `kinds` from now on, for `session` (any session when undefined), and forget older mail. */
  expect(kinds: readonly Kind[], session?: bigint): void {
    this.#kinds = new Set(kinds);
    this.#session = session;
    this.#inbox.length = 0;
  }

  /** Accept nothing (between syncs and during the data phase). */
  closeDoors(): void {
    this.expect([]);
  }

  /** Offer a response; returns false (and keeps nothing) when it is not expected now. */
  offer(message: ManagerResponse): boolean {
    if (!this.#kinds.has(message.type)) return false;
    // A StartAck that is not Ok may carry a meaningless session; it is still the answer.
    if (this.#session !== undefined && message.session !== this.#session) return false;
    this.#inbox.push(message);
    this.#wake?.();
    return true;
  }

  /** The next accepted response, or TIMEOUT after `timeoutMs`. Rejects with the signal's reason on abort. */
  next(timeoutMs: number, signal: AbortSignal): Promise<ManagerResponse | typeof TIMEOUT> {
    const queued = this.#inbox.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const finish = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.#wake = undefined;
      };
      const onAbort = () => {
        finish();
        reject(signal.reason);
      };
      const timer = setTimeout(() => {
        finish();
        resolve(TIMEOUT);
      }, timeoutMs);
      this.#wake = () => {
        finish();
        resolve(this.#inbox.shift() as ManagerResponse);
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
