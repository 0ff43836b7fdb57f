import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { PREFIX, bullQueueName } from '../redis/keys.js';

/** The BullMQ queue behind a sluice queue, on a borrowed client. The caller closes it. */
export function openBullQueue(redis: Redis, queue: string): Queue {
  return new Queue(bullQueueName(queue), { connection: redis, prefix: PREFIX });
}
