/**
 * A queue's dead letters in Redis: one hash (id → JSON) per shard, indexed by time and by batch,
 * with group counters beside them. Reading them page by page (every shard's, merged) or one by
 * one, and removing one (in its shard).
 */
import type { RedisClient } from '../redis/client.js';
import { isBatchId, type QueueKeys } from '../redis/keys.js';
import { groupField } from './dead-letter-groups.js';
import type { DeadLetter } from './dead-letter.js';
import { readPage, walkNewestFirst, type IndexEntry, type IndexPosition, type NewestFirstPage } from './newest-first.js';
import { readFromShards, type ReadShard } from './read-shards.js';

export interface DeadLetterFilter {
  batchId?: string;
  reason?: string;
  /** `null` selects dead letters without a limit key (invalid operations). */
  limitKey?: string | null;
  /** The last HTTP status; `null` selects dead letters that never got one (network errors, invalid operations). */
  status?: number | null;
}

/** Pages of this many entries are read at a time. */
const PAGE = 500;

/** The time index a filter reads in a shard: the batch's, or the queue's. */
function indexOf(keys: QueueKeys, filter: DeadLetterFilter): string {
  return filter.batchId !== undefined ? keys.batchDeadLetters(filter.batchId) : keys.deadLetterIndex;
}

/** The dead letters of index entries, each from the shard its entry came from; undefined for those gone or not matching. */
async function loadEntries(
  redis: RedisClient,
  shards: readonly ReadShard[],
  entries: readonly IndexEntry[],
  filter: DeadLetterFilter,
): Promise<(DeadLetter | undefined)[]> {
  const values = await readFromShards(redis, shards, (keys) => keys.deadLetters, entries);
  return values.map((value) => {
    if (!value) return undefined;
    const entry = JSON.parse(value) as DeadLetter;
    return matchesFilter(entry, filter) ? entry : undefined;
  });
}

/** Dead letters matching the filter, newest first over every shard, read a page at a time. */
export async function* scanDeadLetters(
  redis: RedisClient,
  shards: readonly ReadShard[],
  filter: DeadLetterFilter,
): AsyncGenerator<DeadLetter> {
  const indexes = shards.map(({ keys }) => indexOf(keys, filter));
  for await (const entries of walkNewestFirst(redis, indexes, PAGE)) {
    for (const entry of await loadEntries(redis, shards, entries, filter)) if (entry) yield entry;
  }
}

/** A page of matching dead letters, newest first over every shard, after a position (see newest-first.ts). */
export function deadLetterPage(
  redis: RedisClient,
  shards: readonly ReadShard[],
  filter: DeadLetterFilter,
  options: { limit: number; after?: IndexPosition | undefined },
): Promise<NewestFirstPage<DeadLetter>> {
  const filtered = filter.reason !== undefined || filter.limitKey !== undefined || filter.status !== undefined;
  return readPage(
    redis,
    shards.map(({ keys }) => indexOf(keys, filter)),
    {
      limit: options.limit,
      after: options.after,
      // A filter may leave most out: read larger chunks then.
      ...(filtered ? { chunk: Math.max(options.limit, PAGE) } : {}),
      load: (_, entries) => loadEntries(redis, shards, entries, filter),
    },
  );
}

/**
 * The `remove-dead-letter-7` script's keys and arguments for a dead letter (see
 * redis/lua/remove-dead-letter-7.lua): removed by a purge, or at the end of its replay.
 */
export function removalArgs(keys: QueueKeys, entry: DeadLetter, why: 'purge' | 'replayed'): string[] {
  // A batch id an older version let in (`a:b`) could name another batch's keys: removed without its batch's.
  const batchId = isBatchId(entry.batchId) ? entry.batchId : undefined;
  return [
    keys.deadLetters,
    keys.deadLetterIndex,
    keys.deadLetterGroups,
    batchId !== undefined ? keys.batchDeadLetters(batchId) : keys.none,
    batchId !== undefined ? keys.batchDeadLetterGroups(batchId) : keys.none,
    keys.replaying,
    batchId !== undefined ? keys.batch(batchId) : keys.none,
    entry.id,
    groupField(entry),
    batchId !== undefined ? '1' : '',
    why,
  ];
}

/** A dead letter, or a group of them, against a filter (batch aside: the caller reads the batch's index). */
export function matchesFilter(
  entry: { reason: string; limitKey?: string | null; status?: number | null },
  filter: DeadLetterFilter,
): boolean {
  if (filter.reason !== undefined && entry.reason !== filter.reason) return false;
  if (filter.limitKey !== undefined && (entry.limitKey ?? null) !== filter.limitKey) return false;
  if (filter.status !== undefined && (entry.status ?? null) !== filter.status) return false;
  return true;
}
