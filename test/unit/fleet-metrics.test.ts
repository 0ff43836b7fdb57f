import { describe, expect, it } from 'vitest';
import { NetworkError, ShutdownAbortError, TimeoutError, AuthError } from '../../src/errors.js';
import { renderFleetMetrics, JOB_STATES, type FleetSnapshot } from '../../src/observability/fleet-metrics.js';
import { OTHER_LIMIT_KEY, createWorkerMetrics, statusClassOf, type WorkerMetrics } from '../../src/observability/metrics.js';
import type { WorkerSnapshot } from '../../src/observability/worker-snapshots.js';
import type { LimitStatus } from '../../src/limits/limits-admin.js';
import { processMetricsRegistry } from '../../src/observability/process-metrics.js';
import { PROM_CLIENT_MISNAMED_GAUGES, namingProblems, parseExposition } from '../helpers/prom-text.js';

/** What a worker publishes, through JSON as it travels through Redis. */
async function snapshot(worker: string, queue: string, metrics: WorkerMetrics): Promise<WorkerSnapshot> {
  const json = JSON.parse(JSON.stringify(await metrics.registry.getMetricsAsJSON())) as WorkerSnapshot['metrics'];
  return { worker, queue, at: Date.now(), metrics: json };
}

const limit = (key: string, over: Partial<LimitStatus> = {}): LimitStatus => ({
  key,
  configured: null,
  override: null,
  effectiveRate: null,
  inFlight: 0,
  paused: false,
  pausedUntil: null,
  recent429s: 0,
  queued: 0,
  lastSeen: null,
  circuit: null,
  ...over,
});

const emptyQueue = (queue: string) => ({ queue, jobs: Object.fromEntries(JOB_STATES.map((state) => [state, 0])), deadLetters: 0 });

describe('statusClassOf', () => {
  it('classes a response by its status and an attempt without one by its error', () => {
    expect(statusClassOf(200, undefined)).toBe('2xx');
    expect(statusClassOf(204, undefined)).toBe('2xx');
    expect(statusClassOf(308, undefined)).toBe('3xx');
    expect(statusClassOf(404, undefined)).toBe('4xx');
    expect(statusClassOf(429, undefined)).toBe('4xx');
    expect(statusClassOf(503, undefined)).toBe('5xx');
    expect(statusClassOf(undefined, new TimeoutError('headers', 100))).toBe('timeout');
    expect(statusClassOf(undefined, new NetworkError('refused', 'ECONNREFUSED'))).toBe('network');
    expect(statusClassOf(undefined, new ShutdownAbortError())).toBe('aborted');
    expect(statusClassOf(undefined, new AuthError('no token', { retryable: true }))).toBe('error');
    expect(statusClassOf(undefined, new Error('?'))).toBe('error');
  });
});

describe('createWorkerMetrics', () => {
  it('uses a registry of its own, so two workers in one process do not clash', async () => {
    const a = createWorkerMetrics();
    const b = createWorkerMetrics();
    a.request('k', '2xx', 10);
    expect(a.registry).not.toBe(b.registry);
    const text = parseExposition(await b.registry.metrics());
    expect(text.sum('sluice_requests_total')).toBe(0);
  });

  it(`counts limit keys past maxLimitKeys as ${OTHER_LIMIT_KEY}`, async () => {
    const metrics = createWorkerMetrics({ maxLimitKeys: 2 });
    for (const key of ['a', 'b', 'c', 'd', 'a']) metrics.request(key, '2xx', 5);
    const text = parseExposition(await metrics.registry.metrics());
    expect(text.sum('sluice_requests_total', { limit_key: 'a' })).toBe(2);
    expect(text.sum('sluice_requests_total', { limit_key: 'b' })).toBe(1);
    expect(text.sum('sluice_requests_total', { limit_key: OTHER_LIMIT_KEY })).toBe(2);
    expect(text.sum('sluice_request_duration_seconds_count', { limit_key: OTHER_LIMIT_KEY })).toBe(2);
    expect(() => createWorkerMetrics({ maxLimitKeys: 0 })).toThrow(/maxLimitKeys: expected a whole number of at least 1, received 0/);
  });

  it("carries the process's default metrics, unprefixed (process_*, nodejs_*), unless processMetrics: false", async () => {
    const names = async (metrics: WorkerMetrics) => (await metrics.registry.getMetricsAsJSON()).map((metric) => metric.name);
    const withDefaults = await names(createWorkerMetrics());
    for (const name of [
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'process_start_time_seconds',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_p99_seconds',
      'nodejs_gc_duration_seconds',
      'nodejs_version_info',
    ])
      expect(withDefaults).toContain(name);
    expect(withDefaults.filter((name) => name.startsWith('sluice_process') || name.startsWith('sluice_nodejs'))).toEqual([]);
    const without = await names(createWorkerMetrics({ processMetrics: false }));
    expect(without.every((name) => name.startsWith('sluice_'))).toBe(true);
    expect(without).toContain('sluice_requests_total');
    // One collector per process, however many workers it runs.
    expect(processMetricsRegistry()).toBe(processMetricsRegistry());
  });
});

describe('renderFleetMetrics', () => {
  it('merges several workers into one valid exposition: one HELP and TYPE per name, a series per worker', async () => {
    const one = createWorkerMetrics();
    const two = createWorkerMetrics();
    const awkward = 'tenant "7"\\east\nline';
    one.request('orders', '2xx', 40);
    one.request('orders', '2xx', 120);
    one.request('orders', '5xx', 3_000);
    one.request(awkward, '4xx', 7);
    one.retry('HTTP_503');
    one.deadLetter('permanent-status');
    one.succeeded();
    one.tokenRequest('crm', 'success');
    two.request('orders', '2xx', 20);
    two.request('orders', 'timeout', 61_000);
    two.retry('HTTP_503');
    two.retry('TIMEOUT_TOTAL');
    two.tokenRequest('crm', 'failed');
    const fleet: FleetSnapshot = {
      workers: [await snapshot('host-a:11:aaaaaa', 'orders', one), await snapshot('host-b:12:bbbbbb', 'bulk', two)],
      queues: [emptyQueue('orders'), emptyQueue('bulk')],
      limits: [],
    };

    const text = await renderFleetMetrics(fleet);
    for (const name of [
      'sluice_requests_total',
      'sluice_request_duration_seconds',
      'sluice_retries_total',
      'sluice_dead_letters_total',
      'sluice_token_requests_total',
    ]) {
      expect(text.split('\n').filter((line) => line.startsWith(`# HELP ${name} `))).toHaveLength(1);
      expect(text.split('\n').filter((line) => line.startsWith(`# TYPE ${name} `))).toHaveLength(1);
    }
    const parsed = parseExposition(text);
    expect(parsed.families.get('sluice_requests_total')?.type).toBe('counter');
    expect(parsed.families.get('sluice_request_duration_seconds')?.type).toBe('histogram');

    const a = { worker: 'host-a:11:aaaaaa', queue: 'orders' };
    const b = { worker: 'host-b:12:bbbbbb', queue: 'bulk' };
    expect(parsed.sum('sluice_requests_total', { ...a, limit_key: 'orders', status_class: '2xx' })).toBe(2);
    expect(parsed.sum('sluice_requests_total', { ...a, limit_key: 'orders', status_class: '5xx' })).toBe(1);
    expect(parsed.sum('sluice_requests_total', { ...b, limit_key: 'orders', status_class: '2xx' })).toBe(1);
    expect(parsed.sum('sluice_requests_total', { ...b, limit_key: 'orders', status_class: 'timeout' })).toBe(1);
    // Label values survive escaping: quotes, backslashes, newlines.
    expect(parsed.sum('sluice_requests_total', { ...a, limit_key: awkward, status_class: '4xx' })).toBe(1);
    // Not summed across workers: each worker's series stands alone.
    expect(
      parsed
        .samples('sluice_retries_total', { reason: 'HTTP_503' })
        .map((sample) => sample.labels['worker'])
        .sort(),
    ).toEqual([a.worker, b.worker]);
    expect(parsed.sum('sluice_retries_total', { ...b })).toBe(2);
    expect(parsed.sum('sluice_dead_letters_total', { ...a, reason: 'permanent-status' })).toBe(1);
    expect(parsed.sum('sluice_operations_succeeded_total', a)).toBe(1);
    expect(parsed.sum('sluice_token_requests_total', { ...b, target: 'crm', outcome: 'failed' })).toBe(1);
    // Histograms: 0.04 s and 0.12 s below 0.25, the 3 s attempt above; a 61 s one only in +Inf.
    expect(parsed.sum('sluice_request_duration_seconds_bucket', { ...a, limit_key: 'orders', le: '0.25' })).toBe(2);
    expect(parsed.sum('sluice_request_duration_seconds_bucket', { ...a, limit_key: 'orders', le: '+Inf' })).toBe(3);
    expect(parsed.sum('sluice_request_duration_seconds_sum', { ...a, limit_key: 'orders' })).toBeCloseTo(3.16, 6);
    expect(parsed.sum('sluice_request_duration_seconds_bucket', { ...b, limit_key: 'orders', le: '60' })).toBe(1);
    expect(parsed.sum('sluice_request_duration_seconds_count', { ...b, limit_key: 'orders' })).toBe(2);
  });

  it('adds the gauges read at scrape time: queue depth, stored dead letters, workers, limiter state', async () => {
    const worker = createWorkerMetrics();
    const fleet: FleetSnapshot = {
      workers: [await snapshot('h:1:a', 'orders', worker), await snapshot('h:2:b', 'orders', createWorkerMetrics())],
      queues: [
        { queue: 'orders', jobs: { waiting: 3, prioritized: 1_200, active: 50, delayed: 7, failed: 2, completed: 900 }, deadLetters: 2 },
        emptyQueue('idle'),
      ],
      limits: [
        limit('orders', { effectiveRate: 25, inFlight: 4, queued: 12 }),
        limit('tenant:42', { paused: true }),
        limit('partner', { pausedUntil: new Date(Date.now() + 5_000).toISOString(), effectiveRate: 1.5 }),
      ],
    };
    const parsed = parseExposition(await renderFleetMetrics(fleet));

    expect(parsed.sum('sluice_workers', { queue: 'orders' })).toBe(2);
    // A queue with jobs and no worker says so (an alert: backlog, no workers).
    expect(parsed.samples('sluice_workers', { queue: 'idle' })).toEqual([{ name: 'sluice_workers', labels: { queue: 'idle' }, value: 0 }]);
    expect(parsed.sum('sluice_queue_jobs', { queue: 'orders', state: 'prioritized' })).toBe(1_200);
    expect(parsed.sum('sluice_queue_jobs', { queue: 'orders', state: 'active' })).toBe(50);
    expect(
      parsed
        .samples('sluice_queue_jobs', { queue: 'idle' })
        .map((sample) => sample.labels['state'])
        .sort(),
    ).toEqual([...JOB_STATES].sort());
    expect(parsed.sum('sluice_dead_letters_stored', { queue: 'orders' })).toBe(2);
    expect(parsed.sum('sluice_limiter_effective_rate_per_second', { limit_key: 'orders' })).toBe(25);
    expect(parsed.sum('sluice_limiter_effective_rate_per_second', { limit_key: 'partner' })).toBe(1.5);
    // No rate limit: no series (0 would read as "stopped").
    expect(parsed.samples('sluice_limiter_effective_rate_per_second', { limit_key: 'tenant:42' })).toEqual([]);
    expect(parsed.sum('sluice_limiter_in_flight', { limit_key: 'orders' })).toBe(4);
    expect(parsed.sum('sluice_limiter_queued', { limit_key: 'orders' })).toBe(12);
    expect(parsed.sum('sluice_limiter_paused', { limit_key: 'orders' })).toBe(0);
    expect(parsed.sum('sluice_limiter_paused', { limit_key: 'tenant:42' })).toBe(1);
    expect(parsed.sum('sluice_limiter_paused', { limit_key: 'partner' })).toBe(1);
    for (const name of ['sluice_queue_jobs', 'sluice_workers', 'sluice_limiter_in_flight'])
      expect(parsed.families.get(name)?.type).toBe('gauge');
  });

  it("adds each limit key's circuit: open or closed, the operations waiting, and the transitions counted in Redis", async () => {
    const circuit = (state: 'open' | 'closed', waiting: number, opened: number, closed: number) => ({
      state,
      openSince: state === 'open' ? new Date().toISOString() : null,
      nextProbeAt: null,
      attempts: 30,
      failures: 25,
      waiting,
      opened,
      closed,
    });
    const parsed = parseExposition(
      await renderFleetMetrics({
        workers: [],
        queues: [],
        limits: [
          limit('down', { circuit: circuit('open', 1_200, 2, 1) }),
          limit('up', { circuit: circuit('closed', 0, 1, 1) }),
          limit('no-breaker', { circuit: null }),
        ],
      }),
    );
    expect(parsed.sum('sluice_circuit_open', { limit_key: 'down' })).toBe(1);
    expect(parsed.sum('sluice_circuit_open', { limit_key: 'up' })).toBe(0);
    expect(parsed.samples('sluice_circuit_open', { limit_key: 'no-breaker' })).toEqual([]);
    expect(parsed.sum('sluice_circuit_waiting', { limit_key: 'down' })).toBe(1_200);
    expect(parsed.sum('sluice_circuit_transitions_total', { limit_key: 'down', to: 'opened' })).toBe(2);
    expect(parsed.sum('sluice_circuit_transitions_total', { limit_key: 'down', to: 'closed' })).toBe(1);
    expect(parsed.families.get('sluice_circuit_transitions_total')?.type).toBe('counter');
  });

  it('is valid with no workers, no queues and no limit keys', async () => {
    const parsed = parseExposition(await renderFleetMetrics({ workers: [], queues: [], limits: [] }));
    expect(parsed.families.get('sluice_workers')?.samples).toEqual([]);
    expect(parsed.families.has('sluice_requests_total')).toBe(false);
  });

  it('drops published metrics that would break the exposition (bad name, a live gauge name, a type another worker gave differently)', async () => {
    const good = await snapshot('h:1:a', 'q', createWorkerMetrics());
    const odd: WorkerSnapshot = {
      worker: 'h:2:b',
      queue: 'q',
      at: Date.now(),
      metrics: [
        {
          name: 'sluice_requests_total',
          help: 'changed',
          type: 'gauge',
          aggregator: 'sum',
          values: [{ value: 5, labels: { limit_key: 'x' } }],
        },
        { name: 'bad name', help: 'x', type: 'counter', aggregator: 'sum', values: [{ value: 1, labels: {} }] },
        { name: 'sluice_workers', help: 'x', type: 'gauge', aggregator: 'sum', values: [{ value: 99, labels: {} }] },
        { name: 'sluice_new_in_next_version_total', help: 'new', type: 'counter', aggregator: 'omit', values: [{ value: 3, labels: {} }] },
      ] as unknown as WorkerSnapshot['metrics'],
    };
    good.metrics
      .find((metric) => metric.name === 'sluice_requests_total')!
      .values.push({ value: 1, labels: { limit_key: 'k', status_class: '2xx' } });
    const parsed = parseExposition(await renderFleetMetrics({ workers: [good, odd], queues: [emptyQueue('q')], limits: [] }));
    expect(parsed.families.get('sluice_requests_total')?.type).toBe('counter');
    expect(parsed.samples('sluice_requests_total', { worker: 'h:2:b' })).toEqual([]);
    expect(parsed.sum('sluice_workers')).toBe(2);
    // A metric only a newer worker has is passed on, its aggregator notwithstanding.
    expect(parsed.sum('sluice_new_in_next_version_total', { worker: 'h:2:b', queue: 'q' })).toBe(3);
  });
});

describe('names', () => {
  it("renders each worker's default metrics under its worker label and the server's own unlabelled; every name follows Prometheus's conventions", async () => {
    const one = createWorkerMetrics();
    const two = createWorkerMetrics();
    for (const metrics of [one, two]) {
      metrics.request('orders', '2xx', 40);
      metrics.retry('HTTP_503');
      metrics.deadLetter('permanent-status');
      metrics.succeeded();
      metrics.tokenRequest('crm', 'success');
    }
    const circuit = {
      state: 'open' as const,
      openSince: null,
      nextProbeAt: null,
      attempts: 1,
      failures: 1,
      waiting: 1,
      opened: 1,
      closed: 0,
    };
    const parsed = parseExposition(
      await renderFleetMetrics({
        workers: [await snapshot('h:1:a', 'orders', one), await snapshot('h:2:b', 'orders', two)],
        queues: [emptyQueue('orders')],
        limits: [limit('orders', { effectiveRate: 10, circuit })],
        own: await processMetricsRegistry().getMetricsAsJSON(),
      }),
    );
    const rss = parsed.samples('process_resident_memory_bytes');
    expect(rss.map((sample) => sample.labels)).toEqual([{}, { worker: 'h:1:a', queue: 'orders' }, { worker: 'h:2:b', queue: 'orders' }]);
    expect(rss.every((sample) => sample.value > 0)).toBe(true);
    expect(parsed.families.get('process_cpu_seconds_total')?.type).toBe('counter');
    expect(parsed.families.get('nodejs_gc_duration_seconds')?.type).toBe('histogram');
    expect(parsed.samples('nodejs_version_info', { worker: 'h:1:a' })[0]?.labels['version']).toBe(process.version);

    expect(namingProblems(parsed)).toEqual([]);
    // Every metric sluice defines is in this exposition, so the check covers them all.
    const sluice = [...parsed.families.keys()].filter((name) => name.startsWith('sluice_'));
    expect(sluice.sort()).toEqual(
      [
        'sluice_requests_total',
        'sluice_request_duration_seconds',
        'sluice_retries_total',
        'sluice_dead_letters_total',
        'sluice_operations_succeeded_total',
        'sluice_token_requests_total',
        'sluice_workers',
        'sluice_queue_jobs',
        'sluice_dead_letters_stored',
        'sluice_limiter_effective_rate_per_second',
        'sluice_limiter_in_flight',
        'sluice_limiter_paused',
        'sluice_limiter_queued',
        'sluice_circuit_open',
        'sluice_circuit_waiting',
        'sluice_circuit_transitions_total',
      ].sort(),
    );
    for (const family of parsed.families.values()) expect(family.help, `${family.name} has HELP`).toBeTruthy();
  });
});

describe('values', () => {
  it('renders a NaN that travelled through JSON (as null) as NaN, not +Inf', async () => {
    const lag = {
      name: 'nodejs_eventloop_lag_mean_seconds',
      help: 'x',
      type: 'gauge',
      aggregator: 'sum',
      values: [{ value: NaN, labels: {} }],
    };
    const travelled = JSON.parse(JSON.stringify([lag])) as WorkerSnapshot['metrics'];
    expect(travelled[0]!.values[0]!.value).toBeNull();
    const text = await renderFleetMetrics({
      workers: [{ worker: 'h:1:a', queue: 'q', at: 0, metrics: travelled }],
      queues: [],
      limits: [],
    });
    expect(text).toContain('nodejs_eventloop_lag_mean_seconds{worker="h:1:a",queue="q"} Nan\n');
  });
});

describe('the exposition checker these tests use', () => {
  it('names what breaks the naming conventions', () => {
    const problems = (text: string) => namingProblems(parseExposition(text));
    const cases: [string, string[]][] = [
      ['# HELP a_total x\n# TYPE a_total counter\na_total{limit_key="k"} 1\n', []],
      ['# HELP a x\n# TYPE a counter\na 1\n', ['a: a counter without _total']],
      ['# HELP a_total x\n# TYPE a_total counter\na_total{limitKey="k"} 1\n', ['a_total: label limitKey is not snake_case']],
      ['# HELP g_total x\n# TYPE g_total gauge\ng_total 1\n', ['g_total: a gauge ending in _total']],
      ['# HELP fooBar x\n# TYPE fooBar gauge\nfooBar 1\n', ['fooBar: not snake_case']],
      ['u 1\n', ['u: no TYPE']],
      [
        `# HELP ${PROM_CLIENT_MISNAMED_GAUGES[0]} x\n# TYPE ${PROM_CLIENT_MISNAMED_GAUGES[0]} gauge\n${PROM_CLIENT_MISNAMED_GAUGES[0]} 1\n`,
        [],
      ],
    ];
    for (const [text, expected] of cases) expect(problems(text), text).toEqual(expected);
  });

  it('refuses what Prometheus would refuse', () => {
    const help = '# HELP a_total x\n# TYPE a_total counter\n';
    expect(() => parseExposition(`${help}a_total 1\n`)).not.toThrow();
    expect(() => parseExposition(`${help}${help}a_total 1\n`)).toThrow(/second HELP/);
    expect(() => parseExposition(`${help}a_total{x="1"} 1\n# TYPE b gauge\nb 1\na_total{x="2"} 1\n`)).toThrow(
      /outside its family|two places/,
    );
    expect(() => parseExposition(`${help}a_total{x="1"} 1\na_total{x="1"} 2\n`)).toThrow(/duplicate series/);
    expect(() => parseExposition(`${help}a_total{x="a\\qb"} 1\n`)).toThrow(/bad escape/);
    expect(() => parseExposition(`${help}a_total{x="1",x="2"} 1\n`)).toThrow(/twice/);
    expect(() => parseExposition('# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n')).toThrow(
      /cumulative/,
    );
    expect(() => parseExposition('# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n')).toThrow(/\+Inf/);
  });
});
