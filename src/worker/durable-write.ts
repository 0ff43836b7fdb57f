import { ShutdownAbortError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { isRedisFailure } from '../redis/redis-errors.js';
import { untilAborted } from '../support/abortable.js';
import { jitter, sleep } from '../support/sleep.js';

/** Between tries of a write that ends a job: from 250 ms, doubling, at most this. */
const MAX_RETRY_DELAY_MS = 5_000;
/** A write started once the job is aborted (shutdown) gets this long before it is given up. */
export const STOPPING_WRITE_MS = 1_000;
/** Tries between two warnings about the same write (the first is always logged): about one a minute. */
const WARN_EVERY = 12;

/** The worker stopped while Redis still refused a write that ends the job: the job must be left for another worker. */
export class HandBack extends Error {
  constructor(cause: unknown) {
    super('the worker is stopping and Redis still refuses the write', { cause });
  }
}

export interface DurableWrite {
  /** Aborted when the worker stops (its shutdown deadline passed). */
  signal: AbortSignal | undefined;
  logger: Logger;
  jobId: string;
}

/**
 * Runs a write that ends a job until Redis takes it. Redis failures (full, read-only, restarting,
 * unreachable) are retried with capped backoff for as long as the worker runs, and the job stays
 * this worker's meanwhile: its lock is renewed, even while Redis is full (see bull-worker.ts).
 * Any other error is thrown at once; once the worker stops, `HandBack` is.
 */
export async function durably<T>(context: DurableWrite, what: string, write: () => Promise<T>): Promise<T> {
  const { signal } = context;
  for (let attempt = 1; ; attempt++) {
    try {
      return await untilAborted(write(), signal, STOPPING_WRITE_MS);
    } catch (error) {
      if (!isRedisFailure(error) && !(error instanceof ShutdownAbortError)) throw error;
      if (signal?.aborted) throw new HandBack(error);
      if (attempt % WARN_EVERY === 1) context.logger.warn({ err: error, jobId: context.jobId, attempt }, `could not ${what}; retrying`);
      await sleep(jitter(Math.min(250 * 2 ** (attempt - 1), MAX_RETRY_DELAY_MS), 0.2), signal);
    }
  }
}
