import type { Logger } from '../observability/logger.js';
import type { KeyState } from './key-state.js';
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
  logger: Logger;
}

/** Feeds responses back to the keys' shared state: a pause for everyone, or a lower rate on repeated 429s. */
export function createLimitReport(deps: LimitReportDeps): (keys: readonly string[], signal: LimitSignal) => Promise<void> {
  const { reportScript, keyState, stock, meter, logger } = deps;
  return async function observe(keys, signal) {
    const is429 = signal.status === 429;
    const pauseMs = Math.max(signal.retryAfterMs ?? -1, signal.resetMs ?? -1);
    if (!is429 && pauseMs < 0) return;
    const scriptKeys: string[] = [limiterKeys.index, limiterKeys.processes, limiterKeys.version];
    const args: (string | number)[] = [keys.length];
    stock.drop(keys);
    for (const key of keys) {
      const spec = keyState.specOf(key);
      scriptKeys.push(limiterKeys.state(key), limiterKeys.recent429(key));
      args.push(key, spec.rate, spec.burst, pauseMs, is429 ? 1 : 0, meter.rate(key));
      keyState.markDynamic(key);
    }
    const changed = await reportScript(scriptKeys.length, ...scriptKeys, ...args);
    if (Number(changed) > 0) {
      logger.info(
        { limitKey: keys.join(','), status: signal.status, pauseMs: pauseMs >= 0 ? pauseMs : undefined },
        'limit key slowed down by the target',
      );
    }
  };
}
