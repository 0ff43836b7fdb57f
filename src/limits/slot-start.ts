import type { Logger } from '../observability/logger.js';
import type { LagWatch } from '../support/event-loop-lag.js';
import { sleep } from '../support/sleep.js';
import { checkStart, MAX_LAG_GIVE_BACKS, planStart, type SlotTiming } from './start-timing.js';

/** What became of a start granted a slot: 'rebook' and 'give-back' leave the slot unused. */
export type SlotStart = 'go' | 'rebook' | 'give-back' | 'aborted';

/** This process's starts in their slots: the start-timing decisions carried out, with what they remember. */
export interface SlotStarts {
  /** Waits for the slot (unless `signal` aborts) and says whether to start in it. */
  waitForStart(keys: readonly string[], jobId: string, timing: SlotTiming, signal?: AbortSignal): Promise<SlotStart>;
}

export function createSlotStarts(logger: Logger, lag: LagWatch): SlotStarts {
  /** This process's last start per key set (see planStart), with the slot it was for. */
  const lastStart = new Map<string, { slot: number; startAt: number }>();
  /** Starts given back in a row because of lag (see lagPenalty). */
  let lagGiveBacks = 0;

  async function waitForStart(keys: readonly string[], jobId: string, timing: SlotTiming, signal?: AbortSignal): Promise<SlotStart> {
    const { slackMs, intervalMs } = timing;
    const limitKey = keys.join(',');
    const pacerKey = keys.join('\n');
    const last = lastStart.get(pacerKey);
    // A slot earlier than the last one planned (booked ahead for a lane's next operation, which asks
    // after a later slot was planned) keeps its own time: the spacing is between starts in slot order.
    const outOfOrder = last !== undefined && timing.slot < last.slot;
    const plan = planStart({ ...timing, now: Date.now(), lastStartAt: outOfOrder ? undefined : last?.startAt });
    if (plan.kind === 'rebook') {
      logger.debug({ limitKey, jobId, lateMs: plan.lateMs, slackMs }, 'slot missed (paced); asking again at the head of the line');
      return 'rebook';
    }
    if (intervalMs > 0 && !outOfOrder) lastStart.set(pacerKey, { slot: timing.slot, startAt: plan.startAt });
    if (plan.delayMs > 0 && !(await sleep(plan.delayMs, signal))) return 'aborted';
    const lagMs = lag.recentMs();
    const check = checkStart({ ...timing, now: Date.now(), lagMs, giveBacks: lagGiveBacks });
    lagGiveBacks = check.giveBacks;
    if (check.kind === 'rebook') {
      logger.debug({ limitKey, jobId, lateMs: check.lateMs, slackMs }, 'slot missed (late timer); asking again at the head of the line');
    } else if (check.kind === 'give-back') {
      logger.debug({ limitKey, jobId, lateMs: check.lateMs, slackMs, lagMs }, 'event loop lagging; slot given back, asking again shortly');
      if (check.giveBacks === MAX_LAG_GIVE_BACKS) {
        logger.warn(
          { lagMs: Math.round(lagMs), giveBacks: check.giveBacks },
          'event loop lags all the time: starting requests anyway (is this worker CPU-starved? run fewer per core)',
        );
      }
    }
    return check.kind;
  }

  return { waitForStart };
}
