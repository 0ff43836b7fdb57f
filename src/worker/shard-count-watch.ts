import type { RedisClient } from '../redis/client.js';
import type { Logger } from '../observability/logger.js';
import { ONE_SHARD, readShardCount, type ShardCount } from '../queue/shards.js';
import { answerWithin } from '../redis/unavailable.js';

/** How long a worker waits for its queue's shard count before it starts with one shard. */
const SHARD_READ_TIMEOUT_MS = 3_000;

/**
 * The queue's shard count, as a worker reads it: `read()` now, and `every(ms)` after. A count not
 * read in time (Redis down: a worker's client waits for it) counts as one shard for now, so the
 * worker starts, and stops, without Redis; one read at a time, and one warning per outage.
 */
export function watchShardCount(redis: RedisClient, queue: string, logger: Logger) {
  let unread = false;
  let timer: NodeJS.Timeout | undefined;
  let inRead = false;
  async function read(): Promise<ShardCount> {
    try {
      const count = await answerWithin(readShardCount(redis, queue), SHARD_READ_TIMEOUT_MS);
      if (unread) logger.info({ shards: count.highest }, "read the queue's shard count again");
      unread = false;
      return count;
    } catch (error) {
      if (!unread) logger.warn({ err: error }, "could not read the queue's shard count; looking again every few seconds");
      unread = true;
      return ONE_SHARD;
    }
  }
  return {
    read,
    every(intervalMs: number, onCount: (count: ShardCount) => void) {
      timer = setInterval(() => {
        if (inRead) return;
        inRead = true;
        void read()
          .then(onCount)
          .finally(() => (inRead = false));
      }, intervalMs);
      timer.unref();
    },
    stop() {
      clearInterval(timer);
    },
  };
}
