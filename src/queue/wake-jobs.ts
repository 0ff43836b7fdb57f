import { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { openBullQueue } from './bull-queue.js';
import { limiterKeys } from '../redis/keys.js';

/**
 * Moves these jobs from BullMQ's delayed set to the front of the queue now, so they run (and book a
 * new slot) at once. For jobs deferred for a rate-limit slot whose key an operator just made faster:
 * without this they would sleep until their old, slower slots. Jobs that are not delayed any more
 * (running, done, gone) or live in another queue are skipped. Returns how many were woken.
 */
export async function wakeDeferredJobs(redis: Redis, queueName: string, jobIds: readonly string[]): Promise<number> {
  if (jobIds.length === 0) return 0;
  const queue = openBullQueue(redis, queueName);
  let woken = 0;
  try {
    for (let start = 0; start < jobIds.length; start += 200) {
      const results = await Promise.all(
        jobIds.slice(start, start + 200).map(async (id) => {
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

/**
 * Wakes the jobs that wait for a limit key's circuit to close (recorded by the acquire script as
 * `queue\tjobId`), in every queue, a chunk at a time. Returns how many were woken; a job that is not
 * delayed any more is skipped. Those left unwoken (this process stopped) come back by themselves.
 */
export async function wakeCircuitWaiters(redis: Redis, limitKey: string): Promise<number> {
  let woken = 0;
  for (;;) {
    const popped = await redis.zpopmin(limiterKeys.circuitWaiting(limitKey), 500);
    if (popped.length === 0) return woken;
    const byQueue = new Map<string, string[]>();
    for (let i = 0; i < popped.length; i += 2) {
      const [queue, jobId] = popped[i]!.split('\t');
      if (queue === undefined || jobId === undefined) continue;
      byQueue.set(queue, [...(byQueue.get(queue) ?? []), jobId]);
    }
    for (const [queue, ids] of byQueue) woken += await wakeDeferredJobs(redis, queue, ids);
  }
}
