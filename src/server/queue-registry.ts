import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { SluiceConfig } from '../config/sluice-config.js';
import { createBatches, type Batches } from '../queue/batches.js';
import { PREFIX, bullQueueName } from '../queue/keys.js';
import { createProducer, type Producer } from '../queue/producer.js';
import { createDeadLetterStore, type DeadLetterStore } from '../dead-letter/dead-letter-store.js';
import { ApiError } from './api-errors.js';

/** What the API works with for one queue. */
export interface QueueResources {
  name: string;
  producer: Producer;
  /** For reading jobs (state, attempts, results). */
  queue: Queue;
  batches: Batches;
  deadLetters: DeadLetterStore;
}

export interface QueueRegistryOptions {
  /** Borrowed; shared by every queue's objects. */
  redis: Redis;
  config: SluiceConfig;
  dedupWindowSeconds?: number;
  batchRetentionSeconds?: number;
  /** Queues served at once; a request naming one more is refused. Default 100. */
  maxQueues?: number;
}

export interface QueueRegistry {
  get(name: string): QueueResources;
  close(): Promise<void>;
}

/**
 * One producer, BullMQ queue and store per queue name, made on first use and kept (a request never
 * opens a connection of its own: everything shares the server's Redis client).
 */
export function createQueueRegistry(options: QueueRegistryOptions): QueueRegistry {
  const { redis, config } = options;
  const maxQueues = options.maxQueues ?? 100;
  const queues = new Map<string, QueueResources>();
  let closing: Promise<void> | undefined;

  function get(name: string): QueueResources {
    if (closing) throw new ApiError(503, 'SHUTTING_DOWN', 'the server is shutting down');
    const found = queues.get(name);
    if (found) return found;
    if (queues.size >= maxQueues) throw new ApiError(400, 'TOO_MANY_QUEUES', `this server serves at most ${maxQueues} queues at once`);
    const resources: QueueResources = {
      name,
      producer: createProducer({
        connection: redis,
        queue: name,
        config,
        ...(options.dedupWindowSeconds !== undefined ? { dedupWindowSeconds: options.dedupWindowSeconds } : {}),
        ...(options.batchRetentionSeconds !== undefined ? { batchRetentionSeconds: options.batchRetentionSeconds } : {}),
      }),
      queue: new Queue(bullQueueName(name), { connection: redis, prefix: PREFIX }),
      batches: createBatches(redis, name),
      deadLetters: createDeadLetterStore({ redis, queue: name }),
    };
    queues.set(name, resources);
    return resources;
  }

  function close(): Promise<void> {
    closing ??= (async () => {
      for (const resources of queues.values()) {
        await Promise.allSettled([resources.producer.close(), resources.queue.close(), resources.deadLetters.close()]);
      }
      queues.clear();
    })();
    return closing;
  }

  return { get, close };
}
