import { describe, expect, it } from 'vitest';
import { createRunGrants } from '../../src/limits/run-grants.js';

describe('createRunGrants', () => {
  it('keeps the slots booked for the first followers, in order, each taken once, for its own keys only', () => {
    const grants = createRunGrants(() => 1_000);
    const booking = grants.begin(['{q}a', '{q}b', '{q}c']);
    booking.done(['k'], [10, 20], 500, { slackMs: 5, intervalMs: 10 });
    expect(grants.take(['k'], '{q}a')).toEqual({ slot: 510, slackMs: 5, intervalMs: 10 });
    expect(grants.take(['k'], '{q}a')).toBeUndefined();
    // c could not be booked (the script stopped at it): it asks for itself.
    expect(grants.take(['k'], '{q}c')).toBeUndefined();
    // Asked for on other keys (its operation changed): not used, and gone; it had its turn there.
    expect(grants.take(['other'], '{q}b')).toBe('elsewhere');
    expect(grants.take(['k'], '{q}b')).toBeUndefined();
  });

  it('makes a follower that asks while the call is on its way wait for the reply', async () => {
    const grants = createRunGrants();
    const booking = grants.begin(['{q}a']);
    const pending = grants.pendingFor('{q}a');
    expect(pending).toBeDefined();
    expect(grants.pendingFor('{q}z')).toBeUndefined();
    let settled = false;
    void pending!.then(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(false);
    booking.done(['k'], [5], Date.now(), { slackMs: 5, intervalMs: 10 });
    await pending;
    expect(grants.pendingFor('{q}a')).toBeUndefined();
    expect(grants.take(['k'], '{q}a')).toBeDefined();
  });

  it('hands over a slot asked for late (its operation then asks again from the head), and drops one nobody asked for in ten minutes', () => {
    let now = 1_000;
    const grants = createRunGrants(() => now);
    grants.begin(['{q}late']).done(['k'], [10], now, { slackMs: 5, intervalMs: 10 });
    now += 60_000;
    grants.begin(['{q}x']).done(['k'], [10], now, { slackMs: 5, intervalMs: 10 });
    expect(grants.take(['k'], '{q}late')).toEqual({ slot: 1_010, slackMs: 5, intervalMs: 10 });
    grants.begin(['{q}a']).done(['k'], [10], now, { slackMs: 5, intervalMs: 10 });
    now += 11 * 60_000;
    // The next booking sweeps the stale one.
    grants.begin(['{q}b']).done(['k'], [10], now, { slackMs: 5, intervalMs: 10 });
    expect(grants.take(['k'], '{q}a')).toBeUndefined();
    expect(grants.take(['k'], '{q}b')).toBeDefined();
  });
});
