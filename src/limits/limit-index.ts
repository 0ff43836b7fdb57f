import type { RedisClient } from '../redis/client.js';
import { limiterKeys } from '../redis/keys.js';

/**
 * The limiter's fleet-wide keys, which the scripts changing a key's state do not write: on a Redis
 * Cluster each is in a slot of its own, apart from the keys' groups (redis/keys.ts), so they are
 * written by separate calls, after the script. The index and the version here; the live processes
 * below (LiveProcesses).
 * - The index names every limit key in use (what `sluice limits` lists beyond the config). A
 *   process names each key it uses there once a while; one that housekeeping forgot (a day unused)
 *   comes back at its next use after that.
 * - The version is bumped after a change every worker must notice (an operator's override, a pause
 *   or a lower rate a target taught, a circuit's transition); each worker reads it every second
 *   (key-state.ts). A process that dies between the script and the bump leaves its change to be
 *   noticed at the next bump: its own workers had it, the others learn it then (a key's script
 *   reads the change itself whenever a key with a configured limit is acquired).
 */
export interface LimitIndex {
  /** Names keys in use, each at most once per ANNOUNCE_EVERY_MS; a failed write is tried again at the next use. */
  announce(keys: readonly string[]): void;
  /** Names keys whose state changed, then bumps the version: a worker that sees the new version finds them. */
  changed(keys: readonly string[]): Promise<void>;
}

/** How often one process names a key it keeps using. */
const ANNOUNCE_EVERY_MS = 60_000;
/** Past this many keys named, those named over ANNOUNCE_EVERY_MS ago are forgotten (named again at their next use). */
const MAX_REMEMBERED = 10_000;

export function createLimitIndex(redis: RedisClient): LimitIndex {
  const announcedAt = new Map<string, number>();
  return {
    announce(keys) {
      const now = Date.now();
      // Keys named once (a URL's host, a tenant) are not remembered for ever.
      if (announcedAt.size > MAX_REMEMBERED) {
        for (const [key, at] of announcedAt) if (now - at >= ANNOUNCE_EVERY_MS) announcedAt.delete(key);
      }
      const due = keys.filter((key) => now - (announcedAt.get(key) ?? -Infinity) >= ANNOUNCE_EVERY_MS);
      if (due.length === 0) return;
      for (const key of due) announcedAt.set(key, now);
      redis.sadd(limiterKeys.index, ...due).catch(() => {
        for (const key of due) announcedAt.delete(key);
      });
    },
    async changed(keys) {
      if (keys.length > 0) await redis.sadd(limiterKeys.index, ...keys);
      await redis.incr(limiterKeys.version);
    },
  };
}

/** This process among the live limiter processes (`sluice:limits:processes`), and how many are live. */
export interface LiveProcesses {
  /** Marks this process live and counts the live ones. */
  beat(): Promise<void>;
  /** Live processes (at least 1) at the last beat. */
  count(): number;
  /** Takes this process off (its entry lapses anyway, HEARTBEAT_TTL_MS after its last beat). */
  leave(): Promise<unknown>;
}

const HEARTBEAT_TTL_MS = 15_000;

export function createLiveProcesses(redis: RedisClient, processId: string): LiveProcesses {
  let live = 1;
  return {
    async beat() {
      const now = Date.now();
      const replies = await redis
        .multi()
        .zadd(limiterKeys.processes, now + HEARTBEAT_TTL_MS, processId)
        .zremrangebyscore(limiterKeys.processes, '-inf', now)
        .zcard(limiterKeys.processes)
        .exec();
      live = Math.max(1, Number(replies?.[2]?.[1] ?? 1));
    },
    count: () => live,
    leave: () => redis.zrem(limiterKeys.processes, processId),
  };
}
