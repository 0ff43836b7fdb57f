import { MetricsTime, Worker, type Job, type JobJson, type WorkerOptions } from 'bullmq';
import type { RedisClient } from '../redis/client.js';
import { PREFIX, bullQueueKey, bullQueueName, queueKeys } from '../redis/keys.js';
import { defineScript } from '../redis/scripts.js';
import { MAX_STALLS } from './prepare-request.js';
import type { JobRunner } from './job-runner.js';
import { onReconnect, putBackJob, reclaimOrphans } from './orphan-jobs.js';

export interface BullWorkerOptions {
  concurrency: number;
  keepCompletedSeconds: number;
  keepFailedSeconds: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  /** Told of each job fetched, before BullMQ decides whether to fetch another (the fetch gate: see fetch-gate.ts). */
  onFetched: (job: Job) => void;
  /** Told of the jobs put back in the queue after a reconnect: fetched, but Redis's reply was lost (see orphan-jobs.ts). */
  onOrphansReclaimed?: (jobIds: string[]) => void;
}

/** How long after a raise of the concurrency a main loop that still has room is woken (see SluiceBullWorker). */
const WAKE_AFTER_MS = 250;

/** BullMQ 6's main loop queue (Worker.mainLoopQueue, an AsyncFifoQueue): the jobs being fetched and run. */
interface MainLoopQueue {
  add(entry: Promise<unknown>): void;
  numTotal(): number;
}

function mainLoopOf(worker: Worker): MainLoopQueue | null | undefined {
  return (worker as unknown as { mainLoopQueue?: MainLoopQueue | null }).mainLoopQueue;
}

/** A worker's wake to come (see SluiceBullWorker's concurrency). */
const wakes = new WeakMap<Worker, NodeJS.Timeout>();

/**
 * BullMQ's worker, whose locks hold while Redis is full: BullMQ renews them with SET, which a
 * `noeviction` Redis refuses once it is out of memory; keep-job-locks.lua renews them with PEXPIRE,
 * which it allows. A job whose outcome waits for memory then stays with its worker, rather than
 * lapsing to the stalled-job check and being sent again by another worker.
 */
class SluiceBullWorker extends Worker {
  readonly #keepLocks: (...args: (string | number)[]) => Promise<unknown>;
  readonly #keys: ReturnType<typeof queueKeys>;
  readonly #onFetched: (job: Job) => void;
  /**
   * The jobs this worker holds, from their fetch until BullMQ is done with them (finished, or handed
   * back), counted: a job requeued at once (its next page, a shutdown) may be fetched again, under
   * the same id and token, before the run that requeued it has ended.
   */
  readonly #held = new Map<string, number>();
  readonly #stopWatching: () => void;
  readonly #closing = new AbortController();

  constructor(queue: string, processor: JobRunner, redis: RedisClient, options: BullWorkerOptions, bullOptions: WorkerOptions) {
    super(bullQueueName(queue), processor, bullOptions);
    this.#keepLocks = defineScript(redis, 'keep-job-locks');
    this.#keys = queueKeys(queue);
    this.#onFetched = options.onFetched;
    const host = {
      id: this.id,
      activeKey: this.keys.active!,
      lockKey: (jobId: string) => this.#keys.jobLock(jobId),
      holds: (jobId: string) => this.#held.has(jobId),
      markerKey: bullQueueKey(queue, 'marker'),
      putBack: (jobId: string, token: string) => putBackJob(this, jobId, token),
    };
    this.#stopWatching = onReconnect(redis, () => {
      reclaimOrphans(redis, host, this.#closing.signal).then(
        (ids) => {
          if (ids.length) options.onOrphansReclaimed?.(ids);
        },
        // The next reconnect looks again; BullMQ's stalled-job check takes them back meanwhile.
        (error: unknown) => {
          if (!this.#closing.signal.aborted) this.emit('error', error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }

  override async processJob(job: Job, token: string, fetchNextCallback?: () => boolean): Promise<void | Job> {
    try {
      return await super.processJob(job, token, fetchNextCallback);
    } finally {
      const left = (this.#held.get(job.id!) ?? 1) - 1;
      if (left > 0) this.#held.set(job.id!, left);
      else this.#held.delete(job.id!);
    }
  }

  override async close(force?: boolean): Promise<void> {
    this.#closing.abort();
    this.#stopWatching();
    return super.close(force);
  }

  /**
   * The fetch gate (fetch-gate.ts) lowers the concurrency while a lane holds the process's permits,
   * and raises it again when they are given back. BullMQ 6 reads it only before fetching: once its
   * main loop holds as many jobs as it allows, it waits for one of them to end. A lane whose
   * operations wait (a paused key, a key at its concurrency) may not end for long, and nothing else
   * was fetched meanwhile (red-team: jobs of another key sat queued while a key stayed paused). So a
   * raise that gives a waiting loop room hands it an empty entry, WAKE_AFTER_MS later if it still
   * has room then: it looks at its jobs again, and fetches. (A lane that ends within that time wakes
   * the loop itself, as before: at full speed nothing changes.)
   */
  override set concurrency(value: number) {
    const before = super.concurrency;
    super.concurrency = value;
    // (Set by BullMQ's own constructor too, before this class's fields exist: nothing here is a field.)
    // Called on every change of the process's permits: a lowering (the common case) stops here.
    if (value <= before) return;
    const loop = mainLoopOf(this);
    if (!loop || loop.numTotal() < before || wakes.has(this)) return;
    const wake = setTimeout(() => {
      wakes.delete(this);
      const now = mainLoopOf(this);
      if (now && now.numTotal() < super.concurrency) now.add(Promise.resolve(undefined));
    }, WAKE_AFTER_MS);
    wake.unref();
    wakes.set(this, wake);
  }

  override get concurrency(): number {
    return super.concurrency;
  }

  /** Every job BullMQ fetches (moved to active, or handed over by the completion of another) passes here. */
  protected override async nextJobFromJobData(jobData?: JobJson, jobId?: string, token?: string): Promise<Job> {
    // Undefined when there was no job, whatever BullMQ's type says.
    const job: Job | undefined = await super.nextJobFromJobData(jobData, jobId, token);
    if (job) {
      this.#held.set(job.id!, (this.#held.get(job.id!) ?? 0) + 1);
      this.#onFetched(job);
    }
    return job!;
  }

  /** Called by BullMQ's lock manager; returns the ids of the jobs whose locks are not this worker's any more. */
  override async extendJobLocks(jobIds: string[], tokens: string[], duration: number): Promise<string[]> {
    const keys = [this.#keys.stalled, ...jobIds.map((id) => this.#keys.jobLock(id))];
    const args = jobIds.flatMap((id, i) => [id, tokens[i] ?? '']);
    return (await this.#keepLocks(keys.length, ...keys, duration, ...args)) as string[];
  }
}

export function newBullWorker(queue: string, processor: JobRunner, redis: RedisClient, options: BullWorkerOptions): Worker {
  return new SluiceBullWorker(queue, processor, redis, options, {
    connection: redis,
    prefix: PREFIX,
    concurrency: options.concurrency,
    removeOnComplete: { age: options.keepCompletedSeconds },
    removeOnFail: { age: options.keepFailedSeconds },
    lockDuration: options.lockDurationMs,
    stalledInterval: options.stalledIntervalMs,
    // A stall is a worker that died. The processor dead-letters a job after MAX_STALLS of them; BullMQ's
    // own limit (which fails a job without telling any worker) must never be reached first.
    maxStalledCount: MAX_STALLS * 20,
    // Finished jobs per minute (kept a day), counted by BullMQ inside the script that finishes a job:
    // the dashboard's throughput. Dead letters count as failed.
    metrics: { maxDataPoints: MetricsTime.ONE_HOUR * 24 },
    autorun: false,
  });
}
