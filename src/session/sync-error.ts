import type { SyncFailureReason } from '../interfaces/results.js';

/** A sync failure with its reason; thrown inside the driver and turned into a `SyncResult`. */
export class SyncError extends Error {
  override readonly name = 'SyncError';

  /**
   * @param reason The `SyncResult` reason it becomes.
   * @param message What happened, for the result's `message`.
   * @param status The manager's status, when the failure is the manager's answer.
   */
  constructor(
    /** The `SyncResult` reason it becomes. */
    readonly reason: SyncFailureReason,
    message: string,
    /** The manager's status, when the failure is the manager's answer. */
    readonly status?: number,
  ) {
    super(message);
  }
}

/** An error's message, or the thrown value as text when it is not an Error. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
