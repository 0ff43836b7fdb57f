import { Queue } from 'bullmq';
import type { RedisClient } from '../redis/client.js';
import { SCHEDULES_PREFIX, bullQueueName } from '../redis/keys.js';
import { firstTickAt, repeatOptions, type Timing } from './schedule-timing.js';

/**
 * The tick queue of a sluice queue: one BullMQ job scheduler per schedule, on a queue of its own
 * (prefix `sluice:schedules`). BullMQ keeps one delayed job per scheduler, id
 * `repeat:NAME:<tick ms>`, and adds the next when a worker takes it: each tick is one job, run by
 * one worker (its lock), whatever the number of workers and servers.
 */

/** A tick job's data: which schedule (its definition and operations are read when it runs). */
export interface TickData {
  schedule: string;
}

/** A failed tick (Redis went away mid-enqueue) is tried again: the run's enqueue is resumable. */
const TICK_ATTEMPTS = 5;

export function openTickQueue(redis: RedisClient, queue: string): Queue<TickData> {
  const ticks = new Queue<TickData>(bullQueueName(queue), { connection: redis, prefix: SCHEDULES_PREFIX });
  // Errors reach callers through the call that fails; without a listener BullMQ prints each one.
  ticks.on('error', () => undefined);
  return ticks;
}

/** Creates (or replaces) the schedule's BullMQ job scheduler; its first tick is the first one after `nowMs`. */
export async function upsertTicks(ticks: Queue<TickData>, name: string, timing: Timing, nowMs: number): Promise<void> {
  const repeat = repeatOptions(timing);
  await ticks.upsertJobScheduler(
    name,
    // An interval starts on its grid (BullMQ would start it at once, off the grid).
    'every' in repeat ? { ...repeat, startDate: firstTickAt(repeat.every, nowMs) } : repeat,
    {
      name: 'tick',
      data: { schedule: name },
      opts: {
        attempts: TICK_ATTEMPTS,
        backoff: { type: 'exponential', delay: 1_000 },
        removeOnComplete: { age: 86_400, count: 100 },
        removeOnFail: { age: 7 * 86_400 },
      },
    },
  );
}

/** Removes the schedule's job scheduler and its next tick; true if it had one. */
export async function removeTicks(ticks: Queue<TickData>, name: string): Promise<boolean> {
  return ticks.removeJobScheduler(name);
}
