import { randomUUID } from 'node:crypto';
import { answerWithin } from '../redis/unavailable.js';
import type { RedisClient } from '../redis/client.js';
import type { SluiceConfig } from '../config/sluice-config.js';
import { defineScript } from '../redis/scripts.js';
import type { Logger } from '../observability/logger.js';
import { createRateMeter } from './rate-meter.js';
import { ShutdownAbortError } from '../errors.js';
import { watchEventLoopLag } from '../support/event-loop-lag.js';
import { jitter, sleep } from '../support/sleep.js';
import { DEFAULT_MAX_IN_SLOT_WAIT_MS } from './line.js';
import { createKeyState, type KeyState } from './key-state.js';
import { createSlotStock } from './slot-stock.js';
import { createSlotStarts } from './slot-start.js';
import { createLeases, type Lease } from './leases.js';
import { createLimitReport, type LimitSignal } from './limit-report.js';
import { createCircuitReporter, type CircuitTransition, type RequestOutcome } from './circuit-reporter.js';
import { createCatchUpTrigger, createLineCatchUp } from './line-catch-up.js';
import { createLimitIndex, createLiveProcesses, type LiveProcesses } from './limit-index.js';
import { configuredSpecs, keysBySlot } from './limit-keys.js';
import { legacyLayoutCopy } from './limit-layout.js';
import { createRunGrants, type Followers } from './run-grants.js';
import { bookOnce, type Booked, type BookingDeps, type ByScript, type Gate } from './acquire-book.js';

export interface LimiterOptions {
  /** Borrowed client. */
  redis: RedisClient;
  config: SluiceConfig;
  logger: Logger;
  /** A job whose slot comes within this long waits in its worker slot; later ones are delayed. Default 250 ms. */
  maxInSlotWaitMs?: number;
  /** How often operator changes and learned limits are looked for. Default 1,000 ms. */
  refreshIntervalMs?: number;
  /** Told of every circuit transition this process's reports made. */
  onCircuitTransition?: (transition: CircuitTransition) => void;
}

export type { CircuitTransition, Gate, Lease, LimitSignal, RequestOutcome };

export interface Limiter {
  /**
   * `holder`: who waits in the keys' lines, `{queue}jobId` (see bookingHolder). `followers`: for an
   * operation of a lane, the holders of those that come next in its lines, whose slots the same
   * call books when it can (see run-grants.ts).
   */
  acquire(keys: readonly string[], holder: string, leaseMs: number, signal?: AbortSignal, followers?: Followers): Promise<Gate>;
  release(lease: Lease | undefined): Promise<void>;
  /** Feeds a response back: pauses the key for everyone, or lowers its rate on a 429. */
  observe(keys: readonly string[], signal: LimitSignal): Promise<void>;
  /** Counts a request's outcome in its keys' circuit breakers (undefined: it was never sent); `probes` from its gate. */
  recordOutcome(keys: readonly string[], outcome: RequestOutcome | undefined, probes: readonly string[]): void;
  close(): Promise<void>;
}

/** Concurrency-blocked jobs re-check this often while they may wait in their slot. */
const BLOCKED_POLL_MS = 25;
/** A start given up because this process lags asks again after about this long. */
const LAG_PAUSE_MS = 150;

/** How long a closing limiter waits for Redis to take it off the live processes. */
const CLOSE_TIMEOUT_MS = 2_000;

/**
 * The per-process face of the cluster-wide limiter (see redis/lua/limit-acquire.lua for the mechanism). Keys with no
 * configured limit, no operator override and nothing learned skip Redis entirely; the others cost
 * one script call per job (plus one to release a concurrency lease), except fast keys far below
 * their limit, which cost one per stock of slots (see SlotStock).
 */
export function createLimiter(options: LimiterOptions): Limiter {
  const { redis, config } = options;
  const logger = options.logger.child({ component: 'limiter' });
  const maxInSlotWaitMs = options.maxInSlotWaitMs ?? DEFAULT_MAX_IN_SLOT_WAIT_MS;
  const acquireScript = defineScript(redis, 'limit-acquire');
  const releaseScript = defineScript(redis, 'limit-release');
  const reportScript = defineScript(redis, 'limit-report');
  const meter = createRateMeter();
  const keyState = createKeyState(redis, config);
  const stock = createSlotStock(meter);
  const runGrants = createRunGrants();
  const bySlot = (keys: readonly string[]) => keysBySlot(redis, keys);
  const leases = createLeases(releaseScript, bySlot);
  const index = createLimitIndex(redis);
  const live = createLiveProcesses(redis, randomUUID());
  // Lag remembered for 200–400 ms: long enough for the stalls of a busy or cold process, which recur;
  // short enough that one pause that has ended (a VM or SIGSTOP pause, a long GC) does not give back
  // every slot of the next second (bench figure stall: 0.933 of the limit with 500 ms, 0.972 with 200).
  const lag = watchEventLoopLag({ windowMs: 200 });
  const starts = createSlotStarts(logger, lag);
  const observe = createLimitReport({ reportScript, keyState, stock, meter, index, bySlot, processes: live.count, logger });
  const circuits = createCircuitReporter({
    reportScript: defineScript(redis, 'circuit-report'),
    keyState,
    index,
    logger,
    onOpen(key) {
      keyState.markDynamic(key);
      stock.drop([key]);
    },
    onTransition(transition) {
      const { key, to, attempts, failures } = transition;
      if (to === 'opened')
        logger.warn({ limitKey: key, attempts, failures }, 'circuit opened: the target is failing; only probes go until it answers');
      else logger.info({ limitKey: key }, 'circuit closed: the target answered a probe; the backlog resumes');
      options.onCircuitTransition?.(transition);
    },
  });
  let closing: Promise<void> | undefined;
  const catchUpLines = createCatchUpTrigger(createLineCatchUp(redis, keyState.specOf, maxInSlotWaitMs), logger);

  const refreshing = startRefreshing({ redis, logger, live, keyState }, options.refreshIntervalMs ?? 1_000);
  // A line whose jobs are all away (timed at a rate the config has since raised) sees no start: looked at once.
  void refreshing.first.then(() => closing === undefined && catchUpLines.look(ratedKeys(config)));
  const booking: BookingDeps = {
    acquireScript,
    keyState,
    stock,
    runGrants,
    maxInSlotWaitMs,
    catchUpLines,
    closing: () => closing !== undefined,
    bindingSeen: new Map(),
  };

  async function acquire(
    keys: readonly string[],
    holder: string,
    leaseMs: number,
    signal?: AbortSignal,
    followers?: Followers,
  ): Promise<Gate> {
    if (keys.length === 0 || !keyState.needsScript(keys)) return started(keys, undefined);
    // Booked already, with the start ahead of it in its lane (or being booked: its reply is awaited).
    const booking = runGrants.pendingFor(holder);
    if (booking) await booking;
    const granted = runGrants.take(keys, holder);
    if (granted) return acquireByScript({ keys, holder, leaseMs, signal, granted });
    if (stock.take(keys)) return started(keys, undefined);
    const gate = await stock.book(keys, (onReply) => acquireByScript({ keys, holder, leaseMs, signal, followers, onReply }));
    return gate === 'stocked' ? started(keys, undefined) : gate;
  }

  function started(keys: readonly string[], lease: Lease | undefined, probes?: string[]): Gate {
    meter.count(keys);
    return probes?.length ? { kind: 'go', lease, probes } : { kind: 'go', lease };
  }

  async function acquireByScript(asked: ByScript): Promise<Gate> {
    const { keys, holder, signal } = asked;
    // The first acquire by script waits for the first refresh (it may have copied an override).
    await refreshing.first;
    const leaseId = `${holder}:${randomUUID().slice(0, 8)}`;
    index.announce(keys);
    // Once it had its turn and missed its slot, the job asks again from the head of the line.
    let restore = asked.granted === 'elsewhere';
    let granted = asked.granted === 'elsewhere' ? undefined : asked.granted;
    const blockedSince = Date.now();
    for (;;) {
      const booked: Booked = granted ? { timing: granted, lease: undefined, probes: [] } : await bookOnce(booking, asked, leaseId, restore);
      granted = undefined;
      if (booked === 'blocked') {
        // Blocked on concurrency: wait in the slot a little (woken early by a local release), then give it back.
        if (Date.now() - blockedSince >= maxInSlotWaitMs || signal?.aborted) {
          return { kind: 'defer', waitMs: jitter(500, 0.6), reason: 'concurrency' };
        }
        await leases.waitForRelease(jitter(BLOCKED_POLL_MS, 0.5));
        continue;
      }
      if ('gate' in booked) return booked.gate;
      const { timing, lease, probes } = booked;
      const start = await starts.waitForStart(keys, holder, timing, signal);
      if (start === 'go') {
        if (logger.isLevelEnabled('debug'))
          logger.debug({ limitKey: keys.join(','), jobId: holder, slot: timing.slot, lateMs: Date.now() - timing.slot }, 'slot taken');
        return started(keys, lease, probes);
      }
      // Not started after all: its probe (if it held one) goes to the next start.
      if (probes.length) circuits.record(keys, undefined, probes);
      await leases.release(lease);
      if (start === 'aborted') throw new ShutdownAbortError();
      // A lagging process waits here a moment for the lag to pass; either way the job keeps its turn.
      if (start === 'give-back' && !(await sleep(jitter(LAG_PAUSE_MS, 0.5), signal))) throw new ShutdownAbortError();
      restore = true;
    }
  }

  return {
    acquire,
    release: leases.release,
    observe,
    recordOutcome: circuits.record,
    close() {
      closing ??= (async () => {
        refreshing.stop();
        await catchUpLines.settled();
        lag.close();
        leases.close();
        await circuits.close();
        // Leaving the count of live processes is a courtesy (its heartbeat lapses anyway): a
        // Redis that is down must not hold a stopping worker (its client waits for Redis).
        await answerWithin(live.leave(), CLOSE_TIMEOUT_MS).catch(() => undefined);
      })();
      return closing;
    },
  };
}

/** The keys the config gives a rate (the top-level limits and the targets'). */
function ratedKeys(config: SluiceConfig): string[] {
  const specOf = configuredSpecs(config);
  const names = new Set([...Object.keys(config.limits), ...Object.keys(config.targets)]);
  return [...names].filter((key) => specOf(key).rate > 0);
}

/**
 * Every intervalMs: the copy of an earlier version's layout (once: an operator's override is kept),
 * the heartbeat (it counts the live processes: a 429 with no rate to halve halves this process's
 * observed rate times their number, limit-report.lua), and the keys Redis holds something for.
 * `first` resolves after the first round, whatever it met.
 */
function startRefreshing(
  deps: { redis: RedisClient; logger: Logger; live: LiveProcesses; keyState: KeyState },
  intervalMs: number,
): { first: Promise<void>; stop(): void } {
  const { logger, live, keyState } = deps;
  const copyLayout = legacyLayoutCopy(deps.redis, logger);
  async function refresh(): Promise<void> {
    await copyLayout();
    await live.beat();
    await keyState.refresh();
  }
  const timer = setInterval(() => {
    refresh().catch((error: unknown) => logger.warn({ err: error }, 'could not refresh limit state'));
  }, intervalMs);
  timer.unref();
  const first = refresh().catch((error: unknown) => logger.warn({ err: error }, 'could not read limit state'));
  return { first, stop: () => clearInterval(timer) };
}
