import type { RedisClient } from '../redis/client.js';
import { defineScript } from '../redis/scripts.js';
import { redactText } from '../observability/redact.js';
import { groupField, parseGroupField } from './dead-letter-groups.js';
import type { DeadLetter } from './dead-letter.js';
import { matchesFilter, scanDeadLetters, type DeadLetterFilter } from './dead-letter-entries.js';
import type { ReadShard } from './read-shards.js';

/** Dead letters that share a limit key, last status and reason: one row of the triage view. */
export interface DeadLetterGroup {
  limitKey: string | null;
  status: number | null;
  reason: string;
  count: number;
  /** When the group's newest dead letter in the queue was dead-lettered (null when it was replayed or purged since). */
  latest: string | null;
  /** That one's message, as an example. */
  example: string | null;
}

/** A batch's group counters live as long as batches do by default (7 days); a rebuild makes them again. */
const BATCH_GROUPS_TTL_SECONDS = 7 * 86_400;

export interface DeadLetterSummary {
  total: number;
  groups: DeadLetterGroup[];
}

/** The groups largest first (of two as large, the one with the newer dead letter), with their total. */
function summaryOf(groups: DeadLetterGroup[]): DeadLetterSummary {
  groups.sort((a, b) => b.count - a.count || ((a.latest ?? '') < (b.latest ?? '') ? 1 : -1));
  return { total: groups.reduce((sum, group) => sum + group.count, 0), groups };
}

/**
 * Groups from the counters the worker keeps beside the dead letters (see dead-letter-groups.ts):
 * a few commands per shard, whatever the number of dead letters; a queue spread over shards adds
 * up each shard's groups.
 */
export async function summarizeDeadLetters(
  redis: RedisClient,
  shards: readonly ReadShard[],
  filter: DeadLetterFilter,
): Promise<DeadLetterSummary> {
  if (shards.length === 1) return summarizeShard(redis, shards[0]!, filter);
  return mergeSummaries(await Promise.all(shards.map((shard) => summarizeShard(redis, shard, filter))));
}

/** Several shards' groups as one: counts added up, the newest dead letter (and its example) of any shard. */
export function mergeSummaries(parts: readonly DeadLetterSummary[]): DeadLetterSummary {
  const merged = new Map<string, DeadLetterGroup>();
  for (const group of parts.flatMap((part) => part.groups)) {
    const field = groupField(group);
    const seen = merged.get(field);
    if (!seen) merged.set(field, { ...group });
    else {
      seen.count += group.count;
      if ((group.latest ?? '') > (seen.latest ?? '')) Object.assign(seen, { latest: group.latest, example: group.example });
    }
  }
  return summaryOf([...merged.values()]);
}

/**
 * One shard's groups. Counters that disagree with the dead letters they count (lost, or written
 * before they existed) are rebuilt once from the dead letters.
 */
async function summarizeShard(redis: RedisClient, shard: ReadShard, filter: DeadLetterFilter): Promise<DeadLetterSummary> {
  const { keys } = shard;
  const batch = filter.batchId;
  const countsKey = batch !== undefined ? keys.batchDeadLetterGroups(batch) : keys.deadLetterGroups;
  const [flat, stored] = (await defineScript(redis, 'dead-letter-counts-2')(
    countsKey,
    batch !== undefined ? keys.batchDeadLetters(batch) : keys.deadLetters,
    batch !== undefined ? 'zset' : 'hash',
  )) as [string[], number];
  let counts = new Map<string, number>();
  for (let i = 0; i + 1 < flat.length; i += 2) if (Number(flat[i + 1]) > 0) counts.set(flat[i]!, Number(flat[i + 1]));
  let latest = new Map<string, DeadLetter>();
  if ([...counts.values()].reduce((sum, count) => sum + count, 0) !== stored)
    ({ counts, latest } = await rebuildGroups(redis, shard, batch, countsKey));

  const wanted = [...counts.entries()].flatMap(([field, count]) => {
    const group = parseGroupField(field);
    if (!group || !matchesFilter(group, filter)) return [];
    return [{ field, group, count }];
  });
  // The newest dead letter of each group, for its time and an example message.
  const missing = wanted.filter(({ field }) => !latest.has(field));
  if (missing.length) {
    const ids = await redis.hmget(keys.deadLetterGroupLatest, ...missing.map(({ field }) => field));
    const present = ids.filter((id): id is string => id !== null);
    const letters = present.length ? await redis.hmget(keys.deadLetters, ...present) : [];
    const byId = new Map(present.map((id, i) => [id, letters[i]]));
    missing.forEach(({ field }, i) => {
      const text = ids[i] ? byId.get(ids[i]!) : undefined;
      if (text) latest.set(field, JSON.parse(text) as DeadLetter);
    });
  }
  const groups: DeadLetterGroup[] = wanted.map(({ field, group, count }) => {
    const newest = latest.get(field);
    return {
      ...group,
      count,
      latest: newest?.deadLetteredAt ?? null,
      // Shown to every reader (API, dashboard): a URL in the message keeps no credential.
      example: newest ? redactText(newest.message.split('\n')[0]!).slice(0, 300) : null,
    };
  });
  return summaryOf(groups);
}

/** Counts the dead letters of the shard (or a batch's in it) by group, and stores the counts. */
async function rebuildGroups(
  redis: RedisClient,
  shard: ReadShard,
  batch: string | undefined,
  countsKey: string,
): Promise<{ counts: Map<string, number>; latest: Map<string, DeadLetter> }> {
  const counts = new Map<string, number>();
  const latest = new Map<string, DeadLetter>();
  // Newest first, so the first entry of a group is its latest.
  for await (const entry of scanDeadLetters(redis, [shard], batch !== undefined ? { batchId: batch } : {})) {
    const field = groupField(entry);
    counts.set(field, (counts.get(field) ?? 0) + 1);
    if (!latest.has(field)) latest.set(field, entry);
  }
  const { keys } = shard;
  const writing = redis.multi().del(countsKey);
  if (counts.size) writing.hset(countsKey, Object.fromEntries(counts));
  if (batch === undefined && latest.size)
    writing.hset(keys.deadLetterGroupLatest, Object.fromEntries([...latest].map(([field, entry]) => [field, entry.id])));
  if (batch !== undefined) writing.expire(countsKey, BATCH_GROUPS_TTL_SECONDS);
  // Storing them is housekeeping: while Redis refuses writes (maxmemory) the summary still answers,
  // and the next one rebuilds again.
  await writing.exec().catch(() => undefined);
  return { counts, latest };
}
