import { describe, expect, it } from 'vitest';
import { ARRIVAL_JITTER_MS, checkStart, lagPenalty, MAX_LAG_GIVE_BACKS, planStart } from '../../src/limits/start-timing.js';

/**
 * One start through both steps, as the limiter takes it: planStart when the reply is read (`now`,
 * default 990), then checkStart when the wait ends (`firedAt`, default on time: the planned start).
 * Defaults: the slot at 1,000, a 10 ms spacing, a 15 ms slack, no last start, no lag, no streak.
 */
interface Case {
  name: string;
  slot?: number;
  intervalMs?: number;
  slackMs?: number;
  lastStartAt?: number;
  now?: number;
  firedAt?: number;
  lagMs?: number;
  giveBacks?: number;
  /** 'wait N' (when there is a wait), the decision, how late, and the give-back streak after it. */
  then: string;
}

function decide(c: Case): string {
  const timing = { slot: c.slot ?? 1_000, intervalMs: c.intervalMs ?? 10, slackMs: c.slackMs ?? 15 };
  const now = c.now ?? 990;
  const plan = planStart({ ...timing, now, lastStartAt: c.lastStartAt });
  if (plan.kind === 'rebook') return `rebook: paced ${plan.lateMs} ms late`;
  const check = checkStart({ ...timing, now: c.firedAt ?? Math.max(now, plan.startAt), lagMs: c.lagMs ?? 0, giveBacks: c.giveBacks ?? 0 });
  const wait = plan.delayMs > 0 ? `wait ${plan.delayMs}, ` : '';
  const late = check.kind === 'go' ? '' : `: ${check.lateMs} ms late`;
  return `${wait}${check.kind}${late} (streak ${check.giveBacks})`;
}

const cases: Case[] = [
  // On time.
  { name: 'slot ahead: waits for it, then goes', then: 'wait 10, go (streak 0)' },
  { name: 'slot just past (reply read late), within the slack: goes at once', now: 1_005, then: 'go (streak 0)' },
  { name: 'timer firing a little early: goes', firedAt: 999, then: 'wait 10, go (streak 0)' },

  // Paced: this process's starts on the same keys stay intervalMs apart.
  { name: 'paced behind the last start, within the slack', lastStartAt: 995, then: 'wait 15, go (streak 0)' },
  { name: 'paced to exactly the slack: goes', lastStartAt: 1_005, then: 'wait 25, go (streak 0)' },
  { name: 'paced past the slack: books again without waiting', lastStartAt: 1_010, then: 'rebook: paced 20 ms late' },
  { name: 'last start long ago: no delay', lastStartAt: 500, then: 'wait 10, go (streak 0)' },

  // Late timer: the wait ended past the slack.
  { name: 'timer fired exactly at the slack: goes', firedAt: 1_015, then: 'wait 10, go (streak 0)' },
  { name: 'timer fired past the slack: books again', firedAt: 1_016, then: 'wait 10, rebook: 16 ms late (streak 0)' },
  { name: 'late timer, lagging: streak kept', firedAt: 1_030, lagMs: 99, giveBacks: 7, then: 'wait 10, rebook: 30 ms late (streak 7)' },

  // Lag beyond the arrival jitter (20 ms) uses up the slack: the slot is given back.
  { name: 'lag 35, 5 ms late: gives back', firedAt: 1_005, lagMs: 35, then: 'wait 10, give-back: 5 ms late (streak 1)' },
  { name: 'lag 35, on time: goes, the streak goes on', lagMs: 35, giveBacks: 3, then: 'wait 10, go (streak 3)' },
  { name: 'lag 20 (the jitter): not counted, ends the streak', firedAt: 1_014, lagMs: 20, giveBacks: 3, then: 'wait 10, go (streak 0)' },
  { name: 'lag 25, 10 ms late: just room left, goes', firedAt: 1_010, lagMs: 25, giveBacks: 2, then: 'wait 10, go (streak 2)' },
  { name: 'lag 26, 10 ms late: gives back', firedAt: 1_010, lagMs: 26, giveBacks: 2, then: 'wait 10, give-back: 10 ms late (streak 3)' },
  { name: 'give-back reaching the limit', firedAt: 1_005, lagMs: 35, giveBacks: 49, then: 'wait 10, give-back: 5 ms late (streak 50)' },
  { name: 'streak at the limit: lag ignored, goes', firedAt: 1_005, lagMs: 35, giveBacks: 50, then: 'wait 10, go (streak 50)' },
  { name: 'streak at the limit, lag gone: the streak ends', firedAt: 1_005, lagMs: 10, giveBacks: 50, then: 'wait 10, go (streak 0)' },
  { name: 'at the limit, late timer: rebook', firedAt: 1_016, lagMs: 35, giveBacks: 50, then: 'wait 10, rebook: 16 ms late (streak 50)' },

  // Fast keys (slots under a millisecond apart: intervalMs 0) are never checked for lateness.
  { name: 'fast, paced far behind: no rebook', intervalMs: 0, slackMs: 1, lastStartAt: 2_000, then: 'wait 1010, go (streak 0)' },
  { name: 'fast, spacing under 1 ms: no rebook', intervalMs: 0.5, slackMs: 1, lastStartAt: 2_000, then: 'wait 1010.5, go (streak 0)' },
  { name: 'fast, timer far past the slack: goes', intervalMs: 0, slackMs: 1, firedAt: 5_000, then: 'wait 10, go (streak 0)' },
  { name: 'fast, lagging: goes', intervalMs: 0, slackMs: 1, firedAt: 1_001, lagMs: 500, giveBacks: 4, then: 'wait 10, go (streak 4)' },
  { name: 'fast, lag gone: the streak ends', intervalMs: 0, slackMs: 1, lagMs: 5, giveBacks: 4, then: 'wait 10, go (streak 0)' },

  // Other slots.
  { name: 'no rate: slot now, goes at once', slot: 990, intervalMs: 0, slackMs: 3_600_000, lastStartAt: 980, then: 'go (streak 0)' },
  { name: '1 ms spacing: checked for lateness', intervalMs: 1, slackMs: 1, firedAt: 1_002, then: 'wait 10, rebook: 2 ms late (streak 0)' },
];

describe('start timing: planStart, the wait, then checkStart', () => {
  it.each(cases)('$name', (c) => {
    expect(decide(c)).toBe(c.then);
  });
});

describe('lagPenalty', () => {
  it.each([
    { lagMs: 0, giveBacks: 0, penalty: 0 },
    { lagMs: ARRIVAL_JITTER_MS, giveBacks: 0, penalty: 0 },
    { lagMs: 45, giveBacks: 0, penalty: 25 },
    { lagMs: 45, giveBacks: MAX_LAG_GIVE_BACKS - 1, penalty: 25 },
    { lagMs: 45, giveBacks: MAX_LAG_GIVE_BACKS, penalty: 0 },
    { lagMs: 45, giveBacks: MAX_LAG_GIVE_BACKS + 5, penalty: 0 },
  ])('lag $lagMs ms after $giveBacks give-backs: $penalty ms', ({ lagMs, giveBacks, penalty }) => {
    expect(lagPenalty(lagMs, giveBacks)).toBe(penalty);
  });
});
