/**
 * Reading a time index (sorted set: id by ms timestamp) newest first, a page at a time, from a
 * position: the score and id of the last entry already seen. Entries added since (newer, so
 * higher scores) or removed do not shift the walk: nothing is seen twice or skipped.
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

export interface NewestFirstPage<T> {
  items: T[];
  /** The last item's position when the index holds entries after it; null at the end. */
  next: IndexPosition | null;
}

/**
 * One page of up to `limit` items, newest first, after `after`. `load` reads a chunk of ids and
 * gives undefined for those to leave out (expired, or not matching a filter); the walk reads on
 * until the page is full or the index ends.
 */
export async function readPage<T>(
  redis: RedisClient,
  key: string,
  options: { after?: IndexPosition | undefined; limit: number; chunk?: number; load(ids: string[]): Promise<(T | undefined)[]> },
): Promise<NewestFirstPage<T>> {
  const { limit } = options;
  if (limit <= 0) return { items: [], next: null };
  const chunk = options.chunk ?? limit;
  const items: T[] = [];
  let last = options.after;
  let position = options.after;
  for (;;) {
    const entries = await readAfter(redis, key, position, items.length === limit ? 1 : chunk);
    if (entries.length === 0) return { items, next: null };
    // Full, and the index goes on: the next page starts after the last item taken.
    if (items.length === limit) return { items, next: last! };
    const loaded = await options.load(entries.map((entry) => entry.id));
    for (let i = 0; i < entries.length; i += 1) {
      if (items.length === limit) return { items, next: last! };
      const item = loaded[i];
      if (item === undefined) continue;
      items.push(item);
      last = entries[i]!;
    }
    position = entries[entries.length - 1]!;
  }
}
