import { SluiceError } from '../errors.js';
import { limiterKeys } from '../redis/keys.js';
import type { LimitSpec } from './limit-keys.js';
import type { LinePlace } from './line.js';

/** The acquire script's reply kinds, its reply's first element: the Lua returns these same numbers. */
export const ACQUIRE_KIND = { go: 1, queued: 2, blocked: 3, paused: 4, circuitOpen: 5 } as const;

/** One start's call of the acquire script (see redis/lua/limit-acquire.lua for what each value means). */
export interface AcquireCall {
  keys: readonly string[];
  /** Who waits in the keys' lines: the job, named with its queue (`{queue}jobId`, see bookingHolder). */
  holder: string;
  leaseId: string;
  leaseMs: number;
  maxInSlotWaitMs: number;
  /** Slots to take at once (see SlotStock). */
  wantSlots: number;
  /** Who waits if a key's circuit is open (the job's holder, woken when it closes); '' for no one. */
  waiter: string;
  /** The job had its turn and missed its slot (a late timer, a lagging process): it stands at the head of the lines. */
  restore: boolean;
  /** The holders of the operations of the caller's lane that come next in its lines, booked with it when they can be (see run-grants.ts). */
  followers?: readonly string[];
  specOf(key: string): LimitSpec;
  /** Whether the key's circuit breaker is on. */
  circuitOn(key: string): boolean;
}

/** The script's arguments: the number of keys, its KEYS, then its ARGV. */
export function acquireArgs(call: AcquireCall): (string | number)[] {
  const { keys } = call;
  const scriptKeys: string[] = [];
  const args: (string | number)[] = [
    keys.length,
    call.holder,
    call.leaseId,
    call.leaseMs,
    call.maxInSlotWaitMs,
    call.wantSlots,
    call.waiter,
    call.restore ? 1 : 0,
  ];
  for (const key of keys) {
    const spec = call.specOf(key);
    scriptKeys.push(
      limiterKeys.state(key),
      limiterKeys.override(key),
      limiterKeys.leases(key),
      limiterKeys.line(key),
      limiterKeys.circuitWaiting(key),
    );
    args.push(key, spec.rate, spec.burst, spec.concurrency, call.circuitOn(key) ? 1 : 0);
  }
  if (call.followers?.length) args.push(call.followers.length, ...call.followers);
  return [scriptKeys.length, ...scriptKeys, ...args];
}

/** What the acquire script answered. */
export type AcquireReply =
  | {
      /** Start at now + waitMs (the slot), within slackMs after it. */
      kind: 'go';
      waitMs: number;
      /** Bit i set: a concurrency lease was taken on the i-th key (to release after the request). */
      leasedMask: number;
      /** How late the start may be before its slot is void (it must then ask again, with `restore`). */
      slackMs: number;
      /** The slot spacing of the slowest key: this process spaces its own late starts by it. */
      intervalMs: number;
      /** Consecutive slots taken: the first for this start, the rest for this process's next starts. */
      slots: number;
      /** Bit i set: the i-th key's circuit is open and this start is its probe. */
      probesMask: number;
      /** Bit i set: the i-th key's line runs behind its jobs' times (see line-catch-up.ts). */
      behindMask: number;
      /** The slots booked for the call's followers, in their order (ms from when the script ran); fewer than asked when one could not book. */
      followerWaitsMs: number[];
    }
  /** Not its turn: where it stands in line (the job is delayed until about its turn, see line.ts). */
  | ({ kind: 'queued'; behindMask: number } & LinePlace)
  /** A key is at its concurrency limit. */
  | { kind: 'blocked' }
  /** An operator paused a key: look again after about waitMs. */
  | { kind: 'paused'; waitMs: number }
  /** A key's circuit is open: its next probe may go in waitMs; it has been open for openForMs. */
  | { kind: 'circuit-open'; waitMs: number; openForMs: number };

export function decodeAcquireReply(raw: unknown): AcquireReply {
  if (!Array.isArray(raw) || !raw.every((value) => typeof value === 'number' && Number.isFinite(value))) {
    throw invalid(raw);
  }
  const [kind, waitMs, leasedMask, slackMs, intervalMs, slots, probesMask, openForMs, behindMask] = raw as number[];
  switch (kind) {
    case ACQUIRE_KIND.go:
      if (behindMask === undefined) throw invalid(raw);
      return {
        kind: 'go',
        waitMs: waitMs!,
        leasedMask: leasedMask!,
        slackMs: slackMs!,
        intervalMs: intervalMs!,
        slots: slots!,
        probesMask: probesMask!,
        behindMask,
        followerWaitsMs: (raw as number[]).slice(9),
      };
    case ACQUIRE_KIND.queued: {
      const [, startInMs, position, window, intervalUs, queuedBehind] = raw as number[];
      if (queuedBehind === undefined) throw invalid(raw);
      const place = { startInMs: startInMs!, position: position!, window: window!, intervalMs: intervalUs! / 1_000 };
      return { kind: 'queued', ...place, behindMask: queuedBehind };
    }
    case ACQUIRE_KIND.blocked:
      return { kind: 'blocked' };
    case ACQUIRE_KIND.paused:
      if (waitMs === undefined) throw invalid(raw);
      return { kind: 'paused', waitMs };
    case ACQUIRE_KIND.circuitOpen:
      if (openForMs === undefined) throw invalid(raw);
      return { kind: 'circuit-open', waitMs: waitMs!, openForMs };
    default:
      throw invalid(raw);
  }
}

/** The script and this decoder are out of step: a bug, not something to retry around. */
function invalid(raw: unknown): SluiceError {
  return new SluiceError(`unexpected reply from the limiter's acquire script: ${JSON.stringify(raw)}`, { code: 'LIMITER_REPLY' });
}
