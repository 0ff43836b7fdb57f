/**
 * The line's arithmetic (src/limits/line.ts), without Redis: how far back a job stands, how long it
 * stays away, and what becomes of it when it is back early or late, when the line it stood in is
 * gone, or when the key's rate changes under it. The counting is redis/lua/includes/line.lua's;
 * test/integration/line.test.ts runs it in a real Redis.
 */
import { describe, expect, it } from 'vitest';
import {
  DUE_GRID_MS,
  MIN_QUEUED_DELAY_MS,
  enqueueDelayMs,
  lineWindow,
  onDueGrid,
  queuedDelayMs,
  type LinePlace,
} from '../../src/limits/line.js';
import { dueTimesFromNow } from '../../src/limits/line-catch-up.js';

const MAX_WAIT = 250;
/** 200/s: slots 5 ms apart, a window of 50 positions. */
const at200 = (position: number, startInMs = 0): LinePlace => ({ position, window: 50, intervalMs: 5, startInMs });

describe('lineWindow', () => {
  it.each([
    { intervalMs: 5, window: 50 },
    { intervalMs: 0.5, window: 500 },
    { intervalMs: 110, window: 2 },
    // Slower than the in-slot wait: only the head may take a slot.
    { intervalMs: 550, window: 1 },
  ])('the slots an in-slot wait covers at $intervalMs ms: $window', ({ intervalMs, window }) => {
    expect(lineWindow(MAX_WAIT, intervalMs)).toBe(window);
  });
});

describe('queuedDelayMs', () => {
  it('brings a job back when the line has moved it to the middle of the window', () => {
    // 500 places back at 5 ms a place: 475 places must be served before it is 25 from the head.
    expect(queuedDelayMs(at200(500), MAX_WAIT)).toBe(475 * 5);
  });

  it('counts places, not time: the same position is the same wait, however long the job has waited', () => {
    expect(queuedDelayMs(at200(120), MAX_WAIT)).toBe(queuedDelayMs(at200(120), MAX_WAIT));
  });

  it('an early return (slots went unused, the line moved slower than the rate) is sent away for the rest of the way only', () => {
    const first = queuedDelayMs(at200(1_000), MAX_WAIT);
    // Back after `first`, but only 700 of the 975 places it expected were served.
    const again = queuedDelayMs(at200(1_000 - 700), MAX_WAIT);
    expect(again).toBe((300 - 25) * 5);
    expect(again).toBeLessThan(first);
  });

  it('a late ticket (its turn has passed) is never sent away for longer than the shortest delay, unless the key is paused', () => {
    expect(queuedDelayMs(at200(-40), MAX_WAIT)).toBe(MIN_QUEUED_DELAY_MS);
    // A Retry-After pause puts the first slot 10 s off: nobody comes back before it is near.
    expect(queuedDelayMs(at200(-40, 10_000), MAX_WAIT)).toBe(10_000 - MAX_WAIT / 2);
  });

  it('a limit change mid-backlog: the position stands, the wait follows the new spacing', () => {
    const before = queuedDelayMs(at200(2_000), MAX_WAIT);
    // Raised to 400/s: slots 2.5 ms apart, a window of 100.
    const after = queuedDelayMs({ position: 2_000, window: lineWindow(MAX_WAIT, 2.5), intervalMs: 2.5, startInMs: 0 }, MAX_WAIT);
    expect(after).toBe((2_000 - 50) * 2.5);
    expect(after).toBeLessThan(before / 2 + 1);
  });

  it('after the line it stood in is lost (Redis restarted), a job takes a new ticket at the back: its wait counts from the new line', () => {
    // Stood 2,000 places back in the lost line; 20 jobs have taken tickets in the new one before it came back.
    expect(queuedDelayMs(at200(20), MAX_WAIT)).toBe(MIN_QUEUED_DELAY_MS);
    expect(queuedDelayMs(at200(130), MAX_WAIT)).toBe((130 - 25) * 5);
  });
});

describe('enqueueDelayMs', () => {
  const now = 1_000_000_000_017;

  it('a job within reach of its turn is due at once (a millisecond, so it comes back in order with the rest of the line)', () => {
    expect(enqueueDelayMs(at200(0), MAX_WAIT, now)).toBe(1);
    expect(enqueueDelayMs(at200(49), MAX_WAIT, now)).toBe(1);
  });

  it('one further back is due about its turn, on the due grid', () => {
    const delay = enqueueDelayMs(at200(1_000), MAX_WAIT, now);
    expect((now + delay) % DUE_GRID_MS).toBe(0);
    expect(delay).toBeGreaterThanOrEqual(975 * 5);
    expect(delay).toBeLessThan(975 * 5 + DUE_GRID_MS);
  });

  it('a paused key delays even the head of the line until the pause is near its end', () => {
    expect(enqueueDelayMs(at200(0, 5_000), MAX_WAIT, now)).toBeGreaterThanOrEqual(5_000 - MAX_WAIT / 2);
  });
});

describe('onDueGrid', () => {
  it('lengthens a delay by less than a grid step so that it ends on the grid; 0 stays 0', () => {
    expect(onDueGrid(0, 1_017)).toBe(0);
    expect(onDueGrid(10, 1_017)).toBe(1_050 - 1_017);
    expect(onDueGrid(33, 1_017)).toBe(33);
    expect(onDueGrid(34, 1_017)).toBe(1_100 - 1_017);
  });
});

describe('a line that runs behind its jobs’ times catches up', () => {
  const now = 1_000_000;
  const line = { window: 50, intervalMs: 5, startInMs: 0 };

  it('re-times each ticket to its turn counted from now: the head at once, the others as the line will reach them', () => {
    const due = dueTimesFromNow(
      [
        { holder: '{q}head', position: 20 },
        { holder: '{q}restored', position: -0.5 },
        { holder: '{q}back', position: 400 },
      ],
      line,
      MAX_WAIT,
      now,
    );
    expect(due[0]).toEqual({ holder: '{q}head', dueMs: now });
    expect(due[1]).toEqual({ holder: '{q}restored', dueMs: now });
    // Position 400 at 5 ms, to the middle of the window (25 places early): 1,875 ms, on the grid.
    expect(due[2]!.dueMs).toBe(now + onDueGrid((400 - 25) * 5, now));
    // Later tickets are never due before earlier ones.
    const many = dueTimesFromNow(
      Array.from({ length: 300 }, (_, i) => ({ holder: `{q}j${i}`, position: i })),
      line,
      MAX_WAIT,
      now,
    );
    for (let i = 1; i < many.length; i++) expect(many[i]!.dueMs).toBeGreaterThanOrEqual(many[i - 1]!.dueMs);
  });

  it('while the key is paused (its first free slot 5 s off), nobody is due before the pause ends', () => {
    const paused = { ...line, startInMs: 5_000 };
    const due = dueTimesFromNow(
      [
        { holder: '{q}head', position: 0 },
        { holder: '{q}back', position: 400 },
      ],
      paused,
      MAX_WAIT,
      now,
    );
    for (const { dueMs } of due) expect(dueMs).toBeGreaterThanOrEqual(now + 5_000 - MAX_WAIT / 2);
  });

  it('with no rate left (the limit was lifted), every job is due at once', () => {
    const due = dueTimesFromNow([{ holder: '{q}j', position: 5_000 }], { window: 0, intervalMs: 0, startInMs: 0 }, MAX_WAIT, now);
    expect(due).toEqual([{ holder: '{q}j', dueMs: now }]);
  });
});
