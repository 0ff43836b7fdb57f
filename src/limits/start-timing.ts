/**
 * When a start granted a slot by the acquire script actually goes: pure decisions, in two steps
 * around the wait for the slot. Lateness matters because late starts bunch up at the target, whose
 * own limiter does not bank the slots we left unused (see redis/lua/limit-acquire.lua).
 */

/** The jitter between a start and its arrival that the script's slack always allows for (at least min(T, 20 ms), up to half the reserve). */
export const ARRIVAL_JITTER_MS = 20;
/** Lag is ignored after this many starts given back in a row for it (see lagPenalty). */
export const MAX_LAG_GIVE_BACKS = 50;

/** A slot as the script granted it. Times in ms on this process's clock. */
export interface SlotTiming {
  /** When the slot begins: when the script was sent plus its waitMs (a busy process may read the reply late). */
  slot: number;
  /** The slot spacing of the slowest key; under 1, a key so fast that lateness means nothing. */
  intervalMs: number;
  /** How late a start may be before its slot is void. */
  slackMs: number;
}

export type StartPlan = { kind: 'wait'; startAt: number; delayMs: number } | { kind: 'rebook'; lateMs: number };

/**
 * Before the wait: when to start. Starts of this process on the same keys stay `intervalMs` apart:
 * timers that fire late together (a busy event loop) must not put a bunch of requests on the wire
 * at once. A start that this pushes past the slack is too far behind its slot to use it: book again.
 */
export function planStart(timing: SlotTiming & { now: number; lastStartAt: number | undefined }): StartPlan {
  const { slot, intervalMs, slackMs } = timing;
  const startAt = Math.max(slot, (timing.lastStartAt ?? 0) + intervalMs);
  if (intervalMs >= 1 && startAt - slot > slackMs) return { kind: 'rebook', lateMs: startAt - slot };
  return { kind: 'wait', startAt, delayMs: startAt - timing.now };
}

/** `giveBacks`: the streak of starts given back for lag in a row, as it stands after this decision. */
export type StartCheck =
  | { kind: 'go'; giveBacks: number }
  | { kind: 'rebook'; lateMs: number; giveBacks: number }
  | { kind: 'give-back'; lateMs: number; giveBacks: number };

/**
 * After the wait (whether or not there was one): go, or book again when the timer fired past the
 * slack, or give the slot back when this process's event loop lags. A lagging process (a burst of
 * work, a GC pause, a starved CPU) may put the request on the wire that much later than it decides
 * to: the start must leave room for it. A lost slot costs a little throughput, a bunch at the target a 429.
 */
export function checkStart(timing: SlotTiming & { now: number; lagMs: number; giveBacks: number }): StartCheck {
  const { slot, intervalMs, slackMs, lagMs, giveBacks } = timing;
  const lateMs = timing.now - slot;
  const checkLate = intervalMs >= 1;
  if (checkLate && lateMs > slackMs) return { kind: 'rebook', lateMs, giveBacks };
  if (checkLate && lateMs > slackMs - lagPenalty(lagMs, giveBacks)) return { kind: 'give-back', lateMs, giveBacks: giveBacks + 1 };
  // A streak ends when the lag does (not merely when a start went through with lag ignored).
  return { kind: 'go', giveBacks: lagMs <= ARRIVAL_JITTER_MS ? 0 : giveBacks };
}

/**
 * How much of a slot's slack this process's recent event-loop lag uses up. A process that lags
 * all the time would never start anything: after MAX_LAG_GIVE_BACKS give-backs in a row it stops
 * counting lag until the lag is gone.
 */
export function lagPenalty(lagMs: number, giveBacks: number): number {
  if (giveBacks >= MAX_LAG_GIVE_BACKS) return 0;
  return Math.max(0, lagMs - ARRIVAL_JITTER_MS);
}
