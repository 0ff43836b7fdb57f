import { operationRulesOf } from '../limits/limit-keys.js';
import type { Queue, Worker } from 'bullmq';
import type { RedisClient } from '../redis/client.js';
import type { Registry } from 'prom-client';
import { EMPTY_CONFIG, type SluiceConfig } from '../config/sluice-config.js';
import { createHttpClient, type HttpClient } from '../http/http-client.js';
import { NEW_JOB_PRIORITY } from '../queue/job-data.js';
import { createJobAdder, LANE_JOB_NAME } from '../queue/add-jobs.js';
import { openBullQueue } from '../queue/bull-queue.js';
import { createOutcomeStore } from '../outcomes/outcome-store.js';
import { shardName } from '../redis/keys.js';
import { closeRedis, createRedisConnection } from '../redis/connection.js';
import type { Logger } from '../observability/logger.js';
import { createWorkerMetrics, type WorkerMetrics } from '../observability/metrics.js';
import { createMetricsPublisher, type MetricsPublisher } from '../observability/worker-snapshots.js';
import { createLimiter, type Limiter } from '../limits/limiter.js';
import { destinationPolicyOf } from '../operation/parse-operation.js';
import { assertSecrets, createCredentials, type Credentials } from '../auth/credentials.js';
import { loadTargetTls, type TlsMaterial } from '../config/tls-files.js';
import { createProcessor } from './processor.js';
import { newBullWorker } from './bull-worker.js';
import { deadLetterUnexpectedFailure } from './unexpected-failure.js';
import { deadLetterLane } from './lane-runner.js';
import { createJobRunner, type JobRunnerHand } from './job-runner.js';
import { watchShardCount } from './shard-count-watch.js';
import { fetchConcurrency } from './fetch-gate.js';
import { createOpPermits, type OpPermits } from './op-permits.js';
import { warmUp } from './warm-up.js';
import { createPageSink, type PageSink } from './page-sink.js';
import { createProducer, type Producer } from '../queue/producer.js';
import { wakeCircuitWaiters } from '../queue/wake-jobs.js';
import { createScheduleRunner, type ScheduleRunner } from '../schedules/schedule-runner.js';
import { createRedisOutageLog, type RedisOutageLog } from '../redis/outage-log.js';

export interface SluiceWorkerOptions {
  /** A Redis URL (the worker opens and closes its own client) or a client to borrow (needs `maxRetriesPerRequest: null`). */
  connection: string | RedisClient;
  logger: Logger;
  /** Queue name. Default `default`. */
  queue?: string;
  config?: SluiceConfig;
  /** Where targets' secrets are read from (the process environment, given by the caller). Default: none. */
  env?: Record<string, string | undefined>;
  /** Jobs run at once by this process. Default 50. */
  concurrency?: number;
  /** On close: how long in-flight jobs may run before they are aborted (and requeued). Default 30,000 ms. */
  shutdownTimeoutMs?: number;
  /** Completed jobs are removed after this many seconds. Default 3,600. */
  keepCompletedSeconds?: number;
  /** Failed BullMQ jobs (their dead letters stay) are removed after this many seconds. Default 86,400. */
  keepFailedSeconds?: number;
  /** Batch counters and results live this long. Default 604,800. */
  batchRetentionSeconds?: number;
  /** Largest response body kept in a result. Default 8,192 bytes. */
  resultMaxBytes?: number;
  /** Largest response body read, after decoding; a longer one fails its attempt (RESPONSE_TOO_LARGE). Default 10 MiB. */
  maxResponseBytes?: number;
  /** A job whose worker stops renewing its lock for this long is taken back. Default 30,000 ms. */
  lockDurationMs?: number;
  /** How often stalled jobs are looked for. Default 30,000 ms. */
  stalledIntervalMs?: number;
  /** A job whose limit key opens within this long waits in its slot; later ones are delayed. Default 250 ms. */
  maxInSlotWaitMs?: number;
  /** Run the job path against a loopback server before taking jobs (see warm-up.ts). Default true. */
  warmUp?: boolean;
  /** Use this HTTP client instead of making one (borrowed; the targets' `tls` settings are then its maker's to apply). */
  http?: HttpClient;
  /** Count requests, retries, dead letters and token requests, and publish them to Redis for `sluice server`'s `/metrics`. Default true. */
  metrics?: boolean;
  /** Publish the process's `process_*` and `nodejs_*` metrics with the worker's own. Default true. */
  processMetrics?: boolean;
  /** How often the metrics are published (and once more on close). Default 5,000 ms. */
  metricsIntervalMs?: number;
  /** Run the queue's schedules' ticks (see schedules/schedule-runner.ts). Default true. */
  schedules?: boolean;
  /** How long an idempotency key dedups, for the operations schedules enqueue. Default 86,400 s. */
  dedupWindowSeconds?: number;
  /** Schedules' runs and forEach pages enqueue lanes (see ProducerOptions.lanes), of at most `laneSize` operations. Default false. */
  lanes?: boolean;
  laneSize?: number;
  /** How often the worker looks for shards added to its queue (`sluice shards`). Default 5,000 ms. */
  shardPollMs?: number;
}

export interface SluiceWorker {
  /** The BullMQ workers, one per shard of the queue (queue/shards.ts); one for a queue never spread. */
  readonly workers: readonly Worker[];
  /** This worker's metrics, unless `metrics: false`: its id (the `worker` label of its series) and its registry. */
  readonly metrics: { readonly id: string; readonly registry: Registry } | undefined;
  /** Resolves once the worker is connected and taking jobs. */
  ready(): Promise<void>;
  /**
   * Stops taking jobs, lets in-flight ones finish up to the shutdown deadline, aborts the rest
   * (they go back to the queue), then closes what it owns. Idempotent. `force` aborts at once.
   */
  close(options?: { force?: boolean }): Promise<void>;
}

/** How often a worker looks for shards added to its queue. */
const SHARD_POLL_MS = 5_000;

/** One shard's BullMQ worker, with what runs its jobs and records their outcomes in its keys. */
interface ShardHand {
  worker: Worker;
  bullQueue: Queue;
  hand: JobRunnerHand;
}

export function createSluiceWorker(options: SluiceWorkerOptions): SluiceWorker {
  const queue = options.queue ?? 'default';
  const logger = options.logger.child({ component: 'worker', queue });
  const config = options.config ?? EMPTY_CONFIG;
  const env = options.env ?? {};
  // Before anything is opened: missing secrets stop the worker with every problem listed.
  assertSecrets(config, env);
  // Read once, here: a file that cannot be used stops the worker; the material stays in this process.
  const tls = loadTargetTls(config, env);
  const parts = openParts(options, queue, config, tls, logger);
  const { redis, http, metrics, publisher } = parts;
  const credentials = createCredentials({ config, env, redis, http, logger, ...(metrics ? { onTokenRequest: metrics.tokenRequest } : {}) });
  const pages = createPageSink({
    config,
    rules: operationRulesOf(parts.redis),
    // The page sink validated every child (a page enqueues all of them or none).
    enqueueChildren: (operations, batchId) =>
      parts.children.enqueueMany(operations, { batchId, collectResults: false, prevalidated: true }),
  });
  const concurrency = options.concurrency ?? 50;
  const stopping = new AbortController();
  // One budget for the process, whichever shard a job comes from.
  const permits = createOpPermits(concurrency);
  const shards: ShardHand[] = [];
  // The fetch gate (fetch-gate.ts): BullMQ fetches while it holds fewer jobs than its concurrency, those
  // fetched and not started included; a lane holds many operations' permits as one job, so a process
  // whose permits are taken, or claimed by a lane it fetched, fetches no more lanes. The permits not
  // claimed are the process's: each shard's worker may fetch them.
  const gate = () => {
    let fetched = 0;
    let fetchedLanes = 0;
    for (const { hand } of shards) {
      fetched += hand.waiting.jobs;
      fetchedLanes += hand.waiting.lanes;
    }
    const unclaimed = fetchedLanes > 0 ? 0 : Math.max(0, permits.free - fetched);
    for (const { worker, hand } of shards) {
      const { jobs, lanes } = hand.waiting;
      worker.concurrency = fetchConcurrency({
        concurrency,
        inHand: hand.inHand,
        fetched: jobs,
        fetchedLanes: lanes,
        freePermits: jobs + unclaimed,
      });
    }
  };
  permits.onChange(gate);
  const shardDeps: ShardDeps = {
    queue,
    options,
    config,
    parts,
    credentials,
    pages,
    logger,
    permits,
    stopping: stopping.signal,
    gate,
    concurrency,
  };

  /** Runs the shards the queue has (every one it ever had), opening those not open yet. */
  function runShards(highest: number): void {
    for (let index = shards.length; index < highest; index += 1) {
      const opened = openShard(shardDeps, index);
      shards.push(opened);
      if (index > 0) logger.info({ shard: shardName(queue, index) }, 'running a shard of the queue');
      opened.worker.run().catch((error: unknown) => logger.error({ err: error }, 'worker stopped on an error'));
    }
    gate();
  }

  let closing: Promise<void> | undefined;
  // Jobs are taken once the process is warm; a failed warm-up is logged, not fatal.
  const warm =
    options.warmUp === false
      ? Promise.resolve()
      : warmUp().catch((error: unknown) => logger.warn({ err: error }, 'warm-up failed; taking jobs anyway'));
  // Shard 0 runs whatever Redis says; the others once their count is read (and looked for again every few seconds).
  const shardCount = watchShardCount(redis, queue, logger);
  const started = Promise.all([warm, shardCount.read()]).then(([, count]) => {
    if (closing) return;
    parts.schedules?.run();
    runShards(count.highest);
    shardCount.every(options.shardPollMs ?? SHARD_POLL_MS, ({ highest }) => {
      if (!closing && highest > shards.length) runShards(highest);
    });
    // Seen by /metrics at once, not one interval later (publish() never rejects).
    void publisher?.publish();
  });
  const cancelAll = () => {
    for (const { worker } of shards) worker.cancelAllJobs('shutdown');
  };

  async function shutdown(force: boolean): Promise<void> {
    const deadline = force ? 0 : (options.shutdownTimeoutMs ?? 30_000);
    logger.info({ deadlineMs: deadline }, 'worker stopping: no new jobs; waiting for in-flight jobs');
    // Lanes start no more of their operations, and hand the rest back once those in flight end.
    stopping.abort();
    await started;
    shardCount.stop();
    const closed = Promise.all(shards.map(({ worker }) => worker.close()));
    const ticksClosed = parts.schedules?.close();
    const timer = setTimeout(() => {
      logger.warn('shutdown deadline reached: aborting in-flight jobs (they are requeued)');
      cancelAll();
    }, deadline);
    const queuesClosed = closed.finally(() => Promise.all(shards.map(({ bullQueue }) => bullQueue.close())));
    await releaseParts(parts, Promise.all([closed.finally(() => clearTimeout(timer)), ticksClosed, queuesClosed]), logger);
    logger.info('worker stopped');
  }

  return {
    get workers() {
      return shards.map(({ worker }) => worker);
    },
    metrics: metrics && publisher ? { id: publisher.id, registry: metrics.registry } : undefined,
    ready: () =>
      started.then(async () => {
        await Promise.all(shards.map(({ worker }) => worker.waitUntilReady()));
      }),
    close(closeOptions = {}) {
      if (closeOptions.force && closing) cancelAll();
      closing ??= shutdown(closeOptions.force ?? false);
      return closing;
    },
  };
}

/** What every shard's worker shares: the process's parts, budget and gate. */
interface ShardDeps {
  queue: string;
  options: SluiceWorkerOptions;
  config: SluiceConfig;
  parts: WorkerParts;
  credentials: Credentials;
  pages: PageSink;
  logger: Logger;
  permits: OpPermits;
  stopping: AbortSignal;
  gate: () => void;
  concurrency: number;
}

/** Opens shard `index`'s worker and what it runs jobs with: the processor and outcome store in the shard's keys. */
function openShard(deps: ShardDeps, index: number): ShardHand {
  const { options, config, parts, logger, permits, concurrency } = deps;
  const { redis, http, limiter, metrics } = parts;
  const name = shardName(deps.queue, index);
  const outcomes = createOutcomeStore(redis, name, options.batchRetentionSeconds ?? 7 * 86_400);
  const runOp = createProcessor({
    queue: name,
    config,
    http,
    limiter,
    credentials: deps.credentials,
    pages: deps.pages,
    outcomes,
    logger,
    ...(metrics ? { metrics } : {}),
    rules: operationRulesOf(redis),
  });
  const bullQueue = openBullQueue(redis, name);
  bullQueue.on('error', () => undefined);
  const addJobs = createJobAdder(redis, bullQueue, 'op', NEW_JOB_PRIORITY);
  const laneDeps = { queue: name, outcomes, metrics, logger, redis, permits, runOp, addJobs, stopping: deps.stopping };
  const hand = createJobRunner(laneDeps, deps.gate);
  const worker = newBullWorker(name, hand.run, redis, {
    concurrency,
    keepCompletedSeconds: options.keepCompletedSeconds ?? 3_600,
    keepFailedSeconds: options.keepFailedSeconds ?? 86_400,
    lockDurationMs: options.lockDurationMs ?? 30_000,
    stalledIntervalMs: options.stalledIntervalMs ?? 30_000,
    onFetched: (job) => hand.fetched(job),
    onOrphansReclaimed: (jobIds) =>
      logger.warn(
        { shard: name, jobs: jobIds.length, jobIds: jobIds.slice(0, 20) },
        'jobs this worker fetched whose reply Redis never sent (it restarted, or the connection was cut) are back in the queue',
      ),
  });
  worker.on('error', (error) => parts.outages.report(error, { shard: name }, 'worker error'));
  // A lane whose lock is lost must not go on beside the worker that took it (its operations would be sent twice).
  worker.on('lockRenewalFailed', (jobIds: string[]) => hand.lockLost(jobIds));
  worker.on('failed', (job, error) => {
    if (!job) return;
    hand.forget(job);
    const ended = job.name === LANE_JOB_NAME ? deadLetterLane(laneDeps, job, error) : deadLetterUnexpectedFailure(laneDeps, job, error);
    ended.catch((failure: unknown) => logger.error({ err: failure, jobId: job.id }, 'could not dead-letter a failed job'));
  });
  return { worker, bullQueue, hand };
}

/** What a worker opens besides the BullMQ worker; `owns…`: whether it closes the client it was given. */
interface WorkerParts {
  redis: RedisClient;
  ownsConnection: boolean;
  http: HttpClient;
  ownsHttp: boolean;
  limiter: Limiter;
  metrics: WorkerMetrics | undefined;
  publisher: MetricsPublisher | undefined;
  /** Paginated operations with forEach enqueue their child operations through this. */
  children: Producer;
  /** Runs the queue's schedules' ticks, unless `schedules: false`. */
  schedules: ScheduleRunner | undefined;
  /** How the BullMQ workers' errors are logged: a Redis outage once, not every reconnect attempt. */
  outages: RedisOutageLog;
}

function openParts(
  options: SluiceWorkerOptions,
  queue: string,
  config: SluiceConfig,
  tls: Map<string, TlsMaterial>,
  logger: Logger,
): WorkerParts {
  const ownsConnection = typeof options.connection === 'string';
  const redis =
    typeof options.connection === 'string'
      ? createRedisConnection(options.connection, { name: 'sluice:worker', maxRetriesPerRequest: null })
      : options.connection;
  const outages = createRedisOutageLog(redis, logger);
  const ownsHttp = options.http === undefined;
  const http =
    options.http ??
    createHttpClient({
      maxBodyBytes: options.resultMaxBytes ?? 8_192,
      ...(options.maxResponseBytes !== undefined ? { maxResponseBytes: options.maxResponseBytes } : {}),
      ...destinationPolicyOf(config),
      tls,
    });
  const maxInSlotWaitMs = options.maxInSlotWaitMs;
  const limiter = createLimiter({
    redis,
    config,
    logger,
    ...(maxInSlotWaitMs !== undefined ? { maxInSlotWaitMs } : {}),
    // A closed circuit wakes the jobs that wait for it, in every queue, rather than leave them delayed.
    onCircuitTransition: ({ key, to }) => {
      if (to !== 'closed') return;
      wakeCircuitWaiters(redis, key, queue).then(
        (woken) => logger.info({ limitKey: key, woken }, 'woke the jobs waiting for the circuit'),
        (error: unknown) =>
          logger.warn({ err: error, limitKey: key }, 'could not wake the jobs waiting for the circuit; they come back by themselves'),
      );
    },
  });
  const metrics = options.metrics === false ? undefined : createWorkerMetrics({ processMetrics: options.processMetrics !== false });
  const intervalMs = options.metricsIntervalMs;
  const publisher = metrics
    ? createMetricsPublisher({ redis, registry: metrics.registry, queue, logger, ...(intervalMs !== undefined ? { intervalMs } : {}) })
    : undefined;
  const laneOptions = { lanes: options.lanes ?? false, ...(options.laneSize !== undefined ? { laneSize: options.laneSize } : {}) };
  const children = createProducer({ connection: redis, queue, config, ...laneOptions });
  const schedules =
    options.schedules === false
      ? undefined
      : createScheduleRunner({
          redis,
          queue,
          config,
          logger,
          outages,
          ...(options.dedupWindowSeconds !== undefined ? { dedupWindowSeconds: options.dedupWindowSeconds } : {}),
          ...(options.batchRetentionSeconds !== undefined ? { batchRetentionSeconds: options.batchRetentionSeconds } : {}),
          ...laneOptions,
        });
  return { redis, ownsConnection, http, ownsHttp, limiter, metrics, publisher, children, schedules, outages };
}

/** Closes the parts once the worker has (`workerClosed`), in reverse order of creation, each even when an earlier one failed. */
async function releaseParts(parts: WorkerParts, workerClosed: Promise<unknown>, logger: Logger): Promise<void> {
  const releases: [string, () => Promise<unknown>][] = [
    // The worker and the schedule runner (stopped together).
    ['worker', () => workerClosed],
    // After the last job: the final counts are published while Redis is still open.
    ['metrics publisher', () => parts.publisher?.close() ?? Promise.resolve()],
    ['limiter', () => parts.limiter.close()],
    ['child producer', () => parts.children.close()],
    ['http client', () => (parts.ownsHttp ? parts.http.close() : Promise.resolve())],
    [
      'redis',
      () => {
        parts.outages.close();
        return parts.ownsConnection ? closeRedis(parts.redis) : Promise.resolve();
      },
    ],
  ];
  for (const [name, release] of releases) {
    try {
      await release();
    } catch (error) {
      logger.error({ err: error }, `error closing the ${name}`);
    }
  }
}
