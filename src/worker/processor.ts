import type { Credentials } from '../auth/credentials.js';
import type { SluiceConfig } from '../config/sluice-config.js';
import { AuthError, ShutdownAbortError } from '../errors.js';
import type { HttpClient } from '../http/http-client.js';
import type { Limiter } from '../limits/limiter.js';
import { lazyChild, type Logger } from '../observability/logger.js';
import type { WorkerMetrics } from '../observability/metrics.js';
import type { OutcomeStore } from '../outcomes/outcome-store.js';
import type { OperationRules } from '../operation/parse-operation.js';
import { foreignIdempotencyKey, readEnvelope } from '../queue/job-data.js';
import { bookingHolder } from '../queue/wake-jobs.js';
import { attemptNumber, circuitWaitedMs, failedAttempt, refusalsInARow } from './attempt-record.js';
import { decideAttempt } from './decide-attempt.js';
import { createJobEnding } from './job-ending.js';
import type { OperationJob } from './operation-job.js';
import { LaneOp } from './lane-op.js';
import type { PageSink } from './page-sink.js';
import { takePage, walkOf } from './page-step.js';
import { prepareRequest } from './prepare-request.js';
import { mayRefreshToken, sendAttempt, type Authorization } from './send-attempt.js';

export interface ProcessorDeps {
  queue: string;
  config: SluiceConfig;
  http: HttpClient;
  limiter: Limiter;
  /** Adds each target's credentials at send time. */
  credentials: Credentials;
  /** Where paginated operations' items go. */
  pages: PageSink;
  outcomes: OutcomeStore;
  logger: Logger;
  /** Counts requests, retries and outcomes (see observability/metrics.ts). Default: none. */
  metrics?: WorkerMetrics;
  /** Jitter source, for tests. */
  random?: () => number;
  /** What operations must also satisfy here (one limit group on a Redis Cluster). */
  rules?: OperationRules;
}

/** A concurrency lease outlives the request's own deadline by this much (then a dead worker's lease expires). */
const LEASE_MARGIN_MS = 5_000;

export type SluiceProcessor = (job: OperationJob, token?: string, signal?: AbortSignal) => Promise<unknown>;

/**
 * One attempt of one operation, in order: validate → credentials → limits → request → decide
 * (decide-attempt.ts) → carry the decision out (job-ending.ts). Every attempt is recorded.
 */
export function createProcessor(deps: ProcessorDeps): SluiceProcessor {
  const { queue, config, limiter, credentials, pages, logger } = deps;

  return async function process(job, token, signal) {
    const jobId = job.id!;
    // An operation of a lane holds the envelope its lane made for it (queue/lanes.ts laneEnvelope).
    const envelope =
      job instanceof LaneOp ? job.data : readEnvelope(job.data, jobId, () => foreignIdempotencyKey(queue, jobId, job.timestamp));
    const end = createJobEnding(deps, job, envelope, token, signal);
    const recorded = await end.ifRecorded();
    if (recorded) return recorded.result;
    const previous = envelope.attempts ?? [];
    const prepared = prepareRequest(envelope, config, { id: jobId, stalledCounter: job.stalledCounter }, deps.rules);
    if (!prepared.ok) return end.refuse(prepared);
    const { operation, limitKeys, spec } = prepared;
    const limitKey = limitKeys.join(',');
    const attempt = attemptNumber(previous);
    const url = `${spec.url.origin}${spec.url.pathname}`;
    // Made on first use (see lazyChild): with LOG_LEVEL=warn most jobs never need it.
    const log = lazyChild(logger, () => ({ jobId, batchId: envelope.batchId, limitKey, method: spec.method, url, attempt }));

    // Credentials first: an OAuth2 token may need a request of its own, which must not hold a limiter slot.
    // Refused a moment ago: the fleet's current token, not the copy this process may still hold (another
    // worker may have taken this job's first 401 and dropped the token everywhere but in memory here).
    const refusedInARow = refusalsInARow(previous);
    const authorization: Authorization = await credentials
      .authorize(operation.target, spec, {
        afterRefusal: refusedInARow > 0,
        signal,
        message: { id: envelope.opId, idempotencyKey: envelope.idempotencyKey },
      })
      .then(
        (value) => ({ ok: true, value }),
        (error: unknown) => ({ ok: false, error }),
      );
    if (!authorization.ok && authorization.error instanceof ShutdownAbortError)
      return end.interrupted(authorization.error, 'an OAuth2 token', log);

    // The limits: go now (perhaps after a short wait in this slot), or give the slot back until the key opens.
    // Booked under the job and its queue: `limits set` wakes booked jobs in whichever queue holds them.
    const gate = await limiter
      .acquire(limitKeys, bookingHolder(queue, jobId), spec.timeouts.total + LEASE_MARGIN_MS, signal, job.followers)
      .catch((error: unknown) => ({ kind: 'failed' as const, error }));
    if (gate.kind === 'failed') return end.interrupted(gate.error, 'the limiter', log);
    if (gate.kind === 'defer') {
      log.debug(
        { outcome: 'deferred', reason: gate.reason, delayMs: gate.waitMs, position: gate.position },
        'limit key busy; job deferred',
      );
      return end.requeue(gate.waitMs);
    }
    if (gate.kind === 'circuit-open') return end.waitForCircuit(gate, { operation, limitKey }, log);

    const limits = { keys: limitKeys, lease: gate.lease, probes: gate.probes ?? [] };
    const sent = await sendAttempt(deps, operation, authorization, limits, signal, log);
    const refreshAuth = await mayRefreshToken(sent, refusedInARow);
    const walk = walkOf(operation, envelope, jobId);
    const page =
      walk && sent.verdict.kind === 'success' && !refreshAuth
        ? await takePage({ config, credentials, pages, target: operation.target, requestUrl: spec.url, context: walk }, sent.response!)
        : undefined;
    const verdict = page?.kind === 'failed' ? page.verdict : sent.verdict;
    const failed = verdict.kind === 'retry' || verdict.kind === 'permanent';
    const attempts = failed
      ? [...previous, failedAttempt(sent.startedAt, sent.durationMs, verdict, sent.response, sent.failure)]
      : previous;
    const decision = decideAttempt({
      verdict,
      status: sent.response?.status,
      authFailed: sent.failure instanceof AuthError,
      refreshAuth,
      nextPage: page?.kind === 'next' ? page.paging : undefined,
      attempt,
      attempts,
      retry: operation.retry,
      now: Date.now(),
      random: deps.random,
      circuitWaitedMs: circuitWaitedMs(envelope),
    });
    return end.finish({ decision, sent, page, previous, attempts, attempt, operation, limitKey, walk }, log);
  };
}
