import type { Logger } from '../observability/logger.js';
import type { RedisClient } from '../redis/client.js';
import { errorMessage } from '../errors.js';
import { LIMIT_KEY_KINDS, legacyLimiterKeys, limiterKeys, type LimitKeyKind } from '../redis/keys.js';

/**
 * What is copied from the earlier layout, by the Redis type it has there. Leases (seconds long) and
 * a line's catch-up claim (a worker's, for 10 s) are not: they end by themselves.
 */
const COPIED: Partial<Record<LimitKeyKind, 'hash' | 'zset' | 'list'>> = {
  state: 'hash',
  override: 'hash',
  circuitWindow: 'hash',
  line: 'zset',
  circuitWaiting: 'zset',
  recent429: 'list',
};

/** How long the earlier layout's keys without a lifetime (overrides) are kept after the copy: its workers still read them. */
const LEGACY_KEPT_MS = 86_400_000;
/** Names copied at once. */
const AT_ONCE = 16;

/**
 * Copies what an earlier version's limiter kept (every key in one slot, `{limits}`) to the grouped
 * layout (redis/keys.ts limiterKeys), so that an upgrade keeps each key's operator override (with
 * its remaining lifetime), its learned rate and pause, its circuit and the jobs in its line. What
 * the grouped layout holds already is kept (written since by this version: it is newer). The
 * earlier keys stay for that version's workers still running (each keeps its own schedule there
 * until it stops), those without a lifetime for a day more; the earlier index is then deleted, so
 * the copy happens once (again only for keys an earlier worker names anew, e.g. after a rollback).
 * Plain reads and writes per key (no DUMP/RESTORE: an ACL without @dangerous allows it), one key
 * at a time: on a Redis Cluster the two layouts are in different slots. Returns how many limit keys
 * it copied.
 */
export async function moveLegacyLimiterKeys(redis: RedisClient): Promise<number> {
  const names = await redis.smembers(legacyLimiterKeys.index);
  if (names.length === 0) return 0;
  for (let at = 0; at < names.length; at += AT_ONCE) {
    await Promise.all(names.slice(at, at + AT_ONCE).map((name) => copyName(redis, name)));
  }
  await redis.sadd(limiterKeys.index, ...names);
  await redis.srem(legacyLimiterKeys.index, ...names);
  // Workers read the copied overrides, pauses and circuits at their next refresh.
  await redis.incr(limiterKeys.version);
  return names.length;
}

async function copyName(redis: RedisClient, name: string): Promise<void> {
  for (const kind of LIMIT_KEY_KINDS) {
    const type = COPIED[kind];
    if (type) await copyKey(redis, legacyLimiterKeys.of(kind, name), limiterKeys[kind](name), type);
  }
}

async function copyKey(redis: RedisClient, from: string, to: string, type: 'hash' | 'zset' | 'list'): Promise<void> {
  // The content and its lifetime read together (one key: one slot), so a key expiring between the two is not copied for ever.
  const read = redis.multi().pttl(from);
  if (type === 'hash') read.hgetall(from);
  else if (type === 'zset') read.zrange(from, 0, -1, 'WITHSCORES');
  else read.lrange(from, 0, -1);
  const [[, ttl], [, content]] = (await read.exec()) as [[null, number], [null, Record<string, string> | string[]]];
  const empty = Array.isArray(content) ? content.length === 0 : Object.keys(content).length === 0;
  if (ttl === -2 || empty || (await redis.exists(to)) === 1) return;
  const write = redis.multi();
  if (type === 'hash') write.hset(to, content as Record<string, string>);
  else if (type === 'zset') write.zadd(to, ...scoreMembers(content as string[]));
  else write.rpush(to, ...(content as string[]));
  if (ttl > 0) write.pexpire(to, ttl);
  await write.exec();
  if (ttl === -1) await redis.pexpire(from, LEGACY_KEPT_MS);
}

/** ZRANGE … WITHSCORES answers member, score, …; ZADD takes score, member, …. */
function scoreMembers(flat: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < flat.length; i += 2) out.push(flat[i + 1]!, flat[i]!);
  return out;
}

/**
 * The copy, made once per process before the limiter's first decision, a producer's first line
 * join and an operator's first change or listing: never failing what waits for it. A Redis that
 * refuses it (an ACL without the earlier layout's keys, a read-only replica) is told once in the
 * log; it is tried again a minute later.
 */
export function legacyLayoutCopy(redis: RedisClient, logger?: Logger): () => Promise<void> {
  let done = false;
  let running: Promise<void> | undefined;
  let failedAt = -Infinity;
  let told = false;
  return () => {
    if (done || Date.now() - failedAt < 60_000) return Promise.resolve();
    running ??= moveLegacyLimiterKeys(redis)
      .then((copied) => {
        done = true;
        if (copied > 0)
          logger?.info({ limitKeys: copied }, "limiter: copied the limit keys' state from the earlier layout ({limits}) to their groups");
      })
      .catch((error: unknown) => {
        failedAt = Date.now();
        if (!told) {
          told = true;
          logger?.warn(
            { err: errorMessage(error) },
            "limiter: could not copy the earlier layout's limit keys (sluice:{limits}:…); an operator's overrides set before the upgrade are not seen until it can (a Redis ACL user needs ~sluice:{limits}:* for it)",
          );
        }
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  };
}
