import { DelayedError, UnrecoverableError } from 'bullmq';
import type { OperationJob } from './operation-job.js';
import { ShutdownAbortError } from '../errors.js';
import type { Logger, WorkLog } from '../observability/logger.js';
import type { WorkerMetrics } from '../observability/metrics.js';
import type { Operation } from '../operation/schema.js';
import { deadLetterOutcome, type DeadLetterDetails } from '../outcomes/dead-letter.js';
import type { OutcomeRecord, OutcomeStore, RecordedOutcome } from '../outcomes/outcome-store.js';
import { resultLine } from '../outcomes/result-line.js';
import type { AttemptRecord, JobEnvelope } from '../queue/job-data.js';
import { circuitWaitedMs, refusedTokenAttempt } from './attempt-record.js';
import type { Gate } from '../limits/limiter.js';
import type { AttemptDecision } from './decide-attempt.js';
import type { PageSink, WalkContext } from './page-sink.js';
import type { PageStep } from './page-step.js';
import type { Unsendable } from './prepare-request.js';
import type { SentAttempt } from './send-attempt.js';
import { untilAborted } from '../support/abortable.js';
import { HandBack, STOPPING_WRITE_MS, durably } from './durable-write.js';

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
  /**
   * A job back from a stall (or retried after it finished) may have ended already: its worker recorded
   * the outcome, then died before BullMQ heard of it. Then it ends as recorded (`result`), nothing sent
   * or counted again. A job on its first run (or back from a deferral or a retry) costs no Redis call.
   */
  ifRecorded(): Promise<{ result: unknown } | undefined>;
  /** Waiting for `what` was cut short: by shutdown (back at once), or by Redis trouble, which is no reason to fail the job. */
  interrupted(error: unknown, what: string, log: WorkLog): Promise<never>;
  /** A key's circuit is open: the job waits (spending no attempt), or is dead-lettered after the circuit's maxOpenMs. */
  waitForCircuit(gate: CircuitGate, about: { operation: Operation; limitKey: string }, log: WorkLog): Promise<never>;
}

type CircuitGate = Extract<Gate, { kind: 'circuit-open' }>;

/** After a Redis error (restarting, failing over), the job is tried again this much later. */
const REDIS_ERROR_DELAY_MS = 1_000;
/** A job waiting on an open circuit comes back at its next probe at the earliest, and at the latest after this long (a closing circuit wakes it). */
const MAX_CIRCUIT_WAIT_MS = 5 * 60_000;

interface Ending {
  deps: JobEndingDeps;
  job: OperationJob;
  envelope: JobEnvelope;
  token: string | undefined;
  /** Aborted when the worker stops: writes that Redis refuses are given up then (see durable-write.ts). */
  signal: AbortSignal | undefined;
}

export function createJobEnding(
  deps: JobEndingDeps,
  job: OperationJob,
  envelope: JobEnvelope,
  token: string | undefined,
  signal: AbortSignal | undefined,
): JobEnding {
  const ending: Ending = { deps, job, envelope, token, signal };
  return {
    requeue: (delayMs) => leftIfStopped(ending, requeue(ending, delayMs)),
    refuse: (unsendable) => leftIfStopped(ending, refuse(ending, unsendable)),
    finish: (finished, log) => leftIfStopped(ending, finish(ending, finished, log)),
    ifRecorded: () => ifRecorded(ending),
    waitForCircuit: (gate, about, log) => leftIfStopped(ending, waitForCircuit(ending, gate, about, log)),
    interrupted: (error, what, log) => interrupted(ending, error, what, log),
  };
}

function interrupted(ending: Ending, error: unknown, what: string, log: WorkLog): Promise<never> {
  const shutdown = error instanceof ShutdownAbortError;
  if (shutdown) log.info({ outcome: 'requeued' }, `shutdown while waiting for ${what}; requeued`);
  else log.warn({ err: error, outcome: 'requeued' }, `could not reach ${what}; requeued`);
  return leftIfStopped(ending, requeue(ending, shutdown ? 0 : REDIS_ERROR_DELAY_MS));
}

async function ifRecorded(ending: Ending): Promise<{ result: unknown } | undefined> {
  const { job, envelope, deps } = ending;
  if (job.stalledCounter === 0 && job.attemptsMade === 0) return undefined;
  const about = { jobId: job.id!, jobTimestamp: job.timestamp, opId: envelope.opId, batchId: envelope.batchId };
  const recorded = await deps.outcomes.recorded(about).catch((error: unknown) => ({ error }));
  if (recorded && 'error' in recorded)
    return interrupted(ending, recorded.error, 'the outcome store', deps.logger.child({ jobId: job.id }));
  return recorded ? { result: await endAsRecorded(ending, recorded) } : undefined;
}

async function waitForCircuit(
  ending: Ending,
  gate: CircuitGate,
  about: { operation: Operation; limitKey: string },
  log: WorkLog,
): Promise<never> {
  const { envelope } = ending;
  const now = Date.now();
  // Every wait on an open circuit counts, also those before the operation was last sent (as a probe).
  const waited = circuitWaitedMs(envelope, now);
  if (waited > gate.maxOpenMs) {
    const message = `the circuit of ${about.limitKey} has been open for ${Math.round(gate.openForMs / 1_000)} s; the operation waited ${Math.round(waited / 1_000)} s in all, longer than the circuit's maxOpenMs (${gate.maxOpenMs} ms)`;
    log.warn({ outcome: 'dead-lettered', reason: 'circuit-open', openForMs: gate.openForMs }, 'operation dead-lettered');
    const attempts = envelope.attempts ?? [];
    return deadLetter(ending, { reason: 'circuit-open', message, attempts, operation: about.operation, limitKey: about.limitKey }, message);
  }
  // Back at the next probe, or later the longer the circuit has been open: a closing circuit wakes the waiting jobs.
  const delayMs = Math.round(Math.max(gate.waitMs, Math.min(gate.openForMs, MAX_CIRCUIT_WAIT_MS)) * (0.9 + Math.random() * 0.2));
  log.debug({ outcome: 'deferred', reason: 'circuit', delayMs, openForMs: gate.openForMs }, 'circuit open; job waits');
  if (envelope.circuitSince === undefined) return saveAndRequeue(ending, { circuitSince: now }, delayMs);
  return requeue(ending, delayMs);
}

/** Sent at last: the wait on circuits ends, and what it lasted is kept (it does not count against maxDurationMs). */
function sentAfterCircuit(envelope: JobEnvelope): Partial<JobEnvelope> {
  const waited = circuitWaitedMs(envelope);
  return { circuitSince: undefined, circuitWaitedMs: waited || undefined };
}

/**
 * A job whose end Redis still refused when the worker stopped stays active, without its worker: its
 * lock lapses and BullMQ's stalled-job check gives it to another worker (BullMQ moves nothing after a
 * DelayedError). An outcome already recorded is found there (see the processor); otherwise the
 * attempt runs again.
 */
async function leftIfStopped<T>(ending: Ending, ended: Promise<T>): Promise<T> {
  try {
    return await ended;
  } catch (error) {
    if (!(error instanceof HandBack)) throw error;
    const { job, envelope, deps } = ending;
    deps.logger.warn(
      { err: error.cause, jobId: job.id, batchId: envelope.batchId, outcome: 'handed-back' },
      'worker stopping while Redis refuses the end of a job; it goes to another worker once its lock lapses',
    );
    throw new DelayedError();
  }
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
      return saveAndRequeue(ending, { attempts: [...finished.previous, refused], ...sentAfterCircuit(envelope) }, 0);
    }
    case 'next-page':
      // Progress first, then the next page: a crash in between repeats at most this page's requeue.
      log.debug({ ...fields, pages: decision.paging.pages, items: decision.paging.items }, 'page read; next page');
      // Each page has a budget of its own: attempts and time waited on circuits start again.
      return saveAndRequeue(ending, { attempts: [], paging: decision.paging, circuitSince: undefined, circuitWaitedMs: undefined }, 0);
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
      await persist(ending, { jobId: job.id!, jobTimestamp: job.timestamp, opId, batchId, outcome: 'succeeded', resultLine: line });
      deps.metrics?.succeeded();
      return line;
    }
    case 'retry': {
      const code = attempts.at(-1)!.error!;
      const outcome = decision.rateLimited ? 'rate-limited' : 'retry';
      log.info({ ...fields, error: code, outcome, delayMs: decision.delayMs }, 'attempt failed; will retry');
      const saved = { ...envelope, attempts, ...sentAfterCircuit(envelope) } satisfies JobEnvelope;
      await durably(writeContext(ending), 'save the attempt', () => job.updateData(saved));
      await durably(writeContext(ending), 'count the retry', () => deps.outcomes.countRetry(envelope.batchId));
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

async function requeue(ending: Ending, delayMs: number): Promise<never> {
  const { job, token } = ending;
  await durably(writeContext(ending), 'requeue the job', async () => {
    // Back ahead of the jobs not yet started (see NEW_JOB_PRIORITY); both commands are sent at once.
    const priority = job.priority !== 0 ? job.changePriority({ priority: 0 }) : undefined;
    await Promise.all([priority, job.moveToDelayed(Date.now() + delayMs, token)]);
  });
  throw new DelayedError();
}

async function saveAndRequeue(ending: Ending, data: Partial<JobEnvelope>, delayMs: number): Promise<never> {
  await durably(writeContext(ending), 'save the job', () => ending.job.updateData({ ...ending.envelope, ...data } satisfies JobEnvelope));
  return requeue(ending, delayMs);
}

async function deadLetter(ending: Ending, details: DeadLetterDetails, error: string): Promise<never> {
  const { deps, job, envelope } = ending;
  await persist(ending, deadLetterOutcome(deps.queue, { id: job.id!, timestamp: job.timestamp }, envelope, details));
  // Counted once stored: one that fails on something other than Redis fails the job, and the
  // worker's `failed` handler stores (and counts) it as internal-error instead.
  deps.metrics?.deadLetter(details.reason);
  throw new UnrecoverableError(error);
}

function writeContext({ signal, deps, job }: Ending) {
  return { signal, logger: deps.logger, jobId: job.id! };
}

/**
 * Writes an outcome: the request was made, so its result (or its dead letter) must be recorded, or
 * another worker would send it again. Retried for as long as Redis refuses it (full, failing over,
 * unreachable). A worker that stops meanwhile makes one last try that a full Redis takes anyway (its
 * overshoot: the outcomes in flight), so that the job it leaves is ended by whoever takes it next
 * without being sent again; only a Redis it cannot reach at all leaves the outcome to a second send.
 */
async function persist(ending: Ending, record: OutcomeRecord): Promise<void> {
  const { deps, signal } = ending;
  try {
    await durably(writeContext(ending), 'record an outcome', () => deps.outcomes.record(record));
  } catch (error) {
    if (!(error instanceof HandBack)) throw error;
    const lastTry = untilAborted(deps.outcomes.record(record, { evenIfFull: true }), signal, STOPPING_WRITE_MS);
    const failure = await lastTry.then(
      () => undefined,
      (lastError: unknown) => lastError,
    );
    const fields = { jobId: record.jobId, batchId: record.batchId, outcome: record.outcome };
    if (failure !== undefined) {
      deps.logger.error(
        { ...fields, err: failure },
        'worker stopping: could not record the outcome of a request it made; it will be sent again',
      );
      throw error;
    }
    deps.logger.warn(fields, 'worker stopping while Redis refuses writes: outcome recorded past maxmemory');
  }
}
