import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { defineScript } from '../redis/scripts.js';
import { createJobAdder } from './add-jobs.js';
import { NEW_JOB_PRIORITY, type JobEnvelope } from './job-data.js';
import type { BatchBookkeeper } from './batch-bookkeeping.js';

export interface EnqueueResult {
  /** The job id: the first job's id when this was a duplicate. */
  id: string;
  duplicate: boolean;
}

/** A validated operation, ready to be written. */
export interface PreparedJob {
  envelope: JobEnvelope;
  jobId: string;
  /** Its idempotency key's Redis key, when the operation gave one. */
  dedupKey: string | undefined;
}

export interface ChunkWriterOptions {
  redis: Redis;
  queue: Queue;
  batches: BatchBookkeeper;
  /** How long an idempotency key dedups once its job was added. */
  dedupWindowMs: number;
}

export type ChunkWriter = (chunk: PreparedJob[], batchId: string | undefined) => Promise<EnqueueResult[]>;

/** How long a claimed idempotency key is held before its job is added. */
const CLAIM_TTL_MS = 60_000;

export function createChunkWriter(options: ChunkWriterOptions): ChunkWriter {
  const { redis, queue, batches, dedupWindowMs } = options;
  const claimKeys = defineScript(redis, 'claim-keys');
  const addJobs = createJobAdder(redis, queue, 'op', NEW_JOB_PRIORITY);

  /**
   * Writes one validated chunk: claim its idempotency keys (atomically, so concurrent producers and
   * repeats inside the chunk cannot both win), skip the keys already held, add the rest.
   */
  return async function writeChunk(chunk, batchId) {
    const keyed = chunk.filter((item) => item.dedupKey !== undefined);
    const holders = keyed.length
      ? ((await claimKeys(
          keyed.length * 2,
          ...keyed.flatMap((item) => [item.dedupKey!, queue.toKey(item.jobId)]),
          ...keyed.map((item) => item.jobId),
          CLAIM_TTL_MS,
        )) as string[])
      : [];
    const firstIds = new Map<PreparedJob, string>();
    keyed.forEach((item, i) => {
      const holder = holders[i];
      if (holder) firstIds.set(item, holder);
    });

    const results: EnqueueResult[] = [];
    const toAdd: PreparedJob[] = [];
    for (const item of chunk) {
      const first = firstIds.get(item);
      if (first !== undefined) {
        results.push({ id: first, duplicate: true });
        continue;
      }
      toAdd.push(item);
      results.push({ id: item.jobId, duplicate: false });
    }
    if (toAdd.length === 0) return results;

    if (batchId !== undefined) await batches.count(batchId, toAdd.length);
    try {
      await addJobs(toAdd.map((item) => ({ id: item.jobId, data: item.envelope })));
    } catch (error) {
      if (batchId !== undefined) await batches.uncount(batchId, toAdd.length);
      // Release our claims so the operations can be enqueued again.
      const claimed = toAdd.flatMap((item) => (item.dedupKey === undefined ? [] : [item.dedupKey]));
      if (claimed.length) await redis.del(...claimed).catch(() => undefined);
      throw error;
    }
    const claimed = toAdd.filter((item) => item.dedupKey !== undefined);
    if (claimed.length) {
      const pipeline = redis.pipeline();
      for (const item of claimed) pipeline.pexpire(item.dedupKey!, dedupWindowMs);
      await pipeline.exec();
    }
    return results;
  };
}
