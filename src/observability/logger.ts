import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/** Paths that could carry credentials; pino replaces their values with "[redacted]". */
export const REDACT_PATHS = [
  'headers.authorization',
  'headers.cookie',
  'headers["x-api-key"]',
  'headers["proxy-authorization"]',
  '*.headers.authorization',
  '*.headers.cookie',
  '*.headers["x-api-key"]',
  'password',
  'token',
  '*.password',
  '*.token',
];

export interface LoggerOptions {
  level?: string;
  /** Where lines go; default stdout. */
  destination?: DestinationStream;
  /** Fields on every line (e.g. `{ component: 'worker' }`). */
  base?: Record<string, unknown>;
}

/** The one root logger of a process: JSON lines, credentials redacted. Components take children. */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { pid: process.pid, ...options.base },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/** The logging methods a component uses for one unit of work (a job). */
export type WorkLog = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;

/**
 * A child logger made on first use, and only for a level that is enabled: a pino child serializes
 * (and redacts) its bindings when it is made, which per job cost ~2% of a busy worker's CPU while
 * most of those children never wrote a line.
 */
export function lazyChild(logger: Logger, bindings: () => Record<string, unknown>): WorkLog {
  let child: Logger | undefined;
  const at = (level: 'debug' | 'info' | 'warn' | 'error') =>
    ((...args: Parameters<Logger['info']>) => {
      if (!logger.isLevelEnabled(level)) return;
      child ??= logger.child(bindings());
      child[level](...args);
    }) as Logger['info'];
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
