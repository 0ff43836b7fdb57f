import type { RedisClient } from '../redis/client.js';
import { queueKeys, type QueueKeys } from '../redis/keys.js';
import { shardCountReader, shardNames } from '../queue/shards.js';

/** One shard of a queue, as a reader reads it: its name (a BullMQ queue's) and its keys. */
export interface ReadShard {
  name: string;
  keys: QueueKeys;
}

/**
 * How long a reader trusts the shard count it read. Readers read every shard the queue ever had
 * (`highest`, queue/shards.ts); a shard added shows within this, and a queue never spread costs one
 * HMGET per this long, not one per read.
 */
const SHARD_COUNT_TTL_MS = 2_000;

export interface ShardsReader {
  /** The shards to read (shard 0 first): every one the queue ever had, as last read. */
  (): Promise<ReadShard[]>;
  /** The first `count` shards, known or not yet (a batch that says it was spread wider than last read). */
  upTo(count: number): ReadShard[];
}

/** What a reader of `queue` reads. */
export function readShards(redis: RedisClient, queue: string): ShardsReader {
  const count = shardCountReader(redis, queue, SHARD_COUNT_TTL_MS);
  let shards: ReadShard[] = [];
  const upTo = (wanted: number) => {
    if (shards.length !== wanted) shards = shardNames(queue, wanted).map((name) => ({ name, keys: queueKeys(name) }));
    return shards;
  };
  return Object.assign(async () => upTo((await count()).highest), { upTo });
}

/**
 * Reads `ids` from a hash of each shard (`hashOf`), each id in the shard `entries` name (the
 * shard's place in the list): one HMGET per shard that has any, answered in the ids' order.
 */
export async function readFromShards(
  redis: RedisClient,
  shards: readonly ReadShard[],
  hashOf: (keys: QueueKeys) => string,
  entries: readonly { id: string; index: number }[],
): Promise<(string | null)[]> {
  if (entries.length === 0) return [];
  if (shards.length === 1) return redis.hmget(hashOf(shards[0]!.keys), ...entries.map((entry) => entry.id));
  const byShard = new Map<number, number[]>();
  entries.forEach((entry, i) => {
    const at = byShard.get(entry.index);
    if (at) at.push(i);
    else byShard.set(entry.index, [i]);
  });
  const values = new Array<string | null>(entries.length).fill(null);
  await Promise.all(
    [...byShard].map(async ([index, at]) => {
      const read = await redis.hmget(hashOf(shards[index]!.keys), ...at.map((i) => entries[i]!.id));
      at.forEach((i, j) => (values[i] = read[j] ?? null));
    }),
  );
  return values;
}

/** The first shard (in shard order) whose hash `hashOf` holds `field`, with the value. */
export async function findInShards(
  redis: RedisClient,
  shards: readonly ReadShard[],
  hashOf: (keys: QueueKeys) => string,
  field: string,
): Promise<{ shard: ReadShard; value: string } | undefined> {
  return (await findManyInShards(redis, shards, hashOf, [field]))[0];
}

/** Per field, the first shard (in shard order) whose hash `hashOf` holds it, with the value: one HMGET per shard, at once. */
export async function findManyInShards(
  redis: RedisClient,
  shards: readonly ReadShard[],
  hashOf: (keys: QueueKeys) => string,
  fields: readonly string[],
): Promise<({ shard: ReadShard; value: string } | undefined)[]> {
  if (fields.length === 0) return [];
  const values = await Promise.all(shards.map((shard) => redis.hmget(hashOf(shard.keys), ...fields)));
  return fields.map((_, i) => {
    const at = values.findIndex((read) => read[i] !== null && read[i] !== undefined);
    return at < 0 ? undefined : { shard: shards[at]!, value: values[at]![i]! };
  });
}
