import type { SlotTiming } from './start-timing.js';

/** Most followers booked with one start (see limit-acquire.lua, "Followers"); the key's window bounds it too. */
export const MAX_FOLLOWERS = 64;
/**
 * A grant not asked for this long after its slot is dropped (its operation stopped, or left its
 * lane): a memory bound only. One asked for late is still handed over, so that its operation,
 * finding its slot gone by, asks again from the head of the line (it had its turn) rather than as a
 * newcomer.
 */
const STALE_AFTER_MS = 10 * 60_000;
/** Stale grants are looked for at most this often. */
const SWEEP_EVERY_MS = 1_000;

/** Who may follow a start: the operations of its lane that come next in its keys' lines. */
export interface Followers {
  /** Their holders, in order, at most `count`. */
  next(count: number): readonly string[];
  /** These of them (the first ones a call named) have their slots booked: they should ask soon. */
  booked(holders: readonly string[]): void;
}

/**
 * Slots booked for the operations that follow a start in its lane (limit-acquire.lua books them
 * with it), held in this process until each of those operations asks: it then waits for its slot
 * as if the script had answered it, without a call. A slot never asked for is lost (the key runs
 * a slot below its rate), never used twice.
 */
export interface RunGrants {
  /**
   * Names the followers a script call is about to book: one of them that asks before the reply has
   * come waits for it (`pendingFor`) rather than call too, which would find its ticket gone.
   */
  begin(holders: readonly string[]): Booking;
  /** While a call may be booking this holder's slot: resolves once its reply is kept. */
  pendingFor(holder: string): Promise<void> | undefined;
  /**
   * The slot booked for this holder on these keys, once: undefined when there is none; 'elsewhere'
   * when its slot was booked on other keys (its operation changed): it had its turn there.
   */
  take(keys: readonly string[], holder: string): SlotTiming | 'elsewhere' | undefined;
}

export interface Booking {
  /**
   * The reply came (or the call failed: no waits): keeps the slots booked for the first
   * `waitsMs.length` holders, in order, and lets those that wait for it go on.
   */
  done(keys: readonly string[], waitsMs: readonly number[], sentAt: number, timing: Omit<SlotTiming, 'slot'>): void;
}

interface Grant extends SlotTiming {
  keys: string;
}

export function createRunGrants(now: () => number = Date.now): RunGrants {
  const grants = new Map<string, Grant>();
  const pending = new Map<string, Promise<void>>();
  let sweptAt = now();

  function sweep(at: number): void {
    if (at - sweptAt < SWEEP_EVERY_MS) return;
    sweptAt = at;
    for (const [holder, grant] of grants) if (grant.slot + STALE_AFTER_MS < at) grants.delete(holder);
  }

  return {
    begin(holders) {
      let replied!: () => void;
      const reply = new Promise<void>((resolve) => (replied = resolve));
      for (const holder of holders) pending.set(holder, reply);
      return {
        done(keys, waitsMs, sentAt, timing) {
          const id = keys.join('\n');
          waitsMs.forEach((waitMs, i) => grants.set(holders[i]!, { keys: id, slot: sentAt + waitMs, ...timing }));
          for (const holder of holders) if (pending.get(holder) === reply) pending.delete(holder);
          replied();
          sweep(now());
        },
      };
    },
    pendingFor: (holder) => pending.get(holder),
    take(keys, holder) {
      const grant = grants.get(holder);
      if (!grant) return undefined;
      grants.delete(holder);
      if (grant.keys !== keys.join('\n')) return 'elsewhere';
      return { slot: grant.slot, slackMs: grant.slackMs, intervalMs: grant.intervalMs };
    },
  };
}
