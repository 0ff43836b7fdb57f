import { Cluster, type Redis } from 'ioredis';
import type { RedisClient } from './client.js';

/**
 * Walks the keys matching `pattern` with SCAN, `count` at a time, handing each page to `onKeys`
 * until it returns false or the walk ends. On a Redis Cluster each master holds its own keys and
 * SCAN walks one node, so every master is walked in turn.
 */
export async function scanKeys(
  redis: RedisClient,
  pattern: string,
  count: number,
  onKeys: (keys: string[]) => boolean | void | Promise<boolean | void>,
): Promise<void> {
  // A cluster client knows its masters once it has read the slots: a first command waits for that.
  if (redis instanceof Cluster && redis.status !== 'ready') await redis.ping();
  const nodes: Redis[] = redis instanceof Cluster ? redis.nodes('master') : [redis];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', count);
      cursor = next;
      if ((await onKeys(keys)) === false) return;
    } while (cursor !== '0');
  }
}
