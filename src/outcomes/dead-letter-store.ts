import type { Queue } from 'bullmq';
import type { ChainableCommander, Redis } from 'ioredis';
import { groupField, parseGroupField } from './dead-letter-groups.js';
import { queueKeys } from '../redis/keys.js';
import { defineScript } from '../redis/scripts.js';
import { NEW_JOB_PRIORITY, type JobEnvelope } from '../queue/job-data.js';
import type { DeadLetter } from './dead-letter.js';
import { SluiceError } from '../errors.js';
import { openBullQueue } from '../queue/bull-queue.js';

export interface DeadLetterFilter {
  batchId?: string;
  reason?: string;
  /** `null` selects dead letters without a limit key (invalid operations). */
  limitKey?: string | null;
  /** The last HTTP status; `null` selects dead letters that never got one (network errors, invalid operations). */
  status?: number | null;
}

export interface DeadLetterStoreOptions {
  /** Borrowed Redis client. */
  redis: Redis;
  queue?: string;
}

export interface ReplayResult {
  /** Dead letters put back on the queue, with the new job ids. */
  replayed: { id: string; jobId: string }[];
  /** Ids that were not (or no longer) dead letters. */
  missing: string[];
}

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

export interface DeadLetterStore {
  /** Dead letters, newest first, matching the filter. */
  list(filter?: DeadLetterFilter, options?: { limit?: number }): Promise<DeadLetter[]>;
  get(id: string): Promise<DeadLetter | undefined>;
  count(): Promise<number>;
  /**
   * Matching dead letters grouped by (limit key, status, reason), largest group first, with the total.
   * Read from counters kept beside the dead letters: exact, and cheap however many there are.
   */
  summary(filter?: DeadLetterFilter): Promise<{ total: number; groups: DeadLetterGroup[] }>;
  /** Back to the queue with a fresh attempt budget and the same idempotency key. */
  replay(ids: readonly string[]): Promise<ReplayResult>;
  /** Deletes dead letters for good; returns how many were removed. */
  purge(ids: readonly string[]): Promise<number>;
  /** Ids of every dead letter matching the filter (for `--all` / `--batch`). */
  ids(filter?: DeadLetterFilter): Promise<string[]>;
  close(): Promise<void>;
}

/** A batch's group counters live as long as batches do by default (7 days); a rebuild makes them again. */
const BATCH_GROUPS_TTL_SECONDS = 7 * 86_400;

/** Pages of this many entries are read at a time. */
const PAGE = 500;

/**
 * Dead letters live in one hash per queue (id → JSON), indexed by time, and by batch. The worker
 * writes them (atomically with the batch counters); this store reads, replays and purges them.
 */
export function createDeadLetterStore(options: DeadLetterStoreOptions): DeadLetterStore {
  const queueName = options.queue ?? 'default';
  const { redis } = options;
  const keys = queueKeys(queueName);
  let queue: Queue | undefined;
  let closing: Promise<void> | undefined;
  const beginReplay = defineScript<[string, string, string, string]>(redis, 'begin-replay-3');

  async function* scan(filter: DeadLetterFilter): AsyncGenerator<DeadLetter> {
    const index = filter.batchId !== undefined ? keys.batchDeadLetters(filter.batchId) : keys.deadLetterIndex;
    for (let start = 0; ; start += PAGE) {
      const ids = await redis.zrevrange(index, start, start + PAGE - 1);
      if (ids.length === 0) return;
      const values = await redis.hmget(keys.deadLetters, ...ids);
      for (const value of values) {
        if (!value) continue;
        const entry = JSON.parse(value) as DeadLetter;
        if (matches(entry, filter)) yield entry;
      }
      if (ids.length < PAGE) return;
    }
  }

  async function list(filter: DeadLetterFilter = {}, listOptions: { limit?: number } = {}): Promise<DeadLetter[]> {
    const limit = listOptions.limit ?? Number.POSITIVE_INFINITY;
    const out: DeadLetter[] = [];
    for await (const entry of scan(filter)) {
      out.push(entry);
      if (out.length >= limit) break;
    }
    return out;
  }

  async function ids(filter: DeadLetterFilter = {}): Promise<string[]> {
    const out: string[] = [];
    for await (const entry of scan(filter)) out.push(entry.id);
    return out;
  }

  /**
   * Groups from the counters the worker keeps beside the dead letters (see queue/dead-letter-groups.ts):
   * a few commands, whatever the number of dead letters. Counters that disagree with the dead letters
   * they count (lost, or written before they existed) are rebuilt once from the dead letters.
   */
  /** Removes a dead letter, its index entries and its place in the group counters (in `removal`, a MULTI). */
  async function removeEntry(entry: DeadLetter, removal: ChainableCommander): Promise<void> {
    const field = groupField(entry);
    removal.hdel(keys.deadLetters, entry.id).zrem(keys.deadLetterIndex, entry.id).hincrby(keys.deadLetterGroups, field, -1);
    if (entry.batchId !== undefined)
      removal.zrem(keys.batchDeadLetters(entry.batchId), entry.id).hincrby(keys.batchDeadLetterGroups(entry.batchId), field, -1);
    await removal.exec();
  }

  async function summary(filter: DeadLetterFilter = {}): Promise<{ total: number; groups: DeadLetterGroup[] }> {
    const batch = filter.batchId;
    const countsKey = batch !== undefined ? keys.batchDeadLetterGroups(batch) : keys.deadLetterGroups;
    const reading = redis.multi().hgetall(countsKey);
    if (batch !== undefined) reading.zcard(keys.batchDeadLetters(batch));
    else reading.hlen(keys.deadLetters);
    const [[, rawCounts], [, stored]] = ((await reading.exec()) ?? []) as [[unknown, Record<string, string>], [unknown, number]];
    let counts = new Map(
      Object.entries(rawCounts ?? {})
        .map(([field, count]) => [field, Number(count)] as const)
        .filter(([, count]) => count > 0),
    );
    let latest = new Map<string, DeadLetter>();
    if ([...counts.values()].reduce((sum, count) => sum + count, 0) !== stored)
      ({ counts, latest } = await rebuildGroups(batch, countsKey));

    const wanted = [...counts.entries()].flatMap(([field, count]) => {
      const group = parseGroupField(field);
      if (!group || !matches(group, filter)) return [];
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
        example: newest ? newest.message.split('\n')[0]!.slice(0, 300) : null,
      };
    });
    groups.sort((a, b) => b.count - a.count || ((a.latest ?? '') < (b.latest ?? '') ? 1 : -1));
    return { total: groups.reduce((sum, group) => sum + group.count, 0), groups };
  }

  /** Counts the dead letters of the queue (or a batch) by group, and stores the counts. */
  async function rebuildGroups(
    batch: string | undefined,
    countsKey: string,
  ): Promise<{ counts: Map<string, number>; latest: Map<string, DeadLetter> }> {
    const counts = new Map<string, number>();
    const latest = new Map<string, DeadLetter>();
    // Newest first, so the first entry of a group is its latest.
    for await (const entry of scan(batch !== undefined ? { batchId: batch } : {})) {
      const field = groupField(entry);
      counts.set(field, (counts.get(field) ?? 0) + 1);
      if (!latest.has(field)) latest.set(field, entry);
    }
    const writing = redis.multi().del(countsKey);
    if (counts.size) writing.hset(countsKey, Object.fromEntries(counts));
    if (batch === undefined && latest.size)
      writing.hset(keys.deadLetterGroupLatest, Object.fromEntries([...latest].map(([field, entry]) => [field, entry.id])));
    if (batch !== undefined) writing.expire(countsKey, BATCH_GROUPS_TTL_SECONDS);
    await writing.exec();
    return { counts, latest };
  }

  async function get(id: string): Promise<DeadLetter | undefined> {
    const value = await redis.hget(keys.deadLetters, id);
    return value ? (JSON.parse(value) as DeadLetter) : undefined;
  }

  async function replay(replayIds: readonly string[]): Promise<ReplayResult> {
    if (closing) throw new SluiceError('the dead-letter store is closed', { code: 'CLOSED' });
    if (!queue) {
      queue = openBullQueue(redis, queueName);
      // Errors reach the replay whose command fails; without a listener BullMQ prints each one.
      queue.on('error', () => undefined);
    }
    const result: ReplayResult = { replayed: [], missing: [] };
    for (const id of replayIds) {
      const entry = await get(id);
      if (!entry) {
        result.missing.push(id);
        continue;
      }
      const replays = entry.replays + 1;
      // A deterministic id: replaying the same dead letter twice (a crash in between) adds one job.
      const jobId = `${entry.opId}.r${replays}`;
      const envelope: JobEnvelope = { op: entry.operation, opId: entry.opId, idempotencyKey: entry.idempotencyKey, replays };
      if (entry.batchId !== undefined) envelope.batchId = entry.batchId;
      // 1. Un-count it (once, however often this is retried), so the batch waits for the new job.
      const begun = await beginReplay(
        keys.deadLetters,
        keys.replaying,
        entry.batchId !== undefined ? keys.batch(entry.batchId) : keys.none,
        id,
      );
      if (begun === -1) {
        result.missing.push(id);
        continue;
      }
      // 2. The job; 3. then the dead letter goes. A crash between them leaves the dead letter listed
      //    and a replay of it finishes the work without counting twice or adding a second job.
      await queue.add('op', envelope, { jobId, priority: NEW_JOB_PRIORITY });
      await removeEntry(entry, redis.multi().srem(keys.replaying, id));
      result.replayed.push({ id, jobId });
    }
    return result;
  }

  async function purge(purgeIds: readonly string[]): Promise<number> {
    let removed = 0;
    for (const id of purgeIds) {
      const entry = await get(id);
      if (!entry) continue;
      await removeEntry(entry, redis.multi());
      removed += 1;
    }
    return removed;
  }

  return {
    list,
    get,
    ids,
    count: () => redis.hlen(keys.deadLetters),
    summary,
    replay,
    purge,
    close() {
      closing ??= queue ? queue.close() : Promise.resolve();
      return closing;
    },
  };
}

/** A dead letter, or a group of them, against a filter (batch aside: the caller reads the batch's index). */
function matches(entry: { reason: string; limitKey?: string | null; status?: number | null }, filter: DeadLetterFilter): boolean {
  if (filter.reason !== undefined && entry.reason !== filter.reason) return false;
  if (filter.limitKey !== undefined && (entry.limitKey ?? null) !== filter.limitKey) return false;
  if (filter.status !== undefined && (entry.status ?? null) !== filter.status) return false;
  return true;
}
