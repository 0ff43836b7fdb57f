import { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { QUEUE_NAME } from '../config/env.js';
import { openBullQueue } from './bull-queue.js';
import { limiterKeys } from '../redis/keys.js';
import { sleep } from '../support/sleep.js';

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

/** A holder's queue and job id; a bare job id (booked by a worker before holders named queues) has no queue. */
export function parseBookingHolder(holder: string): { queue: string | undefined; jobId: string } {
  const close = holder.startsWith('{') ? holder.indexOf('}') : -1;
  const queue = close > 0 ? holder.slice(1, close) : undefined;
  return queue !== undefined && QUEUE_NAME.test(queue) && close < holder.length - 1
    ? { queue, jobId: holder.slice(close + 1) }
    : { queue: undefined, jobId: holder };
}

/**
 * Moves the booked jobs from BullMQ's delayed sets to the front of their queues now, so they run
 * (and book a new slot) at once. For jobs deferred for a rate-limit slot whose key an operator just
 * made faster: without this they would sleep until their old, slower slots. `holders` are what
 * `LimitsAdmin.set`/`reset` return; a bare job id is looked for in `fallbackQueue`. Jobs that are not
 * delayed any more (running, done, gone) are skipped. Returns how many were woken, per queue.
 */
export async function wakeDeferredJobs(redis: Redis, holders: readonly string[], fallbackQueue: string): Promise<Record<string, number>> {
  const byQueue = new Map<string, string[]>();
  for (const holder of holders) {
    const { queue = fallbackQueue, jobId } = parseBookingHolder(holder);
    byQueue.set(queue, [...(byQueue.get(queue) ?? []), jobId]);
  }
  const woken: Record<string, number> = {};
  for (const [queue, jobIds] of [...byQueue].sort(([a], [b]) => a.localeCompare(b))) woken[queue] = await wakeInQueue(redis, queue, jobIds);
  return woken;
}

async function wakeInQueue(redis: Redis, queueName: string, jobIds: readonly string[]): Promise<number> {
  const queue = openBullQueue(redis, queueName);
  let woken = 0;
  try {
    for (let start = 0; start < jobIds.length; start += CHUNK) {
      const results = await Promise.all(
        jobIds.slice(start, start + CHUNK).map(async (id) => {
          const job = await Job.fromId(queue, id);
          if (!job || !(await job.isDelayed())) return false;
          // It may have come due or been taken between the two calls: then it needs no waking.
          return job.promote().then(
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
  redis: Redis,
  limitKey: string,
  fallbackQueue: string,
  pause: (ms: number) => Promise<unknown> = sleep,
): Promise<number> {
  let woken = 0;
  for (let round = CIRCUIT_SLOW_START; ; round *= 2) {
    const started = Date.now();
    const popped = await redis.zpopmin(limiterKeys.circuitWaiting(limitKey), round);
    const holders = popped.filter((_, i) => i % 2 === 0);
    if (holders.length > 0) woken += totalWoken(await wakeDeferredJobs(redis, holders, fallbackQueue));
    if (holders.length < round) return woken;
    await pause(Math.max(0, 1_000 - (Date.now() - started)));
  }
}
