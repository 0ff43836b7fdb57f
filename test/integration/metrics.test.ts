/**
 * Metrics end to end in one process: real workers publish to a real Redis, createFleetMetrics
 * renders what `GET /metrics` serves, and the counts are checked against what the target saw.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { parseSluiceConfig } from '../../src/config/sluice-config.js';
import { createLimitsAdmin } from '../../src/limits/limits-admin.js';
import { createFleetMetrics, type FleetMetrics } from '../../src/observability/fleet-metrics.js';
import { WORKER_SNAPSHOTS_KEY } from '../../src/redis/keys.js';
import { publishSnapshot, readLiveSnapshots } from '../../src/observability/worker-snapshots.js';
import { discoverQueues } from '../../src/queue/discover-queues.js';
import { createProducer } from '../../src/queue/producer.js';
import { createBatches } from '../../src/outcomes/batches.js';
import { createSluiceWorker } from '../../src/worker/sluice-worker.js';
import { parseExposition, type Exposition } from '../helpers/prom-text.js';
import { FAST_RETRY, startPipeline } from '../helpers/pipeline-harness.js';
import { testLogger, uniqueQueue, useRedisServer, waitFor } from '../helpers/redis.js';
import { startTestTarget } from '../helpers/target-server.js';

const redis = useRedisServer();

function fleetMetrics(config = parseSluiceConfig({})): FleetMetrics {
  const client = redis().client;
  const fleet = createFleetMetrics({ redis: client, queues: () => discoverQueues(client), config, queuesCacheMs: 0 });
  onTestFinished(() => fleet.close());
  return fleet;
}

/** Renders until `ready` accepts the parsed exposition (workers publish every 100 ms here). */
async function renderUntil(fleet: FleetMetrics, ready: (text: Exposition) => boolean, what: string): Promise<Exposition> {
  let last: Exposition | undefined;
  const found = await waitFor(
    async () => {
      last = parseExposition(await fleet.render());
      return ready(last) ? last : undefined;
    },
    { timeoutMs: 10_000, intervalMs: 100, what },
  ).catch((error: unknown) => {
    throw new Error(
      `${String(error)}; last render:\n${[...(last?.families.values() ?? [])].flatMap((family) => family.samples.map((s) => `${s.name}${JSON.stringify(s.labels)} ${s.value}`)).join('\n')}`,
    );
  });
  return found!;
}

describe('fleet metrics from real workers', () => {
  it('counts requests by limit key and status class, retries and dead letters by reason, and reads queue depth and limiter state', async () => {
    const config = parseSluiceConfig({ limits: { 'metrics-a': { requestsPerSecond: 200, burst: 10 }, 'metrics-b': { concurrency: 5 } } });
    const p = await startPipeline(redis(), { config, metricsIntervalMs: 100, warmUp: false });
    const second = await p.startWorker({ metricsIntervalMs: 100, warmUp: false });
    p.target.script('POST /flaky', [{ status: 500 }, { status: 200, json: {} }]);
    p.target.script('POST /limited', [{ status: 429 }, { status: 200, json: {} }]);
    p.target.script('POST /missing', [{ status: 404, json: { error: 'no such thing' } }]);
    p.target.script('POST /down', [{ status: 500 }]);
    const a = { limitKey: 'metrics-a' };
    const b = { limitKey: 'metrics-b' };
    const batchId = 'metrics';
    await p.producer.enqueueMany(
      [
        ...[1, 2, 3, 4].map(() => p.op('/ok', a)),
        p.op('/flaky', a),
        p.op('/limited', b),
        p.op('/missing', b),
        p.op('/missing', b),
        p.op('/down', { ...b, retry: { ...FAST_RETRY, attempts: 2 } }),
      ],
      { batchId },
    );
    // Jobs in a queue no worker serves: found by discoverQueues, reported as waiting work.
    const idle = uniqueQueue('idle');
    const idleProducer = createProducer({ connection: redis().client, queue: idle, config: p.config });
    await idleProducer.enqueueMany([p.op('/never'), p.op('/never')]);
    await idleProducer.close();

    expect(await p.settled(batchId)).toMatchObject({ total: 9, succeeded: 6, deadLettered: 3 });
    await createLimitsAdmin({ redis: redis().client, config }).pause('metrics-b');
    const fleet = fleetMetrics(config);
    const queue = { queue: p.queue };
    // The batch counts an outcome just before BullMQ moves its job to completed or failed, and a worker
    // counts a request when it is answered but a success only after its outcome is written: a snapshot
    // can fall between the two, so wait for every counter (they only grow) and for the job states.
    const settled = (t: Exposition) =>
      t.sum('sluice_requests_total', queue) === p.target.requests.length &&
      t.sum('sluice_dead_letters_total', queue) === 3 &&
      t.sum('sluice_operations_succeeded_total', queue) === 6 &&
      t.sum('sluice_retries_total', queue) === 3 &&
      t.sum('sluice_queue_jobs', { ...queue, state: 'completed' }) === 6 &&
      t.sum('sluice_queue_jobs', { ...queue, state: 'failed' }) === 3;
    const text = await renderUntil(fleet, settled, 'every request and dead letter to be published');

    // Per limit key and status class, summed over the two workers.
    expect(p.target.requests).toHaveLength(12);
    const requests = (limitKey: string, statusClass: string) =>
      text.sum('sluice_requests_total', { ...queue, limit_key: limitKey, status_class: statusClass });
    expect(requests('metrics-a', '2xx')).toBe(5);
    expect(requests('metrics-a', '5xx')).toBe(1);
    expect(requests('metrics-b', '2xx')).toBe(1);
    expect(requests('metrics-b', '4xx')).toBe(3);
    expect(requests('metrics-b', '5xx')).toBe(2);
    expect(text.sum('sluice_request_duration_seconds_count', { ...queue, limit_key: 'metrics-a' })).toBe(6);
    expect(text.sum('sluice_request_duration_seconds_count', { ...queue, limit_key: 'metrics-b' })).toBe(6);
    expect(text.sum('sluice_retries_total', { ...queue, reason: 'HTTP_500' })).toBe(2);
    expect(text.sum('sluice_retries_total', { ...queue, reason: 'HTTP_429' })).toBe(1);
    expect(text.sum('sluice_retries_total', queue)).toBe((await p.batches.status(batchId))!.retries);
    expect(text.sum('sluice_dead_letters_total', { ...queue, reason: 'permanent-status' })).toBe(2);
    expect(text.sum('sluice_dead_letters_total', { ...queue, reason: 'attempts-exhausted' })).toBe(1);
    expect(text.sum('sluice_operations_succeeded_total', queue)).toBe(6);

    // Each worker publishes under its own id.
    const ids = [p.worker.metrics!.id, second.metrics!.id];
    expect(new Set(text.samples('sluice_operations_succeeded_total', queue).map((sample) => sample.labels['worker']))).toEqual(
      new Set(ids),
    );
    expect(text.sum('sluice_workers', queue)).toBe(2);

    // Read at scrape time.
    const jobs = (q: string, state: string) => text.sum('sluice_queue_jobs', { queue: q, state });
    expect(jobs(p.queue, 'completed')).toBe(6);
    expect(jobs(p.queue, 'failed')).toBe(3);
    expect(jobs(p.queue, 'active') + jobs(p.queue, 'waiting') + jobs(p.queue, 'prioritized') + jobs(p.queue, 'delayed')).toBe(0);
    expect(text.sum('sluice_dead_letters_stored', queue)).toBe(3);
    expect(jobs(idle, 'prioritized') + jobs(idle, 'waiting')).toBe(2);
    expect(text.samples('sluice_workers', { queue: idle })).toEqual([{ name: 'sluice_workers', labels: { queue: idle }, value: 0 }]);
    const keyA = { limit_key: 'metrics-a' };
    const keyB = { limit_key: 'metrics-b' };
    expect(text.sum('sluice_limiter_effective_rate_per_second', keyA)).toBe(200);
    expect(text.sum('sluice_limiter_in_flight', keyA) + text.sum('sluice_limiter_in_flight', keyB)).toBe(0);
    expect(text.sum('sluice_limiter_paused', keyA)).toBe(0);
    expect(text.sum('sluice_limiter_paused', keyB)).toBe(1);
    await createLimitsAdmin({ redis: redis().client, config }).resume('metrics-b');
  });

  it('counts OAuth2 token requests by target and outcome', async () => {
    const target = await startTestTarget();
    target.script('POST /oauth/token', [{ status: 503 }, { status: 200, json: { access_token: 'tok-1', expires_in: 3_600 } }]);
    const config = parseSluiceConfig({
      targets: {
        crm: {
          baseUrl: target.url,
          allowPrivateAddresses: true,
          auth: {
            type: 'oauth2ClientCredentials',
            tokenUrl: `${target.url}/oauth/token`,
            clientIdFromEnv: 'ID',
            clientSecretFromEnv: 'SECRET',
          },
        },
      },
    });
    const queue = uniqueQueue('oauth-metrics');
    const producer = createProducer({ connection: redis().url, queue, config });
    const worker = createSluiceWorker({
      connection: redis().url,
      logger: testLogger(),
      queue,
      config,
      env: { ID: 'client', SECRET: 'secret-5f2e' },
      concurrency: 5,
      warmUp: false,
      metricsIntervalMs: 100,
    });
    onTestFinished(async () => {
      await worker.close({ force: true });
      await producer.close();
    });
    await worker.ready();
    const { batchId } = await producer.enqueueMany(
      [1, 2, 3].map((n) => ({ method: 'POST', target: 'crm', url: `/things/${n}`, retry: FAST_RETRY })),
    );
    await waitFor(async () => (await createBatches(redis().client, queue).status(batchId))?.succeeded === 3, {
      what: 'the batch to succeed',
    });

    const text = await renderUntil(
      fleetMetrics(config),
      (t) => t.sum('sluice_operations_succeeded_total', { queue }) === 3,
      'the successes to be published',
    );
    expect(text.sum('sluice_token_requests_total', { queue, target: 'crm', outcome: 'failed' })).toBe(1);
    expect(text.sum('sluice_token_requests_total', { queue, target: 'crm', outcome: 'success' })).toBe(1);
    expect(text.sum('sluice_requests_total', { queue, limit_key: 'crm', status_class: '2xx' })).toBe(3);
  });
});

describe('worker snapshots in Redis', () => {
  it('publishes once more on close, so the last jobs are counted', async () => {
    const p = await startPipeline(redis(), { metricsIntervalMs: 60_000, warmUp: false });
    const fleet = fleetMetrics();
    // Published once when it started taking jobs.
    await renderUntil(fleet, (t) => t.sum('sluice_workers', { queue: p.queue }) === 1, 'the worker to appear');
    await p.producer.enqueue(p.op('/once'), { batchId: 'close' });
    await p.settled('close');
    expect(parseExposition(await fleet.render()).sum('sluice_requests_total', { queue: p.queue })).toBe(0);

    await p.worker.close();
    const text = parseExposition(await fleet.render());
    expect(text.sum('sluice_requests_total', { queue: p.queue, worker: p.worker.metrics!.id, status_class: '2xx' })).toBe(1);
    // A stopped worker's series stay until its entry goes stale (60 s), long enough for a scrape.
    expect(text.sum('sluice_workers', { queue: p.queue })).toBe(1);
  });

  it('ignores and removes entries past their stale time; sends nothing with metrics: false', async () => {
    const client = redis().client;
    await publishSnapshot(client, { worker: 'gone:1:000000', queue: 'q-stale', metrics: [] }, 50);
    await publishSnapshot(client, { worker: 'live:2:000000', queue: 'q-live', metrics: [] }, 60_000);
    expect((await readLiveSnapshots(client)).map((s) => s.worker)).toEqual(expect.arrayContaining(['gone:1:000000', 'live:2:000000']));
    await new Promise((resolve) => setTimeout(resolve, 120));
    const live = await readLiveSnapshots(client);
    expect(live.map((s) => s.worker)).not.toContain('gone:1:000000');
    expect(live.find((s) => s.worker === 'live:2:000000')).toMatchObject({ queue: 'q-live', metrics: [] });
    expect(await client.hexists(WORKER_SNAPSHOTS_KEY, 'gone:1:000000')).toBe(0);

    // With no server reading, publishers clear dead workers' entries themselves (one random entry per publish)…
    await publishSnapshot(client, { worker: 'dead:3:000000', queue: 'q-stale', metrics: [] }, 50);
    await new Promise((resolve) => setTimeout(resolve, 120));
    await waitFor(
      async () => {
        await publishSnapshot(client, { worker: 'live:2:000000', queue: 'q-live', metrics: [] }, 60_000);
        return (await client.hexists(WORKER_SNAPSHOTS_KEY, 'dead:3:000000')) === 0;
      },
      { what: 'a publisher to remove the stale entry' },
    );
    // …and the hash expires once nobody publishes any more (after the longest keep: a worker of the
    // close test above publishes every 60 s, so it keeps its entry 180 s).
    const ttl = await client.pttl(WORKER_SNAPSHOTS_KEY);
    expect(ttl).toBeGreaterThan(50_000);
    expect(ttl).toBeLessThanOrEqual(180_000);
    await client.hdel(WORKER_SNAPSHOTS_KEY, 'live:2:000000');

    const p = await startPipeline(redis(), { metrics: false, warmUp: false });
    await p.producer.enqueue(p.op('/quiet'), { batchId: 'quiet' });
    await p.settled('quiet');
    await p.worker.close();
    expect(p.worker.metrics).toBeUndefined();
    expect((await readLiveSnapshots(client)).filter((s) => s.queue === p.queue)).toEqual([]);
  });
});

describe('discoverQueues', () => {
  it('finds the queues that have jobs, and only sluice queues', async () => {
    const client = redis().client;
    const names = [uniqueQueue('found'), uniqueQueue('found')];
    for (const queue of names) {
      const producer = createProducer({ connection: client, queue, config: parseSluiceConfig({ allowedHosts: ['*'] }) });
      await producer.enqueue({ method: 'GET', url: 'https://api.example.com/x' });
      await producer.close();
    }
    await client.set('sluice:{not a queue}:meta', '1');
    await client.set('other:{q}:meta', '1');
    const found = await discoverQueues(client, { scanCount: 10 });
    expect(found).toEqual(expect.arrayContaining(names));
    expect(found).not.toContain('not a queue');
    expect(found).toEqual([...found].sort());
    expect(await discoverQueues(client, { limit: 1 })).toHaveLength(1);
    await client.del('sluice:{not a queue}:meta', 'other:{q}:meta');
  });
});
