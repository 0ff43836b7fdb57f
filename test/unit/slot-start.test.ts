import { describe, expect, it } from 'vitest';
import { createSlotStarts } from '../../src/limits/slot-start.js';
import { testLogger } from '../helpers/redis.js';

const noLag = { recentMs: () => 0, close: () => undefined };

describe('createSlotStarts', () => {
  it('spaces this process’s starts on a key by its interval, in slot order: one planned right after another waits its interval', async () => {
    const starts = createSlotStarts(testLogger(), noLag);
    const now = Date.now();
    // A wide slack: a timer late on a busy machine still starts.
    const timing = { intervalMs: 30, slackMs: 1_000 };
    const first = starts.waitForStart(['k'], 'a', { ...timing, slot: now });
    // Booked for the same moment (a missed slot asked again, a burst): it goes an interval later.
    const second = starts.waitForStart(['k'], 'b', { ...timing, slot: now });
    expect(await first).toBe('go');
    expect(await second).toBe('go');
    expect(Date.now() - now).toBeGreaterThanOrEqual(29);
  });

  it('lets a slot earlier than one planned before it (booked ahead for a lane’s next operation) keep its own time', async () => {
    const starts = createSlotStarts(testLogger(), noLag);
    const now = Date.now();
    const timing = { intervalMs: 20, slackMs: 1_000 };
    // Planned first, for the later slot …
    const later = starts.waitForStart(['k'], 'later', { ...timing, slot: now + 60 });
    // … then the earlier one: spaced after the later one it would start after it, at 80 ms.
    const earlier = starts.waitForStart(['k'], 'earlier', { ...timing, slot: now + 20 });
    const order: string[] = [];
    const [first, second] = await Promise.all([
      earlier.then((start) => (order.push('earlier'), start)),
      later.then((start) => (order.push('later'), start)),
    ]);
    expect([first, second]).toEqual(['go', 'go']);
    expect(order).toEqual(['earlier', 'later']);
    // And the order holds for what comes next: a start after the later slot is spaced from it.
    const next = starts.waitForStart(['k'], 'next', { ...timing, slot: now + 70 });
    expect(await next).toBe('go');
    expect(Date.now() - now).toBeGreaterThanOrEqual(79);
  });
});
