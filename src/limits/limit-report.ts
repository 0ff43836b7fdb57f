import type { Logger } from '../observability/logger.js';
import type { KeyState } from './key-state.js';
import type { LimitIndex } from './limit-index.js';
import { limiterKeys } from '../redis/keys.js';
import type { RateMeter } from './rate-meter.js';
import type { SlotStock } from './slot-stock.js';

/** What a response said about a key's limits. */
export interface LimitSignal {
  status: number;
  /** `Retry-After` on a 429 or 503. */
  retryAfterMs?: number | undefined;
  /** `RateLimit-Reset` / `X-RateLimit-Reset` when the remaining count reached 0. */
  resetMs?: number | undefined;
}

export interface LimitReportDeps {
  /** The report script (redis/lua/limit-report.lua). */
  reportScript: (...args: (string | number)[]) => Promise<unknown>;
  keyState: KeyState;
  stock: SlotStock;
  meter: RateMeter;
  index: LimitIndex;
  /** Keys split into calls: one per slot on a Redis Cluster (see keysBySlot). */
  bySlot: (keys: readonly string[]) => string[][];
  /** Live limiter processes, as last counted (the fleet-wide rate a 429 halves is this process's times it). */
  processes: () => number;
  logger: Logger;
}

/** Feeds responses back to the keys' shared state: a pause for everyone, or a lower rate on repeated 429s. */
export function createLimitReport(deps: LimitReportDeps): (keys: readonly string[], signal: LimitSignal) => Promise<void> {
  const { reportScript, keyState, stock, meter, index, logger } = deps;
  return async function observe(keys, signal) {
    const is429 = signal.status === 429;
    const pauseMs = Math.max(signal.retryAfterMs ?? -1, signal.resetMs ?? -1);
    if (!is429 && pauseMs < 0) return;
    stock.drop(keys);
    for (const key of keys) keyState.markDynamic(key);
    // Each key's state is its own: slot by slot on a cluster, at once.
    const replies = await Promise.all(deps.bySlot(keys).map((group) => reportGroup(group, pauseMs, is429)));
    const changed = replies.flat();
    if (changed.length > 0) {
      await index.changed(changed);
      logger.info(
        { limitKey: keys.join(','), status: signal.status, pauseMs: pauseMs >= 0 ? pauseMs : undefined },
        'limit key slowed down by the target',
      );
    }
  };

  /** Reports to keys of one slot; returns those whose schedule changed. */
  async function reportGroup(keys: string[], pauseMs: number, is429: boolean): Promise<string[]> {
    const scriptKeys: string[] = [];
    const args: (string | number)[] = [keys.length, deps.processes()];
    for (const key of keys) {
      const spec = keyState.specOf(key);
      scriptKeys.push(limiterKeys.state(key), limiterKeys.recent429(key));
      args.push(spec.rate, spec.burst, pauseMs, is429 ? 1 : 0, meter.rate(key));
    }
    const reply = (await reportScript(scriptKeys.length, ...scriptKeys, ...args)) as number[];
    return keys.filter((_, i) => Number(reply[i]) === 1);
  }
}
