import { describe, expect, it } from 'vitest';
import type { Metrics } from 'bullmq';
import { perMinute } from '../../src/server/overview.js';

const NOW = Date.UTC(2026, 0, 1, 12, 0, 30);
const MINUTE = 60_000;
const metrics = (meta: Metrics['meta'], data: number[] = []): Metrics => ({ meta, data, count: data.length });

describe('perMinute: BullMQ metrics as jobs per minute, oldest first, the current minute last', () => {
  it('is all zeros for a queue that never finished a job', () => {
    expect(perMinute(metrics({ count: 0, prevTS: 0, prevCount: 0 }), NOW)).toEqual(new Array(15).fill(0));
  });

  it('counts the minute of the last finished job from meta, the earlier ones from data (newest first), later ones as 0', () => {
    // The last job finished 3 minutes ago; 2 jobs so far in that minute; data holds the 3 minutes before it.
    const reading = metrics({ count: 20, prevTS: NOW - 3 * MINUTE, prevCount: 18 }, [4, 0, 7]);
    const out = perMinute(reading, NOW);
    expect(out).toHaveLength(15);
    expect(out.slice(8)).toEqual([7, 0, 4, 2, 0, 0, 0]);
    expect(out.slice(0, 8)).toEqual(new Array(8).fill(0));
  });

  it('puts jobs of this minute last', () => {
    expect(perMinute(metrics({ count: 5, prevTS: NOW - 10_000, prevCount: 0 }, [3]), NOW, 3)).toEqual([0, 3, 5]);
  });

  it('shows nothing for a queue idle longer than the window, whatever its history', () => {
    expect(perMinute(metrics({ count: 99, prevTS: NOW - 20 * MINUTE, prevCount: 90 }, [5, 5, 5]), NOW)).toEqual(new Array(15).fill(0));
  });
});
