/** Timers that one `clear()` cancels, so a closed mock leaves nothing behind to fire. */
export class Timers {
  readonly #timers = new Set<NodeJS.Timeout>();

  /** Run `task` after `delayMs`, unless cleared first. */
  schedule(delayMs: number, task: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      task();
    }, delayMs);
    this.#timers.add(timer);
  }

  clear(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }
}
