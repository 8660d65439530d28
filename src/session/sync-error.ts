import type { SyncFailureReason } from '../interfaces/results.js';

/** A sync failure with its reason; thrown inside the driver and turned into a `SyncResult`. */
export class SyncError extends Error {
  override readonly name = 'SyncError';

  constructor(
    readonly reason: SyncFailureReason,
    message: string,
    /** The manager's status, when the failure is the manager's answer. */
    readonly status?: number,
  ) {
    super(message);
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
