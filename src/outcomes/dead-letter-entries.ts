/**
 * A queue's dead letters in Redis: one hash (id → JSON), indexed by time and by batch, with group
 * counters beside them. Reading them page by page or one by one, and removing one.
 */
import type { ChainableCommander } from 'ioredis';
import type { RedisClient } from '../redis/client.js';
import type { QueueKeys } from '../redis/keys.js';
import { groupField } from './dead-letter-groups.js';
import type { DeadLetter } from './dead-letter.js';
import { readPage, type IndexPosition, type NewestFirstPage } from './newest-first.js';

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

/** Dead letters matching the filter, newest first, read a page at a time. */
export async function* scanDeadLetters(redis: RedisClient, keys: QueueKeys, filter: DeadLetterFilter): AsyncGenerator<DeadLetter> {
  const index = filter.batchId !== undefined ? keys.batchDeadLetters(filter.batchId) : keys.deadLetterIndex;
  for (let start = 0; ; start += PAGE) {
    const ids = await redis.zrevrange(index, start, start + PAGE - 1);
    if (ids.length === 0) return;
    const values = await redis.hmget(keys.deadLetters, ...ids);
    for (const value of values) {
      if (!value) continue;
      const entry = JSON.parse(value) as DeadLetter;
      if (matchesFilter(entry, filter)) yield entry;
    }
    if (ids.length < PAGE) return;
  }
}

/** A page of matching dead letters, newest first, after a position (see newest-first.ts). */
export function deadLetterPage(
  redis: RedisClient,
  keys: QueueKeys,
  filter: DeadLetterFilter,
  options: { limit: number; after?: IndexPosition | undefined },
): Promise<NewestFirstPage<DeadLetter>> {
  const index = filter.batchId !== undefined ? keys.batchDeadLetters(filter.batchId) : keys.deadLetterIndex;
  const filtered = filter.reason !== undefined || filter.limitKey !== undefined || filter.status !== undefined;
  return readPage(redis, index, {
    limit: options.limit,
    after: options.after,
    // A filter may leave most out: read larger chunks then.
    ...(filtered ? { chunk: Math.max(options.limit, PAGE) } : {}),
    async load(ids) {
      const values = await redis.hmget(keys.deadLetters, ...ids);
      return values.map((value) => {
        if (!value) return undefined;
        const entry = JSON.parse(value) as DeadLetter;
        return matchesFilter(entry, filter) ? entry : undefined;
      });
    },
  });
}

export async function readDeadLetter(redis: RedisClient, keys: QueueKeys, id: string): Promise<DeadLetter | undefined> {
  const value = await redis.hget(keys.deadLetters, id);
  return value ? (JSON.parse(value) as DeadLetter) : undefined;
}

/** Removes a dead letter, its index entries and its place in the group counters (in `removal`, a MULTI). */
export async function removeDeadLetter(keys: QueueKeys, entry: DeadLetter, removal: ChainableCommander): Promise<void> {
  const field = groupField(entry);
  removal.hdel(keys.deadLetters, entry.id).zrem(keys.deadLetterIndex, entry.id).hincrby(keys.deadLetterGroups, field, -1);
  if (entry.batchId !== undefined)
    removal.zrem(keys.batchDeadLetters(entry.batchId), entry.id).hincrby(keys.batchDeadLetterGroups(entry.batchId), field, -1);
  await removal.exec();
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
