/**
 * A failure of the persistent queue's storage (SQLite, or the file system around it).
 *
 * The message names the operation and the reason, e.g.
 * `persistent queue: cannot open /x/y.db: unable to open database file`; `cause` carries the
 * original error (usually better-sqlite3's `SqliteError`, whose `code` such as `SQLITE_BUSY`
 * tells callers whether retrying makes sense).
 */
export class StorageError extends Error {
  /**
   * @param message - the operation and the reason, as above.
   * @param options - `cause`: the error that made the storage fail.
   */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageError';
  }
}
