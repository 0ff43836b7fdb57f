/**
 * How late this process's event loop has been lately: a timer ticks every `tickMs` and records how
 * much later than asked it fired. `recentMs()` is the worst delay in the current and the previous
 * window, so a stall is remembered for one to two windows after it ends.
 */
export interface LagWatch {
  recentMs(): number;
  close(): void;
}

export function watchEventLoopLag(options: { tickMs?: number; windowMs?: number } = {}): LagWatch {
  const tickMs = options.tickMs ?? 20;
  const windowMs = options.windowMs ?? 500;
  let previous = 0;
  let current = 0;
  let windowStart = performance.now();
  let expected = performance.now() + tickMs;
  const timer = setInterval(() => {
    const now = performance.now();
    current = Math.max(current, now - expected);
    expected = now + tickMs;
    if (now - windowStart >= windowMs) {
      previous = current;
      current = 0;
      windowStart = now;
    }
  }, tickMs);
  timer.unref();
  return {
    // A stall still under way shows as the time since the tick was due.
    recentMs: () => Math.max(previous, current, performance.now() - expected),
    close: () => clearInterval(timer),
  };
}
