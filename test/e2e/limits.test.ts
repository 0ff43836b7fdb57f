/**
 * The cluster-wide limiter with real processes: several `sluice worker`s share limit keys through
 * a private redis-server and pace real HTTP targets (the demo API with a strict GCRA limiter in
 * front, or the scripted target server). Every limit key name is used by one test only: the
 * limiter's keys are global to the Redis, not per queue.
 */
import { Queue } from 'bullmq';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startDemoApi } from '../../src/demo/demo-api.js';
import { startDemoApiProcess } from '../helpers/demo-api-process.js';
import type { LimitStatus } from '../../src/limits/limits-admin.js';
import { startRedisServer } from '../../src/support/redis-server.js';
import { PREFIX, bullQueueName, limiterKeys } from '../../src/redis/keys.js';
import { now, useCli, type CliProcess, type CliResult } from '../helpers/cli-process.js';
import { uniqueQueue, useRedisServer, waitFor } from '../helpers/redis.js';
import { startTestTarget, type RecordedRequest, type TargetServer } from '../helpers/target-server.js';
import { jsonl, maxInWindow } from '../helpers/json-lines.js';

const redis = useRedisServer();
const cli = useCli(() => ({ REDIS_URL: redis().url }));

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Small retry delays: the tests are about the limiter, not backoff. */
const FAST_RETRY = { attempts: 10, baseDelayMs: 10, maxDelayMs: 50 };

type Env = Record<string, string>;

/** This test's scripted target server, which the workers may call (cli.allowLocal); closed when the test ends. */
async function localTarget(): Promise<TargetServer> {
  const target = await startTestTarget();
  await cli.allowLocal(target.url);
  return target;
}

/** A demo API the workers may call (cli.allowLocal), closed when the test ends. */
async function localApi<T extends { url: string; close(): Promise<void> }>(starting: Promise<T>): Promise<T> {
  const api = await starting;
  onTestFinished(() => api.close());
  await cli.allowLocal(api.url);
  return api;
}

/** `count` POSTs to `url` (or `url(i)`) on one limit key, with fast retries; `more(i)` adds fields (a body, timeouts). */
function posts(
  count: number,
  limitKey: string,
  url: string | ((i: number) => string),
  more: (i: number) => Record<string, unknown> = () => ({}),
) {
  return Array.from({ length: count }, (_, i) => ({
    method: 'POST',
    url: typeof url === 'string' ? url : url(i),
    ...more(i),
    limitKey,
    retry: FAST_RETRY,
  }));
}

/** One scenario's queue, config and workers, and the CLI commands a test runs on them. */
interface Fleet {
  queue: string;
  /** The workers started so far. */
  workers: CliProcess[];
  /** Starts `count` more workers (with the worker env), ready. */
  startWorkers(count: number): Promise<CliProcess[]>;
  /** `sluice enqueue --json`: checks that every operation was enqueued; the batch id. */
  enqueue(ops: unknown[]): Promise<string>;
  /** `sluice wait --json` with its exit code. */
  wait(batchId: string, timeoutS?: number): Promise<{ code: number | null; status: Record<string, unknown> }>;
  /** `sluice wait`: exit 0, all `total` operations succeeded, none dead-lettered, and any other counters given. */
  expectAllSucceeded(batchId: string, counters: { total: number } & Record<string, unknown>, timeoutS?: number): Promise<void>;
  /** The key's line of `sluice limits --json`. */
  limit(key: string): Promise<LimitStatus>;
  /** Any other `sluice` command, on the fleet's queue and config. */
  run(args: string[]): Promise<CliResult>;
}

/**
 * Starts a scenario: a queue of its own, a config file with these limits (the loopback servers the
 * test allowed so far stay allowed next to them) and `workers` × `sluice worker --concurrency N`,
 * ready. `env` is added for every command (another Redis), `workerEnv` for the workers only.
 */
async function startFleet(
  name: string,
  options: { limits?: Record<string, unknown>; workers: number; concurrency: number; env?: Env; workerEnv?: Env },
): Promise<Fleet> {
  const queue = uniqueQueue(`e2e-${name}`);
  const path = await cli.file(`${queue}.config.json`, JSON.stringify({ limits: options.limits, targets: cli.localTargets() }));
  const env: Env = { SLUICE_QUEUE: queue, SLUICE_CONFIG: path, ...options.env };
  const workers: CliProcess[] = [];
  const fleet: Fleet = {
    queue,
    workers,
    async startWorkers(count) {
      const started = await cli.startWorkers(count, { concurrency: options.concurrency, env: { ...env, ...options.workerEnv } });
      workers.push(...started);
      return started;
    },
    async enqueue(ops) {
      const file = await cli.file(`${queue}-${Math.random().toString(36).slice(2)}.jsonl`, jsonl(ops));
      const result = await cli.run(['enqueue', file, '--json'], { env });
      expect(result.code, result.stderr).toBe(0);
      const summary = JSON.parse(result.stdout) as { batchId: string; enqueued: number };
      expect(summary.enqueued).toBe(ops.length);
      return summary.batchId;
    },
    async wait(batchId, timeoutS = 50) {
      const result = await cli.run(['wait', batchId, '--timeout', String(timeoutS), '--json'], { env, timeoutMs: (timeoutS + 10) * 1_000 });
      return { code: result.code, status: JSON.parse(result.stdout) as Record<string, unknown> };
    },
    async expectAllSucceeded(batchId, counters, timeoutS) {
      const waited = await fleet.wait(batchId, timeoutS);
      expect(waited.code, JSON.stringify(waited.status)).toBe(0);
      expect(waited.status).toMatchObject({ succeeded: counters.total, deadLettered: 0, ...counters });
    },
    async limit(key) {
      const result = await cli.run(['limits', '--json'], { env });
      expect(result.code, result.stderr).toBe(0);
      const status = (JSON.parse(result.stdout) as LimitStatus[]).find((entry) => entry.key === key);
      if (!status) throw new Error(`limit key ${key} not listed by sluice limits --json`);
      return status;
    },
    run: (args) => cli.run(args, { env }),
  };
  await fleet.startWorkers(options.workers);
  return fleet;
}

/** Arrivals per second over the run: (count - 1) / span. */
function achievedRate(times: number[]): number {
  const span = (Math.max(...times) - Math.min(...times)) / 1_000;
  return (times.length - 1) / span;
}

/** When (ms after the first arrival) a strict GCRA limiter with this rate and burst refused, replayed from the arrivals. */
function rejectedAt(arrivals: number[], rate: number, burst: number): number[] {
  const interval = 1_000 / rate;
  const tolerance = (burst - 1) * interval;
  let tat = 0;
  const refused = arrivals.filter((at) => {
    if (tat - at > tolerance) return true;
    tat = Math.max(tat, at) + interval;
    return false;
  });
  return refused.map((at) => Math.round(at - arrivals[0]!));
}

/** Arrival times of the target's requests whose path starts with `prefix`. */
function arrivalsUnder(target: TargetServer, prefix: string): number[] {
  return target.requests.filter((request) => request.path.startsWith(prefix)).map((request) => request.startedAt);
}

const between = (requests: RecordedRequest[], from: number, to: number) => requests.filter((r) => r.startedAt > from && r.startedAt <= to);

/** Stops workers (SIGTERM, as an operator would) and waits for them. */
async function stopWorkers(workers: CliProcess[]): Promise<void> {
  for (const worker of workers) if (worker.running()) worker.signal('SIGTERM');
  await Promise.all(workers.map((worker) => worker.waitForExit(20_000)));
}

describe('rate limits across worker processes', () => {
  it('4 workers keep 1,500 POSTs (30 s) to a 50/s burst-5 key under a strict 50/s target: no 429, ≥ 90% of the rate', async () => {
    // In a process of its own: the runner's event loop, busy with the workers' output, would stamp arrivals late.
    const api = await localApi(startDemoApiProcess({ strictLimit: { requestsPerSecond: 50, burst: 5 }, failureRate: 0, rateLimitRate: 0 }));
    const fleet = await startFleet('accuracy', {
      limits: { 'accuracy-key': { requestsPerSecond: 50, burst: 5 } },
      workers: 4,
      concurrency: 50,
    });
    const batchId = await fleet.enqueue(posts(1_500, 'accuracy-key', `${api.url}/records`, (row) => ({ json: { row } })));

    await fleet.expectAllSucceeded(batchId, { total: 1_500 }, 80);

    const { stats, arrivals } = await api.read();
    const seen = `rejected at ${JSON.stringify(rejectedAt(arrivals, 50, 5))} ms after the first arrival; ${achievedRate(arrivals).toFixed(1)}/s; busiest second ${maxInWindow(arrivals, 1_000)}`;
    console.info(`accuracy: ${seen}`);
    // Soft: one run reports all three figures.
    expect.soft(stats.limited, seen).toBe(0);
    expect.soft(maxInWindow(arrivals, 1_000), seen).toBeLessThanOrEqual(55);
    // A sanity floor: the 95% target is measured by the bench (npm run bench), where timing belongs.
    expect.soft(achievedRate(arrivals), seen).toBeGreaterThanOrEqual(0.9 * 50);
    expect(stats.created).toBe(1_500);
    expect(arrivals).toHaveLength(1_500 + stats.limited);
    // Every process took part.
    await waitFor(() => fleet.workers.every((worker) => worker.logs().some((line) => line.msg === 'attempt succeeded')), {
      what: 'a success logged by each worker',
    });
  }, 120_000);
});

describe('concurrency limits across worker processes', () => {
  it('a concurrency-5 key keeps 3 workers × 20 to 5 requests in flight at the target', async () => {
    const target = await localTarget();
    target.setDefault(() => ({ status: 200, json: { ok: true }, delayMs: 100 }));
    const fleet = await startFleet('concurrency', { limits: { 'conc-key': { concurrency: 5 } }, workers: 3, concurrency: 20 });
    const batchId = await fleet.enqueue(posts(150, 'conc-key', (i) => `${target.url}/conc/${i}`));

    await fleet.expectAllSucceeded(batchId, { total: 150 });
    expect(target.requests).toHaveLength(150);
    expect(target.maxInFlight).toBeLessThanOrEqual(5);
    // The limit is used, not just respected: several requests did run side by side.
    expect(target.maxInFlight).toBeGreaterThanOrEqual(3);
    expect(await fleet.limit('conc-key')).toMatchObject({ configured: { rate: null, concurrency: 5 }, inFlight: 0 });
  }, 60_000);
});

describe('what the target says', () => {
  it('a 429 with Retry-After: 2 pauses the key for every worker, and the batch completes', async () => {
    const target = await localTarget();
    // The 21st request on the route is answered 429 Retry-After: 2; every other one 200 after 20 ms.
    const ok = { status: 200, json: { ok: true }, delayMs: 20 };
    target.script('POST /ra', [
      ...Array.from({ length: 20 }, () => ok),
      { status: 429, headers: { 'retry-after': '2' }, json: { error: 'slow down' } },
      ok,
    ]);
    // No rate: the only thing that can hold the workers back is the pause.
    const fleet = await startFleet('retry-after', { limits: { 'ra-key': { concurrency: 100 } }, workers: 3, concurrency: 4 });
    const batchId = await fleet.enqueue(posts(200, 'ra-key', `${target.url}/ra`));

    await waitFor(() => target.requests.length > 20, { timeoutMs: 20_000, what: 'the 429 to be answered' });
    const during = await fleet.limit('ra-key');
    expect(during.pausedUntil).not.toBeNull();
    expect(during.recent429s).toBe(1);

    await fleet.expectAllSucceeded(batchId, { total: 200, retries: 1 });
    expect(target.requests).toHaveLength(201);

    const t429 = target.requests[20]!.startedAt;
    // Requests already on their way when the 429 was answered may still land just after it (at most
    // one per worker slot: 3 × 4)…
    const GRACE_MS = 250;
    expect(between(target.requests, t429, t429 + GRACE_MS).length).toBeLessThanOrEqual(12);
    // …then nothing from any worker until the pause is over.
    const after = target.requests.filter((request) => request.startedAt > t429 + GRACE_MS);
    expect(after.length).toBeGreaterThan(0);
    expect(Math.min(...after.map((request) => request.startedAt)) - t429).toBeGreaterThanOrEqual(1_900);
  }, 60_000);

  it('on a key with no configured limit, a Retry-After pause reaches every worker within the refresh interval (~1 s)', async () => {
    const target = await localTarget();
    const ok = { status: 200, json: { ok: true }, delayMs: 20 };
    target.script('POST /ra-free', [
      ...Array.from({ length: 20 }, () => ok),
      { status: 429, headers: { 'retry-after': '3' }, json: { error: 'slow down' } },
      ok,
    ]);
    // Nothing configured for the key: workers skip Redis for it until they learn of the pause.
    const fleet = await startFleet('retry-after-free', { workers: 3, concurrency: 4 });
    const batchId = await fleet.enqueue(posts(300, 'ra-free-key', `${target.url}/ra-free`));

    await fleet.expectAllSucceeded(batchId, { total: 300, retries: 1 });
    const t429 = target.requests[20]!.startedAt;
    // Within the refresh interval (1 s, plus a margin) every worker has stopped, until the 3 s are over.
    expect(between(target.requests, t429 + 1_500, t429 + 2_900)).toHaveLength(0);
    expect(target.requests.length).toBe(301);
  }, 60_000);

  it('a strict 20/s target behind a key configured 40/s: 429s teach the workers a lower rate, and every op succeeds', async () => {
    const api = await localApi(startDemoApi({ strictLimit: { requestsPerSecond: 20, burst: 2 }, failureRate: 0, rateLimitRate: 0 }));
    const fleet = await startFleet('adaptive', {
      limits: { 'adaptive-key': { requestsPerSecond: 40, burst: 4 } },
      workers: 3,
      concurrency: 20,
    });
    const batchId = await fleet.enqueue(posts(300, 'adaptive-key', `${api.url}/records`, (row) => ({ json: { row } })));

    await fleet.expectAllSucceeded(batchId, { total: 300 });
    const stats = api.stats();
    expect(stats.created).toBe(300);
    expect(stats.limited).toBeGreaterThan(0);
    // Far fewer 429s than requests: the workers slowed down instead of hammering.
    expect(stats.limited).toBeLessThan(60);

    const status = await fleet.limit('adaptive-key');
    expect(status.recent429s).toBeGreaterThan(0);
    expect(status.recent429s).toBe(stats.limited);
    expect(status.effectiveRate).not.toBeNull();
    expect(status.effectiveRate!).toBeLessThan(40);
  }, 60_000);
});

describe('operators', () => {
  it('limits pause stops every worker on the key within ~1.5 s; limits resume lets the batch finish', async () => {
    const target = await localTarget();
    const fleet = await startFleet('pause', { limits: { 'pause-key': { requestsPerSecond: 20, burst: 2 } }, workers: 2, concurrency: 10 });
    const batchId = await fleet.enqueue(posts(120, 'pause-key', (i) => `${target.url}/pause/${i}`));
    await waitFor(() => target.requests.length >= 30, { timeoutMs: 20_000, what: '30 requests' });

    const paused = await fleet.run(['limits', 'pause', 'pause-key']);
    expect(paused.code, paused.stderr).toBe(0);
    const pausedAt = now();
    expect(await fleet.limit('pause-key')).toMatchObject({ paused: true });
    const table = await fleet.run(['limits']);
    expect(table.stdout).toMatch(/pause-key .*yes \(operator\)/);
    // Nothing may start: wait out a window, then look.
    await pause(Math.max(0, pausedAt + 3_000 - now()));
    expect(between(target.requests, pausedAt + 1_500, pausedAt + 3_000)).toHaveLength(0);
    const beforeResume = target.requests.length;
    expect(beforeResume).toBeLessThan(100);

    const resumed = await fleet.run(['limits', 'resume', 'pause-key']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(await fleet.limit('pause-key')).toMatchObject({ paused: false, override: null });
    await fleet.expectAllSucceeded(batchId, { total: 120 });
    expect(target.requests).toHaveLength(120);
    // Never faster than the configured 20/s, burst 2 — also not when the paused jobs came back together.
    expect(
      maxInWindow(
        target.requests.map((r) => r.startedAt),
        1_000,
      ),
    ).toBeLessThanOrEqual(23);
  }, 60_000);

  it('limits set --rps 5 --ttl 30s: every worker slows to ~5/s within a couple of seconds; limits --json shows the override and its lifetime', async () => {
    const target = await localTarget();
    const fleet = await startFleet('set', { limits: { 'set-key': { requestsPerSecond: 20, burst: 2 } }, workers: 2, concurrency: 10 });
    await fleet.enqueue(posts(150, 'set-key', (i) => `${target.url}/set/${i}`));
    await waitFor(() => target.requests.length >= 20, { timeoutMs: 20_000, what: '20 requests' });

    const set = await fleet.run(['limits', 'set', 'set-key', '--rps', '5', '--ttl', '30s']);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain('limit key set-key updated for every worker for 30s');
    const setAt = now();
    const status = await fleet.limit('set-key');
    expect(status.configured).toEqual({ rate: 20, burst: 2, concurrency: null });
    expect(status.override).toMatchObject({ rate: 5, burst: null, concurrency: null });
    expect(status.override!.expiresInMs).toBeGreaterThan(20_000);
    expect(status.override!.expiresInMs).toBeLessThanOrEqual(30_000);
    const table = await fleet.run(['limits']);
    expect(table.stdout).toMatch(/set-key +20\/s burst 2 +5\/s \(\d+s left\)/);

    await pause(Math.max(0, setAt + 4_000 - now()));
    // From two seconds after the change: ~5/s (burst 2 from the config), so at most 5 × 2 + 2.
    const slowed = between(target.requests, setAt + 2_000, setAt + 4_000).length;
    expect(slowed).toBeLessThanOrEqual(12);
    expect(slowed).toBeGreaterThanOrEqual(6);
    expect((await fleet.limit('set-key')).effectiveRate).toBe(5);
    // The batch is far from done; the workers stop with the test.
    expect(target.requests.length).toBeLessThan(150);
  }, 60_000);

  // A job booked for a far slot is delayed in BullMQ until that slot; `limits set` wakes the
  // deferred jobs of its queue so they book again under the new schedule.
  it('limits set --rps 25 on a 5/s key with a backlog speeds the workers up within a couple of seconds', async () => {
    const target = await localTarget();
    const fleet = await startFleet('raise', { limits: { 'raise-key': { requestsPerSecond: 5, burst: 2 } }, workers: 2, concurrency: 10 });
    await fleet.enqueue(posts(150, 'raise-key', (i) => `${target.url}/raise/${i}`));
    await waitFor(() => target.requests.length >= 5, { timeoutMs: 20_000, what: '5 requests' });

    const set = await fleet.run(['limits', 'set', 'raise-key', '--rps', '25']);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toMatch(/^limit key raise-key updated for every worker; \d+ deferred operations in queue \S+ woken to book again$/m);
    const setAt = now();
    await pause(Math.max(0, setAt + 4_000 - now()));
    // 25/s would be ~50 in these two seconds; the old schedule gives ~10.
    expect(between(target.requests, setAt + 2_000, setAt + 4_000).length).toBeGreaterThanOrEqual(30);
  }, 60_000);
});

describe('a rate raised in the config file', () => {
  // The producer times a backlog's operations to their turns at the rate its config says (4/s: 40
  // operations take 10 s). A worker started with a config that says 200/s brings them forward, with
  // no `limits set` or `limits reset`: the backlog runs at the new rate, not at the old pace. (40:
  // all within the window at 200/s, 50 places: they were timed a slow slot apart all the same.)
  it('a backlog enqueued at the old rate runs at the new one once workers start with the new config', async () => {
    const target = await localTarget();
    const fleet = await startFleet('raised', { limits: { 'raised-key': { requestsPerSecond: 4, burst: 2 } }, workers: 0, concurrency: 20 });
    const batchId = await fleet.enqueue(posts(40, 'raised-key', (i) => `${target.url}/raised/${i}`));
    const raised = await cli.file(
      `${fleet.queue}.raised.json`,
      JSON.stringify({ limits: { 'raised-key': { requestsPerSecond: 200, burst: 10 } }, targets: cli.localTargets() }),
    );
    const [worker] = await cli.startWorkers(1, { concurrency: 20, env: { SLUICE_QUEUE: fleet.queue, SLUICE_CONFIG: raised } });
    const startedAt = now();
    await fleet.expectAllSucceeded(batchId, { total: 40 }, 30);
    const took = Math.max(...target.requests.map((request) => request.startedAt)) - startedAt;
    // 4/s would take 10 s; 200/s well under a second once the line is brought forward.
    expect(took).toBeLessThan(5_000);
    expect(target.requests).toHaveLength(40);
    expect(worker!.logs().some((line) => String(line.msg).includes('were brought forward to their turns'))).toBe(true);
  }, 60_000);
});

describe('failures', () => {
  it('workers ride through a Redis restart mid-batch (AOF): every op succeeds, nothing dead-lettered', async () => {
    const server = await startRedisServer({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
    onTestFinished(() => server.stop());
    const api = await localApi(startDemoApi({ failureRate: 0, rateLimitRate: 0 }));
    const fleet = await startFleet('restart', {
      limits: { 'restart-key': { requestsPerSecond: 30, burst: 3 } },
      workers: 3,
      concurrency: 20,
      env: { REDIS_URL: server.url },
    });
    // Before the API and the Redis: SIGTERM, as an operator would, and they must exit in time.
    onTestFinished(() => stopWorkers(fleet.workers));
    const batchId = await fleet.enqueue(posts(300, 'restart-key', `${api.url}/records`, (row) => ({ json: { row } })));

    await waitFor(() => api.arrivals().length >= 90, { timeoutMs: 20_000, what: '~3 s of requests' });
    const pid = server.pid;
    await server.restart();
    expect(server.pid).not.toBe(pid);

    await fleet.expectAllSucceeded(batchId, { total: 300 });
    const listed = await fleet.run(['dlq', 'list', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toBe('');
    // Each record once: a request repeated across the restart reused its idempotency key.
    expect(api.records()).toHaveLength(300);
    for (const worker of fleet.workers) {
      expect(worker.running()).toBe(true);
      expect(worker.logs().filter((line) => line.msg === 'job failed unexpectedly')).toEqual([]);
    }
    // The limit held across the restart (its state came back from the AOF).
    expect(maxInWindow(api.arrivals(), 1_000)).toBeLessThanOrEqual(36);
  }, 60_000);

  it('a worker SIGKILLed while holding concurrency leases: another worker starts requests on the key once the leases expire', async () => {
    const target = await localTarget();
    // The first two requests hang for 10 s (the worker dies meanwhile); later ones answer at once.
    const hang = { status: 200, json: {}, delayMs: 10_000 };
    target.script('POST /lease', [hang, hang, { status: 200, json: { ok: true } }]);
    const fleet = await startFleet('lease', {
      limits: { 'lease-key': { concurrency: 2 } },
      workers: 1,
      concurrency: 5,
      // Short locks so the dead worker's jobs come back within the test.
      workerEnv: { SLUICE_SHUTDOWN_TIMEOUT_MS: '1000', SLUICE_LOCK_DURATION_MS: '4000', SLUICE_STALLED_INTERVAL_MS: '2000' },
    });
    const [doomed] = fleet.workers;
    // total 3 s: the lease is 3 s + the 5 s margin = 8 s.
    const batchId = await fleet.enqueue(posts(4, 'lease-key', `${target.url}/lease`, () => ({ timeoutMs: { total: 3_000 } })));
    await waitFor(() => target.inFlight() === 2 && target.requests.length === 2, { timeoutMs: 20_000, what: 'two requests hanging' });
    const leasedAt = Math.min(...target.requests.map((request) => request.startedAt));
    expect((await fleet.limit('lease-key')).inFlight).toBe(2);

    await doomed!.kill();
    const killedAt = now();
    await fleet.startWorkers(1);
    await waitFor(() => target.requests.length >= 3, { timeoutMs: 15_000, what: 'a request after the kill' });
    const next = target.requests[2]!.startedAt;
    // Not before the dead worker's leases ran out…
    expect(next - leasedAt).toBeGreaterThanOrEqual(7_800);
    // …and soon after.
    expect(next - killedAt).toBeLessThanOrEqual(10_000);

    await fleet.expectAllSucceeded(batchId, { total: 4 });
  }, 60_000);
});

describe('head-of-line blocking', () => {
  it('200 ops on a 2/s key do not hold up 400 ops on an unlimited key in the same queue (< 2× their time alone)', async () => {
    const target = await localTarget();
    target.setDefault(() => ({ status: 200, json: { ok: true }, delayMs: 20 }));
    const fleet = await startFleet('hol', { limits: { 'hol-slow': { requestsPerSecond: 2, burst: 1 } }, workers: 2, concurrency: 10 });
    const fast = (phase: string, count: number) => posts(count, 'hol-free', (i) => `${target.url}/${phase}/${i}`);

    // Warm the workers up, then time the unlimited key alone.
    expect((await fleet.wait(await fleet.enqueue(fast('warm', 100)))).code).toBe(0);
    expect((await fleet.wait(await fleet.enqueue(fast('alone', 400)))).code).toBe(0);
    const alone = arrivalsUnder(target, '/alone/');
    const aloneMs = Math.max(...alone) - Math.min(...alone);

    // The slow key's operations first in the queue, then the same 400.
    const slow = posts(200, 'hol-slow', (i) => `${target.url}/slow/${i}`);
    await fleet.enqueue([...slow, ...fast('mixed', 400)]);
    await waitFor(() => arrivalsUnder(target, '/mixed/').length === 400, { timeoutMs: 30_000, what: 'the unlimited key to finish' });
    const batchStart = Math.min(...arrivalsUnder(target, '/slow/'), ...arrivalsUnder(target, '/mixed/'));
    const mixedMs = Math.max(...arrivalsUnder(target, '/mixed/')) - batchStart;
    expect(mixedMs, `alone ${aloneMs.toFixed(0)} ms, mixed ${mixedMs.toFixed(0)} ms`).toBeLessThan(2 * aloneMs);

    // Meanwhile the slow key kept to its 2/s.
    const slowArrivals = arrivalsUnder(target, '/slow/');
    const elapsedS = (Math.max(...arrivalsUnder(target, '/mixed/')) - batchStart) / 1_000;
    expect(slowArrivals.length).toBeLessThanOrEqual(Math.ceil(elapsedS * 2) + 2);
  }, 60_000);
});

describe('the line: a backlog waits its turn', () => {
  /** BullMQ's fetch counter (`ats`) summed over the queue's completed jobs, and their number. */
  async function fetchesOf(queue: string): Promise<{ jobs: number; fetches: number }> {
    const bull = new Queue(bullQueueName(queue), { connection: redis().client, prefix: PREFIX });
    try {
      const jobs = await bull.getJobs(['completed'], 0, -1);
      return { jobs: jobs.length, fetches: jobs.reduce((sum, job) => sum + job.attemptsStarted, 0) };
    } finally {
      await bull.close();
    }
  }

  it('limits set mid-backlog speeds up every queue on the key within 2 s; each job was fetched about once', async () => {
    const target = await localTarget();
    const limits = { 'shared-line': { requestsPerSecond: 5, burst: 2 } };
    const first = await startFleet('line-a', { limits, workers: 1, concurrency: 20 });
    const second = await startFleet('line-b', { limits, workers: 1, concurrency: 20 });
    await first.enqueue(posts(120, 'shared-line', (i) => `${target.url}/a/${i}`));
    await second.enqueue(posts(120, 'shared-line', (i) => `${target.url}/b/${i}`));
    await waitFor(() => target.requests.length >= 10, { timeoutMs: 20_000, what: '10 requests' });

    const set = await first.run(['limits', 'set', 'shared-line', '--rps', '40']);
    expect(set.code, set.stderr).toBe(0);
    // Woken in both queues, whichever queue's command set it.
    expect(set.stdout).toMatch(/deferred operations in queues \S+ \(\d+\), \S+ \(\d+\) woken/);
    const setAt = now();
    await pause(Math.max(0, setAt + 4_000 - now()));
    // 40/s shared is ~40 each in these two seconds; the old 5/s would give ~5 each.
    const window = between(target.requests, setAt + 2_000, setAt + 4_000);
    expect(window.filter((r) => r.path.startsWith('/a/')).length).toBeGreaterThanOrEqual(15);
    expect(window.filter((r) => r.path.startsWith('/b/')).length).toBeGreaterThanOrEqual(15);

    await waitFor(() => target.requests.length >= 240, { timeoutMs: 30_000, what: 'all 240 requests' });
    for (const fleet of [first, second]) await stopWorkers(fleet.workers);
    // Delayed to about their turn at enqueue, brought forward by the change: not fetched over and over.
    const counts = await Promise.all([fetchesOf(first.queue), fetchesOf(second.queue)]);
    const jobs = counts[0].jobs + counts[1].jobs;
    expect(jobs).toBe(240);
    // Brought forward to their turn at the new pace, not woken all at once: about one fetch each.
    expect((counts[0].fetches + counts[1].fetches) / jobs).toBeLessThan(1.15);
  }, 60_000);

  it('a backlog enqueued 3 s before the workers start: the line catches up: jobs not yet due are re-timed to their turn and fetched about once', async () => {
    const target = await localTarget();
    const fleet = await startFleet('line-cold', {
      limits: { 'cold-line': { requestsPerSecond: 40, burst: 4 } },
      workers: 0,
      concurrency: 20,
    });
    const batchId = await fleet.enqueue(posts(400, 'cold-line', (i) => `${target.url}/cold/${i}`));
    // The jobs were delayed to their turns from now; nobody serves them for 3 s, so the line will run
    // ~120 places behind those times: without catching up, every job would come back early and twice.
    await pause(3_000);
    await fleet.startWorkers(2);
    await fleet.expectAllSucceeded(batchId, { total: 400 });
    await stopWorkers(fleet.workers);

    const { jobs, fetches } = await fetchesOf(fleet.queue);
    expect(jobs).toBe(400);
    // The ~180 due before the workers were up (3 s and their start-up) are fetched twice, the rest
    // about once: 1.5-1.7 measured here; 2.04 when the line did not catch up (every job early, twice).
    expect(fetches / jobs).toBeLessThan(1.8);
    const arrivals = arrivalsUnder(target, '/cold/');
    // 400 at 40/s is 10 s: nobody left waiting past their turn.
    expect((Math.max(...arrivals) - Math.min(...arrivals)) / 1_000).toBeLessThan(1.2 * 10);
    expect(maxInWindow(arrivals, 1_000)).toBeLessThanOrEqual(44);
  }, 60_000);

  it("a lost line (the key's limiter state gone mid-backlog) is made anew in arrival order: nobody is left far in the future", async () => {
    const target = await localTarget();
    const fleet = await startFleet('line-lost', {
      limits: { 'lost-line': { requestsPerSecond: 30, burst: 3 } },
      workers: 2,
      concurrency: 20,
    });
    const batchId = await fleet.enqueue(posts(300, 'lost-line', (i) => `${target.url}/lost/${i}`));
    await waitFor(() => target.requests.length >= 60, { timeoutMs: 20_000, what: '~2 s of requests' });
    // As a Redis without persistence that restarted would leave it (the jobs kept by an AOF of their own, say).
    await redis().client.del(limiterKeys.state('lost-line'), limiterKeys.line('lost-line'));

    await fleet.expectAllSucceeded(batchId, { total: 300 });
    const arrivals = arrivalsUnder(target, '/lost/');
    const spanS = (Math.max(...arrivals) - Math.min(...arrivals)) / 1_000;
    // 300 at 30/s needs 10 s; jobs that held tickets of the old line took new ones when they came back.
    expect(spanS).toBeLessThan(1.2 * 10);
    expect(maxInWindow(arrivals, 1_000)).toBeLessThanOrEqual(36);
  }, 60_000);

  it('a worker SIGKILLed while its jobs hold places in line: no job lost, the others keep the pace', async () => {
    const target = await localTarget();
    const fleet = await startFleet('line-kill', {
      limits: { 'kill-line': { requestsPerSecond: 20, burst: 2 } },
      workers: 2,
      concurrency: 20,
      // Short locks so the dead worker's jobs come back within the test.
      workerEnv: { SLUICE_LOCK_DURATION_MS: '4000', SLUICE_STALLED_INTERVAL_MS: '2000' },
    });
    const batchId = await fleet.enqueue(posts(200, 'kill-line', (i) => `${target.url}/kill/${i}`));
    await waitFor(() => target.requests.length >= 40, { timeoutMs: 20_000, what: '~2 s of requests' });
    await fleet.workers[0]!.kill();
    const killedAt = now();

    await fleet.expectAllSucceeded(batchId, { total: 200 });
    const arrivals = arrivalsUnder(target, '/kill/').sort((a, b) => a - b);
    // The other worker kept sending while the dead one's jobs waited out their locks: no gap longer than a lock.
    const after = arrivals.filter((at) => at > killedAt);
    expect(Math.max(...gapsOf(after))).toBeLessThan(4_000);
    expect(new Set(target.requests.map((request) => request.path)).size).toBe(200);
  }, 60_000);
});

/** The gaps between consecutive times. */
function gapsOf(sorted: number[]): number[] {
  return sorted.slice(1).map((at, i) => at - sorted[i]!);
}
