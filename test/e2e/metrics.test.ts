/**
 * Metrics across processes: two `sluice worker` processes publish their own counts (and their
 * process's default metrics) to Redis, and `sluice server`'s /metrics shows each of them, in names
 * that Prometheus's own linter (promtool) accepts.
 */
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { parseSluiceConfig } from '../../src/config/sluice-config.js';
import { createBatches } from '../../src/outcomes/batches.js';
import { createProducer } from '../../src/queue/producer.js';
import { useCli } from '../helpers/cli-process.js';
import { PROM_CLIENT_MISNAMED_GAUGES, namingProblems, parseExposition, type Exposition } from '../helpers/prom-text.js';
import { promtoolProblems } from '../helpers/promtool.js';
import { uniqueQueue, useRedisServer, waitFor } from '../helpers/redis.js';
import { startTestTarget } from '../helpers/target-server.js';

const redis = useRedisServer();
const cli = useCli(() => ({ REDIS_URL: redis().url }));
const READER = 'e2e-metrics-reader-0123456789';

describe('metrics of worker processes (built binary)', () => {
  it("two workers publish their own request counts; both appear at the server's /metrics and add up to what the target saw", async () => {
    const queue = uniqueQueue('e2e-metrics');
    const target = await startTestTarget();
    // Every tenth item fails once (a retry); each answer takes a little while, so both workers get work.
    const seen = new Set<string>();
    target.setDefault((request) => {
      const first = !seen.has(request.path);
      seen.add(request.path);
      const n = Number(request.path.split('/').pop());
      return first && n % 10 === 0 ? { status: 503, delayMs: 10 } : { status: 200, json: { ok: true }, delayMs: 10 };
    });
    await cli.allowLocal(target.url);
    const env = { SLUICE_QUEUE: queue, SLUICE_METRICS_INTERVAL_MS: '200', SLUICE_API_TOKENS: `${READER}:read` };
    // The second worker turns its process metrics off (SLUICE_PROCESS_METRICS=false).
    const workers = [
      ...(await cli.startWorkers(1, { concurrency: 4, env })),
      ...(await cli.startWorkers(1, { concurrency: 4, env: { ...env, SLUICE_PROCESS_METRICS: 'false' } })),
    ];
    const server = cli.spawn(['server', '--port', '0'], { env });
    const base = String((await server.waitForLog('server listening'))['address']);
    const scrape = async () => {
      const response = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${READER}` } });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toContain('text/plain; version=0.0.4');
      return response.text();
    };

    const client = redis().client;
    const producer = createProducer({ connection: client, queue, config: parseSluiceConfig({ targets: cli.localTargets() }) });
    const { batchId } = await producer.enqueueMany(
      Array.from({ length: 80 }, (_, n) => ({
        method: 'POST',
        url: `${target.url}/items/${n}`,
        json: { n },
        retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 50 },
      })),
    );
    await producer.close();
    await waitFor(async () => (await createBatches(client, queue).status(batchId))?.succeeded === 80, {
      timeoutMs: 60_000,
      what: 'the batch to succeed',
    });
    expect(target.requests).toHaveLength(88);

    const published = (text: Exposition) => text.sum('sluice_requests_total', { queue });
    // waitFor only returns a truthy value.
    let raw = '';
    const text = (await waitFor(
      async () => {
        raw = await scrape();
        const parsed = parseExposition(raw);
        // The batch counts an outcome just before BullMQ moves its job to completed: wait for both.
        return published(parsed) === target.requests.length && parsed.sum('sluice_queue_jobs', { queue, state: 'completed' }) === 80
          ? parsed
          : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 100, what: 'every request to be published' },
    ))!;

    // One series set per process, each labelled with its host and pid.
    const perWorker = new Map<string, number>();
    for (const sample of text.samples('sluice_requests_total', { queue })) {
      perWorker.set(sample.labels['worker']!, (perWorker.get(sample.labels['worker']!) ?? 0) + sample.value);
    }
    expect(perWorker.size).toBe(2);
    for (const worker of workers) {
      const id = [...perWorker.keys()].find((key) => key.startsWith(`${hostname()}:${worker.pid}:`));
      expect(id, `a series for pid ${worker.pid} in ${[...perWorker.keys()].join(', ')}`).toBeDefined();
      expect(perWorker.get(id!)).toBeGreaterThan(0);
    }
    expect([...perWorker.values()].reduce((sum, count) => sum + count, 0)).toBe(88);
    const key = { limit_key: new URL(target.url).host };
    expect(text.sum('sluice_requests_total', { queue, ...key, status_class: '2xx' })).toBe(80);
    expect(text.sum('sluice_requests_total', { queue, ...key, status_class: '5xx' })).toBe(8);
    expect(text.sum('sluice_retries_total', { queue, reason: 'HTTP_503' })).toBe(8);
    expect(text.sum('sluice_request_duration_seconds_count', { queue, ...key })).toBe(88);
    expect(text.sum('sluice_operations_succeeded_total', { queue })).toBe(80);
    expect(text.sum('sluice_workers', { queue })).toBe(2);
    expect(text.sum('sluice_queue_jobs', { queue, state: 'completed' })).toBe(80);

    // Each process's default metrics: the workers' under their worker label, the server's own unlabelled.
    const idOf = (pid: number) => [...perWorker.keys()].find((key) => key.startsWith(`${hostname()}:${pid}:`))!;
    const [withProcess, without] = [idOf(workers[0]!.pid), idOf(workers[1]!.pid)];
    expect(text.sum('process_resident_memory_bytes', { worker: withProcess, queue })).toBeGreaterThan(0);
    expect(text.sum('nodejs_heap_size_used_bytes', { worker: withProcess, queue })).toBeGreaterThan(0);
    expect(text.samples('process_start_time_seconds', { worker: withProcess })).toHaveLength(1);
    expect(text.samples('process_start_time_seconds', { worker: without })).toHaveLength(0);
    expect(text.samples('nodejs_heap_size_used_bytes', { worker: without })).toHaveLength(0);
    const own = (name: string) => text.samples(name).filter((sample) => sample.labels['worker'] === undefined);
    expect(own('process_cpu_seconds_total')).toHaveLength(1);
    expect(own('nodejs_version_info')[0]?.labels['version']).toMatch(/^v\d+\./);

    // The conventions, checked twice: by name here, and by Prometheus's own parser and linter, which
    // flags nothing but prom-client's three `_total` gauges.
    expect(namingProblems(text)).toEqual([]);
    const linted = await promtoolProblems(raw);
    expect(linted.map((line) => line.split(' ')[0]).sort()).toEqual([...PROM_CLIENT_MISNAMED_GAUGES].sort());

    // Stopped workers publish a last time; their series stay until their entries go stale.
    for (const worker of workers) worker.signal('SIGTERM');
    for (const worker of workers) expect((await worker.waitForExit()).code).toBe(0);
    expect(published(parseExposition(await scrape()))).toBe(88);
  }, 90_000);
});
