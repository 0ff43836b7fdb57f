import type { Queue } from 'bullmq';
import type { RedisClient } from '../redis/client.js';
import { queueKeys } from '../redis/keys.js';
import { defineScript } from '../redis/scripts.js';
import type { DeadLetter } from './dead-letter.js';
import { SluiceError } from '../errors.js';
import { openBullQueue } from '../queue/bull-queue.js';
import { deadLetterPage, readDeadLetter, removeDeadLetter, scanDeadLetters, type DeadLetterFilter } from './dead-letter-entries.js';
import type { IndexPosition, NewestFirstPage } from './newest-first.js';
import { summarizeDeadLetters, type DeadLetterGroup } from './dead-letter-summary.js';
import { replayDeadLetters, type ReplayResult } from './dead-letter-replay.js';

export type { DeadLetterFilter } from './dead-letter-entries.js';
export type { DeadLetterGroup } from './dead-letter-summary.js';
export type { ReplayResult } from './dead-letter-replay.js';

export interface DeadLetterStoreOptions {
  /** Borrowed Redis client. */
  redis: RedisClient;
  queue?: string;
}

export interface DeadLetterStore {
  /** Dead letters, newest first, matching the filter. */
  list(filter?: DeadLetterFilter, options?: { limit?: number }): Promise<DeadLetter[]>;
  /** A page of `limit` matching dead letters, newest first, after `after` (the last of the previous page); stable while dead letters arrive. */
  page(filter: DeadLetterFilter, options: { limit: number; after?: IndexPosition | undefined }): Promise<NewestFirstPage<DeadLetter>>;
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

  async function list(filter: DeadLetterFilter = {}, listOptions: { limit?: number } = {}): Promise<DeadLetter[]> {
    const limit = listOptions.limit ?? Number.POSITIVE_INFINITY;
    const out: DeadLetter[] = [];
    for await (const entry of scanDeadLetters(redis, keys, filter)) {
      out.push(entry);
      if (out.length >= limit) break;
    }
    return out;
  }

  async function ids(filter: DeadLetterFilter = {}): Promise<string[]> {
    const out: string[] = [];
    for await (const entry of scanDeadLetters(redis, keys, filter)) out.push(entry.id);
    return out;
  }

  async function replay(replayIds: readonly string[]): Promise<ReplayResult> {
    if (closing) throw new SluiceError('the dead-letter store is closed', { code: 'CLOSED' });
    if (!queue) {
      queue = openBullQueue(redis, queueName);
      // Errors reach the replay whose command fails; without a listener BullMQ prints each one.
      queue.on('error', () => undefined);
    }
    return replayDeadLetters({ redis, keys, queue, beginReplay }, replayIds);
  }

  async function purge(purgeIds: readonly string[]): Promise<number> {
    let removed = 0;
    for (const id of purgeIds) {
      const entry = await readDeadLetter(redis, keys, id);
      if (!entry) continue;
      await removeDeadLetter(keys, entry, redis.multi());
      removed += 1;
    }
    return removed;
  }

  return {
    list,
    page: (filter, pageOptions) => deadLetterPage(redis, keys, filter, pageOptions),
    get: (id) => readDeadLetter(redis, keys, id),
    ids,
    count: () => redis.hlen(keys.deadLetters),
    summary: (filter = {}) => summarizeDeadLetters(redis, keys, filter),
    replay,
    purge,
    close() {
      closing ??= queue ? queue.close() : Promise.resolve();
      return closing;
    },
  };
}
