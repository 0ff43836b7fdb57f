import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { ShutdownAbortError } from '../errors.js';
import type { Logger, WorkLog } from '../observability/logger.js';
import type { WorkerMetrics } from '../observability/metrics.js';
import type { Operation } from '../operation/schema.js';
import { deadLetterOutcome, type DeadLetterDetails } from '../outcomes/dead-letter.js';
import type { OutcomeRecord, OutcomeStore } from '../outcomes/outcome-store.js';
import { resultLine } from '../outcomes/result-line.js';
import type { AttemptRecord, JobEnvelope } from '../queue/job-data.js';
import { circuitWaitedMs, refusedTokenAttempt } from './attempt-record.js';
import type { Gate } from '../limits/limiter.js';
import type { AttemptDecision } from './decide-attempt.js';
import type { PageSink, WalkContext } from './page-sink.js';
import type { PageStep } from './page-step.js';
import type { Unsendable } from './prepare-request.js';
import type { SentAttempt } from './send-attempt.js';

/** After a limiter error (Redis restarting), the job is tried again this much later. */
const LIMITER_ERROR_DELAY_MS = 1_000;
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
  /** The limiter could not answer: shutdown, or Redis trouble (restarting, failing over), which is no reason to fail the job. */
  limiterFailed(error: unknown, log: WorkLog): Promise<never>;
  /** A key's circuit is open: the job waits (spending no attempt), or is dead-lettered after the circuit's maxOpenMs. */
  waitForCircuit(gate: CircuitGate, about: { operation: Operation; limitKey: string }, log: WorkLog): Promise<never>;
}

type CircuitGate = Extract<Gate, { kind: 'circuit-open' }>;

/** A job waiting on an open circuit comes back at its next probe at the earliest, and at the latest after this long (a closing circuit wakes it). */
const MAX_CIRCUIT_WAIT_MS = 5 * 60_000;

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
    waitForCircuit: (gate, about, log) => waitForCircuit(ending, gate, about, log),
    limiterFailed(error, log) {
      const shutdown = error instanceof ShutdownAbortError;
      if (shutdown) log.info({ outcome: 'requeued' }, 'shutdown while waiting for the limit; requeued');
      else log.warn({ err: error, outcome: 'requeued' }, 'could not reach the limiter; requeued');
      return requeue(ending, shutdown ? 0 : LIMITER_ERROR_DELAY_MS);
    },
  };
}

async function waitForCircuit(
  ending: Ending,
  gate: CircuitGate,
  about: { operation: Operation; limitKey: string },
  log: WorkLog,
): Promise<never> {
  const { envelope } = ending;
  const now = Date.now();
  const since = envelope.circuitSince ?? now;
  if (now - since > gate.maxOpenMs) {
    const message = `the circuit of ${about.limitKey} has been open for ${Math.round(gate.openForMs / 1_000)} s; the operation waited ${Math.round((now - since) / 1_000)} s, longer than the circuit's maxOpenMs (${gate.maxOpenMs} ms)`;
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
      await persist(deps, { jobId: job.id!, jobTimestamp: job.timestamp, opId, batchId, outcome: 'succeeded', resultLine: line });
      deps.metrics?.succeeded();
      return line;
    }
    case 'retry': {
      const code = attempts.at(-1)!.error!;
      const outcome = decision.rateLimited ? 'rate-limited' : 'retry';
      log.info({ ...fields, error: code, outcome, delayMs: decision.delayMs }, 'attempt failed; will retry');
      // The time it waited on open circuits is kept: it does not count against maxDurationMs.
      await job.updateData({ ...envelope, attempts, ...sentAfterCircuit(envelope) } satisfies JobEnvelope);
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

/** Sent at last: the wait on circuits ends, and what it lasted is kept. */
function sentAfterCircuit(envelope: JobEnvelope): Partial<JobEnvelope> {
  const waited = circuitWaitedMs(envelope);
  return { circuitSince: undefined, circuitWaitedMs: waited || undefined };
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
