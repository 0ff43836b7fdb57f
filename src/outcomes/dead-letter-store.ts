import type { Queue } from 'bullmq';
import type { RedisClient } from '../redis/client.js';
import { queueKeys, type QueueKeys } from '../redis/keys.js';
import { defineScript } from '../redis/scripts.js';
import type { DeadLetter } from './dead-letter.js';
import { SluiceError } from '../errors.js';
import { openBullQueue } from '../queue/bull-queue.js';
import { deadLetterPage, removalArgs, scanDeadLetters, type DeadLetterFilter } from './dead-letter-entries.js';
import type { IndexPosition, NewestFirstPage } from './newest-first.js';
import { summarizeDeadLetters, type DeadLetterGroup } from './dead-letter-summary.js';
import { replayDeadLetters, type FoundDeadLetter, type ReplayLane, type ReplayResult } from './dead-letter-replay.js';
import { findInShards, findManyInShards, readShards, type ReadShard } from './read-shards.js';
import { DEFAULT_LANE_SIZE, laneSizes } from '../queue/lanes.js';
import { NEW_JOB_PRIORITY } from '../queue/job-data.js';
import { EMPTY_CONFIG, type SluiceConfig } from '../config/sluice-config.js';

export type { DeadLetterFilter } from './dead-letter-entries.js';
export type { DeadLetterGroup } from './dead-letter-summary.js';
export type { ReplayResult } from './dead-letter-replay.js';

export interface DeadLetterStoreOptions {
  /** Borrowed Redis client. */
  redis: RedisClient;
  queue?: string;
  /**
   * Replays of dead letters of one batch that share limit keys go back as lanes, as a producer
   * with `lanes` writes them (see ProducerOptions.lanes: every worker must know lanes). Default
   * false (`SLUICE_LANES`).
   */
  lanes?: boolean;
  /** The most operations in a lane; a key limited to R/s (in `config`) gets lanes of at most R. Default 100 (`SLUICE_LANE_SIZE`). */
  laneSize?: number;
  /** The limits lanes are sized by. */
  config?: SluiceConfig;
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
  /**
   * Back to the queue with a fresh attempt budget and the same idempotency key (with `lanes`, those
   * of one batch that share limit keys in lanes).
   */
  replay(ids: readonly string[]): Promise<ReplayResult>;
  /** Deletes dead letters for good; returns how many were removed. */
  purge(ids: readonly string[]): Promise<number>;
  /** Ids of every dead letter matching the filter (for `--all` / `--batch`). */
  ids(filter?: DeadLetterFilter): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * Dead letters live in one hash per queue (per shard of a queue spread over several), indexed by
 * time, and by batch. The worker writes them (atomically with the batch counters); this store
 * reads them (every shard's, merged newest first, counts added up), replays and purges them (each
 * in the shard that holds it).
 */
export function createDeadLetterStore(options: DeadLetterStoreOptions): DeadLetterStore {
  const queueName = options.queue ?? 'default';
  const { redis } = options;
  // A bad name fails here, not at the first read.
  queueKeys(queueName);
  const shards = readShards(redis, queueName);
  /** The BullMQ queue of each shard replayed into, opened when first needed. */
  const queues = new Map<string, Queue>();
  let closing: Promise<void> | undefined;
  const beginReplay = defineScript<[string, string, string, string]>(redis, 'begin-replay-3');
  const replayLaneScript = defineScript(redis, 'replay-lane-14');
  const removeScript = defineScript<string[]>(redis, 'remove-dead-letter-7');
  const remove = async (keys: QueueKeys, entry: DeadLetter, why: 'purge' | 'replayed') =>
    (await removeScript(...removalArgs(keys, entry, why))) === 1;
  const laneSizeFor = options.lanes ? laneSizes(options.config ?? EMPTY_CONFIG, options.laneSize ?? DEFAULT_LANE_SIZE) : undefined;

  async function list(filter: DeadLetterFilter = {}, listOptions: { limit?: number } = {}): Promise<DeadLetter[]> {
    const limit = listOptions.limit ?? Number.POSITIVE_INFINITY;
    const out: DeadLetter[] = [];
    for await (const entry of scanDeadLetters(redis, await shards(), filter)) {
      out.push(entry);
      if (out.length >= limit) break;
    }
    return out;
  }

  async function ids(filter: DeadLetterFilter = {}): Promise<string[]> {
    const out: string[] = [];
    for await (const entry of scanDeadLetters(redis, await shards(), filter)) out.push(entry.id);
    return out;
  }

  /** A dead letter and the shard that holds it (the first, should two hold the same id). */
  async function find(id: string): Promise<{ entry: DeadLetter; shard: ReadShard } | undefined> {
    const found = await findInShards(redis, await shards(), (keys) => keys.deadLetters, id);
    return found && { entry: JSON.parse(found.value) as DeadLetter, shard: found.shard };
  }

  function bullQueue(shard: string): Queue {
    let queue = queues.get(shard);
    if (!queue) {
      queue = openBullQueue(redis, shard);
      // Errors reach the replay whose command fails; without a listener BullMQ prints each one.
      queue.on('error', () => undefined);
      queues.set(shard, queue);
    }
    return queue;
  }

  async function findMany(ids: readonly string[]): Promise<(FoundDeadLetter | undefined)[]> {
    const found = await findManyInShards(redis, await shards(), (keys) => keys.deadLetters, ids);
    return found.map(
      (one) =>
        one && {
          entry: JSON.parse(one.value) as DeadLetter,
          shard: one.shard.name,
          keys: one.shard.keys,
          queue: bullQueue(one.shard.name),
        },
    );
  }

  async function replayLane({ keys, queue }: FoundDeadLetter, lane: ReplayLane): Promise<number[]> {
    const q = queue.keys as Record<string, string>;
    const opts = JSON.stringify({ jobId: lane.id, priority: NEW_JOB_PRIORITY, attempts: 0 });
    const args: string[] = [q.meta!, q.prioritized!, q.pc!, q.marker!, q.events!, q.active!, queue.toKey(lane.id)];
    args.push(keys.deadLetters, keys.deadLetterIndex, keys.deadLetterGroups);
    args.push(keys.batch(lane.batchId), keys.batchDeadLetters(lane.batchId), keys.batchDeadLetterGroups(lane.batchId), keys.replaying);
    args.push(String(Date.now()), String(NEW_JOB_PRIORITY), lane.id, opts, lane.before, lane.after);
    for (const member of lane.members) args.push(member.id, member.field, member.json);
    return (await replayLaneScript(...args)) as number[];
  }

  async function replay(replayIds: readonly string[]): Promise<ReplayResult> {
    if (closing) throw new SluiceError('the dead-letter store is closed', { code: 'CLOSED' });
    return replayDeadLetters(
      { beginReplay, remove: (keys, entry) => remove(keys, entry, 'replayed'), find: findMany, laneSizeFor, replayLane },
      replayIds,
    );
  }

  async function purge(purgeIds: readonly string[]): Promise<number> {
    let removed = 0;
    for (const id of purgeIds) {
      const found = await find(id);
      if (!found) continue;
      if (await remove(found.shard.keys, found.entry, 'purge')) removed += 1;
    }
    return removed;
  }

  async function count(): Promise<number> {
    const counts = await Promise.all((await shards()).map(({ keys }) => redis.hlen(keys.deadLetters)));
    return counts.reduce((sum, n) => sum + n, 0);
  }

  return {
    list,
    page: async (filter, pageOptions) => deadLetterPage(redis, await shards(), filter, pageOptions),
    get: async (id) => (await find(id))?.entry,
    ids,
    count,
    summary: async (filter = {}) => summarizeDeadLetters(redis, await shards(), filter),
    replay,
    purge,
    close() {
      closing ??= Promise.all([...queues.values()].map((queue) => queue.close())).then(() => undefined);
      return closing;
    },
  };
}
