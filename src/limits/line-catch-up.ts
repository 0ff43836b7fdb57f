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
 * Has a key's line catch up (redis/lua/line-catch-up-4.lua has the why). A line that runs behind:
 * its next CATCH_UP_TICKETS delayed jobs, in whichever queue, are due at their turn counted from
 * now, never earlier than they were, so they are fetched once, at their turn, not early and again.
 * A line slower than its key may be (its jobs were timed at a rate since raised): every delayed job
 * in it is brought forward to its turn at the key's rate now, never later than it was. Returns how
 * many jobs were re-timed, or undefined when there was nothing to do (the line is neither, or
 * another process is on it).
 */
export type LineCatchUp = (key: string) => Promise<CaughtUp | undefined>;

/** A catch-up done: the jobs it re-timed, and whether it brought the line forward (faster) or back. */
export interface CaughtUp {
  moved: number;
  faster: boolean;
}

/** What the claim (line-catch-up-4.lua) hands the caller. */
interface CatchUpClaim {
  faster: boolean;
  line: { window: number; intervalMs: number; startInMs: number };
  served: number;
  /** For step 3 (line-caught-up-2.lua): the rate the line is timed at from now, the pace it had until now ('' unknown), the tickets handed out. */
  caughtUp: string[];
  tickets: { holder: string; position: number }[];
}

function decodeClaim(reply: (number | string)[]): CatchUpClaim {
  const [mode, intervalUs, window, startInMs, served, , , , count] = reply.slice(0, 9).map(Number) as number[];
  const tickets = [];
  for (let i = 0; i < count!; i++) tickets.push({ holder: String(reply[9 + 2 * i]), position: Number(reply[10 + 2 * i]) });
  return {
    faster: mode === 2,
    line: { window: window!, intervalMs: intervalUs! / 1_000, startInMs: startInMs! },
    served: served!,
    caughtUp: [String(reply[5]), String(reply[6]), String(reply[7]), mode === 2 ? '1' : '0'],
    tickets,
  };
}

export function createLineCatchUp(redis: RedisClient, specOf: (key: string) => LimitSpec, maxInSlotWaitMs: number): LineCatchUp {
  const claim = defineScript(redis, 'line-catch-up-4');
  const retime = defineScript(redis, 'line-retime-2');
  const caughtUp = defineScript(redis, 'line-caught-up-2');
  const release = defineScript(redis, 'delete-if-same-1');
  const renew = defineScript(redis, 'extend-lock-1');

  async function retimeAll(due: readonly { holder: string; dueMs: number }[], direction: 'later' | 'earlier'): Promise<number> {
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
        moved += Number(await retime(...keys, direction, ...args.slice(i, i + 2 * RETIME_CHUNK)));
    }
    return moved;
  }

  /**
   * A line slower than its key may be, past the tickets the claim handed out: the rest of the line,
   * a page at a time from the last ticket seen, each brought forward to its turn counted from the
   * claim (`at`: positions are counted from its `served`). Tickets of one score (the half places of
   * jobs passed over or that missed their slot) may straddle a page: the next page starts at that
   * score, past those of it already seen. The claim is renewed after each page; false when it was
   * lost (it ran out, another process took over).
   */
  async function bringForwardRest(key: string, claimKey: string, token: string, taken: CatchUpClaim, at: number): Promise<number | false> {
    const { served, line } = taken;
    const scoreOf = (position: number) => served + position;
    let last = scoreOf(taken.tickets[taken.tickets.length - 1]!.position);
    let seenAtLast = taken.tickets.filter(({ position }) => scoreOf(position) === last).length;
    let moved = 0;
    for (;;) {
      if (Number(await renew(claimKey, token, CATCH_UP_CLAIM_MS)) !== 1) return false;
      const page = await redis.zrangebyscore(limiterKeys.line(key), last, '+inf', 'WITHSCORES', 'LIMIT', seenAtLast, CATCH_UP_TICKETS);
      if (page.length === 0) return moved;
      const tickets = [];
      for (let i = 0; i < page.length; i += 2) tickets.push({ holder: page[i]!, position: Number(page[i + 1]) - served });
      moved += await retimeAll(dueTimesFromNow(tickets, line, maxInSlotWaitMs, at), 'earlier');
      if (page.length < 2 * CATCH_UP_TICKETS) return moved;
      const pageLast = scoreOf(tickets[tickets.length - 1]!.position);
      const atPageLast = tickets.filter(({ position }) => scoreOf(position) === pageLast).length;
      seenAtLast = pageLast === last ? seenAtLast + atPageLast : atPageLast;
      last = pageLast;
    }
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
      const taken = decodeClaim(reply);
      const at = Date.now();
      const direction = taken.faster ? 'earlier' : 'later';
      let moved = await retimeAll(dueTimesFromNow(taken.tickets, taken.line, maxInSlotWaitMs, at), direction);
      if (taken.faster && taken.tickets.length === CATCH_UP_TICKETS) {
        const rest = await bringForwardRest(key, claimKey, token, taken, at);
        // Another process has the line now: it brings forward what is left.
        if (rest === false) return { moved, faster: true };
        moved += rest;
      }
      await caughtUp(stateKey, claimKey, token, ...taken.caughtUp);
      return { moved, faster: taken.faster };
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
  /**
   * Has each key's line looked at once, now, whatever the replies said (a process starting: a line
   * whose jobs are all away sees no start). Apart from the once-a-second spacing of the replies' asks.
   */
  look(keys: readonly string[]): void;
  settled(): Promise<void>;
}

export function createCatchUpTrigger(catchUp: LineCatchUp, logger: Logger): CatchUpTrigger {
  const tried = new Map<string, number>();
  const running = new Set<Promise<void>>();
  const run = (key: string): void => {
    const done = catchUp(key).then(
      (caught) => {
        if (caught?.faster)
          logger.info(
            { limitKey: key, jobs: caught.moved },
            "the key's rate is above the one its waiting operations were timed at (a raised limit): they were brought forward to their turns",
          );
        else if (caught)
          logger.debug({ limitKey: key, jobs: caught.moved }, "line ran behind its jobs' times: the jobs due next re-timed to their turn");
      },
      (error: unknown) => logger.warn({ err: error, limitKey: key }, 'could not re-time the line; the next start on the key tries again'),
    );
    running.add(done);
    void done.finally(() => running.delete(done));
  };
  const trigger = (keys: readonly string[], behindMask: number): void => {
    if (behindMask === 0) return;
    const now = Date.now();
    for (const [i, key] of keys.entries()) {
      if ((behindMask & (2 ** i)) === 0 || now - (tried.get(key) ?? 0) < CATCH_UP_TRY_EVERY_MS) continue;
      tried.set(key, now);
      run(key);
    }
  };
  return Object.assign(trigger, {
    look: (keys: readonly string[]) => keys.forEach(run),
    settled: async () => void (await Promise.all(running)),
  });
}
