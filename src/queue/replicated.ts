import { SluiceError } from '../errors.js';
import type { RedisClient } from '../redis/client.js';

/** How many replicas must have an enqueue before it is answered, and how long to wait for them. */
export interface ReplicaAck {
  count: number;
  timeoutMs: number;
}

/**
 * Waits until `count` replicas of the Redis that holds the queue have every write made so far on
 * this connection (WAIT), or throws (`REDIS_UNREACHABLE`) when fewer did within `timeoutMs`. WAIT
 * names no key: sent in a pipeline behind a command on one of the queue's keys (`queueKey`), it
 * goes to the queue's master, also on a cluster.
 */
export async function replicated(redis: RedisClient, queueKey: string, { count, timeoutMs }: ReplicaAck): Promise<void> {
  const replies = (await redis.pipeline().exists(queueKey).wait(count, timeoutMs).exec()) ?? [];
  const [error, acknowledged] = replies[1] ?? [new Error('no answer to WAIT')];
  if (error) throw error;
  if (Number(acknowledged) < count)
    throw new SluiceError(
      `Redis did not confirm the operations on ${count} replica${count === 1 ? '' : 's'} within ${timeoutMs} ms (${Number(acknowledged)} did): ` +
        'they are written, but a failover now could lose them. Enqueue again (a resumable input adds nothing twice), ' +
        'or lower SLUICE_ENQUEUE_REPLICAS if the Redis has fewer replicas',
      { code: 'REDIS_UNREACHABLE' },
    );
}
