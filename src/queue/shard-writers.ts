import type { Queue } from 'bullmq';
import { queueKeys, shardName, type QueueKeys } from '../redis/keys.js';
import { openBullQueue } from './bull-queue.js';
import { createChunkWriter, type ChunkWriter, type ChunkWriterOptions, type EnqueueResult } from './chunk-writer.js';
import type { PreparedJob } from './prepare-job.js';

export type ShardWritersOptions = Omit<ChunkWriterOptions, 'queue' | 'keys'>;

export interface ShardWriters {
  /** What prepareJob needs to pick each operation's shard and make its keys, for a queue of `count` shards. */
  spread(count: number): { count: number; keys: (shard: number) => QueueKeys };
  /** Writes a chunk, each operation into its shard (the shards at once), and answers in the chunk's order. */
  writeChunk: ChunkWriter;
  close(): Promise<void>;
}

/** A producer's chunk writers, one per shard of its queue (queue/shards.ts), each opened when first written to. */
export function createShardWriters(options: ShardWritersOptions): ShardWriters {
  const { redis, queueName } = options;
  const shards = new Map<number, { queue: Queue; keys: QueueKeys; writeChunk: ChunkWriter }>();
  function shard(index: number) {
    let opened = shards.get(index);
    if (!opened) {
      const name = shardName(queueName, index);
      const queue = openBullQueue(redis, name);
      // Redis errors reach the caller through the enqueue that fails; without a listener BullMQ prints each one.
      queue.on('error', () => undefined);
      const keys = queueKeys(name);
      opened = { queue, keys, writeChunk: createChunkWriter({ ...options, queue, queueName: name, keys }) };
      shards.set(index, opened);
    }
    return opened;
  }

  async function writeChunk(chunk: PreparedJob[], batchId: string | undefined): Promise<EnqueueResult[]> {
    const first = chunk[0]?.shard ?? 0;
    if (chunk.every((item) => item.shard === first)) return shard(first).writeChunk(chunk, batchId);
    const byShard = new Map<number, number[]>();
    chunk.forEach((item, i) => {
      const indexes = byShard.get(item.shard) ?? [];
      indexes.push(i);
      byShard.set(item.shard, indexes);
    });
    const results = new Array<EnqueueResult>(chunk.length);
    await Promise.all(
      [...byShard].map(async ([index, indexes]) => {
        const written = await shard(index).writeChunk(
          indexes.map((i) => chunk[i]!),
          batchId,
        );
        indexes.forEach((i, j) => (results[i] = written[j]!));
      }),
    );
    return results;
  }

  return {
    spread: (count) => ({ count, keys: (index) => shard(index).keys }),
    writeChunk,
    async close() {
      await Promise.all([...shards.values()].map(({ queue }) => queue.close()));
    },
  };
}
