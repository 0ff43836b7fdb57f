import { afterEach, describe, expect, it } from 'vitest';
import { watchEventLoopLag, type LagWatch } from '../../src/support/event-loop-lag.js';

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const block = (ms: number) => {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // a busy event loop
  }
};

describe('watchEventLoopLag', () => {
  let watch: LagWatch | undefined;
  afterEach(() => watch?.close());

  it('reports a stall while it is under way and for a window after it, then forgets it', async () => {
    watch = watchEventLoopLag({ tickMs: 10, windowMs: 100 });
    await pause(50);
    expect(watch.recentMs()).toBeLessThan(60);
    block(150);
    // The tick is overdue: the stall shows before the timer has had a chance to run.
    expect(watch.recentMs()).toBeGreaterThanOrEqual(130);
    await pause(30);
    expect(watch.recentMs()).toBeGreaterThanOrEqual(130);
    // Two windows later the stall is gone from the figure.
    await pause(350);
    expect(watch.recentMs()).toBeLessThan(100);
  });
});
