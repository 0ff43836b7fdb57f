import type { AcquireReply } from './acquire-call.js';
import type { RateMeter } from './rate-meter.js';

/** Most slots of a fast key taken in one script call. */
const MAX_STOCKED_SLOTS = 64;
/** Slots in stock are used within this long, or dropped: a pause or a new limit reaches them soon. */
const STOCK_LIFETIME_MS = 100;

/**
 * Slots of a fast key (slots under a millisecond apart: above 1,000/s) taken ahead by one script
 * call, as many as this process started on the key in the last STOCK_LIFETIME_MS. They were booked
 * in the shared schedule like any other, so the key's rate holds across the fleet; a key that is
 * far below its limit then costs one script call per many jobs instead of one per job.
 */
export interface SlotStock {
  /** One slot from this process's stock for a single fast key, if it has one. */
  take(keys: readonly string[]): boolean;
  /** Slots to ask for: about what this process started on the key in one stock lifetime (the script takes 1 for slow keys). */
  wanted(keys: readonly string[]): number;
  /**
   * Books through `callScript`, which hands every script reply to `onReply` as it comes. While one
   * call refills a stocked key, other starts on the key wait for its reply and take a slot from it
   * rather than call too: 'stocked' when one did.
   */
  book<T>(keys: readonly string[], callScript: (onReply: (reply: AcquireReply) => void) => Promise<T>): Promise<T | 'stocked'>;
  /** The target is pushing back: slots taken ahead are not used. */
  drop(keys: readonly string[]): void;
}

interface Held {
  left: number;
  expiresAt: number;
}

export function createSlotStock(meter: RateMeter, now: () => number = Date.now): SlotStock {
  /** Per key whose last script reply gave slots ahead: what is left of them (perhaps none, until the next refill). */
  const stock = new Map<string, Held>();
  /** Stocked keys whose stock is being refilled by a script call: other starts wait for its reply rather than call too. */
  const refills = new Map<string, Promise<void>>();

  function take(keys: readonly string[]): boolean {
    if (keys.length !== 1) return false;
    const held = stock.get(keys[0]!);
    if (!held || held.left === 0) return false;
    if (held.expiresAt < now()) {
      held.left = 0;
      return false;
    }
    held.left -= 1;
    return true;
  }

  /** A fast key free now keeps what the reply gave ahead; an empty stock still marks a key whose refills are shared. */
  function keep(keys: readonly string[], reply: AcquireReply): void {
    if (keys.length !== 1) return;
    if (reply.kind === 'go' && reply.slots > 1) stock.set(keys[0]!, { left: reply.slots - 1, expiresAt: now() + STOCK_LIFETIME_MS });
    else if (reply.kind !== 'go' || reply.intervalMs >= 1) stock.delete(keys[0]!);
  }

  async function book<T>(keys: readonly string[], callScript: (onReply: (reply: AcquireReply) => void) => Promise<T>) {
    const key = keys[0]!;
    for (;;) {
      if (keys.length > 1 || !stock.has(key)) return callScript((reply) => keep(keys, reply));
      const pending = refills.get(key);
      if (!pending) break;
      await pending;
      if (take(keys)) return 'stocked' as const;
    }
    let replied!: () => void;
    const refill = new Promise<void>((resolve) => (replied = resolve));
    refills.set(key, refill);
    const done = () => {
      if (refills.get(key) === refill) refills.delete(key);
      replied();
    };
    try {
      return await callScript((reply) => {
        keep(keys, reply);
        done();
      });
    } finally {
      done();
    }
  }

  return {
    take,
    wanted(keys) {
      if (keys.length !== 1) return 1;
      return Math.min(MAX_STOCKED_SLOTS, Math.max(1, Math.ceil((meter.rate(keys[0]!) * STOCK_LIFETIME_MS) / 1_000)));
    },
    book,
    drop(keys) {
      for (const key of keys) {
        const held = stock.get(key);
        if (held) held.left = 0;
      }
    },
  };
}
