import { Worker, type Job } from 'bullmq';
import type { RedisClient } from '../redis/client.js';
import type { SluiceConfig } from '../config/sluice-config.js';
import { EnqueueIncompleteError, errorMessage, formatIssues } from '../errors.js';
import type { RedisOutageLog } from '../redis/outage-log.js';
import type { Logger } from '../observability/logger.js';
import { createProducer } from '../queue/producer.js';
import { SCHEDULES_PREFIX, bullQueueName } from '../redis/keys.js';
import { operationRulesOf } from '../limits/limit-keys.js';
import { operationIssues, timingOf, withRun } from './schedule-definition.js';
import { createScheduleStore, type ScheduleRun, type ScheduleStore } from './schedule-store.js';
import { nextTickAt, runBatchId, tickDecision } from './schedule-timing.js';
import type { TickData } from './tick-queue.js';

export interface ScheduleRunnerOptions {
  /** Borrowed (needs `maxRetriesPerRequest: null`, as a worker's). */
  redis: RedisClient;
  queue: string;
  config: SluiceConfig;
  logger: Logger;
  /** Where its BullMQ worker's errors go (the worker process's: a Redis outage logged once). Default: the logger, at error. */
  outages?: RedisOutageLog;
  dedupWindowSeconds?: number;
  batchRetentionSeconds?: number;
  /** A run's operations travel in lanes (see ProducerOptions.lanes). Default false. */
  lanes?: boolean;
  laneSize?: number;
  /** Ticks run at once by this process. Default 2. */
  concurrency?: number;
}

export interface ScheduleRunner {
  /** Starts taking ticks. */
  run(): void;
  /** Stops taking ticks and waits for the running ones. Idempotent. */
  close(): Promise<void>;
}

/** Problems shown in a failed run's `error`. */
const SHOWN_ISSUES = 5;

/**
 * Every worker process runs one: a BullMQ worker on the queue's tick queue (see tick-queue.ts).
 * A tick enqueues its schedule's operations, `{{run}}` filled in, as batch `NAME-<tick time>`.
 * The enqueue is resumable into that batch, so a tick run again (a retry after Redis went away, a
 * worker that died mid-tick) adds only what is missing.
 */
export function createScheduleRunner(options: ScheduleRunnerOptions): ScheduleRunner {
  const { redis, queue, config } = options;
  const logger = options.logger.child({ component: 'schedules', queue });
  const store = createScheduleStore(redis, queue);
  const producer = createProducer({
    connection: redis,
    queue,
    config,
    ...(options.dedupWindowSeconds !== undefined ? { dedupWindowSeconds: options.dedupWindowSeconds } : {}),
    ...(options.batchRetentionSeconds !== undefined ? { batchRetentionSeconds: options.batchRetentionSeconds } : {}),
    ...(options.lanes !== undefined ? { lanes: options.lanes } : {}),
    ...(options.laneSize !== undefined ? { laneSize: options.laneSize } : {}),
  });

  async function runTick(job: Job<TickData>): Promise<ScheduleRun | undefined> {
    const name = job.data.schedule;
    const tickAtMs = tickTimeOf(job);
    const definition = await store.get(name);
    if (!definition || definition.paused) {
      logger.info(
        { schedule: name, jobId: job.id },
        definition ? 'tick of a paused schedule: skipped' : 'tick of a removed schedule: skipped',
      );
      return undefined;
    }
    const batchId = runBatchId(name, tickAtMs);
    const startedAtMs = Date.now();
    const run: ScheduleRun = {
      batchId,
      tickAt: new Date(tickAtMs).toISOString(),
      startedAt: new Date(startedAtMs).toISOString(),
      status: 'enqueued',
      enqueued: 0,
      duplicates: 0,
      alreadyEnqueued: 0,
    };
    const nextTickAtMs = nextTickAt(timingOf(definition), tickAtMs);
    // A retry continues a run that began on time: never skipped.
    if (job.attemptsMade === 0 && tickDecision({ catchUp: definition.catchUp, tickAtMs, nextTickAtMs, startedAtMs }) === 'skip') {
      return record(name, { ...run, status: 'skipped', error: 'missed: started too late (catchUp: none)' });
    }
    const issues = await operationIssues(store.operations(name), config, batchId, undefined, operationRulesOf(redis));
    if (issues.length > 0) {
      // The config changed since the schedule was added: nothing of this run is enqueued, and retrying will not help.
      const shown = formatIssues(issues.slice(0, SHOWN_ISSUES));
      const more = issues.length > SHOWN_ISSUES ? `\n(${issues.length - SHOWN_ISSUES} more)` : '';
      return record(name, { ...run, status: 'failed', error: `invalid operations, nothing enqueued:\n${shown}${more}` });
    }
    try {
      const summary = await producer.enqueueMany(operationsOfRun(store, name, batchId), {
        batchId,
        collectResults: false,
        prevalidated: true,
        resumable: { source: 'schedule' },
      });
      const { enqueued, duplicates, alreadyEnqueued } = summary;
      return await record(name, { ...run, enqueued, duplicates, alreadyEnqueued });
    } catch (error) {
      const written = error instanceof EnqueueIncompleteError ? error.written : { enqueued: 0, duplicates: 0, alreadyEnqueued: 0 };
      await record(name, { ...run, ...written, status: 'failed', error: errorMessage(error) }).catch(() => undefined);
      // BullMQ tries the tick again (TICK_ATTEMPTS): the enqueue resumes.
      throw error;
    }
  }

  async function record(name: string, run: ScheduleRun): Promise<ScheduleRun> {
    await store.recordRun(name, run);
    const log = { schedule: name, batchId: run.batchId, tickAt: run.tickAt, status: run.status, enqueued: run.enqueued };
    if (run.status === 'failed') logger.error({ ...log, error: run.error }, 'schedule run failed');
    else logger.info(log, run.status === 'skipped' ? 'schedule tick missed: skipped' : 'schedule run enqueued');
    return run;
  }

  const worker = new Worker<TickData, ScheduleRun | undefined>(bullQueueName(queue), runTick, {
    connection: redis,
    prefix: SCHEDULES_PREFIX,
    concurrency: options.concurrency ?? 2,
    autorun: false,
  });
  worker.on('error', (error) =>
    options.outages
      ? options.outages.report(error, { component: 'schedules' }, 'schedule worker error')
      : logger.error({ err: error }, 'schedule worker error'),
  );
  let closing: Promise<void> | undefined;

  return {
    run() {
      if (closing) return;
      worker.run().catch((error: unknown) => logger.error({ err: error }, 'schedule worker stopped on an error'));
    },
    close() {
      closing ??= (async () => {
        try {
          await worker.close();
        } finally {
          await producer.close();
        }
      })();
      return closing;
    },
  };
}

/** A tick job's id is `repeat:NAME:<tick ms>` (BullMQ's, see tick-queue.ts). */
function tickTimeOf(job: Job<TickData>): number {
  const ms = Number(job.id?.slice(job.id.lastIndexOf(':') + 1));
  return Number.isFinite(ms) && ms > 0 ? ms : (job.opts.prevMillis ?? job.timestamp);
}

async function* operationsOfRun(store: ScheduleStore, name: string, run: string): AsyncGenerator<unknown> {
  for await (const operation of store.operations(name)) yield withRun(operation, run);
}
