import type { Logger } from '../observability/logger.js';
import type { RedisClient } from './client.js';
import { isRedisUnavailable, outageReason } from './unavailable.js';

/** While Redis stays away, one reminder at warn this often (the errors between are logged at debug). */
export const OUTAGE_REMINDER_MS = 30_000;

export interface RedisOutageLog {
  /**
   * Logs an error that a part of the worker reported (BullMQ's `error` events, which fire on every
   * reconnect attempt). One that says Redis is away is logged at warn once per outage, then at debug,
   * with a reminder at warn every OUTAGE_REMINDER_MS; any other error at error, as `message`.
   */
  report(error: unknown, fields: Record<string, unknown>, message: string): void;
  /** Stops listening to the client. */
  close(): void;
}

/**
 * One line when a worker loses Redis, one when Redis is back (the client's `ready`), and a reminder
 * while the outage lasts, instead of an error with a stack for every reconnect attempt of every
 * BullMQ worker of the process (dozens a minute: an alert on error-level lines would page for a
 * Redis restart the fleet rides through).
 */
export function createRedisOutageLog(redis: RedisClient, logger: Logger, options: { reminderMs?: number } = {}): RedisOutageLog {
  const reminderMs = options.reminderMs ?? OUTAGE_REMINDER_MS;
  let since: number | undefined;
  let warnedAt = 0;
  let errors = 0;
  const onReady = () => {
    if (since === undefined) return;
    const downMs = Date.now() - since;
    logger.info({ downMs, errors }, `Redis is back after ${(downMs / 1_000).toFixed(1)} s; work goes on`);
    since = undefined;
    errors = 0;
  };
  redis.on('ready', onReady);
  return {
    report(error, fields, message) {
      if (!isRedisUnavailable(error)) {
        logger.error({ ...fields, err: error }, message);
        return;
      }
      const now = Date.now();
      errors += 1;
      if (since === undefined) {
        since = now;
        warnedAt = now;
        logger.warn(
          { reason: outageReason(error) },
          `cannot reach Redis (${outageReason(error)}): reconnecting; jobs wait until it is back (further connection errors are logged at debug)`,
        );
      } else if (now - warnedAt >= reminderMs) {
        warnedAt = now;
        const downMs = now - since;
        logger.warn(
          { reason: outageReason(error), downMs, errors },
          `Redis still unreachable after ${Math.round(downMs / 1_000)} s (${outageReason(error)}, ${errors} connection errors); reconnecting`,
        );
      } else {
        logger.debug({ ...fields, err: error }, message);
      }
    },
    close() {
      redis.off('ready', onReady);
    },
  };
}
