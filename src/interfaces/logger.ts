/** Severity of a log line, lowest first. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/**
 * Structured fields of a log line, as pino takes them (its "merging object"). The library fills
 * the ones that apply; a logger may receive any other key too.
 */
export interface LogFields {
  /** The module name of the instance that logs (`options.moduleName`). */
  module?: string;
  /** The manager's session id, as a decimal string (a u64 does not fit a JSON number). */
  session?: string;
  /** The sync's mode, by name: 'Full', 'Delta', 'Check', 'MetadataDelta', ... */
  mode?: string;
  /** Why a sync failed (a `SyncFailureReason`). */
  reason?: string;
  /** Items sent once in the sync. */
  sent?: number;
  /** Items resent for ReqRets in the sync. */
  retransmitted?: number;
  /**
   * What logs, when it is not a module's protocol: 'tcp-transport' (with `host`, `port`),
   * 'response-listener', 'mock-manager', 'mock-manager-server'.
   */
  component?: string;
  /** Other facts of the event (`attempt`, `retriesLeft`, `index`, `total`, ...). */
  [key: string]: unknown;
}

/**
 * A `(level, message, fields?)` callback. `fields` was added after `(level, message)` callbacks
 * existed, so those keep working unchanged.
 *
 * @example
 * const logger: LogFunction = (level, message, fields) => console[level](message, fields ?? '');
 */
export type LogFunction = (level: LogLevel, message: string, fields?: LogFields) => void;

/**
 * An object with pino's level methods: each is called as `(fields, message)`, pino's
 * `logger.info(mergingObject, message)`. A pino logger (or a pino child) fits as is.
 *
 * @example
 * import pino from 'pino';
 * new AgentSyncProtocol({ moduleName: 'fim', dbPath, transport, logger: pino() });
 */
export interface LevelLogger {
  /** Protocol detail: ignored responses, retries, sessions started. */
  debug(fields: LogFields, message: string): void;
  /** A sync that ended: ok, or a Check that found a mismatch. */
  info(fields: LogFields, message: string): void;
  /** A sync that failed, a callback that threw, a session refused. */
  warn(fields: LogFields, message: string): void;
  /** Something the library cannot work around. */
  error(fields: LogFields, message: string): void;
}

/** Either logger form the library accepts. */
export type Logger = LogFunction | LevelLogger;
