/**
 * The circuit breaker of a limit key, against a real redis-server: two limiters on two clients stand
 * for two worker processes.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { parseSluiceConfig, type SluiceConfig } from '../../src/config/sluice-config.js';
import type { CircuitTransition, Gate, Limiter, LimiterOptions } from '../../src/limits/limiter.js';
import { createLimitsAdmin } from '../../src/limits/limits-admin.js';
import { Queue } from 'bullmq';
import { PREFIX, bullQueueName, limiterKeys } from '../../src/redis/keys.js';
import { bookingHolder, wakeCircuitWaiters } from '../../src/queue/wake-jobs.js';
import { startPipeline } from '../helpers/pipeline-harness.js';
import { useRedisServer, waitFor } from '../helpers/redis.js';
import { startLimiterProcess } from '../helpers/limiter-process.js';

const redis = useRedisServer();

function limiterProcess(
  config: SluiceConfig,
  options: Partial<LimiterOptions> = {},
): { limiter: Limiter; transitions: CircuitTransition[] } {
  const transitions: CircuitTransition[] = [];
  const limiter = startLimiterProcess(redis().url, config, {
    refreshIntervalMs: 100,
    onCircuitTransition: (transition) => transitions.push(transition),
    ...options,
  });
  return { limiter, transitions };
}

/** A target `key` with a quick circuit: 10 attempts, half failed, probes from 300 ms. */
function config(key: string, circuit: Record<string, unknown> | false = {}): SluiceConfig {
  const quick = { minAttempts: 10, windowMs: 10_000, probeIntervalMs: 300, maxProbeIntervalMs: 1_200 };
  return parseSluiceConfig({
    targets: { [key]: { baseUrl: 'http://127.0.0.1:1', circuit: circuit === false ? false : { ...quick, ...circuit } } },
  });
}

const refused = { failure: 'network' } as const;
const ok = { status: 200 } as const;

/** Acquires until the limiter answers `kind` (a probe's time comes, a refresh sees the state). */
async function acquireUntil<K extends Gate['kind']>(
  limiter: Limiter,
  key: string,
  jobId: string,
  kind: K,
): Promise<Extract<Gate, { kind: K }>> {
  let found: Extract<Gate, { kind: K }> | undefined;
  await waitFor(
    async () => {
      const gate = await limiter.acquire([key], jobId, 5_000);
      if (gate.kind === kind) found = gate as Extract<Gate, { kind: K }>;
      return found !== undefined;
    },
    { what: `${jobId} to get ${kind} on ${key}`, timeoutMs: 3_000 },
  );
  return found!;
}

async function open(limiter: Limiter, key: string): Promise<void> {
  for (let i = 0; i < 10; i++) limiter.recordOutcome([key], refused, []);
}

describe('circuit breaker', () => {
  it('opens for the whole fleet once enough attempts failed, and lets nothing through but a probe', async () => {
    const cfg = config('down-a');
    const a = limiterProcess(cfg);
    const b = limiterProcess(cfg);
    expect((await b.limiter.acquire(['down-a'], 'job-0', 5_000)).kind).toBe('go');

    await open(a.limiter, 'down-a');
    await waitFor(() => a.transitions.length > 0, { what: 'the circuit to open' });
    expect(a.transitions).toEqual([{ key: 'down-a', to: 'opened', attempts: 10, failures: 10 }]);
    // The other process notices within its refresh interval, and defers without a request.
    const gate = await acquireUntil(b.limiter, 'down-a', 'job-1', 'circuit-open');
    expect(gate.waitMs).toBeGreaterThan(0);
    expect(gate.maxOpenMs).toBe(86_400_000);
    const status = (await createLimitsAdmin({ redis: redis().client, config: cfg }).list()).find((entry) => entry.key === 'down-a')!;
    expect(status.circuit).toMatchObject({ state: 'open', attempts: 10, failures: 10, opened: 1, closed: 0 });
    expect(status.circuit!.openSince).not.toBeNull();
  });

  it('stays closed while fewer than failureRatio of the attempts fail', async () => {
    const cfg = config('flaky-b');
    const a = limiterProcess(cfg);
    for (let i = 0; i < 100; i++) a.limiter.recordOutcome(['flaky-b'], i % 5 < 2 ? { status: 503 } : ok, []);
    await a.limiter.close();
    expect(a.transitions).toEqual([]);
    expect(await redis().client.hget(limiterKeys.state('flaky-b'), 'circuit')).toBeNull();
    // 404s and 429s are answers: the target is up.
    for (let i = 0; i < 40; i++) a.limiter.recordOutcome(['flaky-b'], { status: i % 2 ? 404 : 429 }, []);
    expect(a.transitions).toEqual([]);
  });

  it('sends one probe at a time; a failed probe doubles the interval, a good one closes the circuit', async () => {
    const cfg = config('probe-c');
    const { limiter, transitions } = limiterProcess(cfg);
    await open(limiter, 'probe-c');
    await waitFor(() => transitions.length === 1, { what: 'the circuit to open' });

    const probe = await acquireUntil(limiter, 'probe-c', 'job-p1', 'go');
    expect(probe.probes).toEqual(['probe-c']);
    // While the probe is out, nobody else goes.
    const other: Gate = await limiter.acquire(['probe-c'], 'job-x', 5_000);
    expect(other.kind).toBe('circuit-open');
    // The waiting job is recorded to be woken when the circuit closes.
    expect(await redis().client.zrange(limiterKeys.circuitWaiting('probe-c'), 0, -1)).toContain('job-x');

    limiter.recordOutcome(['probe-c'], refused, probe.probes!);
    await waitFor(async () => (await redis().client.hget(limiterKeys.state('probe-c'), 'probeMs')) === '600', {
      what: 'the probe interval to double',
    });

    const second = await acquireUntil(limiter, 'probe-c', 'job-p2', 'go');
    limiter.recordOutcome(['probe-c'], ok, second.probes!);
    await waitFor(() => transitions.length === 2, { what: 'the circuit to close' });
    expect(transitions[1]).toMatchObject({ key: 'probe-c', to: 'closed' });
    // Starts go again (acquireUntil: a start that came back late for its 10/s slot books the next one).
    await acquireUntil(limiter, 'probe-c', 'job-after', 'go');
    // Closed, with no rate of its own imposed: the waiting jobs are woken in a slow start instead.
    const state = await redis().client.hmget(limiterKeys.state('probe-c'), 'decRate', 'circuit');
    expect(state).toEqual([null, null]);
  });

  it('gives an unused probe back to the next start', async () => {
    const cfg = config('abandon-d');
    const { limiter, transitions } = limiterProcess(cfg);
    await open(limiter, 'abandon-d');
    await waitFor(() => transitions.length === 1, { what: 'the circuit to open' });
    const probe = await acquireUntil(limiter, 'abandon-d', 'job-p', 'go');
    // Never sent (its credentials failed, or the worker stopped): the next start may probe.
    limiter.recordOutcome(['abandon-d'], undefined, probe.probes!);
    const next = await acquireUntil(limiter, 'abandon-d', 'job-q', 'go');
    expect(next.probes).toEqual(['abandon-d']);
  });

  it('is opened and closed by hand, and refuses to when the key has no circuit', async () => {
    const cfg = parseSluiceConfig({
      targets: {
        'hand-e': { baseUrl: 'http://127.0.0.1:1', circuit: { probeIntervalMs: 60_000 } },
        'off-f': { baseUrl: 'http://127.0.0.1:1', circuit: false },
      },
    });
    const admin = createLimitsAdmin({ redis: redis().client, config: cfg });
    const { limiter } = limiterProcess(cfg);
    expect(await admin.circuit('hand-e', 'open')).toBe('opened');
    expect(await admin.circuit('hand-e', 'open')).toBe('');
    await waitFor(async () => (await limiter.acquire(['hand-e'], 'job-1', 5_000)).kind === 'circuit-open', {
      what: 'the hand-opened circuit to hold jobs',
    });
    expect(await admin.circuit('hand-e', 'close')).toBe('closed');
    await acquireUntil(limiter, 'hand-e', 'job-2', 'go');
    await expect(admin.circuit('off-f', 'open')).rejects.toThrow(/circuit breaker of off-f is off/);
  });

  it('never opens with circuit: false', async () => {
    const cfg = config('off-g', false);
    const { limiter, transitions } = limiterProcess(cfg);
    for (let i = 0; i < 50; i++) limiter.recordOutcome(['off-g'], refused, []);
    await limiter.close();
    expect(transitions).toEqual([]);
    expect(await redis().client.exists(limiterKeys.circuitWindow('off-g'))).toBe(0);
  });
});

describe('an operation waiting on an open circuit', () => {
  it('spends no attempt while it waits, and is dead-lettered as circuit-open once it has waited longer than maxOpenMs', async () => {
    const p = await startPipeline(redis(), {
      config: parseSluiceConfig({
        circuits: { 'test-target': { minAttempts: 1, probeIntervalMs: 100, maxProbeIntervalMs: 200, maxOpenMs: 1_500 } },
      }),
    });
    p.target.script('POST /down', [{ status: 0, destroy: true }]);
    const { batchId } = await p.producer.enqueue(
      { method: 'POST', target: 'test-target', url: '/down', retry: { attempts: 100, baseDelayMs: 10, maxDelayMs: 50 } },
      { batchId: 'circuit-waits' },
    );
    const status = await p.settled(batchId!, 20_000);
    expect(status).toMatchObject({ total: 1, succeeded: 0, deadLettered: 1 });
    const [letter] = await p.deadLetters.list({ batchId: batchId! });
    expect(letter).toMatchObject({ reason: 'circuit-open', limitKey: 'test-target' });
    expect(letter!.message).toMatch(
      /^the circuit of test-target has been open for \d+ s; the operation waited \d+ s in all, longer than the circuit's maxOpenMs \(1500 ms\)/,
    );
    // Its attempts are the failure that opened the circuit and the failed probes, not 100 tries.
    expect(letter!.attempts.length).toBeLessThan(20);
    expect(p.requestsTo('/down').length).toBe(letter!.attempts.length);
  });
});

describe('waking the jobs a closed circuit held', () => {
  it('wakes them in a slow start: 10 in the first second, twice as many each second after, in every queue', async () => {
    const client = redis().client;
    const queues = ['slow-start-a', 'slow-start-b'].map((name) => ({
      name,
      bull: new Queue(bullQueueName(name), { connection: client, prefix: PREFIX }),
    }));
    onTestFinished(async () => {
      await Promise.all(queues.map(({ bull }) => bull.close()));
    });
    for (let i = 0; i < 45; i++) {
      const { name, bull } = queues[i % 2]!;
      await bull.add('op', { op: {} }, { jobId: `w-${i}`, delay: 3_600_000 });
      await client.zadd(limiterKeys.circuitWaiting('slow-start'), i, bookingHolder(name, `w-${i}`));
    }
    const pauses: number[] = [];
    const rounds: number[] = [];
    let before = 0;
    const woken = await wakeCircuitWaiters(client, 'slow-start', 'unused', async (ms) => {
      pauses.push(ms);
      const delayed = (await Promise.all(queues.map(({ bull }) => bull.getDelayedCount()))).reduce((a, b) => a + b, 0);
      rounds.push(45 - delayed - before);
      before = 45 - delayed;
    });
    expect(woken).toBe(45);
    // 10, 20, then the last 15 (no pause after the last round).
    expect(rounds).toEqual([10, 20]);
    expect(pauses.every((ms) => ms >= 0 && ms <= 1_000)).toBe(true);
    expect(await Promise.all(queues.map(({ bull }) => bull.getDelayedCount()))).toEqual([0, 0]);
  });
});
