import type { RedisClient } from '../redis/client.js';
import { SluiceError } from '../errors.js';
import { MAX_SHARDS, PREFIX, assertQueueName, queueKeys, shardName } from '../redis/keys.js';
import { defineScript } from '../redis/scripts.js';
import { scanKeys } from '../redis/scan-keys.js';

/**
 * A queue spread over S shards (docs/design/cluster.md): shard i is a BullMQ queue of its own
 * (`{q}` for 0, `{q#i}` after), in a slot of its own, so a Redis Cluster spreads one queue's load
 * over its masters. A producer sends each operation to the shard its job id picks (the same key or
 * place always picks the same shard while S stands, so dedup stays atomic in one script call);
 * a worker runs every shard; batches, dead letters and lookups read every shard and add them up.
 *
 * S lives on shard 0 (`sluice:{q}:shards`): `count`, where producers write, and `highest`, the
 * most the queue ever had. Workers and readers use `highest`, so lowering S strands nothing: the
 * shards dropped are still drained and still read.
 */
export interface ShardCount {
  /** Where producers write. */
  count: number;
  /** The most shards the queue ever had: workers run, and readers read, this many. */
  highest: number;
}

export const ONE_SHARD: ShardCount = { count: 1, highest: 1 };

/** The queue's shard count; one for a queue never spread. */
export async function readShardCount(redis: RedisClient, queue: string): Promise<ShardCount> {
  const [count, highest] = await redis.hmget(queueKeys(queue).shards, 'count', 'highest');
  return { count: shardNumber(count), highest: Math.max(shardNumber(count), shardNumber(highest)) };
}

function shardNumber(value: string | null | undefined): number {
  const parsed = Number(value);
  return Number.isInteger(parsed) && parsed >= 1 && parsed <= MAX_SHARDS ? parsed : 1;
}

/** The names of the first `count` shards of a queue (`q`, `q#1`, …). */
export function shardNames(queue: string, count: number): string[] {
  return Array.from({ length: count }, (_, index) => shardName(queue, index));
}

/**
 * The shard of a job, by its id: sluice's ids are `k-`, `p-` or `u-` then hex (a key's hash, a
 * place's, a UUID), whose first eight hex digits pick it; any other id by its characters' sum.
 */
export function shardOfJob(jobId: string, count: number): number {
  if (count <= 1) return 0;
  const hex = Number.parseInt(jobId.slice(2, 10), 16);
  if (Number.isInteger(hex) && /^[a-f0-9]{8}$/.test(jobId.slice(2, 10))) return hex % count;
  let sum = 0;
  for (let i = 0; i < jobId.length; i += 1) sum = (sum * 31 + jobId.charCodeAt(i)) >>> 0;
  return sum % count;
}

/** The shard count, read at most every `ttlMs`; `refresh()` reads it now. */
export interface ShardCountReader {
  (): Promise<ShardCount>;
  refresh(): Promise<ShardCount>;
}

/**
 * A producer's (or reader's) view of S: read at most every `ttlMs` (a change reaches a long-lived
 * producer, such as the server's, within that; one that writes by a count gone stale is refused
 * by the shards' fence, and refreshes).
 */
export function shardCountReader(redis: RedisClient, queue: string, ttlMs = 5_000): ShardCountReader {
  let cached: { value: ShardCount; at: number } | undefined;
  let reading: Promise<ShardCount> | undefined;
  const refresh = () => {
    reading ??= readShardCount(redis, queue)
      .then((value) => {
        cached = { value, at: Date.now() };
        return value;
      })
      .finally(() => {
        reading = undefined;
      });
    return reading;
  };
  const read = async () => (cached && Date.now() - cached.at < ttlMs ? cached.value : refresh());
  return Object.assign(read, { refresh });
}

/**
 * Keyed operations routed by a shard count other than the shard's fence: the count is being
 * changed, or the producer's was out of date. Nothing of the call was written; the producer reads
 * the count again and routes them anew.
 */
export class StaleShardCountError extends SluiceError {
  readonly fence: number;

  constructor(fence: number, routedWith: number) {
    super(
      `routed by ${routedWith} shard(s), but the queue's shards expect ${fence}: its shard count is being changed ` +
        '(if this lasts, a change was interrupted: run `sluice shards N` again to finish it)',
      { code: 'SHARDS_CHANGING' },
    );
    this.fence = fence;
  }
}

/** A change of S refused: idempotency keys are held, and an operation enqueued again with one could run again on another shard. */
export class ShardChangeRefusedError extends SluiceError {
  readonly heldMarks: number;

  constructor(queue: string, from: number, to: number, heldMarks: number) {
    super(
      `queue ${queue}: not changing its shards from ${from} to ${to}: ${heldMarks} idempotency key(s) are held in their ` +
        'dedup window, and after the change an operation enqueued again with one of them could pick another shard and run ' +
        'again. Wait until the window (SLUICE_DEDUP_WINDOW_SECONDS) is over, or pass force to accept that',
      { code: 'SHARDS_CHANGE_REFUSED' },
    );
    this.heldMarks = heldMarks;
  }
}

export interface ShardChange {
  queue: string;
  previous: number;
  now: ShardCount;
}

/**
 * Sets the queue's shard count. Refused (ShardChangeRefusedError) while any shard holds an
 * idempotency key's mark, unless `force`: the same key enqueued again after the change may pick
 * another shard, whose dedup knows nothing of it. Jobs already queued are never a reason to
 * refuse: workers run every shard the queue ever had. Nor is a resumable input: a batch keeps the
 * count it was opened with (BatchBookkeeper.open), so its lines, and its chunks' marks, are
 * looked for where they were written.
 */
export async function setShardCount(
  redis: RedisClient,
  queue: string,
  count: number,
  options: { force?: boolean } = {},
): Promise<ShardChange> {
  // A queue's name: a shard has no shards of its own.
  assertQueueName(queue);
  if (!Number.isInteger(count) || count < 1 || count > MAX_SHARDS) {
    throw new SluiceError(`shard count ${count}: a whole number from 1 to ${MAX_SHARDS}`, { code: 'VALIDATION_FAILED' });
  }
  const current = await readShardCount(redis, queue);
  if (current.count === count) return { queue, previous: count, now: current };
  // The fence first: from here on, keyed operations routed by the old count are refused on every
  // shard (and those routed by the new one are accepted once the count says so), so the marks
  // counted next are every mark the old count placed.
  const span = Math.max(current.highest, count);
  const fence = (value: number) => Promise.all(shardNames(queue, span).map((name) => redis.hset(queueKeys(name).shards, 'fence', value)));
  await fence(count);
  if (!options.force) {
    const held = await heldMarks(redis, queue);
    if (held > 0) {
      await fence(current.count);
      throw new ShardChangeRefusedError(queue, current.count, count, held);
    }
  }
  const set = defineScript(redis, 'shards-set-1');
  const [previous, highest] = (await set(queueKeys(queue).shards, count)) as [number, number];
  return { queue, previous, now: { count, highest } };
}

/**
 * The idempotency keys' marks held in the queue's shards (SCAN: an admin's call, not a
 * producer's): two walks of the keyspace, shard 0's and every other's (`{q#…}`), whatever S.
 */
async function heldMarks(redis: RedisClient, queue: string): Promise<number> {
  let held = 0;
  for (const pattern of [`${PREFIX}:{${queue}}:idem:*`, `${PREFIX}:{${queue}#*}:idem:*`]) {
    await scanKeys(redis, pattern, 1_000, (keys) => {
      held += keys.length;
    });
  }
  return held;
}
