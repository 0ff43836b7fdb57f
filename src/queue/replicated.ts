import { SluiceError } from '../errors.js';
import type { RedisClient } from '../redis/client.js';

/** How many replicas must have an enqueue before it is answered, and how long to wait for them. */
export interface ReplicaAck {
  count: number;
  timeoutMs: number;
}

/**
 * Confirms that replicas have an enqueue's writes: `begin()` before the first write, `confirm()`
 * after the last. WAIT counts the writes of the connection it is sent on, so both name the
 * connection (CLIENT ID): one that was replaced in between (a reconnect, a failover) made none of
 * the writes, and its WAIT would confirm nothing; the enqueue is then refused, not answered. WAIT
 * names no key: sent in a pipeline behind a command on one of the queue's keys (`queueKey`), it goes
 * to the queue's master, also on a cluster. WAIT blocks its connection: give it one of its own.
 */
export interface ReplicaCheck {
  /** Per key of `queueKeys`, the id of the connection to its master. */
  begin(): Promise<number[]>;
  confirm(begunOn: readonly number[]): Promise<void>;
}

/**
 * `queueKeys`: a key of each shard the enqueue may write (queue/shards.ts); on a cluster each
 * shard's master is asked, on its own connection.
 */
export function replicaCheck(redis: RedisClient, queueKeys: readonly string[], { count, timeoutMs }: ReplicaAck): ReplicaCheck {
  const refuse = (why: string) =>
    new SluiceError(
      `Redis did not confirm the operations on ${count} replica${count === 1 ? '' : 's'} within ${timeoutMs} ms (${why}): ` +
        'they are written, but a failover now could lose them. Enqueue again (a resumable input adds nothing twice), ' +
        'or lower SLUICE_ENQUEUE_REPLICAS if the Redis has fewer replicas',
      { code: 'REDIS_UNREACHABLE' },
    );
  /** The replies of a pipeline on the queue's master: its first command anchors it there. */
  async function onMaster(queueKey: string, build: (pipeline: ReturnType<RedisClient['pipeline']>) => void): Promise<unknown[]> {
    const pipeline = redis.pipeline().exists(queueKey);
    build(pipeline);
    return ((await pipeline.exec()) ?? []).map(([error, value]) => {
      if (error) throw error;
      return value;
    });
  }
  return {
    async begin() {
      return Promise.all(
        queueKeys.map(async (queueKey) => {
          const [, id] = await onMaster(queueKey, (pipeline) => pipeline.client('ID'));
          return Number(id);
        }),
      );
    },
    async confirm(begunOn) {
      const confirmed = await Promise.all(
        queueKeys.map((queueKey) => onMaster(queueKey, (pipeline) => pipeline.client('ID').wait(count, timeoutMs))),
      );
      confirmed.forEach(([, id, acknowledged], i) => {
        if (Number(id) !== begunOn[i]) throw refuse('the connection to Redis was replaced during the enqueue');
        if (Number(acknowledged) < count) throw refuse(`${Number(acknowledged)} did`);
      });
    },
  };
}
