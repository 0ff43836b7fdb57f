import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import type { Logger, WorkLog } from '../observability/logger.js';
import type { WorkerMetrics } from '../observability/metrics.js';
import type { Operation } from '../operation/schema.js';
import { deadLetterOutcome, type DeadLetterDetails } from '../outcomes/dead-letter.js';
import type { OutcomeRecord, OutcomeStore, RecordedOutcome } from '../outcomes/outcome-store.js';
import { resultLine } from '../outcomes/result-line.js';
import type { AttemptRecord, JobEnvelope } from '../queue/job-data.js';
import { refusedTokenAttempt } from './attempt-record.js';
import type { AttemptDecision } from './decide-attempt.js';
import type { PageSink, WalkContext } from './page-sink.js';
import type { PageStep } from './page-step.js';
import type { Unsendable } from './prepare-request.js';
import type { SentAttempt } from './send-attempt.js';

/** Tries to record an outcome (250 ms, 500 ms, … between them: ~8 s in all). */
const PERSIST_ATTEMPTS = 6;

export interface JobEndingDeps {
  queue: string;
  outcomes: OutcomeStore;
  pages: PageSink;
  logger: Logger;
  metrics?: WorkerMetrics | undefined;
}

/** An attempt that was made, with the decision on how it ends (see decide-attempt.ts). */
export interface FinishedAttempt {
  decision: AttemptDecision;
  sent: SentAttempt;
  page: PageStep | undefined;
  /** The attempts before this one. */
  previous: AttemptRecord[];
  /** Every attempt, this one included when it failed. */
  attempts: AttemptRecord[];
  /** This attempt's number (see attemptNumber). */
  attempt: number;
  operation: Operation;
  limitKey: string;
  /** A paginated operation's walk. */
  walk: WalkContext | undefined;
}

/** The ways a job ends, carried out. Each returns the job's result or throws what tells BullMQ where the job goes. */
export interface JobEnding {
  /** Back to the queue after `delayMs`, ahead of the jobs not started yet. */
  requeue(delayMs: number): Promise<never>;
  /** A job that can never be sent, dead-lettered. */
  refuse(unsendable: Unsendable): Promise<never>;
  /** Carries out the decision on an attempt that was made. */
  finish(finished: FinishedAttempt, log: WorkLog): Promise<unknown>;
  /** A job whose outcome was recorded on an earlier run: it ends as recorded, nothing sent and nothing counted again. */
  recorded(recorded: RecordedOutcome): Promise<unknown>;
}

interface Ending {
  deps: JobEndingDeps;
  job: Job;
  envelope: JobEnvelope;
  token: string | undefined;
}

export function createJobEnding(deps: JobEndingDeps, job: Job, envelope: JobEnvelope, token: string | undefined): JobEnding {
  const ending: Ending = { deps, job, envelope, token };
  return {
    requeue: (delayMs) => requeue(ending, delayMs),
    refuse: (unsendable) => refuse(ending, unsendable),
    finish: (finished, log) => finish(ending, finished, log),
    recorded: (recorded) => endAsRecorded(ending, recorded),
  };
}

async function finish(ending: Ending, finished: FinishedAttempt, log: WorkLog): Promise<unknown> {
  const { decision, sent, page, attempts } = finished;
  const { job, envelope, deps } = ending;
  const fields = { status: sent.response?.status, durationMs: sent.durationMs };
  switch (decision.kind) {
    case 'requeue':
      log.info({ outcome: 'requeued', durationMs: sent.durationMs }, 'attempt aborted by shutdown; requeued');
      return requeue(ending, 0);
    case 'refresh-auth': {
      // The token was revoked or expired early: drop it for every worker and go again with a fresh
      // one, without spending an attempt.
      await sent.authorized!.refuse!();
      log.info({ ...fields, outcome: 'retry' }, 'target refused the OAuth2 token; refreshing it and trying again');
      const refused = refusedTokenAttempt(sent.startedAt, sent.durationMs);
      return saveAndRequeue(ending, { attempts: [...finished.previous, refused] }, 0);
    }
    case 'next-page':
      // Progress first, then the next page: a crash in between repeats at most this page's requeue.
      log.debug({ ...fields, pages: decision.paging.pages, items: decision.paging.items }, 'page read; next page');
      return saveAndRequeue(ending, { attempts: [], paging: decision.paging }, 0);
    case 'succeed': {
      log.info({ ...fields, outcome: 'succeeded' }, 'attempt succeeded');
      // classifyResponse is the only source of success, so a response exists here.
      const line = resultLine(envelope, finished.operation, job.id!, {
        outcome: 'succeeded',
        attempts: finished.attempt,
        response: sent.response!,
      });
      if (page?.kind === 'done') {
        // The items are in the file (or the child operations), not in the last page's body.
        line.pagination = page.summary;
        delete line.result;
      }
      const { opId, batchId } = envelope;
      await persist(deps, { jobId: job.id!, jobTimestamp: job.timestamp, opId, batchId, outcome: 'succeeded', resultLine: line });
      deps.metrics?.succeeded();
      return line;
    }
    case 'retry': {
      const code = attempts.at(-1)!.error!;
      const outcome = decision.rateLimited ? 'rate-limited' : 'retry';
      log.info({ ...fields, error: code, outcome, delayMs: decision.delayMs }, 'attempt failed; will retry');
      await job.updateData({ ...envelope, attempts } satisfies JobEnvelope);
      await deps.outcomes.countRetry(envelope.batchId);
      deps.metrics?.retry(code);
      return requeue(ending, decision.delayMs);
    }
    case 'dead-letter': {
      const { reason } = decision;
      const { error, message } = attempts.at(-1)!;
      log.warn({ ...fields, error, outcome: 'dead-lettered', reason }, 'operation dead-lettered');
      // A walk that ends here leaves no half-written items file (a replay starts again from page 1);
      // removed before the outcome is recorded, so a batch that reads as finished has none left.
      if (finished.walk) {
        await deps.pages
          .abandon(finished.walk)
          .catch((err: unknown) => log.warn({ err }, "could not remove the walk's partial items file"));
      }
      const { operation, limitKey } = finished;
      const details = { reason, message: message ?? reason, attempts, operation, limitKey, status: sent.response?.status };
      return deadLetter(ending, details, `${reason}: ${message}`);
    }
  }
}

async function endAsRecorded({ deps, job, envelope }: Ending, recorded: RecordedOutcome): Promise<unknown> {
  const fields = { jobId: job.id, batchId: envelope.batchId, outcome: recorded.outcome, stalls: job.stalledCounter };
  deps.logger.info(fields, 'outcome already recorded; job finished without sending it again');
  if (recorded.outcome === 'deadLettered') {
    throw new UnrecoverableError('dead-lettered on an earlier run (its dead letter says why); replay it to send it again');
  }
  // The result line a batch keeps is what the first run returned; an operation outside a batch keeps none.
  return recorded.resultLine ?? { id: envelope.opId, jobId: job.id, idempotencyKey: envelope.idempotencyKey, outcome: 'succeeded' };
}

async function refuse(ending: Ending, unsendable: Unsendable): Promise<never> {
  const { job, envelope, deps } = ending;
  const { reason, message } = unsendable;
  const fields = { jobId: job.id, batchId: envelope.batchId, outcome: 'dead-lettered', reason };
  const attempts = envelope.attempts ?? [];
  switch (unsendable.reason) {
    case 'stalled':
      deps.logger.error(fields, message);
      return deadLetter(ending, { reason, message, attempts }, unsendable.error);
    case 'invalid-operation':
      deps.logger.warn({ ...fields, queue: deps.queue, issues: unsendable.issues }, 'invalid operation');
      return deadLetter(ending, { reason, message, attempts }, unsendable.error);
    case 'request-error': {
      const { operation, limitKeys } = unsendable;
      return deadLetter(ending, { reason, message, attempts, operation, limitKey: limitKeys.join(',') }, unsendable.error);
    }
  }
}

async function requeue({ job, token }: Ending, delayMs: number): Promise<never> {
  // Back ahead of the jobs not yet started (see NEW_JOB_PRIORITY); both commands are sent at once.
  const priority = job.priority !== 0 ? job.changePriority({ priority: 0 }) : undefined;
  await Promise.all([priority, job.moveToDelayed(Date.now() + delayMs, token)]);
  throw new DelayedError();
}

async function saveAndRequeue(ending: Ending, data: Partial<JobEnvelope>, delayMs: number): Promise<never> {
  await ending.job.updateData({ ...ending.envelope, ...data } satisfies JobEnvelope);
  return requeue(ending, delayMs);
}

async function deadLetter({ deps, job, envelope }: Ending, details: DeadLetterDetails, error: string): Promise<never> {
  await persist(deps, deadLetterOutcome(deps.queue, { id: job.id!, timestamp: job.timestamp }, envelope, details));
  // Counted once stored: a dead letter that could not be stored fails the job, and the worker's
  // `failed` handler stores (and counts) it as internal-error instead.
  deps.metrics?.deadLetter(details.reason);
  throw new UnrecoverableError(error);
}

/**
 * Writes an outcome, retrying through a short Redis outage: the request has been made, so losing
 * its result (or its dead letter) now would be the worst place to give up.
 */
async function persist(deps: JobEndingDeps, record: OutcomeRecord): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      await deps.outcomes.record(record);
      return;
    } catch (error) {
      if (attempt >= PERSIST_ATTEMPTS) throw error;
      deps.logger.warn({ err: error, attempt }, 'could not record an outcome; retrying');
      await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt));
    }
  }
}
