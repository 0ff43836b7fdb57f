import { Queue } from 'bullmq';
import type { RedisClient } from '../redis/client.js';
import type { SluiceConfig } from '../config/sluice-config.js';
import { createBatches, type Batches } from '../outcomes/batches.js';
import { createProducer, type Producer, type ReplicaAck } from '../queue/producer.js';
import { createDeadLetterStore, type DeadLetterStore } from '../outcomes/dead-letter-store.js';
import { queueExists } from '../queue/discover-queues.js';
import { ApiError, notFound } from './api-errors.js';
import { openBullQueue } from '../queue/bull-queue.js';
import { readShardCount, shardCountReader, type ShardCount } from '../queue/shards.js';
import { shardName } from '../redis/keys.js';

/** One shard of a queue (queue/shards.ts): its index, its name (`q`, `q#1`, …) and its BullMQ queue. */
export interface ShardQueue {
  index: number;
  name: string;
  queue: Queue;
}

/** The queue's shard count as read, and a BullMQ queue for each shard a reader must cover (`highest` of them). */
export interface QueueShards {
  count: ShardCount;
  shards: ShardQueue[];
}

/** What the API works with for one queue. */
export interface QueueResources {
  name: string;
  producer: Producer;
  /** Shard 0's BullMQ queue, the queue's own: all there is of a queue never spread. Read jobs by id with `shards()`. */
  queue: Queue;
  /**
   * Every shard a reader must cover, each with its BullMQ queue (made on first use, kept, closed
   * with the rest). `cached`: a count read at most 5 s ago (the dashboards' polling); otherwise
   * read now (one HMGET), so a lookup sees a shard added a moment ago.
   */
  shards(options?: { cached?: boolean }): Promise<QueueShards>;
  /** Shard `index`'s BullMQ queue (shard 0's is `queue`). */
  shardQueue(index: number): Queue;
  batches: Batches;
  deadLetters: DeadLetterStore;
}

export interface QueueRegistryOptions {
  /** Borrowed; shared by every queue's objects. */
  redis: RedisClient;
  config: SluiceConfig;
  dedupWindowSeconds?: number;
  lanes?: boolean;
  laneSize?: number;
  replicas?: ReplicaAck;
  batchRetentionSeconds?: number;
  /** The queue used when a request names none: always readable, even before anything was enqueued. */
  defaultQueue: string;
  /** Queues whose objects are kept; past this the least recently used are closed. Default 100. */
  maxQueues?: number;
}

export interface QueueRegistry {
  /** For writes (enqueue): the queue's objects, made on first use (creating the queue). */
  get(name: string | undefined): QueueResources;
  /**
   * For reads: the objects of a queue that exists in Redis (or the default queue); 404 otherwise.
   * A read never creates a queue (BullMQ writes a queue's `meta` key when its objects are made).
   */
  existing(name: string | undefined): Promise<QueueResources>;
  close(): Promise<void>;
}

/**
 * One producer, BullMQ queue and store per queue name, made on first use and kept (a request never
 * opens a connection of its own: everything shares the server's Redis client).
 */
export function createQueueRegistry(options: QueueRegistryOptions): QueueRegistry {
  const { redis, config } = options;
  const maxQueues = options.maxQueues ?? 100;
  const queues = new Map<string, QueueResources & { close(): Promise<void> }>();
  let closing: Promise<void> | undefined;

  function get(given: string | undefined): QueueResources {
    const name = given ?? options.defaultQueue;
    if (closing) throw new ApiError(503, 'SHUTTING_DOWN', 'the server is shutting down');
    const found = queues.get(name);
    if (found) {
      // Most recently used last: the first entry is the one to close when the map is full.
      queues.delete(name);
      queues.set(name, found);
      return found;
    }
    if (queues.size >= maxQueues) evictOldest();
    const resources = openResources(name);
    queues.set(name, resources);
    return resources;
  }

  function openResources(name: string): QueueResources & { close(): Promise<void> } {
    const bullQueues = new Map<number, Queue>();
    const cachedCount = shardCountReader(redis, name);
    let closed: Promise<void> | undefined;
    const shardQueue = (index: number): Queue => {
      // A request that began before these objects were evicted reads through the registry's current ones (never a queue left open).
      if (closed) return get(name).shardQueue(index);
      let queue = bullQueues.get(index);
      if (!queue) {
        queue = openBullQueue(redis, shardName(name, index));
        // Redis errors reach the requests whose commands fail; without a listener BullMQ prints each one.
        queue.on('error', () => undefined);
        bullQueues.set(index, queue);
      }
      return queue;
    };
    const producer = createProducer({
      connection: redis,
      queue: name,
      config,
      ...(options.dedupWindowSeconds !== undefined ? { dedupWindowSeconds: options.dedupWindowSeconds } : {}),
      ...(options.lanes !== undefined ? { lanes: options.lanes } : {}),
      ...(options.laneSize !== undefined ? { laneSize: options.laneSize } : {}),
      ...(options.replicas !== undefined ? { replicas: options.replicas } : {}),
      ...(options.batchRetentionSeconds !== undefined ? { batchRetentionSeconds: options.batchRetentionSeconds } : {}),
    });
    const deadLetters = createDeadLetterStore({
      redis,
      queue: name,
      config,
      ...(options.lanes !== undefined ? { lanes: options.lanes } : {}),
      ...(options.laneSize !== undefined ? { laneSize: options.laneSize } : {}),
    });
    return {
      name,
      producer,
      queue: shardQueue(0),
      shardQueue,
      async shards(shardOptions = {}) {
        const count = await (shardOptions.cached ? cachedCount() : readShardCount(redis, name));
        const shards = Array.from({ length: count.highest }, (_, index) => ({
          index,
          name: shardName(name, index),
          queue: shardQueue(index),
        }));
        return { count, shards };
      },
      batches: createBatches(redis, name),
      deadLetters,
      close() {
        closed ??= Promise.allSettled([
          producer.close(),
          ...[...bullQueues.values()].map((queue) => queue.close()),
          deadLetters.close(),
        ]).then(() => undefined);
        return closed;
      },
    };
  }

  async function existing(given: string | undefined): Promise<QueueResources> {
    const name = given ?? options.defaultQueue;
    if (!queues.has(name) && name !== options.defaultQueue && !(await queueExists(redis, name))) {
      throw notFound(`no queue ${JSON.stringify(name)} (nothing was ever enqueued into it)`);
    }
    return get(name);
  }

  function evictOldest(): void {
    const [name, oldest] = queues.entries().next().value!;
    queues.delete(name);
    // A request still using them may fail (and be retried by its client); the map stays bounded.
    void oldest.close();
  }

  function close(): Promise<void> {
    closing ??= (async () => {
      for (const resources of queues.values()) await resources.close();
      queues.clear();
    })();
    return closing;
  }

  return { get, existing, close };
}
