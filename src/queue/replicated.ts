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
  begin(): Promise<number>;
  confirm(begunOn: number): Promise<void>;
}

export function replicaCheck(redis: RedisClient, queueKey: string, { count, timeoutMs }: ReplicaAck): ReplicaCheck {
  const refuse = (why: string) =>
    new SluiceError(
      `Redis did not confirm the operations on ${count} replica${count === 1 ? '' : 's'} within ${timeoutMs} ms (${why}): ` +
        'they are written, but a failover now could lose them. Enqueue again (a resumable input adds nothing twice), ' +
        'or lower SLUICE_ENQUEUE_REPLICAS if the Redis has fewer replicas',
      { code: 'REDIS_UNREACHABLE' },
    );
  /** The replies of a pipeline on the queue's master: its first command anchors it there. */
  async function onMaster(build: (pipeline: ReturnType<RedisClient['pipeline']>) => void): Promise<unknown[]> {
    const pipeline = redis.pipeline().exists(queueKey);
    build(pipeline);
    return ((await pipeline.exec()) ?? []).map(([error, value]) => {
      if (error) throw error;
      return value;
    });
  }
  return {
    async begin() {
      const [, id] = await onMaster((pipeline) => pipeline.client('ID'));
      return Number(id);
    },
    async confirm(begunOn) {
      const [, id, acknowledged] = await onMaster((pipeline) => pipeline.client('ID').wait(count, timeoutMs));
      if (Number(id) !== begunOn) throw refuse('the connection to Redis was replaced during the enqueue');
      if (Number(acknowledged) < count) throw refuse(`${Number(acknowledged)} did`);
    },
  };
}
