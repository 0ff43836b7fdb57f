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
