import type { Queue } from 'bullmq';
import type { RedisClient } from '../redis/client.js';
import { AggregatorRegistry, Counter, Gauge, Registry, type PrometheusContentType } from 'prom-client';
import { QUEUE_NAME } from '../config/env.js';
import type { SluiceConfig } from '../config/sluice-config.js';
import { createLimitsAdmin, type LimitStatus } from '../limits/limits-admin.js';
import { queueKeys } from '../redis/keys.js';
import { processMetricsRegistry } from './process-metrics.js';
import { readLiveSnapshots, type WorkerSnapshot } from './worker-snapshots.js';
import { openBullQueue } from '../queue/bull-queue.js';
import { readShardCount, shardNames } from '../queue/shards.js';

/**
 * Prometheus text for the whole fleet, for `GET /metrics` of `sluice server`: every live worker's
 * published metrics, one series per worker (`worker` and `queue` labels), plus gauges read from
 * Redis at scrape time (queue depth, stored dead letters, limiter state, live workers).
 *
 * Why a series per worker rather than one sum: a counter summed across workers goes down when a
 * worker stops (its share leaves the sum), which Prometheus takes for a counter reset and turns
 * into a spike in rate(). A worker's own series simply ends, which Prometheus handles; aggregate
 * in queries: `sum by (limit_key) (rate(sluice_requests_total[5m]))`.
 *
 * The serving process adds its own default metrics (`process_*`, `nodejs_*`) without a `worker`
 * label, as any scraped target does; each worker's come with its `worker` label.
 */

/**
 * BullMQ job states reported as `sluice_queue_jobs{state}`. (BullMQ 6 keeps a paused queue's jobs in
 * `waiting`; it has no `paused` list any more.)
 */
export const JOB_STATES = ['waiting', 'prioritized', 'active', 'delayed', 'failed', 'completed'] as const;

export interface QueueGauges {
  queue: string;
  /** Jobs per state (JOB_STATES), the queue's shards added up. */
  jobs: Record<string, number>;
  /** Dead letters stored for the queue, in all its shards. */
  deadLetters: number;
}

export interface FleetSnapshot {
  workers: WorkerSnapshot[];
  /** The serving process's own metrics (`getMetricsAsJSON()`), rendered without `worker` or `queue`. */
  own?: WorkerSnapshot['metrics'];
  queues: QueueGauges[];
  limits: LimitStatus[];
}

export interface FleetMetricsOptions {
  /** Borrowed: worker snapshots, queue counts and limiter state are read through it. */
  redis: RedisClient;
  /** The queues to report, e.g. `() => discoverQueues(redis)`; the queues of live workers are always added. */
  queues: () => Promise<string[]>;
  /** The config file: its limit keys are reported even before any worker used them. */
  config: SluiceConfig;
  /** How long an answer of `queues()` is reused. Default 60,000 ms; 0 asks on every render. */
  queuesCacheMs?: number;
  /** Add this process's `process_*` and `nodejs_*` metrics (process-metrics.ts). Default true. */
  processMetrics?: boolean;
}

export interface FleetMetrics {
  /** The Content-Type of `render()`'s text (Prometheus text format 0.0.4). */
  readonly contentType: string;
  /** The exposition. Rejects when Redis cannot be read (a scrape should fail rather than report half). */
  render(): Promise<string>;
  /** Closes the BullMQ Queue objects it made (not the borrowed client). Idempotent. */
  close(): Promise<void>;
}

export function createFleetMetrics(options: FleetMetricsOptions): FleetMetrics {
  const { redis } = options;
  const queuesCacheMs = options.queuesCacheMs ?? 60_000;
  const admin = createLimitsAdmin({ redis, config: options.config });
  const bullQueues = new Map<string, Queue>();
  let listed: { names: Promise<string[]>; at: number } | undefined;
  let closing: Promise<void> | undefined;

  function queueNames(): Promise<string[]> {
    if (!listed || Date.now() - listed.at >= queuesCacheMs) {
      const names = options.queues();
      listed = { names, at: Date.now() };
      // A failed listing is asked again next time.
      names.catch(() => {
        if (listed?.names === names) listed = undefined;
      });
    }
    return listed.names;
  }

  /** A shard's BullMQ queue (`q`, `q#1`, …), made once and kept. */
  function bullQueue(name: string): Queue {
    let queue = bullQueues.get(name);
    if (!queue) {
      queue = openBullQueue(redis, name);
      // Connection trouble reaches render() through the failing command.
      queue.on('error', () => undefined);
      bullQueues.set(name, queue);
    }
    return queue;
  }

  async function queueGauges(names: string[]): Promise<QueueGauges[]> {
    return Promise.all(names.map(queueGauge));
  }

  /**
   * One logical queue's gauges: its shards' (queue/shards.ts) counts and dead letters added up. One
   * call per shard, not one pipeline: each shard's keys are in their own slot of a cluster (sent
   * together, they still share the round trips a pipeline would on one server).
   */
  async function queueGauge(queue: string): Promise<QueueGauges> {
    const shards = shardNames(queue, (await readShardCount(redis, queue)).highest);
    const read = await Promise.all(
      shards.map(async (shard) => {
        const [jobs, deadLetters] = await Promise.all([
          bullQueue(shard).getJobCounts(...JOB_STATES),
          redis.hlen(queueKeys(shard).deadLetters),
        ]);
        return { jobs, deadLetters };
      }),
    );
    const jobs: Record<string, number> = {};
    for (const shard of read) for (const state of JOB_STATES) jobs[state] = (jobs[state] ?? 0) + (shard.jobs[state] ?? 0);
    return { queue, jobs, deadLetters: read.reduce((sum, shard) => sum + shard.deadLetters, 0) };
  }

  return {
    contentType: Registry.PROMETHEUS_CONTENT_TYPE,
    async render() {
      if (closing) throw new Error('fleet metrics: render() after close()');
      const [workers, names, limits, own] = await Promise.all([
        readLiveSnapshots(redis),
        queueNames(),
        admin.list(),
        options.processMetrics === false ? undefined : processMetricsRegistry().getMetricsAsJSON(),
      ]);
      const queues = [...new Set([...names.filter((name) => QUEUE_NAME.test(name)), ...workers.map((worker) => worker.queue)])].sort();
      return renderFleetMetrics({ workers, queues: await queueGauges(queues), limits, ...(own ? { own } : {}) });
    },
    close() {
      closing ??= Promise.allSettled([...bullQueues.values()].map((queue) => queue.close())).then(() => undefined);
      return closing;
    },
  };
}

/** Names of the gauges computed at scrape time (a worker snapshot may not reuse them). */
const LIVE_NAMES = new Set([
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
]);
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const METRIC_TYPES = new Set(['counter', 'gauge', 'histogram', 'summary']);

/** The exposition of a fleet snapshot: pure, for tests and for render(). */
export async function renderFleetMetrics(fleet: FleetSnapshot): Promise<string> {
  // Each worker's series get its `worker` and `queue` labels. prom-client's aggregate() then writes
  // each metric name once (one HELP and TYPE), and since no two workers share a label set it sums nothing.
  const sources = [
    ...(fleet.own ? [{ labels: {}, metrics: fleet.own }] : []),
    ...fleet.workers.map((worker) => ({ labels: { worker: worker.worker, queue: worker.queue }, metrics: worker.metrics })),
  ];
  const types = new Map<string, string>();
  const tagged = sources.map((source) =>
    source.metrics
      .filter((metric) => {
        const type = String(metric.type);
        // Drop what would break the exposition: a bad name, a name the live gauges own, or (after
        // an upgrade that changed it) a type other than the one the first worker gave the name.
        if (!METRIC_NAME.test(metric.name) || LIVE_NAMES.has(metric.name) || !METRIC_TYPES.has(type) || !Array.isArray(metric.values))
          return false;
        const first = types.get(metric.name) ?? type;
        types.set(metric.name, first);
        return first === type;
      })
      .map((metric) => ({
        ...metric,
        aggregator: 'sum',
        values: metric.values.map((value) => {
          // Histogram buckets keep `le` last, as readers expect it.
          const { le, ...labels } = value.labels as Record<string, string | number>;
          // JSON carried NaN (an event-loop delay not yet measured) as null, which would render as +Inf.
          const number = typeof value.value === 'number' ? value.value : NaN;
          return { ...value, value: number, labels: { ...source.labels, ...labels, ...(le === undefined ? {} : { le }) } };
        }),
      })),
  );
  const published = AggregatorRegistry.aggregate<PrometheusContentType>(tagged);

  const live = new Registry();
  const registers = [live];
  const workers = new Gauge({
    name: 'sluice_workers',
    help: 'Worker processes that published metrics lately, by queue.',
    labelNames: ['queue'],
    registers,
  });
  const jobs = new Gauge({
    name: 'sluice_queue_jobs',
    help: 'Jobs in each BullMQ state, by queue (prioritized: not yet started; waiting: back for their slot or a retry).',
    labelNames: ['queue', 'state'],
    registers,
  });
  // Not `sluice_dead_letters`: OpenMetrics would read that as the family of the counter sluice_dead_letters_total.
  const deadLetters = new Gauge({
    name: 'sluice_dead_letters_stored',
    help: 'Dead letters stored (not yet replayed or purged), by queue.',
    labelNames: ['queue'],
    registers,
  });
  const effectiveRate = new Gauge({
    name: 'sluice_limiter_effective_rate_per_second',
    help: 'Requests per second the workers use for the limit key (after overrides and 429s); absent: no rate limit.',
    labelNames: ['limit_key'],
    registers,
  });
  const inFlight = new Gauge({
    name: 'sluice_limiter_in_flight',
    help: 'Requests in flight across the fleet for the limit key (concurrency leases held).',
    labelNames: ['limit_key'],
    registers,
  });
  const paused = new Gauge({
    name: 'sluice_limiter_paused',
    help: '1 while the limit key is paused, by an operator or until a Retry-After / RateLimit-Reset the target sent.',
    labelNames: ['limit_key'],
    registers,
  });
  const queued = new Gauge({
    name: 'sluice_limiter_queued',
    help: 'Operations holding a booked start slot for the limit key and waiting for it.',
    labelNames: ['limit_key'],
    registers,
  });

  // Named for what 1 means, like sluice_limiter_paused.
  const circuitOpen = new Gauge({
    name: 'sluice_circuit_open',
    help: "1 while the limit key's circuit is open (nothing but probes sent), 0 while closed; absent: no circuit breaker.",
    labelNames: ['limit_key'],
    registers,
  });
  const circuitWaiting = new Gauge({
    name: 'sluice_circuit_waiting',
    help: "Operations waiting for the limit key's circuit to close.",
    labelNames: ['limit_key'],
    registers,
  });
  // Counted in Redis beside the circuit, so every server reports the fleet's count (kept as long as the key's state).
  const transitions = new Counter({
    name: 'sluice_circuit_transitions_total',
    help: "Times the limit key's circuit opened or closed (to: opened, closed).",
    labelNames: ['limit_key', 'to'],
    registers,
  });

  const perQueue = new Map<string, number>();
  for (const worker of fleet.workers) perQueue.set(worker.queue, (perQueue.get(worker.queue) ?? 0) + 1);
  for (const queue of fleet.queues) if (!perQueue.has(queue.queue)) perQueue.set(queue.queue, 0);
  for (const [queue, count] of perQueue) workers.set({ queue }, count);
  for (const queue of fleet.queues) {
    for (const state of JOB_STATES) jobs.set({ queue: queue.queue, state }, queue.jobs[state] ?? 0);
    deadLetters.set({ queue: queue.queue }, queue.deadLetters);
  }
  for (const limit of fleet.limits) {
    const key = { limit_key: limit.key };
    if (limit.effectiveRate !== null) effectiveRate.set({ ...key }, limit.effectiveRate);
    inFlight.set({ ...key }, limit.inFlight);
    paused.set({ ...key }, limit.paused || limit.pausedUntil !== null ? 1 : 0);
    queued.set({ ...key }, limit.queued);
    if (limit.circuit) {
      circuitOpen.set({ ...key }, limit.circuit.state === 'open' ? 1 : 0);
      circuitWaiting.set({ ...key }, limit.circuit.waiting);
      transitions.inc({ ...key, to: 'opened' }, limit.circuit.opened);
      transitions.inc({ ...key, to: 'closed' }, limit.circuit.closed);
    }
  }
  return Registry.merge([published, live]).metrics();
}
