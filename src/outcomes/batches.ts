import type { Redis } from 'ioredis';
import { queueKeys } from '../redis/keys.js';
import type { ResultLine } from './result-line.js';

export { waitForBatch, type WaitOptions, type WaitResult } from './wait-for-batch.js';

export interface BatchStatus {
  batchId: string;
  total: number;
  succeeded: number;
  deadLettered: number;
  pending: number;
  /** Attempts that failed and were retried (a batch can succeed fully after many). */
  retries: number;
  /** A producer is still adding operations to the batch. */
  enqueuing: boolean;
  createdAt?: string;
}

export interface Batches {
  /** Counters of a batch; undefined when no such batch exists (or it expired). */
  status(batchId: string): Promise<BatchStatus | undefined>;
  /** The newest batches first (up to `limit`, default 20), with their counters; expired ones are skipped. */
  list(options?: { limit?: number }): Promise<BatchStatus[]>;
  /** One line per finished operation, streamed (HSCAN); `failed` keeps only dead letters. */
  results(batchId: string, options?: { failed?: boolean }): AsyncGenerator<ResultLine>;
}

/** Reads batch counters and results. Borrows its Redis client. */
export function createBatches(redis: Redis, queue: string): Batches {
  const keys = queueKeys(queue);

  async function status(batchId: string): Promise<BatchStatus | undefined> {
    // A pipeline, not a MULTI: Redis aborts every MULTI while it refuses writes (maxmemory), and a
    // read must still answer then. The flag is read first: once it is gone, the counters read
    // after it hold the batch's final total.
    const [[flagError, filling], [hashError, rawHash]] = ((await redis
      .pipeline()
      .exists(keys.batchEnqueuing(batchId))
      .hgetall(keys.batch(batchId))
      .exec()) ?? []) as [[Error | null, number], [Error | null, Record<string, string>]];
    if (flagError ?? hashError) throw flagError ?? hashError;
    const hash = rawHash ?? {};
    if (!hash['total'] && !hash['createdAt']) return undefined;
    const total = Number(hash['total'] ?? 0);
    const succeeded = Number(hash['succeeded'] ?? 0);
    const deadLettered = Number(hash['deadLettered'] ?? 0);
    const out: BatchStatus = {
      batchId,
      total,
      succeeded,
      deadLettered,
      pending: Math.max(0, total - succeeded - deadLettered),
      retries: Number(hash['retries'] ?? 0),
      enqueuing: filling === 1,
    };
    if (hash['createdAt']) out.createdAt = hash['createdAt'];
    return out;
  }

  async function* results(batchId: string, options: { failed?: boolean } = {}): AsyncGenerator<ResultLine> {
    let cursor = '0';
    do {
      const [next, flat] = await redis.hscan(keys.batchResults(batchId), cursor, 'COUNT', 500);
      cursor = next;
      for (let i = 1; i < flat.length; i += 2) {
        const line = JSON.parse(flat[i]!) as ResultLine;
        if (options.failed && line.outcome !== 'deadLettered') continue;
        yield line;
      }
    } while (cursor !== '0');
  }

  async function list(options: { limit?: number } = {}): Promise<BatchStatus[]> {
    const ids = await redis.zrevrange(keys.batchIndex, 0, (options.limit ?? 20) - 1);
    const found = await Promise.all(ids.map((id) => status(id)));
    return found.filter((entry): entry is BatchStatus => entry !== undefined);
  }

  return { status, list, results };
}
