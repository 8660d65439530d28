export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** A `(level, message)` callback. */
export type LogFunction = (level: LogLevel, message: string) => void;

/** Any object with pino's (or console's) level methods. */
export interface LevelLogger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export type Logger = LogFunction | LevelLogger;
