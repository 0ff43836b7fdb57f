import type { RedisClient } from '../redis/client.js';
import type { SluiceConfig } from '../config/sluice-config.js';
import { limiterKeys } from '../redis/keys.js';
import { defineScript } from '../redis/scripts.js';
import { configuredSpecs } from './limit-keys.js';
import { DEFAULT_MAX_IN_SLOT_WAIT_MS, enqueueDelayMs } from './line.js';

/** A job about to be enqueued: who it is in the lines (`{queue}jobId`) and its limit keys. */
export interface Joiner {
  holder: string;
  keys: readonly string[];
}

/**
 * Places a chunk's jobs in their rate-limited keys' lines at enqueue (redis/lua/line-join.lua) and
 * says how long to delay each (see enqueueDelayMs): a millisecond for those within reach of their
 * turn, about the time to their turn for those further back, 0 for jobs in no line (a key without
 * a rate, or one this chunk does not bring to its limit). So a backlog is fetched once, when its
 * turn comes, rather than fetched, queued and fetched again. Keys the producer's config gives no
 * rate join nothing here: their jobs take their place when a worker first runs them.
 */
export type LineJoin = (jobs: readonly Joiner[]) => Promise<JoinedLines>;

/** Per job: how long to delay it, and the keys whose lines it took a new ticket in (see LineLeave). */
export interface JoinedLines {
  delays: number[];
  took: string[][];
}

/**
 * Jobs that joined lines at enqueue but were not added (a duplicate, or there already from an
 * earlier run of the same input) give back the tickets they took (redis/lua/line-leave.lua): a
 * ticket nobody will use would hold everyone behind it until free slots closed the gap one by one.
 */
export type LineLeave = (jobs: readonly Joiner[]) => Promise<void>;

export function createLineJoin(redis: RedisClient, config: SluiceConfig, maxInSlotWaitMs = DEFAULT_MAX_IN_SLOT_WAIT_MS): LineJoin {
  const join = defineScript(redis, 'line-join');
  const specOf = configuredSpecs(config);
  const isRated = (key: string) => specOf(key).rate > 0;

  return async (jobs) => {
    const keyIndex = new Map<string, number>();
    for (const job of jobs) for (const key of job.keys) if (isRated(key) && !keyIndex.has(key)) keyIndex.set(key, keyIndex.size + 1);
    if (keyIndex.size === 0) return { delays: jobs.map(() => 0), took: jobs.map(() => []) };
    const keys = [...keyIndex.keys()];
    const scriptKeys = [
      limiterKeys.index,
      ...keys.flatMap((key) => [limiterKeys.state(key), limiterKeys.override(key), limiterKeys.line(key)]),
    ];
    const args: (string | number)[] = [keys.length, maxInSlotWaitMs];
    for (const key of keys) {
      const { rate, burst } = specOf(key);
      args.push(key, rate, burst);
    }
    for (const job of jobs) {
      const indexes = job.keys.filter(isRated).map((key) => keyIndex.get(key)!);
      args.push(job.holder, indexes.length, ...indexes);
    }
    const reply = (await join(scriptKeys.length, ...scriptKeys, ...args)) as number[];
    const lines = keys.map((_, i) => ({
      startInMs: reply[4 * i]!,
      window: reply[4 * i + 1]!,
      intervalMs: reply[4 * i + 2]! / 1_000,
      placed: reply[4 * i + 3] === 1,
    }));
    let at = 4 * keys.length;
    const now = Date.now();
    const took: string[][] = [];
    const delays = jobs.map((job) => {
      let delay = 0;
      const taken: string[] = [];
      for (const key of job.keys.filter(isRated)) {
        const line = lines[keyIndex.get(key)! - 1]!;
        const position = reply[at++]!;
        if (reply[at++] === 1) taken.push(key);
        if (line.placed) delay = Math.max(delay, enqueueDelayMs({ ...line, position }, maxInSlotWaitMs, now));
      }
      took.push(taken);
      return delay;
    });
    return { delays, took };
  };
}

export function createLineLeave(redis: RedisClient): LineLeave {
  const leave = defineScript(redis, 'line-leave');
  return async (jobs) => {
    const byKey = new Map<string, string[]>();
    for (const job of jobs) {
      for (const key of job.keys) {
        const holders = byKey.get(key);
        if (holders) holders.push(job.holder);
        else byKey.set(key, [job.holder]);
      }
    }
    if (byKey.size === 0) return;
    const keys = [...byKey.keys()];
    const args: (string | number)[] = [];
    for (const key of keys) args.push(byKey.get(key)!.length, ...byKey.get(key)!);
    await leave(2 * keys.length, ...keys.flatMap((key) => [limiterKeys.state(key), limiterKeys.line(key)]), ...args);
  };
}
