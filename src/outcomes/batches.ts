import type { RedisClient } from '../redis/client.js';
import { isBatchId, queueKeys } from '../redis/keys.js';
import type { ResultLine } from './result-line.js';
import { readPage, type IndexPosition, type NewestFirstPage } from './newest-first.js';

export { waitForBatch, type WaitOptions, type WaitResult } from './wait-for-batch.js';

export interface BatchStatus {
  batchId: string;
  total: number;
  succeeded: number;
  deadLettered: number;
  pending: number;
  /** Operations not run because an earlier one holds their idempotency key; each has a result line (`outcome: "duplicate"`). */
  duplicates: number;
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
  /** A page of `limit` batches, newest first, after `after` (the last of the previous page); stable while batches are added. */
  page(options: { limit: number; after?: IndexPosition | undefined }): Promise<NewestFirstPage<BatchStatus>>;
  /**
   * One line per finished operation and per duplicate, streamed (HSCAN); `failed` keeps only dead
   * letters. A duplicate says how the job it duplicates ended (`firstOutcome`), once that is known.
   */
  results(batchId: string, options?: { failed?: boolean }): AsyncGenerator<ResultLine>;
}

/** Reads batch counters and results. Borrows its Redis client. */
export function createBatches(redis: RedisClient, queue: string): Batches {
  const keys = queueKeys(queue);

  async function status(batchId: string): Promise<BatchStatus | undefined> {
    // Not a batch id: its keys could be another batch's (`x:results`); no such batch.
    if (!isBatchId(batchId)) return undefined;
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
      duplicates: Number(hash['duplicates'] ?? 0),
      retries: Number(hash['retries'] ?? 0),
      enqueuing: filling === 1,
    };
    if (hash['createdAt']) out.createdAt = hash['createdAt'];
    return out;
  }

  async function* results(batchId: string, options: { failed?: boolean } = {}): AsyncGenerator<ResultLine> {
    if (!isBatchId(batchId)) return;
    let cursor = '0';
    do {
      const [next, flat] = await redis.hscan(keys.batchResults(batchId), cursor, 'COUNT', 500);
      cursor = next;
      const lines: ResultLine[] = [];
      for (let i = 1; i < flat.length; i += 2) {
        const line = JSON.parse(flat[i]!) as ResultLine;
        if (options.failed && line.outcome !== 'deadLettered') continue;
        lines.push(line);
      }
      await withFirstOutcomes(lines);
      yield* lines;
    } while (cursor !== '0');
  }

  /** Duplicates learn how their first job ended from its result line in its batch (one pipeline per page). */
  async function withFirstOutcomes(lines: ResultLine[]): Promise<void> {
    const duplicates = lines.filter((line) => line.outcome === 'duplicate' && isBatchId(line.duplicateOfBatch) && line.duplicateOf);
    if (duplicates.length === 0) return;
    const pipeline = redis.pipeline();
    for (const line of duplicates) pipeline.hget(keys.batchResults(line.duplicateOfBatch!), line.duplicateOf!);
    const replies = (await pipeline.exec()) ?? [];
    duplicates.forEach((line, i) => {
      const first = replies[i]?.[1];
      if (typeof first !== 'string') return;
      const outcome = (JSON.parse(first) as Partial<ResultLine>).outcome;
      if (outcome === 'succeeded' || outcome === 'deadLettered') line.firstOutcome = outcome;
    });
  }

  async function list(options: { limit?: number } = {}): Promise<BatchStatus[]> {
    const ids = await redis.zrevrange(keys.batchIndex, 0, (options.limit ?? 20) - 1);
    // Ids an older version let in (with `:`) are left out: status() cannot read them safely.
    const found = await Promise.all(ids.filter(isBatchId).map((id) => status(id)));
    return found.filter((entry): entry is BatchStatus => entry !== undefined);
  }

  function page(options: { limit: number; after?: IndexPosition | undefined }): Promise<NewestFirstPage<BatchStatus>> {
    return readPage(redis, keys.batchIndex, {
      limit: options.limit,
      after: options.after,
      // Ids an older version let in (with `:`) are left out, as are expired batches.
      load: (ids) => Promise.all(ids.map((id) => (isBatchId(id) ? status(id) : Promise.resolve(undefined)))),
    });
  }

  return { status, list, page, results };
}
