import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { PREFIX, bullQueueName, queueKeys } from '../queue/keys.js';
import { luaScript } from '../queue/lua-script.js';
import { NEW_JOB_PRIORITY, type JobEnvelope } from '../queue/job-data.js';
import type { DeadLetter } from './types.js';
import { SluiceError } from '../errors.js';

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
  /** When the newest of them was dead-lettered. */
  latest: string;
  /** The newest one's message, as an example. */
  example: string;
}

export interface DeadLetterStore {
  /** Dead letters, newest first, matching the filter. */
  list(filter?: DeadLetterFilter, options?: { limit?: number }): Promise<DeadLetter[]>;
  get(id: string): Promise<DeadLetter | undefined>;
  count(): Promise<number>;
  /** Matching dead letters grouped by (limit key, status, reason), largest group first, with the total. */
  summary(filter?: DeadLetterFilter): Promise<{ total: number; groups: DeadLetterGroup[] }>;
  /** Back to the queue with a fresh attempt budget and the same idempotency key. */
  replay(ids: readonly string[]): Promise<ReplayResult>;
  /** Deletes dead letters for good; returns how many were removed. */
  purge(ids: readonly string[]): Promise<number>;
  /** Ids of every dead letter matching the filter (for `--all` / `--batch`). */
  ids(filter?: DeadLetterFilter): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * KEYS: dead letters, the set of replays under way, the batch (or a placeholder). ARGV: the id.
 * -1 when there is no such dead letter; else 1, having lowered the batch's dead-letter count unless
 * an earlier, interrupted replay of the same dead letter already did.
 */
const BEGIN_REPLAY = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return -1 end
if redis.call('SADD', KEYS[2], ARGV[1]) == 1 and redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HINCRBY', KEYS[3], 'deadLettered', -1)
end
return 1
`;

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
  const beginReplay = luaScript<[string, string, string, string]>(redis, 'sluiceBeginReplay', 3, BEGIN_REPLAY);

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

  async function summary(filter: DeadLetterFilter = {}): Promise<{ total: number; groups: DeadLetterGroup[] }> {
    const groups = new Map<string, DeadLetterGroup>();
    let total = 0;
    // Newest first, so the first entry of a group is its latest.
    for await (const entry of scan(filter)) {
      total += 1;
      const group = { limitKey: entry.limitKey ?? null, status: entry.status ?? null, reason: entry.reason };
      const key = JSON.stringify(group);
      const found = groups.get(key);
      if (found) found.count += 1;
      else groups.set(key, { ...group, count: 1, latest: entry.deadLetteredAt, example: entry.message.split('\n')[0]!.slice(0, 300) });
    }
    return { total, groups: [...groups.values()].sort((a, b) => b.count - a.count || (a.latest < b.latest ? 1 : -1)) };
  }

  async function get(id: string): Promise<DeadLetter | undefined> {
    const value = await redis.hget(keys.deadLetters, id);
    return value ? (JSON.parse(value) as DeadLetter) : undefined;
  }

  async function replay(replayIds: readonly string[]): Promise<ReplayResult> {
    if (closing) throw new SluiceError('the dead-letter store is closed', { code: 'CLOSED' });
    if (!queue) {
      queue = new Queue(bullQueueName(queueName), { connection: redis, prefix: PREFIX });
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
      const begun = await beginReplay(keys.deadLetters, keys.replaying, entry.batchId !== undefined ? keys.batch(entry.batchId) : keys.none, id);
      if (begun === -1) {
        result.missing.push(id);
        continue;
      }
      // 2. The job; 3. then the dead letter goes. A crash between them leaves the dead letter listed
      //    and a replay of it finishes the work without counting twice or adding a second job.
      await queue.add('op', envelope, { jobId, priority: NEW_JOB_PRIORITY });
      const removal = redis.multi().hdel(keys.deadLetters, id).zrem(keys.deadLetterIndex, id).srem(keys.replaying, id);
      if (entry.batchId !== undefined) removal.zrem(keys.batchDeadLetters(entry.batchId), id);
      await removal.exec();
      result.replayed.push({ id, jobId });
    }
    return result;
  }

  async function purge(purgeIds: readonly string[]): Promise<number> {
    let removed = 0;
    for (const id of purgeIds) {
      const entry = await get(id);
      if (!entry) continue;
      const removal = redis.multi().hdel(keys.deadLetters, id).zrem(keys.deadLetterIndex, id);
      if (entry.batchId !== undefined) removal.zrem(keys.batchDeadLetters(entry.batchId), id);
      await removal.exec();
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

function matches(entry: DeadLetter, filter: DeadLetterFilter): boolean {
  if (filter.reason !== undefined && entry.reason !== filter.reason) return false;
  if (filter.limitKey !== undefined && (entry.limitKey ?? null) !== filter.limitKey) return false;
  if (filter.status !== undefined && (entry.status ?? null) !== filter.status) return false;
  return true;
}
