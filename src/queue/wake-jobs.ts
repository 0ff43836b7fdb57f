import { Job } from 'bullmq';
import type { RedisClient } from '../redis/client.js';
import { openBullQueue } from './bull-queue.js';
import { SHARD_NAME, limiterKeys, shardOf } from '../redis/keys.js';
import { laneOfOpId } from './lanes.js';
import { sleep } from '../support/sleep.js';
import { DEFAULT_MAX_IN_SLOT_WAIT_MS, lineWindow, turnDelayMs } from '../limits/line.js';
import type { LineAfterChange } from '../limits/limits-admin.js';

/** Jobs looked up at once. */
const CHUNK = 200;

/**
 * Whom a rate-limit booking is made for (the member of `bookings:<key>` is `<holder>|<epoch>`): the
 * job, with its queue in the hash-tag form of its keys, so that `limits set` finds it in whichever
 * queue holds it.
 */
export function bookingHolder(queue: string, jobId: string): string {
  return `{${queue}}${jobId}`;
}

/**
 * The jobs that may hold a holder's place, with the earliest `value` per job: the job of that id,
 * and for an operation in a lane (`l-…-<index>`, queue/lanes.ts) its lane too, which is delayed
 * whole (to its first operation's turn; an operation that left its lane is a job of its own).
 */
export function jobsOfHolders(entries: readonly { jobId: string; value: number }[]): { jobId: string; value: number }[] {
  const earliest = new Map<string, number>();
  const take = (jobId: string, value: number) => earliest.set(jobId, Math.min(value, earliest.get(jobId) ?? Infinity));
  for (const { jobId, value } of entries) {
    take(jobId, value);
    const lane = laneOfOpId(jobId);
    if (lane) take(lane.lane, value);
  }
  return [...earliest].map(([jobId, value]) => ({ jobId, value }));
}

/** A holder's queue (or shard: `q#i`) and job id; a bare job id (booked by a worker before holders named queues) has no queue. */
export function parseBookingHolder(holder: string): { queue: string | undefined; jobId: string } {
  const close = holder.startsWith('{') ? holder.indexOf('}') : -1;
  const queue = close > 0 ? holder.slice(1, close) : undefined;
  return queue !== undefined && SHARD_NAME.test(queue) && close < holder.length - 1
    ? { queue, jobId: holder.slice(close + 1) }
    : { queue: undefined, jobId: holder };
}

/**
 * Brings the jobs in a key's line forward to about their turn at the key's new pace: those within
 * the window (the head) to the front of their queues now, each one further back to when the line
 * will have moved it there (never later than it was due). For jobs deferred for a rate-limit slot
 * whose key an operator just made faster: without this they would sleep until their old, slower
 * turns; all woken at once, most would be fetched only to be sent away again. `line` is what
 * `LimitsAdmin.set`/`reset` return; a bare job id is looked for in `fallbackQueue`. Jobs that are not
 * delayed any more (running, done, gone) are skipped. Returns how many were brought forward, per queue.
 */
export async function wakeDeferredJobs(redis: RedisClient, line: LineAfterChange, fallbackQueue: string): Promise<Record<string, number>> {
  const { holders, intervalMs } = line;
  const window = lineWindow(DEFAULT_MAX_IN_SLOT_WAIT_MS, intervalMs);
  const now = Date.now();
  const byQueue = new Map<string, { jobId: string; value: number }[]>();
  holders.forEach((holder, position) => {
    const { queue = fallbackQueue, jobId } = parseBookingHolder(holder);
    const delayMs = turnDelayMs({ position, window, intervalMs, startInMs: 0 }, DEFAULT_MAX_IN_SLOT_WAIT_MS, now);
    const jobs = byQueue.get(queue) ?? [];
    jobs.push({ jobId, value: delayMs });
    byQueue.set(queue, jobs);
  });
  const woken: Record<string, number> = {};
  for (const [queue, jobs] of [...byQueue].sort(([a], [b]) => a.localeCompare(b))) {
    // Counted under the queue, whichever of its shards held them.
    const { queue: name } = shardOf(queue);
    woken[name] =
      (woken[name] ?? 0) +
      (await wakeInQueue(
        redis,
        queue,
        jobsOfHolders(jobs).map(({ jobId, value }) => ({ jobId, delayMs: value })),
      ));
  }
  return woken;
}

async function wakeInQueue(redis: RedisClient, queueName: string, jobs: readonly { jobId: string; delayMs: number }[]): Promise<number> {
  const queue = openBullQueue(redis, queueName);
  let woken = 0;
  try {
    for (let start = 0; start < jobs.length; start += CHUNK) {
      const results = await Promise.all(
        jobs.slice(start, start + CHUNK).map(async ({ jobId, delayMs }) => {
          const job = await Job.fromId(queue, jobId);
          if (!job || !(await job.isDelayed())) return false;
          // It may have come due or been taken between the calls: then it needs no waking.
          if (delayMs <= 0)
            return job.promote().then(
              () => true,
              () => false,
            );
          // BullMQ's delayed score is the due time × 0x1000 (and a counter): bring it forward only.
          const score = await redis.zscore(queue.keys['delayed']!, jobId);
          if (score === null || Math.floor(Number(score) / 0x1000) <= Date.now() + delayMs) return false;
          return job.changeDelay(delayMs).then(
            () => true,
            () => false,
          );
        }),
      );
      woken += results.filter(Boolean).length;
    }
  } finally {
    await queue.close();
  }
  return woken;
}

/** How many were woken in all. */
export function totalWoken(woken: Record<string, number>): number {
  return Object.values(woken).reduce((sum, count) => sum + count, 0);
}

/** A closed circuit's waiting jobs are woken in a slow start: this many in its first second, twice as many each second after. */
export const CIRCUIT_SLOW_START = 10;

/**
 * Wakes the jobs that wait for a limit key's circuit to close (recorded by the acquire script under
 * their booking holders, so in whichever queue they are); a bare job id is looked for in
 * `fallbackQueue`. A partner that just came back is not met by the whole backlog at once: the jobs
 * are woken in a slow start (CIRCUIT_SLOW_START in the first second, doubling each second), and run
 * at the key's limit. Returns how many were woken; those left unwoken (this process stopped, a job
 * no longer delayed) come back by themselves.
 */
export async function wakeCircuitWaiters(
  redis: RedisClient,
  limitKey: string,
  fallbackQueue: string,
  pause: (ms: number) => Promise<unknown> = sleep,
): Promise<number> {
  let woken = 0;
  for (let round = CIRCUIT_SLOW_START; ; round *= 2) {
    const started = Date.now();
    const popped = await redis.zpopmin(limiterKeys.circuitWaiting(limitKey), round);
    const holders = popped.filter((_, i) => i % 2 === 0);
    // The circuit's own slow start paces them: every one popped is woken now.
    if (holders.length > 0) woken += totalWoken(await wakeDeferredJobs(redis, { holders, intervalMs: 0 }, fallbackQueue));
    if (holders.length < round) return woken;
    await pause(Math.max(0, 1_000 - (Date.now() - started)));
  }
}
