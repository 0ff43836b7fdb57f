import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../redis/client.js';
import { bullQueueKey, limiterKeys } from '../redis/keys.js';
import { defineScript } from '../redis/scripts.js';
import type { LimitSpec } from './limit-keys.js';
import { turnDelayMs } from './line.js';
import type { Logger } from '../observability/logger.js';
import { jobsOfHolders, parseBookingHolder } from '../queue/wake-jobs.js';

/** How long one caller's claim on a catch-up lasts: if it dies, a later start on the key takes over after this. */
export const CATCH_UP_CLAIM_MS = 10_000;
/** The tickets from the head re-timed in one catch-up (those further back are, when they come near). */
export const CATCH_UP_TICKETS = 2_000;
/** Jobs re-timed per script call. */
const RETIME_CHUNK = 500;

/** When each ticket's job is due, counted from now (line.ts turnDelayMs). The arithmetic of a catch-up, without Redis. */
export function dueTimesFromNow(
  tickets: readonly { holder: string; position: number }[],
  line: { window: number; intervalMs: number; startInMs: number },
  maxInSlotWaitMs: number,
  now: number,
): { holder: string; dueMs: number }[] {
  return tickets.map(({ holder, position }) => ({ holder, dueMs: now + turnDelayMs({ ...line, position }, maxInSlotWaitMs, now) }));
}

/**
 * Has a key's line that runs behind its jobs' times catch up (redis/lua/line-catch-up-4.lua has the
 * why): its next CATCH_UP_TICKETS delayed jobs, in whichever queue, are due at their turn counted
 * from now, so they are fetched once, at their turn, not early and again. Returns how many jobs were
 * re-timed, or undefined when there was nothing to do (the line is not behind, or another process
 * is on it).
 */
export type LineCatchUp = (key: string) => Promise<number | undefined>;

export function createLineCatchUp(redis: RedisClient, specOf: (key: string) => LimitSpec, maxInSlotWaitMs: number): LineCatchUp {
  const claim = defineScript(redis, 'line-catch-up-4');
  const retime = defineScript(redis, 'line-retime-2');
  const caughtUp = defineScript(redis, 'line-caught-up-2');
  const release = defineScript(redis, 'delete-if-same-1');

  async function retimeAll(due: readonly { holder: string; dueMs: number }[]): Promise<number> {
    const byQueue = new Map<string, { jobId: string; value: number }[]>();
    for (const { holder, dueMs } of due) {
      const parts = parseBookingHolder(holder);
      if (parts.queue === undefined) continue;
      const jobs = byQueue.get(parts.queue) ?? [];
      jobs.push({ jobId: parts.jobId, value: dueMs });
      byQueue.set(parts.queue, jobs);
    }
    let moved = 0;
    for (const [queue, jobs] of byQueue) {
      // A lane is due at its first operation's turn (see jobsOfHolders).
      const args = jobsOfHolders(jobs).flatMap(({ jobId, value }) => [jobId, value]);
      const keys = [bullQueueKey(queue, 'delayed'), bullQueueKey(queue, 'marker')];
      for (let i = 0; i < args.length; i += 2 * RETIME_CHUNK)
        moved += Number(await retime(...keys, ...args.slice(i, i + 2 * RETIME_CHUNK)));
    }
    return moved;
  }

  return async (key) => {
    const { rate, burst } = specOf(key);
    const token = randomUUID();
    const stateKey = limiterKeys.state(key);
    const claimKey = limiterKeys.catchUpClaim(key);
    const args = [stateKey, limiterKeys.override(key), limiterKeys.line(key), claimKey, rate, burst, maxInSlotWaitMs, token];
    const reply = (await claim(...args, CATCH_UP_CLAIM_MS, CATCH_UP_TICKETS)) as (number | string)[];
    if (reply.length === 0) return undefined;
    try {
      const [intervalUs, window, startInMs, count] = reply.slice(0, 4).map(Number) as [number, number, number, number];
      const tickets = [];
      for (let i = 0; i < count; i++) tickets.push({ holder: String(reply[4 + 2 * i]), position: Number(reply[5 + 2 * i]) });
      const line = { window, intervalMs: intervalUs / 1_000, startInMs };
      const moved = await retimeAll(dueTimesFromNow(tickets, line, maxInSlotWaitMs, Date.now()));
      await caughtUp(stateKey, claimKey, token);
      return moved;
    } catch (error) {
      // The mark stays: the next start on the key tries again, without waiting out this claim.
      await release(claimKey, token).catch(() => undefined);
      throw error;
    }
  };
}

/**
 * A process asks for a key's catch-up at most this often (every start on a key that runs behind hears
 * of it; the claim script spaces the catch-ups themselves fleet-wide).
 */
const CATCH_UP_TRY_EVERY_MS = 1_000;

/**
 * What a worker does with the `behind` mask of an acquire reply: the keys whose line runs behind
 * catch up in the background, each at most once a second from this process. `settled()` waits for
 * those under way (before the client they use is closed).
 */
export interface CatchUpTrigger {
  (keys: readonly string[], behindMask: number): void;
  settled(): Promise<void>;
}

export function createCatchUpTrigger(catchUp: LineCatchUp, logger: Logger): CatchUpTrigger {
  const tried = new Map<string, number>();
  const running = new Set<Promise<void>>();
  const trigger = (keys: readonly string[], behindMask: number): void => {
    if (behindMask === 0) return;
    const now = Date.now();
    for (const [i, key] of keys.entries()) {
      if ((behindMask & (2 ** i)) === 0 || now - (tried.get(key) ?? 0) < CATCH_UP_TRY_EVERY_MS) continue;
      tried.set(key, now);
      const run = catchUp(key).then(
        (moved) => {
          if (moved !== undefined)
            logger.debug({ limitKey: key, jobs: moved }, "line ran behind its jobs' times: the jobs due next re-timed to their turn");
        },
        (error: unknown) => logger.warn({ err: error, limitKey: key }, 'could not re-time the line; the next start on the key tries again'),
      );
      running.add(run);
      void run.finally(() => running.delete(run));
    }
  };
  return Object.assign(trigger, { settled: async () => void (await Promise.all(running)) });
}
