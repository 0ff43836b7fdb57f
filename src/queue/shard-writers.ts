import type { Queue } from 'bullmq';
import { queueKeys, shardName, type QueueKeys } from '../redis/keys.js';
import { openBullQueue } from './bull-queue.js';
import { chunkMarkEntry } from './add-jobs.js';
import { createChunkWriter, type ChunkWriter, type ChunkWriterOptions, type EnqueueResult } from './chunk-writer.js';
import { indexEntry, type PreparedJob } from './prepare-job.js';
import { StaleShardCountError } from './shards.js';
import { sleep } from '../support/sleep.js';

export type ShardWritersOptions = Omit<ChunkWriterOptions, 'queue' | 'keys' | 'newBatches'>;

/**
 * Routes a job anew by the queue's shard count read again (see rerouteJob), with the most shards
 * the queue ever had (the shards an earlier run may have written to).
 */
export type Reroute = () => Promise<{ route: (item: PreparedJob) => PreparedJob; highest: number }>;

export interface ShardWriters {
  /** What prepareJob needs to pick each operation's shard and make its keys: the queue's count now, and its batch's (see PrepareOptions). */
  spread(queue: number, batch: number): { queue: number; batch: number; keys: (shard: number) => QueueKeys };
  /**
   * Writes a chunk, each operation into its shard (the shards at once), and answers in the chunk's
   * order. Operations a shard refused as routed by a stale count are routed anew (`reroute`) and
   * written again, for up to about 30 s. A failure throws a PartChunkError with what was written.
   * `highest`: the most shards the queue ever had, for the lines found on another shard (see
   * placedElsewhere).
   */
  writeChunk(chunk: PreparedJob[], batchId: string | undefined, reroute: Reroute, highest?: number): Promise<EnqueueResult[]>;
  /**
   * The batches whose ids an enqueueMany made for the call writing them (see
   * AddJobsOptions.newBatch): a place is a hash of its batch id, among others, so no job of an
   * earlier run holds one of their lines. `begin` answers the call's batch id: the one given, which
   * is never new (not even one made for a call still writing: it is taken out), or a new one made.
   */
  newBatches: { begin(given: string | undefined, make: () => string): string; end(batchId: string): void };
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
  const newBatches = new Set<string>();
  function shard(index: number) {
    let opened = shards.get(index);
    if (!opened) {
      const name = shardName(queueName, index);
      const queue = openBullQueue(redis, name);
      // Redis errors reach the caller through the enqueue that fails; without a listener BullMQ prints each one.
      queue.on('error', () => undefined);
      const keys = queueKeys(name);
      opened = { queue, keys, writeChunk: createChunkWriter({ ...options, queue, queueName: name, keys, newBatches }) };
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

  /**
   * The lines of a resumable input with an idempotency key that an earlier run of the batch wrote
   * to another shard, answered as already enqueued, by their index in the chunk. Such a line is
   * routed by the queue's shard count of the moment (its key's dedup is on one shard), so after
   * the count changed (allowed once no key is held) it picks another shard than it did, whose
   * index of places knows nothing of it: the other shards' indexes are read (one HMGET each, of
   * the parts the chunk needs), only in a queue that ever had more than one shard. A line written
   * there concurrently cannot be missed: the same run of the count routes it to the same shard,
   * whose script checks its key and its index atomically.
   */
  async function placedElsewhere(
    entries: readonly { item: PreparedJob; index: number }[],
    batchId: string | undefined,
    highest: number,
  ): Promise<Map<number, EnqueueResult>> {
    const found = new Map<number, EnqueueResult>();
    if (highest <= 1 || batchId === undefined) return found;
    const looked = entries.filter(({ item }) => item.givenKey !== undefined && item.placeBucket !== '');
    if (looked.length === 0) return found;
    await Promise.all(
      Array.from({ length: highest }, async (_, other) => {
        const here = looked.filter(({ item }) => item.shard !== other);
        const parts = [...new Set(here.map(({ item }) => item.placeBucket))];
        if (parts.length === 0) return;
        const values = await redis.hmget(shard(other).keys.batchPlaces(batchId), ...parts);
        const entries = new Map(parts.map((part, i) => [part, values[i] ?? '']));
        for (const { item, index } of here) {
          // An entry is read as a chunk mark's is (a duplicate's: its key's holder and the holder's batch).
          const entry = indexEntry(entries.get(item.placeBucket)!, item.place);
          const id = entry === undefined ? undefined : chunkMarkEntry(entry).already;
          if (id !== undefined) found.set(index, { id: id === '' ? item.jobId : id, duplicate: false, alreadyEnqueued: true });
        }
      }),
    );
    return found;
  }

  async function writeChunk(chunk: PreparedJob[], batchId: string | undefined, reroute: Reroute, highest = 1): Promise<EnqueueResult[]> {
    const results = new Array<EnqueueResult | undefined>(chunk.length);
    let pending = chunk.map((item, index) => ({ item, index }));
    let lookFor = pending;
    for (let attempt = 1; ; attempt++) {
      // Found on another shard: not written again (looked for again only when routed anew).
      const elsewhere = await placedElsewhere(lookFor, batchId, highest);
      for (const [index, result] of elsewhere) results[index] = result;
      if (elsewhere.size > 0) pending = pending.filter(({ index }) => !elsewhere.has(index));
      if (pending.length === 0) return results as EnqueueResult[];
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
        const next = await reroute();
        highest = next.highest;
        const moved = pending.map(({ item, index }) => ({ item: next.route(item), index }));
        lookFor = moved.filter(({ item }, j) => item.shard !== pending[j]!.item.shard);
        pending = moved;
      }
    }
  }

  return {
    spread: (queue, batch) => ({ queue, batch, keys: (index) => shard(index).keys }),
    writeChunk,
    newBatches: {
      begin(given, make) {
        if (given !== undefined) {
          newBatches.delete(given);
          return given;
        }
        const made = make();
        newBatches.add(made);
        return made;
      },
      end: (batchId) => newBatches.delete(batchId),
    },
    async close() {
      await Promise.all([...shards.values()].map(({ queue }) => queue.close()));
    },
  };
}
