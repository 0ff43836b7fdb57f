import type { RedisClient } from '../redis/client.js';
import { QUEUE_NAME } from '../config/env.js';
import { QUEUE_META_PATTERN, SHARD_NAME, queueKeys, queueMetaKey, queueOfMetaKey, shardOf } from '../redis/keys.js';
import { scanKeys } from '../redis/scan-keys.js';

export interface DiscoverQueuesOptions {
  /** Stop once this many queues are found. Default 1,000. */
  limit?: number;
  /** Keys SCAN looks at per call. Default 1,000. */
  scanCount?: number;
}

/**
 * The sluice queues present in Redis, sorted: every `sluice:{name}:meta` key (or a shard's, `{name#i}`) (BullMQ writes it when
 * a queue is first used, and it stays while the queue has jobs or history). SCAN walks the whole
 * keyspace in steps of `scanCount` (every master's, on a cluster) — a Redis holding a million jobs takes a thousand calls — so
 * call it now and then (fleet-metrics.ts reuses its answer for a minute), not per request.
 */
export async function discoverQueues(redis: RedisClient, options: DiscoverQueuesOptions = {}): Promise<string[]> {
  const limit = options.limit ?? 1_000;
  const scanCount = options.scanCount ?? 1_000;
  const found = new Set<string>();
  await scanKeys(redis, QUEUE_META_PATTERN, scanCount, (keys) => {
    for (const key of keys) {
      const name = queueOfMetaKey(key);
      // The pattern's * also matches names no sluice queue can have (a `}` or `:` inside); a
      // shard (`q#i`) is its queue's.
      if (QUEUE_NAME.test(name)) found.add(name);
      else if (SHARD_NAME.test(name)) found.add(shardOf(name).queue);
    }
    return found.size < limit;
  });
  return [...found].sort().slice(0, limit);
}

/** Whether a sluice queue exists in Redis (its `sluice:{name}:meta` key, or its shard count): one EXISTS. */
export async function queueExists(redis: RedisClient, name: string): Promise<boolean> {
  return (await redis.exists(queueMetaKey(name), queueKeys(name).shards)) > 0;
}
