import type { Logger } from '../observability/logger.js';
import type { RedisClient } from './client.js';
import { isRedisUnavailable, outageReason } from './unavailable.js';

/** While Redis stays away, one reminder at warn this often (the errors between are logged at debug). */
export const OUTAGE_REMINDER_MS = 30_000;

export interface RedisOutageLog {
  /**
   * Logs an error that a part of the worker reported (BullMQ's `error` events, which fire on every
   * reconnect attempt). One that says Redis is away or cannot serve (a lost connection, LOADING,
   * BUSY, CLUSTERDOWN…) is logged at warn once per outage for the whole process (not more often than
   * OUTAGE_REMINDER_MS, so a flapping connection does not flood either), then at debug with
   * `fields` and `message`, with a reminder at warn every OUTAGE_REMINDER_MS while it lasts; any
   * other error at error, with `fields` and `message`.
   */
  report(error: unknown, fields: Record<string, unknown>, message: string): void;
  /** Stops listening to the client. */
  close(): void;
}

/** While Redis is away, it is asked (PING, one at a time) this often whether it answers again. */
const PROBE_MS = 1_000;

/**
 * One line when a worker loses Redis, one when Redis answers again, and a reminder while the outage
 * lasts, instead of an error with a stack for every reconnect attempt of every BullMQ worker of the
 * process (dozens a minute: an alert on error-level lines would page for a Redis restart the fleet
 * rides through). An outage ends when Redis answers a PING on the shared client: not on the client's
 * `ready` alone, which never comes after an error reply on a live connection (BUSY, LOADING) nor
 * when one master of a Redis Cluster restarts.
 */
export function createRedisOutageLog(
  redis: RedisClient,
  logger: Logger,
  options: { reminderMs?: number; probeMs?: number } = {},
): RedisOutageLog {
  const reminderMs = options.reminderMs ?? OUTAGE_REMINDER_MS;
  const probeMs = options.probeMs ?? PROBE_MS;
  let since: number | undefined;
  /** When the last warn line was written (a first one, or a reminder), and whether this outage has one. */
  let warnedAt = -Infinity;
  let warned = false;
  let errors = 0;
  let probe: NodeJS.Timeout | undefined;
  let closed = false;

  const back = () => {
    if (since === undefined) return;
    const downMs = Date.now() - since;
    // An outage that was not warned of (one right after another) ends as quietly.
    logger[warned ? 'info' : 'debug']({ downMs, errors }, `Redis answers again after ${(downMs / 1_000).toFixed(1)} s; work goes on`);
    since = undefined;
    errors = 0;
  };
  // One PING at a time, from an outage's start until one is answered (only that ends an outage, so
  // a new one starts with none under way): while the client reconnects it waits in the client's
  // queue, and answers once Redis does (a long outage does not pile up one a second).
  const ask = () => {
    probe = undefined;
    if (closed) return;
    redis.ping().then(
      () => {
        if (!closed) back();
      },
      () => {
        if (!closed) probe = setTimeout(ask, probeMs);
      },
    );
  };

  return {
    report(error, fields, message) {
      if (!isRedisUnavailable(error)) {
        logger.error({ ...fields, err: error }, message);
        return;
      }
      const now = Date.now();
      errors += 1;
      const reason = outageReason(error);
      if (since === undefined) {
        since = now;
        probe = setTimeout(ask, probeMs);
        warned = now - warnedAt >= reminderMs;
        if (warned) {
          warnedAt = now;
          logger.warn(
            { reason },
            `Redis is unavailable (${reason}); jobs wait until it answers again (further errors like this are logged at debug)`,
          );
        } else {
          logger.debug({ ...fields, err: error }, message);
        }
      } else if (now - warnedAt >= reminderMs) {
        warnedAt = now;
        warned = true;
        const downMs = now - since;
        logger.warn(
          { reason, downMs, errors },
          `Redis still unavailable after ${Math.round(downMs / 1_000)} s (${reason}, ${errors} errors); jobs wait`,
        );
      } else {
        logger.debug({ ...fields, err: error }, message);
      }
    },
    close() {
      closed = true;
      clearTimeout(probe);
    },
  };
}
