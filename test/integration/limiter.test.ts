/**
 * The cluster-wide limiter (`createLimiter`) against a real redis-server. Two limiter instances on
 * two Redis clients stand for two worker processes.
 */
import { describe, expect, it } from 'vitest';
import { parseSluiceConfig, type SluiceConfig } from '../../src/config/sluice-config.js';
import { limiterKeys } from '../../src/redis/keys.js';
import { type Gate, type Lease, type Limiter, type LimiterOptions } from '../../src/limits/limiter.js';
import { createLimitsAdmin, type LimitStatus } from '../../src/limits/limits-admin.js';
import { useRedisServer, waitFor } from '../helpers/redis.js';
import { startLimiterProcess } from '../helpers/limiter-process.js';
import { runCliInProcess } from '../helpers/cli-in-process.js';

const redis = useRedisServer();

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A limiter on its own Redis client (a "process"), closed when the test finishes. */
const limiterProcess = (config: SluiceConfig, options: Partial<LimiterOptions> = {}): Limiter =>
  startLimiterProcess(redis().url, config, options);

function config(limits: Record<string, unknown>): SluiceConfig {
  return parseSluiceConfig({ limits });
}

interface Go {
  at: number;
  lease: Lease | undefined;
  deferrals: Gate[];
}

/**
 * What the processor does: acquire; on `defer`, come back after `waitMs` with the same job id
 * (its booking is kept under that id) and acquire again, until the limiter says go.
 */
async function acquireUntilGo(limiter: Limiter, keys: string[], jobId: string, leaseMs = 10_000, timeoutMs = 15_000): Promise<Go> {
  const deferrals: Gate[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const gate = await limiter.acquire(keys, jobId, leaseMs);
    if (gate.kind === 'go') return { at: Date.now(), lease: gate.lease, deferrals };
    deferrals.push(gate);
    if (Date.now() > deadline)
      throw new Error(`${jobId} on ${keys.join(',')}: still deferred after ${timeoutMs} ms (${JSON.stringify(gate)})`);
    await pause(gate.waitMs);
  }
}

/** Calls of a command since the server started (INFO commandstats). */
async function commandCalls(command: string): Promise<number> {
  const info = await redis().client.info('commandstats');
  const match = new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(info);
  return match ? Number(match[1]) : 0;
}

const scriptCalls = async () => (await commandCalls('evalsha')) + (await commandCalls('eval'));

async function statusOf(key: string, cfg: SluiceConfig): Promise<LimitStatus> {
  const all = await createLimitsAdmin({ redis: redis().client, config: cfg }).list();
  const status = all.find((entry) => entry.key === key);
  if (!status) throw new Error(`limit key ${key} not listed: ${JSON.stringify(all.map((entry) => entry.key))}`);
  return status;
}

/**
 * The starts a strict GCRA limiter (this rate and burst) would have refused. The limiter promises
 * conformance, not exact spacing: a start may be late by up to its slack (half the burst it keeps
 * in reserve), so two starts can be closer than the interval without exceeding the burst.
 */
function refusedBy(times: number[], rate: number, burst: number): number[] {
  const interval = 1_000 / rate;
  const tolerance = (burst - 1) * interval;
  let tat = 0;
  return [...times]
    .sort((a, b) => a - b)
    .filter((at) => {
      if (tat - at > tolerance) return true;
      tat = Math.max(tat, at) + interval;
      return false;
    });
}

const gaps = (times: number[]): number[] => {
  const sorted = [...times].sort((a, b) => a - b);
  return sorted.slice(1).map((t, i) => t - sorted[i]!);
};

describe('keys with no limit', () => {
  it('go at once without touching Redis; once the key has learned something, the script is used', async () => {
    const cfg = config({ 'limited-probe': { requestsPerSecond: 1_000, burst: 100 } });
    const limiter = limiterProcess(cfg, { refreshIntervalMs: 60_000 });
    // A starting limiter looks at its rated keys' lines once, after its first refresh (a script call
    // of its own): one acquire on the rated key waits for that refresh, and its call goes after the
    // look's on the same connection, so the look is counted before `before` is read.
    expect((await limiter.acquire(['limited-probe'], 'probe-warm', 5_000)).kind).toBe('go');

    const before = await scriptCalls();
    const started = Date.now();
    for (let i = 0; i < 200; i++) {
      const gate = await limiter.acquire(['free-key'], `free-${i}`, 5_000);
      expect(gate).toEqual({ kind: 'go', lease: undefined });
    }
    expect(Date.now() - started).toBeLessThan(500);
    expect(await scriptCalls()).toBe(before);
    // Nothing was written for the key either.
    expect(await redis().client.exists(limiterKeys.state('free-key'), limiterKeys.line('free-key'))).toBe(0);
    expect(await redis().client.sismember(limiterKeys.index, 'free-key')).toBe(0);
    await limiter.release(undefined);

    // The measurement does see script calls: a limited key costs one per acquisition.
    for (let i = 0; i < 5; i++) expect((await limiter.acquire(['limited-probe'], `probe-${i}`, 5_000)).kind).toBe('go');
    expect(await scriptCalls()).toBeGreaterThanOrEqual(before + 5);

    // A 429 on the free key makes it dynamic: from then on it goes through the script.
    await limiter.observe(['free-key'], { status: 429, retryAfterMs: 0 });
    const afterObserve = await scriptCalls();
    await limiter.acquire(['free-key'], 'free-after-429', 5_000);
    expect(await scriptCalls()).toBe(afterObserve + 1);
  });

  it('a response without a limit signal records nothing', async () => {
    const limiter = limiterProcess(config({}), { refreshIntervalMs: 60_000 });
    const before = await scriptCalls();
    await limiter.observe(['quiet-key'], { status: 200 });
    await limiter.observe(['quiet-key'], { status: 503 });
    expect(await scriptCalls()).toBe(before);
    expect(await redis().client.exists(limiterKeys.state('quiet-key'))).toBe(0);
  });
});

describe('rate', () => {
  it('spaces 20 acquisitions from two processes on a 10/s burst-1 key ≥ ~100 ms apart, honouring deferrals', async () => {
    const cfg = config({ 'ten-per-second': { requestsPerSecond: 10, burst: 1 } });
    const a = limiterProcess(cfg);
    const b = limiterProcess(cfg);

    const started = Date.now();
    const goes = await Promise.all(
      Array.from({ length: 20 }, (_, i) => acquireUntilGo(i % 2 === 0 ? a : b, ['ten-per-second'], `job-${i}`)),
    );
    const times = goes.map((go) => go.at);
    const spacing = gaps(times);
    // Burst 1: slots 110 ms apart (a tenth wider than the rate, the margin for late starts); a timer
    // may fire a millisecond early, and the go is stamped a little after the slot.
    expect(Math.min(...spacing), `gaps ${spacing.join(', ')}`).toBeGreaterThanOrEqual(95);
    const span = Math.max(...times) - Math.min(...times);
    expect(span).toBeGreaterThanOrEqual(19 * 95);
    // Not starved either: booked slots were used (a wasted slot would stretch the run).
    expect(Math.max(...times) - started).toBeLessThan(6_000);
    // Most jobs waited their turn in line away from their worker slot and came back for it.
    const deferred = goes.filter((go) => go.deferrals.some((gate) => gate.kind === 'defer' && gate.reason === 'rate'));
    expect(deferred.length).toBeGreaterThanOrEqual(15);
    // Every ticket was used: nobody is left in line.
    expect(await redis().client.zcard(limiterKeys.line('ten-per-second'))).toBe(0);
  });
});

describe('fast keys', () => {
  it('take slots ahead while far below the limit: a script call per many starts', async () => {
    const cfg = config({ fast: { requestsPerSecond: 5_000, burst: 100 } });
    const processes = [limiterProcess(cfg), limiterProcess(cfg)];
    const before = await scriptCalls();
    const times: number[] = [];
    // Ten "worker slots" per process, each starting a job every ~5 ms: ~4,000/s in all.
    await Promise.all(
      processes.flatMap((limiter, p) =>
        Array.from({ length: 10 }, async (_, slot) => {
          for (let i = 0; i < 150; i++) {
            const gate = await limiter.acquire(['fast'], `fast-${p}-${slot}-${i}`, 5_000);
            if (gate.kind === 'go') times.push(performance.now());
            await pause(gate.kind === 'go' ? 5 : gate.waitMs);
          }
        }),
      ),
    );
    const calls = (await scriptCalls()) - before;
    expect(calls, `${calls} script calls for ${times.length} starts`).toBeLessThan(times.length / 3);
    expect(refusedBy(times, 5_000, 100)).toEqual([]);
  });

  it('at the limit, slots are not taken ahead: two processes saturating a 5,000/s key stay within it', async () => {
    const cfg = config({ fast: { requestsPerSecond: 5_000, burst: 100 } });
    const processes = [limiterProcess(cfg), limiterProcess(cfg)];
    const times: number[] = [];
    // Ten "worker slots" per process, each starting one job after another as fast as it may.
    await Promise.all(
      processes.flatMap((limiter, p) =>
        Array.from({ length: 10 }, async (_, slot) => {
          for (let i = 0; times.length < 3_000; i++) {
            const gate = await limiter.acquire(['fast'], `fast-${p}-${slot}-${i}`, 5_000);
            if (gate.kind === 'go') times.push(performance.now());
            else await pause(gate.waitMs);
          }
        }),
      ),
    );
    expect(refusedBy(times, 5_000, 100)).toEqual([]);
  });
});

describe('concurrency', () => {
  it('a third acquisition on a concurrency-2 key defers until a lease is released', async () => {
    const cfg = config({ 'two-at-once': { concurrency: 2 } });
    const a = limiterProcess(cfg);
    const b = limiterProcess(cfg);

    const first = await a.acquire(['two-at-once'], 'c-1', 10_000);
    const second = await b.acquire(['two-at-once'], 'c-2', 10_000);
    expect(first.kind).toBe('go');
    expect(second.kind).toBe('go');
    const firstLease = (first as Extract<Gate, { kind: 'go' }>).lease;
    expect(firstLease).toMatchObject({ keys: ['two-at-once'] });
    expect((await statusOf('two-at-once', cfg)).inFlight).toBe(2);

    const blockedAt = Date.now();
    const third = await b.acquire(['two-at-once'], 'c-3', 10_000);
    // It waited in its slot (the default 250 ms), then gave the slot back.
    expect(third).toMatchObject({ kind: 'defer', reason: 'concurrency' });
    expect(Date.now() - blockedAt).toBeGreaterThanOrEqual(240);
    expect(await a.acquire(['two-at-once'], 'c-3', 10_000)).toMatchObject({ kind: 'defer', reason: 'concurrency' });

    await a.release(firstLease);
    expect((await statusOf('two-at-once', cfg)).inFlight).toBe(1);
    const third2 = await b.acquire(['two-at-once'], 'c-3', 10_000);
    expect(third2.kind).toBe('go');
    expect((await statusOf('two-at-once', cfg)).inFlight).toBe(2);
  });

  it('a blocked acquisition waiting in its slot is woken by a release in the same process', async () => {
    const cfg = config({ 'one-at-once': { concurrency: 1 } });
    const a = limiterProcess(cfg, { maxInSlotWaitMs: 5_000 });
    const held = await a.acquire(['one-at-once'], 'w-1', 10_000);
    expect(held.kind).toBe('go');

    let resolvedAt: number | undefined;
    const waiting = a.acquire(['one-at-once'], 'w-2', 10_000).then((gate) => {
      resolvedAt = Date.now();
      return gate;
    });
    // Held: it must not go while the lease is out.
    await pause(400);
    expect(resolvedAt).toBeUndefined();

    const releasedAt = Date.now();
    await a.release((held as Extract<Gate, { kind: 'go' }>).lease);
    const gate = await waiting;
    expect(gate.kind).toBe('go');
    expect(resolvedAt! - releasedAt).toBeLessThan(200);
  });

  it('a lease that is never released (a dead worker) expires after its lease time', async () => {
    const cfg = config({ 'leaky-key': { concurrency: 1 } });
    const dead = limiterProcess(cfg);
    const alive = limiterProcess(cfg);
    const leasedAt = Date.now();
    expect((await dead.acquire(['leaky-key'], 'dead-1', 1_000)).kind).toBe('go');

    const go = await acquireUntilGo(alive, ['leaky-key'], 'alive-1', 10_000, 5_000);
    expect(go.deferrals.length).toBeGreaterThan(0);
    expect(go.deferrals.every((gate) => gate.kind === 'defer' && gate.reason === 'concurrency')).toBe(true);
    expect(go.at - leasedAt).toBeGreaterThanOrEqual(990);
    expect(go.at - leasedAt).toBeLessThan(3_000);
  });

  it('an operation on several keys holds them together: a lease on each key with concurrency', async () => {
    const cfg = config({ 'mk-rate': { requestsPerSecond: 100, burst: 10 }, 'mk-conc': { concurrency: 1 } });
    const a = limiterProcess(cfg);
    const b = limiterProcess(cfg);

    const both = await a.acquire(['mk-rate', 'mk-conc'], 'mk-1', 10_000);
    expect(both).toMatchObject({ kind: 'go', lease: { keys: ['mk-conc'] } });
    expect(await b.acquire(['mk-conc'], 'mk-2', 10_000)).toMatchObject({ kind: 'defer', reason: 'concurrency' });
    // The rate key alone is free: only the concurrency key is held.
    expect((await b.acquire(['mk-rate'], 'mk-3', 10_000)).kind).toBe('go');
    // Blocked on one key, the operation takes nothing on the other (no slot of the rate key).
    const tat = await redis().client.hget(limiterKeys.state('mk-rate'), 'tat');
    expect(await b.acquire(['mk-rate', 'mk-conc'], 'mk-4', 10_000)).toMatchObject({ kind: 'defer', reason: 'concurrency' });
    expect(await redis().client.hget(limiterKeys.state('mk-rate'), 'tat')).toBe(tat);

    await a.release((both as Extract<Gate, { kind: 'go' }>).lease);
    expect((await b.acquire(['mk-conc'], 'mk-2', 10_000)).kind).toBe('go');
  });
});

describe('what responses teach', () => {
  it('a 429 with Retry-After pauses the key in both processes', async () => {
    const cfg = config({ 'pause-me': { requestsPerSecond: 100, burst: 10 } });
    const a = limiterProcess(cfg);
    const b = limiterProcess(cfg);
    expect((await a.acquire(['pause-me'], 'warm-up', 10_000)).kind).toBe('go');

    const observedAt = Date.now();
    await a.observe(['pause-me'], { status: 429, retryAfterMs: 1_000 });
    const status = await statusOf('pause-me', cfg);
    expect(status.pausedUntil).not.toBeNull();
    expect(status.recent429s).toBe(1);

    const [fromA, fromB] = await Promise.all([acquireUntilGo(a, ['pause-me'], 'after-a'), acquireUntilGo(b, ['pause-me'], 'after-b')]);
    for (const go of [fromA, fromB]) {
      expect(go.deferrals.length).toBeGreaterThan(0);
      expect(go.at - observedAt).toBeGreaterThanOrEqual(990);
      expect(go.at - observedAt).toBeLessThan(1_800);
    }
  });

  it('a pause on a key with no configured limit reaches the other process within its refresh interval', async () => {
    const cfg = config({});
    const a = limiterProcess(cfg, { refreshIntervalMs: 200 });
    const b = limiterProcess(cfg, { refreshIntervalMs: 200 });
    expect((await b.acquire(['unconfigured'], 'free-1', 10_000)).kind).toBe('go');

    const observedAt = Date.now();
    await a.observe(['unconfigured'], { status: 503, retryAfterMs: 2_000 });
    // The observing process knows at once.
    expect((await a.acquire(['unconfigured'], 'free-2', 10_000)).kind).toBe('defer');
    await waitFor(async () => (await b.acquire(['unconfigured'], 'free-3', 10_000)).kind === 'defer', {
      timeoutMs: 1_500,
      what: 'process B to see the pause',
    });
    expect(Date.now() - observedAt).toBeLessThan(1_000);

    const go = await acquireUntilGo(b, ['unconfigured'], 'free-4');
    expect(go.at - observedAt).toBeGreaterThanOrEqual(1_990);
  });

  it('a repeated 429 halves the effective rate (a bunch of 429s counts once), then it recovers towards the configured rate', async () => {
    const cfg = config({ adaptive: { requestsPerSecond: 40, burst: 4 } });
    const a = limiterProcess(cfg);
    expect((await a.acquire(['adaptive'], 'ad-0', 10_000)).kind).toBe('go');
    expect((await statusOf('adaptive', cfg)).effectiveRate).toBe(40);

    // The first 429 only records; a second from the same bunch (within 250 ms) does not count as repeated.
    await a.observe(['adaptive'], { status: 429 });
    await a.observe(['adaptive'], { status: 429 });
    expect((await statusOf('adaptive', cfg)).effectiveRate).toBe(40);

    // A 429 for a request sent later (the scenario's time passing, not a wait for a condition) halves it.
    await pause(300);
    await a.observe(['adaptive'], { status: 429 });
    await acquireUntilGo(a, ['adaptive'], 'ad-1');
    const halved = await statusOf('adaptive', cfg);
    expect(halved.recent429s).toBe(3);
    expect(halved.effectiveRate).toBeGreaterThanOrEqual(20);
    expect(halved.effectiveRate).toBeLessThan(21);

    // Another one within 2 s of the decrease does not halve again (the new rate has not shown yet).
    await pause(300);
    await a.observe(['adaptive'], { status: 429 });
    await acquireUntilGo(a, ['adaptive'], 'ad-2');
    expect((await statusOf('adaptive', cfg)).effectiveRate).toBeGreaterThan(19);
    expect((await statusOf('adaptive', cfg)).effectiveRate).toBeLessThan(22);

    // Linear recovery: 40/30 per second.
    await pause(1_500);
    await acquireUntilGo(a, ['adaptive'], 'ad-3');
    const recovering = (await statusOf('adaptive', cfg)).effectiveRate!;
    expect(recovering).toBeGreaterThan(21.5);
    expect(recovering).toBeLessThan(40);
  });
});

describe('what a partner says, read right (partner-outage red-team)', () => {
  it('a steady stream of 429s, faster than one per 250 ms, halves the rate: it is repeated, not one bunch', async () => {
    const cfg = config({ 'strict-partner': { requestsPerSecond: 20, burst: 5 } });
    const a = limiterProcess(cfg);
    expect((await a.acquire(['strict-partner'], 'sp-0', 10_000)).kind).toBe('go');
    // A partner's limiter at half our rate answers 429 to every other request: one every ~100 ms.
    for (let i = 0; i < 5; i++) {
      await a.observe(['strict-partner'], { status: 429 });
      await pause(100);
    }
    await acquireUntilGo(a, ['strict-partner'], 'sp-1');
    const status = await statusOf('strict-partner', cfg);
    expect(status.effectiveRate).toBeGreaterThanOrEqual(10);
    expect(status.effectiveRate).toBeLessThan(11);
  });

  it('sluice limits shows 100+ 429s once the 100 it keeps are all recent (it counted 100 of 375)', async () => {
    const cfg = config({ 'many-429s': { requestsPerSecond: 20 } });
    const a = limiterProcess(cfg);
    // The first pauses the key (so the fleet lists it without a config), the rest come in a bunch.
    await a.observe(['many-429s'], { status: 429, retryAfterMs: 1_000 });
    for (let i = 0; i < 104; i++) await a.observe(['many-429s'], { status: 429 });
    expect((await statusOf('many-429s', cfg)).recent429s).toBe(100);
    const listed = await runCliInProcess(['limits'], { REDIS_URL: redis().url });
    expect(listed.code, listed.stderr).toBe(0);
    expect(
      listed.stdout.split('\n').find((line) => line.startsWith('many-429s')),
      listed.stdout,
    ).toMatch(/ 100\+ /);
  });

  it('a pause of nothing (Retry-After: 0, or a date already past) neither pauses the key nor moves its booked slots back', async () => {
    const cfg = config({ 'booked-ahead': { requestsPerSecond: 20, burst: 5 } });
    const a = limiterProcess(cfg);
    expect((await a.acquire(['booked-ahead'], 'ba-0', 10_000)).kind).toBe('go');
    // Slots booked up to 2 s ahead (as a busy fleet books them).
    const bookedUntil = Date.now() + 2_000;
    await redis().client.hset(limiterKeys.state('booked-ahead'), 'tat', bookedUntil);
    for (const status of [429, 503]) await a.observe(['booked-ahead'], { status, retryAfterMs: 0 });
    const state = await redis().client.hmget(limiterKeys.state('booked-ahead'), 'tat', 'pausedUntil');
    // Given back, those slots would be handed out a second time: over the rate at the target.
    expect(Number(state[0])).toBeGreaterThanOrEqual(bookedUntil);
    expect(Number(state[1] ?? 0)).toBeLessThanOrEqual(Date.now());
    // A real pause still moves the schedule: past its end.
    const pausedAt = Date.now();
    await a.observe(['booked-ahead'], { status: 429, retryAfterMs: 5_000 });
    const [tat, pausedUntil] = (await redis().client.hmget(limiterKeys.state('booked-ahead'), 'tat', 'pausedUntil')).map(Number);
    expect(pausedUntil).toBeGreaterThanOrEqual(pausedAt + 5_000);
    expect(tat).toBeGreaterThanOrEqual(pausedUntil!);
  });
});

describe('operators', () => {
  it('limits list forgets a key whose state expired (unused for a day) unless it is configured or overridden', async () => {
    const cfg = config({ 'configured-idle': { requestsPerSecond: 5 } });
    const admin = createLimitsAdmin({ redis: redis().client, config: cfg });
    await admin.set('overridden-idle', { rate: 3 });
    // As if a day had passed for the unused key: its state expired; the index still names it.
    await redis().client.sadd(limiterKeys.index, 'ghost-key', 'configured-idle');
    const keys = (await admin.list()).map((entry) => entry.key);
    expect(keys).toEqual(expect.arrayContaining(['configured-idle', 'overridden-idle']));
    expect(keys).not.toContain('ghost-key');
    expect(await redis().client.sismember(limiterKeys.index, 'ghost-key')).toBe(0);
    expect(await redis().client.sismember(limiterKeys.index, 'overridden-idle')).toBe(1);
  });

  it('limits set changes the rate an existing limiter uses at once for a limited key', async () => {
    const cfg = config({ retuned: { requestsPerSecond: 20, burst: 2 } });
    const admin = createLimitsAdmin({ redis: redis().client, config: cfg });
    const a = limiterProcess(cfg);

    const before: number[] = [];
    for (let i = 0; i < 10; i++) before.push((await acquireUntilGo(a, ['retuned'], `r-${i}`)).at);
    expect(before[9]! - before[0]!).toBeLessThan(9 * 50 + 300);

    await admin.set('retuned', { rate: 4 });
    const after: number[] = [];
    for (let i = 0; i < 5; i++) after.push((await acquireUntilGo(a, ['retuned'], `r-after-${i}`)).at);
    // 4/s, burst 2 — and not the configured 20/s any more.
    expect(refusedBy(after, 4, 2), `gaps ${gaps(after).join(', ')}`).toEqual([]);
    expect(after[4]! - after[0]!).toBeGreaterThanOrEqual(3 * 250 - 5);
    const status = await statusOf('retuned', cfg);
    expect(status.override).toMatchObject({ rate: 4, burst: null, concurrency: null, expiresInMs: null });
    expect(status.effectiveRate).toBe(4);

    await admin.reset('retuned');
    expect((await statusOf('retuned', cfg)).override).toBeNull();
  });

  it('limits set on a key with no configured limit reaches an existing limiter within ~1 s', async () => {
    const cfg = config({});
    const admin = createLimitsAdmin({ redis: redis().client, config: cfg });
    // The default refresh interval (1 s).
    const a = limiterProcess(cfg);
    // Free before the change: ten acquisitions at once.
    const freeFrom = Date.now();
    for (let i = 0; i < 10; i++) expect((await a.acquire(['tuned-later'], `t-free-${i}`, 10_000)).kind).toBe('go');
    expect(Date.now() - freeFrom).toBeLessThan(200);

    const setAt = Date.now();
    await admin.set('tuned-later', { rate: 5, burst: 2 }, 30_000);
    const times: number[] = [];
    for (let i = 0; Date.now() - setAt < 3_000; i++) {
      times.push((await acquireUntilGo(a, ['tuned-later'], `t-${i}`)).at);
      // A caller that takes a moment between jobs (and lets the refresh timer run).
      await pause(10);
    }
    // Past ~1 s (the refresh interval and a margin) every start keeps to 5/s.
    const late = times.filter((t) => t > setAt + 1_200);
    expect(late.length).toBeGreaterThanOrEqual(6);
    expect(late.length).toBeLessThanOrEqual(11);
    expect(refusedBy(late, 5, 2), `gaps ${gaps(late).join(', ')}`).toEqual([]);
    const status = await statusOf('tuned-later', cfg);
    expect(status.override?.expiresInMs).toBeGreaterThan(25_000);
    expect(status.override?.expiresInMs).toBeLessThanOrEqual(30_000);
  });

  it('pause stops every process at once on a limited key; resume lets them go', async () => {
    const cfg = config({ 'stop-go': { requestsPerSecond: 50, burst: 5 } });
    const admin = createLimitsAdmin({ redis: redis().client, config: cfg });
    const a = limiterProcess(cfg);
    const b = limiterProcess(cfg);

    await admin.pause('stop-go');
    expect(await a.acquire(['stop-go'], 'p-1', 10_000)).toMatchObject({ kind: 'defer', reason: 'paused' });
    expect(await b.acquire(['stop-go'], 'p-2', 10_000)).toMatchObject({ kind: 'defer', reason: 'paused' });
    expect((await statusOf('stop-go', cfg)).paused).toBe(true);

    await admin.resume('stop-go');
    expect((await a.acquire(['stop-go'], 'p-1', 10_000)).kind).toBe('go');
    expect((await b.acquire(['stop-go'], 'p-2', 10_000)).kind).toBe('go');
    const status = await statusOf('stop-go', cfg);
    expect(status.paused).toBe(false);
    expect(status.override).toBeNull();
  });

  it('pause reaches a key with no configured limit within the refresh interval; resume lifts it', async () => {
    const cfg = config({});
    const admin = createLimitsAdmin({ redis: redis().client, config: cfg });
    const a = limiterProcess(cfg, { refreshIntervalMs: 200 });
    expect((await a.acquire(['stop-free'], 'f-1', 10_000)).kind).toBe('go');

    await admin.pause('stop-free');
    await waitFor(async () => (await a.acquire(['stop-free'], 'f-2', 10_000)).kind === 'defer', {
      timeoutMs: 1_500,
      what: 'the pause to reach the limiter',
    });
    expect(await a.acquire(['stop-free'], 'f-2', 10_000)).toMatchObject({ kind: 'defer', reason: 'paused' });

    await admin.resume('stop-free');
    await waitFor(async () => (await a.acquire(['stop-free'], 'f-3', 10_000)).kind === 'go', {
      timeoutMs: 1_500,
      what: 'the resume to reach the limiter',
    });
  });
});
