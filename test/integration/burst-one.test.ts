import { describe, expect, it } from 'vitest';
import { EMPTY_CONFIG } from '../../src/config/sluice-config.js';
import { useRedisServer } from '../helpers/redis.js';
import { startPipeline } from '../helpers/pipeline-harness.js';

const redis = useRedisServer();

describe('a burst-1 key with a backlog', () => {
  it('runs 16 operations at 2/s burst 1 at its (slightly widened) pace: strictly spaced, no slot lost', async () => {
    const p = await startPipeline(redis(), {
      concurrency: 20,
      config: { ...EMPTY_CONFIG, limits: { slow: { requestsPerSecond: 2, burst: 1 } } },
    });
    const startedAt = Date.now();
    const { batchId } = await p.producer.enqueueMany(Array.from({ length: 16 }, (_, i) => p.op(`/slow/${i}`, { limitKey: 'slow' })));
    await p.settled(batchId, 60_000);
    const elapsed = Date.now() - startedAt;
    const arrivals = p.target.requests.map((request) => request.startedAt).sort((a, b) => a - b);
    const gaps = arrivals.slice(1).map((at, i) => Math.round(at - arrivals[i]!));
    // A strict limiter with burst 1 takes no two requests less than 500 ms apart (a little arrival jitter allowed).
    expect(Math.min(...gaps), `gaps ${gaps.join(', ')}`).toBeGreaterThanOrEqual(490);
    // Slots are 550 ms apart; a lost slot would leave a gap of twice that and stretch the run
    // (before the margin: a third of the slots were lost on an idle machine, most on a busy one).
    expect(gaps.filter((gap) => gap > 900).length, `gaps ${gaps.join(', ')}`).toBeLessThanOrEqual(1);
    expect(elapsed).toBeLessThan(15 * 550 + 3_000);
  }, 70_000);
});
