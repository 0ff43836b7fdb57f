/**
 * A limit key's line, the arithmetic of it (the counting itself is in redis/lua/includes/line.lua).
 * Every job waiting for a rate-limited key holds a numbered ticket; the key counts the tickets used
 * by starts (`served`). A job's position is `ticket - served`: places, not times, so a slot left
 * unused moves nobody's turn, and a job back late has lost nothing (it starts at once).
 *
 * A job may take a slot when its position is within the window: the slots an in-slot wait covers
 * (maxInSlotWaitMs at the key's slot spacing). Further back it is delayed, keeping its ticket, until
 * about its turn: it should come back once the line has moved it into the window, and a little
 * late rather than early, since early costs another fetch and late costs nothing while others wait.
 */

/** Where a job not yet at its turn stands, as the acquire script (QUEUED) or the enqueue (line-join) says. */
export interface LinePlace {
  /** Its position: tickets ahead of it not yet used (negative: its turn has passed). */
  position: number;
  /** Positions that may take a slot now. */
  window: number;
  /** The key's slot spacing, ms. */
  intervalMs: number;
  /** The key's earliest free slot, ms from now (a pause or Retry-After can put it far off). */
  startInMs: number;
}

/** The longest wait for a slot done in a worker slot (the window's length in time), unless a worker is told otherwise. */
export const DEFAULT_MAX_IN_SLOT_WAIT_MS = 250;

/** The shortest delay of a job that is not at its turn: it is not fetched again at once. */
export const MIN_QUEUED_DELAY_MS = 20;

/**
 * Jobs away from the line come back at times on this grid (ms). BullMQ wakes its workers for the
 * next due delayed job, and every worker that wakes asks Redis for a job: due one by one, 200/s of
 * them cost several fetches that find nothing for each job; due together, one wake brings back
 * the jobs of a grid step. They wait the difference in their worker slot (the window allows it).
 */
export const DUE_GRID_MS = 50;

/** `delayMs` lengthened (by less than a grid step) so that the job is due on the grid. */
export function onDueGrid(delayMs: number, now: number): number {
  if (delayMs <= 0) return 0;
  return Math.ceil((now + delayMs) / DUE_GRID_MS) * DUE_GRID_MS - now;
}

/** How many positions may take a slot: the slots an in-slot wait covers, at least the head. */
export function lineWindow(maxInSlotWaitMs: number, intervalMs: number): number {
  return intervalMs <= 0 ? Number.MAX_SAFE_INTEGER : Math.max(1, Math.floor(maxInSlotWaitMs / intervalMs));
}

/**
 * How long a job not at its turn stays away: until the line has moved it to the middle of the
 * window (half a window of margin either way), and not before the key's first free slot is within
 * half an in-slot wait.
 */
export function queuedDelayMs(place: LinePlace, maxInSlotWaitMs: number): number {
  const untilTurn = (place.position - place.window / 2) * place.intervalMs;
  const untilSlot = place.startInMs - maxInSlotWaitMs / 2;
  return Math.max(MIN_QUEUED_DELAY_MS, Math.round(Math.max(untilTurn, untilSlot)));
}

/**
 * How long a job at `place` stays away, from `now`: 0 when it may take a slot now (within the window
 * and the key's first free slot within an in-slot wait) or the key has no rate; else until about its
 * turn (queuedDelayMs), on the due grid. Used wherever jobs in a line are timed: at enqueue, when an
 * operator changes the key's pace, when a line that runs behind catches up.
 */
export function turnDelayMs(place: LinePlace, maxInSlotWaitMs: number, now: number): number {
  if (place.intervalMs <= 0 || (place.position < place.window && place.startInMs <= maxInSlotWaitMs)) return 0;
  return onDueGrid(queuedDelayMs(place, maxInSlotWaitMs), now);
}

/**
 * At enqueue: a job in a line is written delayed, to about its turn, or by a millisecond when it is
 * within reach of it. Delayed jobs come back to the front of BullMQ's queue in the order they are
 * due, so the jobs at the head of the line are fetched before those that come due later, and before
 * the backlog of keys without a line (which waits prioritized behind them).
 */
export function enqueueDelayMs(place: LinePlace, maxInSlotWaitMs: number, now: number): number {
  return turnDelayMs(place, maxInSlotWaitMs, now) || 1;
}
