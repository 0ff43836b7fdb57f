import type { ChainableCommander } from 'ioredis';
import type { RedisClient } from '../redis/client.js';
import type { QueueKeys } from '../redis/keys.js';

/** A batch counts as still being filled this long after its producer's last chunk. */
const ENQUEUING_TTL_MS = 60_000;

/**
 * The flag is renewed at most this often: a chunk is written every few milliseconds, and a round
 * trip after each (which the next chunk's write waited for) cost a million-line enqueue 0.8 s.
 */
const ENQUEUING_RENEW_MS = 1_000;

/**
 * What a producer writes about a batch besides its jobs and their count (written with the jobs, by
 * add-jobs.lua): that it exists, its place in the index, and that it is being filled.
 */
export interface BatchBookkeeper {
  /**
   * The batch exists from the start (also when every item turns out a duplicate), and says it is
   * still being filled, so `wait` does not call it done between two chunks. It keeps the shard
   * count it was first opened with (`shards`), and answers with it: an input enqueued again into
   * the batch after the queue's count changed is spread as it was the first time, so each line
   * finds its place (queue/shards.ts).
   */
  open(batchId: string, shards: number): Promise<number>;
  /** The batch is still being filled: after a chunk was written (Redis is told at most once a second, see ENQUEUING_RENEW_MS). */
  stillEnqueuing(batchId: string): Promise<void>;
  /** The batch is filled (failures ignored). */
  doneEnqueuing(batchId: string): Promise<void>;
}

/** `keys`: shard 0's (the batch's flag, index and shard count live there); `retentionSeconds`: how long batch counters are kept. */
export function createBatchBookkeeper(redis: RedisClient, keys: QueueKeys, retentionSeconds: number): BatchBookkeeper {
  /** When each batch being filled here last had its flag set or renewed (a monotonic clock: a clock set back must not stop renewals). */
  const renewedAt = new Map<string, number>();
  /** Lists the batch among the queue's recent ones (first sight only), dropping those past retention. */
  function indexBatch(transaction: ChainableCommander, batchId: string): ChainableCommander {
    const now = Date.now();
    return transaction.zadd(keys.batchIndex, 'NX', now, batchId).zremrangebyscore(keys.batchIndex, '-inf', now - retentionSeconds * 1_000);
  }

  return {
    async open(batchId, shards) {
      const opening = redis
        .multi()
        .hsetnx(keys.batch(batchId), 'createdAt', new Date().toISOString())
        .hincrby(keys.batch(batchId), 'total', 0)
        .hsetnx(keys.batch(batchId), 'shards', shards)
        .hget(keys.batch(batchId), 'shards')
        .expire(keys.batch(batchId), retentionSeconds)
        .set(keys.batchEnqueuing(batchId), '1', 'PX', ENQUEUING_TTL_MS);
      const replies = (await indexBatch(opening, batchId).exec()) ?? [];
      const [error, kept] = replies[3] ?? [new Error('the batch was not opened')];
      if (error) throw error;
      renewedAt.set(batchId, performance.now());
      const count = Number(kept);
      return Number.isInteger(count) && count >= 1 ? count : shards;
    },
    async stillEnqueuing(batchId) {
      const now = performance.now();
      if (now - (renewedAt.get(batchId) ?? 0) < ENQUEUING_RENEW_MS) return;
      renewedAt.set(batchId, now);
      await redis.pexpire(keys.batchEnqueuing(batchId), ENQUEUING_TTL_MS);
    },
    async doneEnqueuing(batchId) {
      renewedAt.delete(batchId);
      await redis.del(keys.batchEnqueuing(batchId)).catch(() => undefined);
    },
  };
}
