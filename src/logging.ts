import type { LogFunction, Logger, LogLevel } from './interfaces/logger.js';

const silent: LogFunction = () => {};

/** One shape for both logger forms, and a logger that can never throw into our code. */
export function toLogFunction(logger: Logger | undefined, prefix = ''): LogFunction {
  if (logger === undefined) return silent;
  const emit: LogFunction =
    typeof logger === 'function'
      ? logger
      : (level: LogLevel, message: string) => logger[level](message);
  return (level, message) => {
    try {
      emit(level, prefix + message);
    } catch {
      // A failing logger must not turn a sync or a persist into a failure.
    }
  };
}
