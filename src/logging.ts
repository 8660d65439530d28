import type { LogFields, LogFunction, Logger, LogLevel } from './interfaces/logger.js';

const silent: LogFunction = () => {};

/**
 * One shape for both logger forms, and a logger that can never throw into our code. `prefix`
 * starts every message (for readers of plain text); `bindings` are merged under every call's own
 * fields (for readers of structured logs, like a pino child's bindings).
 */
export function toLogFunction(
  logger: Logger | undefined,
  prefix = '',
  bindings: LogFields = {},
): LogFunction {
  if (logger === undefined) return silent;
  const emit: LogFunction =
    typeof logger === 'function'
      ? logger
      : (level: LogLevel, message: string, fields?: LogFields) =>
          logger[level](fields ?? {}, message);
  return (level, message, fields) => {
    try {
      emit(level, prefix + message, { ...bindings, ...fields });
    } catch {
      // A failing logger must not turn a sync or a persist into a failure.
    }
  };
}
