/**
 * Reading a time index (sorted set: id by ms timestamp) newest first, a page at a time, from a
 * position: the score and id of the last entry already seen. Entries added since (newer, so
 * higher scores) or removed do not shift the walk: nothing is seen twice or skipped.
 *
 * A queue spread over shards (queue/shards.ts) has one index per shard: they are read as one,
 * merged in the same order. A position is the same (score, id) in every index, so it holds for the
 * merge too: each index is read after it, and the first `count` of the merge are among the first
 * `count` of each index.
 */
import type { RedisClient } from '../redis/client.js';

/** Where a walk stands: the last entry seen. Order: score descending, then id descending (Redis's). */
export interface IndexPosition {
  score: number;
  id: string;
}

/** Pairs of a WITHSCORES reply. */
function positions(flat: readonly string[]): IndexPosition[] {
  const out: IndexPosition[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push({ id: flat[i]!, score: Number(flat[i + 1]) });
  return out;
}

/**
 * Up to `count` entries after `after` (from the newest when undefined). Two ranges read in one
 * pipeline: the entries sharing `after`'s score (a chunk of dead letters is written at one
 * timestamp) whose id sorts below its id, then those with lower scores. No offsets, so a removal
 * between two reads moves nothing.
 */
export async function readAfter(
  redis: RedisClient,
  key: string,
  after: IndexPosition | undefined,
  count: number,
): Promise<IndexPosition[]> {
  if (!after) return positions(await redis.zrevrangebyscore(key, '+inf', '-inf', 'WITHSCORES', 'LIMIT', 0, count));
  const replies = (await redis
    .pipeline()
    .zrevrangebyscore(key, after.score, after.score, 'WITHSCORES')
    .zrevrangebyscore(key, `(${after.score}`, '-inf', 'WITHSCORES', 'LIMIT', 0, count)
    .exec()) as [Error | null, string[]][];
  for (const [error] of replies) if (error) throw error;
  // Redis orders equal scores by the ids' bytes; so does Buffer.compare (not JS's `<`, by UTF-16 units).
  const below = Buffer.from(after.id);
  const ties = positions(replies[0]![1]).filter((entry) => Buffer.compare(Buffer.from(entry.id), below) < 0);
  return [...ties, ...positions(replies[1]![1])].slice(0, count);
}

/** An entry read from one of several indexes: `index` is that index's place in the list read. */
export interface IndexEntry extends IndexPosition {
  index: number;
}

/** Newest first: score descending, then id descending by bytes (Redis's order of equal scores). */
function newestFirst(a: IndexPosition, b: IndexPosition): number {
  return b.score - a.score || Buffer.compare(Buffer.from(b.id), Buffer.from(a.id));
}

/**
 * Up to `count` entries after `after` in the merge of several indexes. Each index is read on its
 * own (on a Redis Cluster each shard's is in another slot); one index costs what readAfter does.
 */
export async function readMergedAfter(
  redis: RedisClient,
  keys: readonly string[],
  after: IndexPosition | undefined,
  count: number,
): Promise<IndexEntry[]> {
  if (keys.length === 1) return (await readAfter(redis, keys[0]!, after, count)).map((entry) => ({ ...entry, index: 0 }));
  const read = await Promise.all(keys.map((key) => readAfter(redis, key, after, count)));
  const merged = read.flatMap((entries, index) => entries.map((entry) => ({ ...entry, index })));
  return merged.sort(newestFirst).slice(0, count);
}

/** Every entry of the indexes, newest first, `chunk` at a time (a walk by position: a removal meanwhile moves nothing). */
export async function* walkNewestFirst(redis: RedisClient, keys: readonly string[], chunk: number): AsyncGenerator<IndexEntry[]> {
  let position: IndexPosition | undefined;
  for (;;) {
    const entries = await readMergedAfter(redis, keys, position, chunk);
    if (entries.length > 0) yield entries;
    if (entries.length < chunk) return;
    position = entries[entries.length - 1]!;
  }
}

/**
 * Whether `entry` is where an id held by several indexes shows: at its earliest score (the lowest
 * index on a tie). `scores` holds the id's score in each index (null where absent). New entries come
 * later (now), so an id's place moves only when its earliest entry leaves.
 */
export function isEarliestEntry(entry: IndexEntry, scores: readonly (number | null)[]): boolean {
  return scores.every((score, index) => score === null || score > entry.score || (score === entry.score && index >= entry.index));
}

export interface NewestFirstPage<T> {
  items: T[];
  /** The last item's position when the index (or one of the indexes) holds entries after it; null at the end. */
  next: IndexPosition | null;
}

/**
 * One page of up to `limit` items, newest first, after `after`, from one index or the merge of
 * several (`key` a list). `load` reads a chunk of ids (`entries` says which index each came from)
 * and gives undefined for those to leave out (expired, not matching a filter, or met again in
 * another index); the walk reads on until the page is full or the indexes end.
 */
export async function readPage<T>(
  redis: RedisClient,
  key: string | readonly string[],
  options: {
    after?: IndexPosition | undefined;
    limit: number;
    chunk?: number;
    load(ids: string[], entries: IndexEntry[]): Promise<(T | undefined)[]>;
  },
): Promise<NewestFirstPage<T>> {
  const keys = typeof key === 'string' ? [key] : key;
  const { limit } = options;
  if (limit <= 0) return { items: [], next: null };
  const chunk = options.chunk ?? limit;
  const items: T[] = [];
  let last = options.after;
  let position = options.after;
  for (;;) {
    const entries = await readMergedAfter(redis, keys, position, items.length === limit ? 1 : chunk);
    if (entries.length === 0) return { items, next: null };
    // Full, and the index goes on: the next page starts after the last item taken.
    if (items.length === limit) return { items, next: last! };
    const loaded = await options.load(
      entries.map((entry) => entry.id),
      entries,
    );
    for (let i = 0; i < entries.length; i += 1) {
      if (items.length === limit) return { items, next: last! };
      const item = loaded[i];
      if (item === undefined) continue;
      items.push(item);
      // A position only: the same in every index (a cursor made of it must not name one).
      last = { score: entries[i]!.score, id: entries[i]!.id };
    }
    position = entries[entries.length - 1]!;
  }
}
