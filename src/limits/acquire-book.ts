import { jitter } from '../support/sleep.js';
import { acquireArgs, decodeAcquireReply, type AcquireReply } from './acquire-call.js';
import type { KeyState } from './key-state.js';
import { leaseOf, type Lease } from './leases.js';
import { onDueGrid, queuedDelayMs } from './line.js';
import type { CatchUpTrigger } from './line-catch-up.js';
import { MAX_FOLLOWERS, type Followers, type RunGrants } from './run-grants.js';
import type { SlotStock } from './slot-stock.js';
import type { SlotTiming } from './start-timing.js';

/**
 * May the job start now? `go` is returned at the job's slot (the limiter waits in the slot for short
 * waits); `probes` names the keys whose open circuit this start probes (report its outcome).
 */
export type Gate =
  | { kind: 'go'; lease: Lease | undefined; probes?: string[] | undefined }
  /** `position`: where a job deferred for its rate-limit turn stands in its key's line. */
  | { kind: 'defer'; waitMs: number; reason: 'rate' | 'concurrency' | 'paused'; position?: number }
  /** A key's circuit is open: nothing is sent on it but a probe; `maxOpenMs` is how long its jobs may wait. */
  | { kind: 'circuit-open'; waitMs: number; openForMs: number; maxOpenMs: number };

/** One start asking the acquire script (see limiter.ts). */
export interface ByScript {
  keys: readonly string[];
  holder: string;
  leaseMs: number;
  signal: AbortSignal | undefined;
  /** An operation of a lane: those that come next, whose slots the call books too when it can. */
  followers?: Followers | undefined;
  /** Given every reply as soon as the script has answered (see SlotStock). */
  onReply?: (reply: AcquireReply) => void;
  /** A slot booked for it with the start ahead of it: waited for before any call ('elsewhere': booked on other keys, see RunGrants.take). */
  granted?: SlotTiming | 'elsewhere';
}

/** A script call's answer, or a slot booked before: where to start, or the gate of a start that is not to be. */
export type Booked = { timing: SlotTiming; lease: Lease | undefined; probes: string[] } | { gate: Gate } | 'blocked';

/** What a call of the acquire script needs of its limiter. */
export interface BookingDeps {
  acquireScript: (...args: (string | number)[]) => Promise<unknown>;
  keyState: KeyState;
  stock: SlotStock;
  runGrants: RunGrants;
  maxInSlotWaitMs: number;
  catchUpLines: CatchUpTrigger;
  /** Whether the limiter is closing (lines are not caught up then). */
  closing: () => boolean;
  /** When a reply last said a key set binds (a slot ahead, or not its turn): only then are followers named. */
  bindingSeen: Map<string, number>;
}

/** A key set that bound this recently is asked with followers. */
const BINDING_MEMORY_MS = 2_000;

/** One call of the acquire script, with the followers it may book (not for a missed slot asked again, `restore`). */
export async function bookOnce(deps: BookingDeps, asked: ByScript, leaseId: string, restore: boolean): Promise<Booked> {
  const { keyState, runGrants, maxInSlotWaitMs } = deps;
  const { keys, holder, leaseMs } = asked;
  // A job waiting on an open circuit is recorded as the holder (it names its queue) to be woken on close.
  const circuitOn = (key: string) => keyState.circuitOf(key) !== undefined;
  // Followers only where slots are booked ahead: elsewhere their operations hold no tickets, and
  // would wait for this call's reply for nothing.
  const id = keys.join('\n');
  const binds = Date.now() - (deps.bindingSeen.get(id) ?? -Infinity) < BINDING_MEMORY_MS;
  const followers = restore || !binds || !asked.followers ? [] : asked.followers.next(MAX_FOLLOWERS);
  const call = { keys, holder, leaseId, leaseMs, maxInSlotWaitMs, wantSlots: deps.stock.wanted(keys), waiter: holder, restore, followers };
  const booking = followers.length ? runGrants.begin(followers) : undefined;
  // Lateness counts from when the script was sent: a busy process may read its reply late.
  const sentAt = Date.now();
  let reply: AcquireReply;
  try {
    reply = decodeAcquireReply(await deps.acquireScript(...acquireArgs({ ...call, specOf: keyState.specOf, circuitOn })));
  } catch (error) {
    // Nothing booked that anyone knows of: the followers ask for themselves.
    booking?.done(keys, [], sentAt, { slackMs: 0, intervalMs: 0 });
    throw error;
  }
  const timing = reply.kind === 'go' ? { slackMs: reply.slackMs, intervalMs: reply.intervalMs } : { slackMs: 0, intervalMs: 0 };
  booking?.done(keys, reply.kind === 'go' ? reply.followerWaitsMs : [], sentAt, timing);
  if (reply.kind === 'go' && reply.followerWaitsMs.length) asked.followers?.booked(followers.slice(0, reply.followerWaitsMs.length));
  if ((reply.kind === 'go' && reply.waitMs > 0) || reply.kind === 'queued') deps.bindingSeen.set(id, Date.now());
  asked.onReply?.(reply);
  if ((reply.kind === 'go' || reply.kind === 'queued') && !deps.closing()) deps.catchUpLines(keys, reply.behindMask);
  switch (reply.kind) {
    case 'go':
      return {
        timing: { slot: sentAt + reply.waitMs, ...timing },
        lease: leaseOf(keys, leaseId, reply.leasedMask),
        probes: keys.filter((_, i) => (reply.probesMask & (2 ** i)) !== 0),
      };
    case 'queued': {
      // Not its turn: away until about its turn, keeping its place in line.
      const waitMs = onDueGrid(queuedDelayMs(reply, maxInSlotWaitMs), Date.now());
      return { gate: { kind: 'defer', waitMs, reason: 'rate', position: reply.position } };
    }
    case 'paused':
      return { gate: { kind: 'defer', waitMs: jitter(reply.waitMs, 0.5), reason: 'paused' } };
    case 'circuit-open': {
      const maxOpenMs = Math.min(...keys.map((key) => keyState.circuitOf(key)?.maxOpenMs ?? Infinity));
      return { gate: { kind: 'circuit-open', waitMs: reply.waitMs, openForMs: reply.openForMs, maxOpenMs } };
    }
    case 'blocked':
      return 'blocked';
  }
}
