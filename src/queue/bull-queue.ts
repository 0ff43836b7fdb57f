import { Queue } from 'bullmq';
import type { RedisClient } from '../redis/client.js';
import { PREFIX, bullQueueName } from '../redis/keys.js';

/** The BullMQ queue behind a sluice queue, on a borrowed client. The caller closes it. */
export function openBullQueue(redis: RedisClient, queue: string): Queue {
  return new Queue(bullQueueName(queue), { connection: redis, prefix: PREFIX });
}
