import type { Queue } from 'bullmq';
import { queueKeys, shardName, type QueueKeys } from '../redis/keys.js';
import { openBullQueue } from './bull-queue.js';
import { createChunkWriter, type ChunkWriter, type ChunkWriterOptions, type EnqueueResult } from './chunk-writer.js';
import type { PreparedJob } from './prepare-job.js';
import { StaleShardCountError } from './shards.js';
import { sleep } from '../support/sleep.js';

export type ShardWritersOptions = Omit<ChunkWriterOptions, 'queue' | 'keys'>;

/** Routes a job anew by the queue's shard count read again (see rerouteJob). */
export type Reroute = () => Promise<(item: PreparedJob) => PreparedJob>;

export interface ShardWriters {
  /** What prepareJob needs to pick each operation's shard and make its keys: the queue's count now, and its batch's (see PrepareOptions). */
  spread(queue: number, batch: number): { queue: number; batch: number; keys: (shard: number) => QueueKeys };
  /**
   * Writes a chunk, each operation into its shard (the shards at once), and answers in the chunk's
   * order. Operations a shard refused as routed by a stale count are routed anew (`reroute`) and
   * written again, for up to about 30 s. A failure throws a PartChunkError with what was written.
   */
  writeChunk(chunk: PreparedJob[], batchId: string | undefined, reroute: Reroute): Promise<EnqueueResult[]>;
  close(): Promise<void>;
}

/** Writes refused as routed by a stale shard count are tried again this many times (about 30 s). */
const STALE_ATTEMPTS = 35;

/**
 * A chunk whose part for one shard failed while others were written: `written` holds, per
 * operation of the chunk, what its shard answered, or undefined where its part was not written.
 */
export class PartChunkError extends Error {
  readonly written: readonly (EnqueueResult | undefined)[];

  constructor(written: readonly (EnqueueResult | undefined)[], cause: unknown) {
    super('a part of the chunk was not written', { cause });
    this.written = written;
  }
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

  async function writeParts(chunk: PreparedJob[], batchId: string | undefined): Promise<EnqueueResult[]> {
    const first = chunk[0]?.shard ?? 0;
    if (chunk.every((item) => item.shard === first)) return shard(first).writeChunk(chunk, batchId);
    const byShard = new Map<number, number[]>();
    chunk.forEach((item, i) => {
      const indexes = byShard.get(item.shard) ?? [];
      indexes.push(i);
      byShard.set(item.shard, indexes);
    });
    const results = new Array<EnqueueResult | undefined>(chunk.length);
    // Every part settles before the chunk answers: none is still being written once the caller
    // hears of a failure (and, say, ends the batch's enqueuing).
    const settled = await Promise.allSettled(
      [...byShard].map(async ([index, indexes]) => {
        const written = await shard(index).writeChunk(
          indexes.map((i) => chunk[i]!),
          batchId,
        );
        indexes.forEach((i, j) => (results[i] = written[j]!));
      }),
    );
    const failed = settled.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
    if (failed) throw new PartChunkError(results, failed.reason);
    return results as EnqueueResult[];
  }

  async function writeChunk(chunk: PreparedJob[], batchId: string | undefined, reroute: Reroute): Promise<EnqueueResult[]> {
    const results = new Array<EnqueueResult | undefined>(chunk.length);
    let pending = chunk.map((item, index) => ({ item, index }));
    for (let attempt = 1; ; attempt++) {
      try {
        const written = await writeParts(
          pending.map(({ item }) => item),
          batchId,
        );
        written.forEach((result, j) => (results[pending[j]!.index] = result));
        return results as EnqueueResult[];
      } catch (error) {
        const part = error instanceof PartChunkError ? error : undefined;
        part?.written.forEach((result, j) => {
          if (result) results[pending[j]!.index] = result;
        });
        const cause: unknown = part ? part.cause : error;
        if (!(cause instanceof StaleShardCountError) || attempt >= STALE_ATTEMPTS) throw new PartChunkError(results, cause);
        pending = pending.filter((_, j) => !part?.written[j]);
        // A change under way holds keyed writes for as long as it counts the marks held.
        await sleep(Math.min(100 * attempt, 1_000));
        const route = await reroute();
        pending = pending.map(({ item, index }) => ({ item: route(item), index }));
      }
    }
  }

  return {
    spread: (queue, batch) => ({ queue, batch, keys: (index) => shard(index).keys }),
    writeChunk,
    async close() {
      await Promise.all([...shards.values()].map(({ queue }) => queue.close()));
    },
  };
}
