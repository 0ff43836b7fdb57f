import type { RedisClient } from '../redis/client.js';
import { MAX_SHARDS, isBatchId } from '../redis/keys.js';
import { readResultLine, type ResultLine } from './result-line.js';
import { isEarliestEntry, readPage, type IndexEntry, type IndexPosition, type NewestFirstPage } from './newest-first.js';
import { readShards, type ReadShard } from './read-shards.js';

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

/**
 * Reads batch counters and results. Borrows its Redis client. A queue spread over shards keeps a
 * batch's keys in each shard its operations went to (queue/shards.ts): counters are added up,
 * results read shard by shard, and the shards' batch indexes merged, each batch once.
 */
export function createBatches(redis: RedisClient, queue: string): Batches {
  const shards = readShards(redis, queue);

  async function status(batchId: string): Promise<BatchStatus | undefined> {
    // Not a batch id: its keys could be another batch's (`x:results`); no such batch.
    if (!isBatchId(batchId)) return undefined;
    const [first, ...known] = await shards();
    // A pipeline, not a MULTI: Redis aborts every MULTI while it refuses writes (maxmemory), and a
    // read must still answer then. The flag (on shard 0) is read first: once it is gone, the
    // counters read after it, in every shard, hold the batch's final total.
    const [[flagError, filling], [hashError, firstHash]] = ((await redis
      .pipeline()
      .exists(first!.keys.batchEnqueuing(batchId))
      .hgetall(first!.keys.batch(batchId))
      .exec()) ?? []) as [[Error | null, number], [Error | null, Record<string, string>]];
    if (flagError ?? hashError) throw flagError ?? hashError;
    // A batch opened just after the count was raised may be spread wider than the count last read says.
    const opened = Number(firstHash?.['shards']);
    const others = opened > known.length + 1 && opened <= MAX_SHARDS ? shards.upTo(opened).slice(1) : known;
    const hashes = [firstHash ?? {}, ...(await Promise.all(others.map(({ keys }) => redis.hgetall(keys.batch(batchId)))))];
    return addedUp(batchId, filling === 1, hashes);
  }

  async function* results(batchId: string, options: { failed?: boolean } = {}): AsyncGenerator<ResultLine> {
    if (!isBatchId(batchId)) return;
    const all = await shards();
    for (const { keys } of all) {
      let cursor = '0';
      do {
        const [next, flat] = await redis.hscan(keys.batchResults(batchId), cursor, 'COUNT', 500);
        cursor = next;
        const lines: ResultLine[] = [];
        for (let i = 1; i < flat.length; i += 2) {
          const line = readResultLine(flat[i - 1]!, flat[i]!);
          if (options.failed && line.outcome !== 'deadLettered') continue;
          lines.push(line);
        }
        await withFirstOutcomes(lines, all);
        yield* lines;
      } while (cursor !== '0');
    }
  }

  /**
   * Duplicates learn how their first job ended from its result line in its batch (one pipeline per
   * page and shard): in whichever shard holds it, so each shard is asked.
   */
  async function withFirstOutcomes(lines: ResultLine[], all: readonly ReadShard[]): Promise<void> {
    const duplicates = lines.filter((line) => line.outcome === 'duplicate' && isBatchId(line.duplicateOfBatch) && line.duplicateOf);
    if (duplicates.length === 0) return;
    const perShard = await Promise.all(
      all.map(async ({ keys }) => {
        const pipeline = redis.pipeline();
        for (const line of duplicates) pipeline.hget(keys.batchResults(line.duplicateOfBatch!), line.duplicateOf!);
        return (await pipeline.exec()) ?? [];
      }),
    );
    duplicates.forEach((line, i) => {
      const first = perShard.map((replies) => replies[i]?.[1]).find((reply) => typeof reply === 'string');
      if (typeof first !== 'string') return;
      const outcome = (JSON.parse(first) as Partial<ResultLine>).outcome;
      if (outcome === 'succeeded' || outcome === 'deadLettered') line.firstOutcome = outcome;
    });
  }

  async function list(options: { limit?: number } = {}): Promise<BatchStatus[]> {
    const limit = options.limit ?? 20;
    const all = await shards();
    // Several shards' indexes hold the same batches: merged as pages are.
    if (all.length > 1) return (await page({ limit })).items;
    const ids = await redis.zrevrange(all[0]!.keys.batchIndex, 0, limit - 1);
    // Ids an older version let in (with `:`) are left out: status() cannot read them safely.
    const found = await Promise.all(ids.filter(isBatchId).map((id) => status(id)));
    return found.filter((entry): entry is BatchStatus => entry !== undefined);
  }

  /**
   * A batch is in the index of each shard it wrote to, at the time it first did: it shows once, at
   * the earliest (isEarliestEntry). That place stays while batches are added (at later times, also
   * to other shards' indexes), so a page's position holds as it does for one index.
   */
  async function page(options: { limit: number; after?: IndexPosition | undefined }): Promise<NewestFirstPage<BatchStatus>> {
    const all = await shards();
    return readPage(
      redis,
      all.map(({ keys }) => keys.batchIndex),
      {
        limit: options.limit,
        after: options.after,
        async load(ids, entries) {
          const shown = all.length > 1 ? await earliest(all, entries) : ids.map(() => true);
          // Ids an older version let in (with `:`) are left out, as are expired batches.
          return Promise.all(ids.map((id, i) => (shown[i] && isBatchId(id) ? status(id) : Promise.resolve(undefined))));
        },
      },
    );
  }

  /** Which entries are their batch's earliest in the shards' indexes (one ZMSCORE per shard). */
  async function earliest(all: readonly ReadShard[], entries: readonly IndexEntry[]): Promise<boolean[]> {
    const ids = entries.map((entry) => entry.id);
    const scores = await Promise.all(all.map(({ keys }) => redis.zmscore(keys.batchIndex, ...ids)));
    return entries.map((entry, i) =>
      isEarliestEntry(
        entry,
        scores.map((inShard) => (inShard[i] === null || inShard[i] === undefined ? null : Number(inShard[i]))),
      ),
    );
  }

  return { status, list, page, results };
}

/** A batch's status from its hash in each shard (shard 0's first); undefined when none holds it. */
function addedUp(batchId: string, enqueuing: boolean, hashes: readonly Record<string, string>[]): BatchStatus | undefined {
  if (!hashes.some((hash) => hash['total'] || hash['createdAt'])) return undefined;
  const sum = (field: string) => hashes.reduce((total, hash) => total + Number(hash[field] ?? 0), 0);
  const total = sum('total');
  const succeeded = sum('succeeded');
  const deadLettered = sum('deadLettered');
  const out: BatchStatus = {
    batchId,
    total,
    succeeded,
    deadLettered,
    pending: Math.max(0, total - succeeded - deadLettered),
    duplicates: sum('duplicates'),
    retries: sum('retries'),
    enqueuing,
  };
  // ISO times: the earliest sorts first.
  const createdAt = hashes
    .map((hash) => hash['createdAt'])
    .filter((at): at is string => Boolean(at))
    .sort()[0];
  if (createdAt) out.createdAt = createdAt;
  return out;
}
