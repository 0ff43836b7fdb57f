import { getNextMillis } from 'bullmq';
import { parseDuration } from '../limits/limit-change.js';

/**
 * When a schedule runs: pure functions of plain inputs (no clock is read here; callers pass `now`).
 * Next runs are computed by BullMQ's own `getNextMillis` (cron-parser for `cron`), the function its
 * job schedulers use, so what `schedule show` prints is what BullMQ will do.
 */

/** How a schedule repeats: a cron expression (in `tz`, default UTC) or a fixed interval. */
export type Timing = { cron: string; tz?: string | undefined } | { everyMs: number };

/** `2s`, `15m`, `1h`, `1d` (whole seconds, 1 s to 365 d) → milliseconds, or what is wrong with it. */
export function parseEvery(text: string): number | string {
  const parsed = parseDuration(text);
  if (typeof parsed === 'string') return parsed;
  if (parsed % 1_000 !== 0) return 'expected whole seconds, such as 2s, 15m, 1h or 1d';
  return parsed;
}

/** What is wrong with a cron expression and time zone, or undefined when BullMQ can run it. */
export function cronProblem(cron: string, tz: string | undefined): { field: 'cron' | 'tz'; message: string } | undefined {
  if (tz !== undefined) {
    try {
      new Intl.DateTimeFormat('en', { timeZone: tz });
    } catch {
      return { field: 'tz', message: `${JSON.stringify(tz)} is not a time zone (use an IANA name such as Europe/Berlin or UTC)` };
    }
  }
  // cron-parser pads a short expression with zeros in front ("0 2 * *" runs at 00:00 on the 2nd),
  // which is never what was meant.
  const fields = cron.trim().split(/\s+/).length;
  if (fields !== 5 && fields !== 6) {
    return {
      field: 'cron',
      message: `${JSON.stringify(cron)} has ${fields} field${fields === 1 ? '' : 's'}; expected 5 (minute hour day month weekday) or 6 (seconds first)`,
    };
  }
  try {
    if (getNextMillis(0, repeatOptions({ cron, tz })) === undefined) return { field: 'cron', message: 'never matches a time' };
  } catch (error) {
    return { field: 'cron', message: `${JSON.stringify(cron)} is not a cron expression: ${(error as Error).message}` };
  }
  return undefined;
}

/** BullMQ's repeat options for a timing (every: aligned to multiples of the interval, see firstTickAt). */
export function repeatOptions(timing: Timing): { pattern: string; tz?: string } | { every: number } {
  if ('everyMs' in timing) return { every: timing.everyMs };
  return { pattern: timing.cron, ...(timing.tz !== undefined ? { tz: timing.tz } : {}) };
}

/** The first tick after `afterMs` (strictly later). */
export function nextTickAt(timing: Timing, afterMs: number): number {
  if ('everyMs' in timing) return firstTickAt(timing.everyMs, afterMs + 1);
  const next = getNextMillis(afterMs, repeatOptions(timing));
  if (next === undefined) throw new RangeError(`cron ${JSON.stringify(timing.cron)} has no run after ${new Date(afterMs).toISOString()}`);
  return next;
}

/**
 * An interval schedule ticks at multiples of its interval since the epoch (every 15m: :00, :15,
 * :30, :45 UTC), from the first one at or after `nowMs`: runs are named by round times, and a
 * schedule resumed after a pause keeps its grid.
 */
export function firstTickAt(everyMs: number, nowMs: number): number {
  return Math.ceil(nowMs / everyMs) * everyMs;
}

/** A tick's run name: `20261126T020000Z` (and `.250Z` for a tick off the whole second). */
export function runStamp(tickAtMs: number): string {
  const iso = new Date(tickAtMs).toISOString().replace(/[-:]/g, '');
  return iso.endsWith('.000Z') ? `${iso.slice(0, -5)}Z` : iso;
}

/** The batch a run enqueues into, `NAME-20261126T020000Z`; also what `{{run}}` becomes. */
export function runBatchId(name: string, tickAtMs: number): string {
  return `${name}-${runStamp(tickAtMs)}`;
}

/** A late tick counts as missed past this: half its interval, and never more than a minute. */
export const MAX_GRACE_MS = 60_000;

export type CatchUp = 'one' | 'none';

/**
 * Whether a tick that starts at `startedAtMs` runs. A tick missed while every worker was down is
 * run once when they come back (BullMQ keeps one job per scheduler, the next tick's); with
 * `catchUp: "none"` a tick that starts more than its grace after its time is skipped instead.
 */
export function tickDecision(input: { catchUp: CatchUp; tickAtMs: number; nextTickAtMs: number; startedAtMs: number }): 'run' | 'skip' {
  if (input.catchUp === 'one') return 'run';
  const graceMs = Math.min(MAX_GRACE_MS, Math.max(0, input.nextTickAtMs - input.tickAtMs) / 2);
  return input.startedAtMs - input.tickAtMs > graceMs ? 'skip' : 'run';
}
