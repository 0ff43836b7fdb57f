import type { RedisClient } from '../redis/client.js';
import type { SluiceConfig } from '../config/sluice-config.js';
import { limiterKeys } from '../redis/keys.js';
import { defineScript } from '../redis/scripts.js';
import { configuredSpecs, keysBySlot } from './limit-keys.js';
import { createLimitIndex } from './limit-index.js';
import { legacyLayoutCopy } from './limit-layout.js';
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
export type LineJoin = ((jobs: readonly Joiner[]) => Promise<JoinedLines>) & {
  /** Whether jobs of these keys join a line (take a ticket): one of them has a rate in the producer's config. */
  joins(keys: readonly string[]): boolean;
};

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
  const index = createLimitIndex(redis);
  const leave = createLineLeave(redis);
  // A producer started before any upgraded worker copies an earlier version's lines first (the same tickets).
  const copyLayout = legacyLayoutCopy(redis);

  /** The lines of `keys` (one slot on a Redis Cluster) in one script: per job, its delay there and the keys it took a ticket in. */
  async function joinLines(keys: string[], jobs: readonly Joiner[], now: number): Promise<JoinedLines> {
    const keyIndex = new Map(keys.map((key, i) => [key, i + 1]));
    const scriptKeys = keys.flatMap((key) => [limiterKeys.state(key), limiterKeys.override(key), limiterKeys.line(key)]);
    const args: (string | number)[] = [keys.length, maxInSlotWaitMs];
    for (const key of keys) {
      const { rate, burst } = specOf(key);
      args.push(rate, burst);
    }
    const inGroup = jobs.map((job) => job.keys.filter((key) => keyIndex.has(key)));
    jobs.forEach((job, i) => {
      if (inGroup[i]!.length) args.push(job.holder, inGroup[i]!.length, ...inGroup[i]!.map((key) => keyIndex.get(key)!));
    });
    const reply = (await join(scriptKeys.length, ...scriptKeys, ...args)) as number[];
    const lines = keys.map((_, i) => ({
      startInMs: reply[4 * i]!,
      window: reply[4 * i + 1]!,
      intervalMs: reply[4 * i + 2]! / 1_000,
      placed: reply[4 * i + 3] === 1,
    }));
    let at = 4 * keys.length;
    const took: string[][] = [];
    const delays = inGroup.map((jobKeys) => {
      let delay = 0;
      const taken: string[] = [];
      for (const key of jobKeys) {
        const line = lines[keyIndex.get(key)! - 1]!;
        const position = reply[at++]!;
        if (reply[at++] === 1) taken.push(key);
        if (line.placed) delay = Math.max(delay, enqueueDelayMs({ ...line, position }, maxInSlotWaitMs, now));
      }
      took.push(taken);
      return delay;
    });
    return { delays, took };
  }

  const joinJobs = async (jobs: readonly Joiner[]): Promise<JoinedLines> => {
    const rated = new Set<string>();
    for (const job of jobs) for (const key of job.keys) if (isRated(key)) rated.add(key);
    const joined: JoinedLines = { delays: jobs.map(() => 0), took: jobs.map(() => []) };
    if (rated.size === 0) return joined;
    const keys = [...rated];
    index.announce(keys);
    await copyLayout();
    // Slot by slot on a Redis Cluster (one group each), at once; one call on a single Redis.
    const now = Date.now();
    const parts = await Promise.allSettled(keysBySlot(redis, keys).map((slotKeys) => joinLines(slotKeys, jobs, now)));
    for (const part of parts) {
      if (part.status === 'rejected') continue;
      part.value.delays.forEach((delay, i) => {
        joined.delays[i] = Math.max(joined.delays[i]!, delay);
        joined.took[i]!.push(...part.value.took[i]!);
      });
    }
    const failed = parts.find((part) => part.status === 'rejected');
    if (failed) {
      // The chunk is not written: the tickets taken in the slots that answered go back (one nobody
      // uses would hold its line), as far as Redis lets them; the error is the one that stopped it.
      const taken = jobs.map((job, i) => ({ holder: job.holder, keys: joined.took[i]! })).filter((job) => job.keys.length > 0);
      await leave(taken).catch(() => undefined);
      throw failed.reason;
    }
    return joined;
  };
  return Object.assign(joinJobs, { joins: (keys: readonly string[]) => keys.some(isRated) });
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
    await Promise.all(
      keysBySlot(redis, [...byKey.keys()]).map((keys) => {
        const args: (string | number)[] = [];
        for (const key of keys) args.push(byKey.get(key)!.length, ...byKey.get(key)!);
        return leave(2 * keys.length, ...keys.flatMap((key) => [limiterKeys.state(key), limiterKeys.line(key)]), ...args);
      }),
    );
  };
}
