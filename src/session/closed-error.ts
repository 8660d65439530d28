/**
 * Thrown by every method of an `AgentSyncProtocol` called after `close()` (the sync methods
 * resolve `{ ok: false, reason: 'closed' }` instead, and `parseResponseBuffer` returns false).
 * Its own class so that a module can tell "I shut down" from a real failure.
 *
 * @example
 * try {
 *   sync.persistDifference(id, Operation.Modify, index, data);
 * } catch (error) {
 *   if (!(error instanceof ClosedError)) throw error; // shutting down: the change is moot
 * }
 */
export class ClosedError extends Error {
  /** Always 'ClosedError' (also what `error.name` says in logs and stack traces). */
  override readonly name = 'ClosedError';

  /** The module name of the closed instance. */
  readonly moduleName: string;

  /** @param moduleName The module name of the closed instance. */
  constructor(moduleName: string) {
    super(`AgentSyncProtocol '${moduleName}' is closed`);
    this.moduleName = moduleName;
  }
}
