import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { AuthError, RequestError, ShutdownAbortError, ValidationError, formatIssues, errorMessage } from '../errors.js';
import type { SluiceConfig } from '../config/sluice-config.js';
import type { Authorized, Credentials } from '../auth/credentials.js';
import { classifyError, classifyResponse, type AttemptClass } from '../http/classify.js';
import type { HttpClient, HttpResponseSummary } from '../http/http-client.js';
import { buildRequestSpec, type RequestSpec } from '../http/request-spec.js';
import { destinationPolicyOf, limitKeysOf, parseOperation } from '../operation/parse-operation.js';
import type { Gate, Limiter } from '../limits/limiter.js';
import type { Operation } from '../operation/schema.js';
import { foreignIdempotencyKey, readEnvelope, type AttemptRecord, type JobEnvelope } from '../queue/job-data.js';
import type { OutcomeStore } from '../queue/outcome-store.js';
import { lazyChild, type Logger, type WorkLog } from '../observability/logger.js';
import { statusClassOf, type WorkerMetrics } from '../observability/metrics.js';
import { backoffDelay } from './backoff.js';
import { pageRequest, readPage } from '../http/pagination.js';
import type { Paginate, PagingState } from '../operation/paginate-schema.js';
import type { PageSink, PaginationSummary } from './page-sink.js';
import { deadLetterEntry, excerptOf, responseReason, resultLine, type DeadLetterReason } from './outcome-shapes.js';

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
}

/** A concurrency lease outlives the request's own deadline by this much (then a dead worker's lease expires). */
const LEASE_MARGIN_MS = 5_000;
/** After a limiter error (Redis restarting), the job is tried again this much later. */
const LIMITER_ERROR_DELAY_MS = 1_000;
/** 401s in a row an operation may answer with a fresh OAuth2 token without spending an attempt. */
const MAX_AUTH_REFRESHES = 3;
/** Tries to record an outcome (250 ms, 500 ms, … between them: ~8 s in all). */
const PERSIST_ATTEMPTS = 6;
/** A job whose worker died this many times while running it is dead-lettered (`stalled`). */
export const MAX_STALLS = 5;
/** 429s an operation may wait out before it is dead-lettered (`rate-limited`). */
export const MAX_RATE_LIMIT_DEFERRALS = 50;

export type SluiceProcessor = (job: Job, token?: string, signal?: AbortSignal) => Promise<unknown>;

/**
 * One attempt of one operation: validate → request → success | retry later | dead letter.
 * Retries are scheduled here (not by BullMQ's attempts) so that jobs written by other clients, with
 * any job options, follow the operation's own retry policy, and so every attempt is recorded.
 */
export function createProcessor(deps: ProcessorDeps): SluiceProcessor {
  const { queue, config, http, limiter, credentials, pages, outcomes, logger, metrics } = deps;

  return async function process(job, token, signal) {
    const jobId = job.id!;
    const envelope = readEnvelope(job.data, jobId, foreignIdempotencyKey(queue, jobId, job.timestamp));
    if (job.stalledCounter >= MAX_STALLS) {
      // Its workers died this many times while running it: a poison operation. Stop here, with a
      // dead letter, rather than let BullMQ fail it silently at its own stall limit.
      const message = `the job's worker stopped ${job.stalledCounter} times while running it (crash or kill); not retried again`;
      logger.error({ jobId, batchId: envelope.batchId, outcome: 'dead-lettered', reason: 'stalled' }, message);
      await deadLetter(job, envelope, { reason: 'stalled', message, attempts: envelope.attempts ?? [] });
      throw new UnrecoverableError(message);
    }
    const parsed = parseOperation(envelope.op, config);
    if (!parsed.ok) {
      const message = formatIssues(parsed.issues);
      logger.warn(
        { jobId, queue, batchId: envelope.batchId, outcome: 'dead-lettered', reason: 'invalid-operation', issues: parsed.issues },
        'invalid operation',
      );
      await deadLetter(job, envelope, { reason: 'invalid-operation', message, attempts: envelope.attempts ?? [] });
      throw new UnrecoverableError(`invalid operation: ${message}`);
    }
    const operation = parsed.operation;
    const limitKeys = limitKeysOf(operation);
    const limitKey = limitKeys.join(',');
    let spec: RequestSpec;
    try {
      spec = buildRequestSpec(operation, operation.target ? config.targets[operation.target] : undefined, envelope.idempotencyKey, {
        ...config.files,
        jobId,
      });
      // A paginated operation sends the page its progress points at (the first, or where it stopped).
      if (operation.paginate) {
        spec = pageRequest(spec, operation.paginate, envelope.paging);
        // Job data can be written by other clients: a stored next page must pass the same rules.
        const refusal = destinationPolicyOf(config).refuseUrl(spec.url);
        if (refusal) throw new RequestError(`the next page ${spec.url.origin}${spec.url.pathname}: ${refusal}`);
      }
    } catch (error) {
      await deadLetter(job, envelope, {
        reason: 'request-error',
        message: errorMessage(error),
        attempts: envelope.attempts ?? [],
        operation,
        limitKey,
      });
      throw new UnrecoverableError(errorMessage(error));
    }

    const previous = envelope.attempts ?? [];
    const attempt = previous.filter((record) => !record.rateLimited && !record.authRefreshed).length + 1;
    // Made on first use (see lazyChild): with LOG_LEVEL=warn most jobs never need it.
    const log = lazyChild(logger, () => ({
      jobId,
      batchId: envelope.batchId,
      limitKey,
      method: spec.method,
      url: `${spec.url.origin}${spec.url.pathname}`,
      attempt,
    }));
    const requeue = async (delayMs: number): Promise<never> => {
      // Back ahead of the jobs not yet started (see NEW_JOB_PRIORITY); both commands are sent at once.
      const priority = job.priority !== 0 ? job.changePriority({ priority: 0 }) : undefined;
      await Promise.all([priority, job.moveToDelayed(Date.now() + delayMs, token)]);
      throw new DelayedError();
    };

    // Credentials first: an OAuth2 token may need a request of its own, which must not hold a limiter slot.
    // Refused a moment ago: the fleet's current token, not the copy this process may still hold (another
    // worker may have taken this job's first 401 and dropped the token everywhere but in memory here).
    let refusedInARow = 0;
    while (previous[previous.length - 1 - refusedInARow]?.authRefreshed) refusedInARow++;
    const prepared = await credentials.authorize(operation.target, spec, { afterRefusal: refusedInARow > 0 }).then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    );

    // The limits: go now (perhaps after a short wait in this slot), or give the slot back until the key opens.
    let gate: Gate;
    try {
      gate = await limiter.acquire(limitKeys, jobId, spec.timeouts.total + LEASE_MARGIN_MS, signal);
    } catch (error) {
      if (error instanceof ShutdownAbortError) {
        log.info({ outcome: 'requeued' }, 'shutdown while waiting for the limit; requeued');
        return requeue(0);
      }
      // Redis trouble (restarting, loading, failing over) is no reason to fail an operation: try later.
      log.warn({ err: error, outcome: 'requeued' }, 'could not reach the limiter; requeued');
      return requeue(LIMITER_ERROR_DELAY_MS);
    }
    if (gate.kind === 'defer') {
      log.debug({ outcome: 'deferred', reason: gate.reason, delayMs: gate.waitMs }, 'limit key busy; job deferred');
      return requeue(gate.waitMs);
    }

    const startedAt = new Date();
    let response: HttpResponseSummary | undefined;
    let verdict: AttemptClass;
    let failure: unknown;
    let authorized: Authorized | undefined;
    try {
      if (!prepared.ok) throw prepared.error;
      authorized = prepared.value;
      response = await http.send(authorized.spec, signal);
      // What a target echoes of a secret (an apiKey in the query, in Link or Location) is not kept.
      for (const name of ['link', 'location'] as const) {
        const value = response.headers[name];
        if (value) response.headers[name] = credentials.scrub(operation.target, value);
      }
      verdict = classifyResponse(response, operation.expect);
    } catch (error) {
      failure = error;
      verdict = classifyError(error);
    } finally {
      await limiter.release(gate.lease);
    }
    const durationMs = response?.durationMs ?? Date.now() - startedAt.getTime();
    metrics?.request(limitKey, statusClassOf(response?.status, failure), durationMs);
    if (response) await learnFromResponse(response, limitKeys, log);

    if (verdict.kind === 'aborted') {
      // Shutdown: back to the queue at once, without spending an attempt.
      log.info({ outcome: 'requeued', durationMs }, 'attempt aborted by shutdown; requeued');
      return requeue(0);
    }

    // A second 401 in a row is the target's final word on the fleet's current token; for a token that
    // another worker had already dropped or replaced meanwhile, it is not (bounded all the same). When
    // Redis cannot say, the token counts as current.
    const refreshable = async () =>
      refusedInARow === 0 || (refusedInARow < MAX_AUTH_REFRESHES && !(await (authorized?.isCurrent?.().catch(() => true) ?? true)));
    if (response?.status === 401 && authorized?.refuse && (await refreshable())) {
      // The token was revoked or expired early: drop it for every worker and go again with a fresh
      // one, without spending an attempt.
      await authorized.refuse();
      log.info({ status: 401, durationMs, outcome: 'retry' }, 'target refused the OAuth2 token; refreshing it and trying again');
      const refused: AttemptRecord = {
        at: startedAt.toISOString(),
        durationMs,
        status: 401,
        error: 'HTTP_401',
        message: 'target refused the OAuth2 token; refreshed it',
        authRefreshed: true,
      };
      await job.updateData({ ...envelope, attempts: [...previous, refused] } satisfies JobEnvelope);
      return requeue(0);
    }

    let walked: PaginationSummary | undefined;
    if (verdict.kind === 'success' && operation.paginate) {
      const step = await takePage(operation.paginate, response!);
      if (step.kind === 'next') {
        // Progress first, then the next page: a crash in between repeats at most this page's requeue.
        log.debug({ status: response!.status, durationMs, pages: step.paging.pages, items: step.paging.items }, 'page read; next page');
        await job.updateData({ ...envelope, attempts: [], paging: step.paging } satisfies JobEnvelope);
        return requeue(0);
      }
      if (step.kind === 'failed') verdict = step.verdict;
      else walked = step.summary;
    }

    if (verdict.kind === 'success') {
      // classifyResponse is the only source of success, so a response exists here.
      response = response!;
      log.info({ status: response.status, durationMs, outcome: 'succeeded' }, 'attempt succeeded');
      const line = resultLine(envelope, operation, jobId, { outcome: 'succeeded', attempts: attempt, response });
      if (walked) {
        // The items are in the file (or the child operations), not in the last page's body.
        line.pagination = walked;
        delete line.result;
      }
      await persist(() =>
        outcomes.record({
          jobId,
          jobTimestamp: job.timestamp,
          opId: envelope.opId,
          batchId: envelope.batchId,
          outcome: 'succeeded',
          resultLine: line,
        }),
      );
      metrics?.succeeded();
      return line;
    }

    const rateLimited = response?.status === 429;
    const record: AttemptRecord = {
      at: startedAt.toISOString(),
      durationMs,
      ...(response ? { status: response.status } : {}),
      error: verdict.code,
      message:
        (verdict.kind === 'permanent' ? verdict.message : undefined) ??
        (response ? `target answered HTTP ${response.status}` : errorMessage(failure)),
      ...(response ? { excerpt: excerptOf(response.body.value) } : {}),
      ...(rateLimited ? { rateLimited: true } : {}),
    };
    const attempts = [...previous, record];

    if (verdict.kind === 'retry') {
      // A 429 is the target pacing us: waiting for it does not spend an attempt (it is bounded by
      // maxDurationMs and MAX_RATE_LIMIT_DEFERRALS instead).
      const deferrals = attempts.filter((entry) => entry.rateLimited).length;
      const delay = rateLimited
        ? Math.max(verdict.retryAfterMs ?? 0, backoffDelay(operation.retry, deferrals, undefined, deps.random))
        : backoffDelay(operation.retry, attempt, verdict.retryAfterMs, deps.random);
      const firstAt = Date.parse(attempts[0]!.at);
      const withinBudget = rateLimited ? deferrals <= MAX_RATE_LIMIT_DEFERRALS : attempt < operation.retry.attempts;
      const withinDuration = Date.now() + delay - firstAt <= operation.retry.maxDurationMs;
      if (withinBudget && withinDuration) {
        log.info(
          { status: response?.status, error: verdict.code, durationMs, outcome: rateLimited ? 'rate-limited' : 'retry', delayMs: delay },
          'attempt failed; will retry',
        );
        await job.updateData({ ...envelope, attempts } satisfies JobEnvelope);
        await outcomes.countRetry(envelope.batchId);
        metrics?.retry(verdict.code);
        return requeue(delay);
      }
      const reason: DeadLetterReason = !withinBudget
        ? rateLimited
          ? 'rate-limited'
          : verdict.code.startsWith('TIMEOUT')
            ? 'timeout'
            : 'attempts-exhausted'
        : 'max-duration-exceeded';
      return finalFailure(reason);
    }
    return finalFailure(response ? responseReason(verdict.code) : failure instanceof AuthError ? 'auth-failed' : 'request-error');

    /** One page's items to the sink; the next page, the finished walk, or why the page failed. */
    async function takePage(
      paginate: Paginate,
      page: HttpResponseSummary,
    ): Promise<
      | { kind: 'next'; paging: PagingState }
      | { kind: 'done'; summary: PaginationSummary }
      | { kind: 'failed'; verdict: Extract<AttemptClass, { code: string }> }
    > {
      const state = envelope.paging;
      const read = readPage(page, paginate, state, spec.url);
      if (!read.ok) return { kind: 'failed', verdict: { kind: 'permanent', code: 'PAGINATION_BAD_PAGE', message: read.message } };
      if (read.next?.url) {
        // Stored in the job: without secrets (authorize puts an apiKey back), and only if it may be called.
        read.next.url = credentials.scrub(operation.target, read.next.url);
        const refusal = destinationPolicyOf(config).refuseUrl(new URL(read.next.url));
        if (refusal)
          return {
            kind: 'failed',
            verdict: { kind: 'permanent', code: 'ADDRESS_REFUSED', message: `the next page ${read.next.url}: ${refusal}` },
          };
      }
      const room = paginate.maxItems === undefined ? Infinity : paginate.maxItems - (state?.items ?? 0);
      const items = read.items.slice(0, Math.max(0, room));
      const context = { jobId, opId: envelope.opId, batchId: envelope.batchId, paginate, state };
      try {
        const fileBytes = await pages.take(context, items);
        const paging: PagingState = {
          pages: (state?.pages ?? 0) + 1,
          items: (state?.items ?? 0) + items.length,
          ...(read.next
            ? { next: read.next, recent: [...(state?.recent ?? []), read.next.cursor ?? read.next.url ?? ''].filter(Boolean).slice(-20) }
            : {}),
          ...(fileBytes !== undefined ? { fileBytes } : {}),
        };
        if (read.next && items.length === read.items.length && paging.items < (paginate.maxItems ?? Infinity))
          return { kind: 'next', paging };
        return { kind: 'done', summary: await pages.finish(context, paging) };
      } catch (error) {
        // A bad child template or a misplaced file will not get better; Redis or disk trouble may.
        const permanent = error instanceof RequestError || error instanceof ValidationError;
        const code = permanent ? 'PAGINATION_FAILED' : 'PAGINATION_WRITE_FAILED';
        const message = `page ${(state?.pages ?? 0) + 1}: ${errorMessage(error)}`;
        return {
          kind: 'failed',
          verdict: permanent ? { kind: 'permanent', code, message } : { kind: 'retry', retryAfterMs: undefined, code },
        };
      }
    }

    async function finalFailure(reason: DeadLetterReason): Promise<never> {
      log.warn(
        {
          status: response?.status,
          error: verdict.kind === 'success' ? undefined : record.error,
          durationMs,
          outcome: 'dead-lettered',
          reason,
        },
        'operation dead-lettered',
      );
      // A walk that ends here leaves no half-written items file (a replay starts again from page 1);
      // removed before the outcome is recorded, so a batch that reads as finished has none left.
      if (operation.paginate) {
        await pages
          .abandon({ jobId, opId: envelope.opId, batchId: envelope.batchId, paginate: operation.paginate, state: envelope.paging })
          .catch((error: unknown) => {
            log.warn({ err: error }, "could not remove the walk's partial items file");
          });
      }
      await deadLetter(job, envelope, {
        reason,
        message: record.message ?? reason,
        attempts,
        operation,
        limitKey,
        status: response?.status,
      });
      throw new UnrecoverableError(`${reason}: ${record.message}`);
    }
  };

  /** Retry-After on a 429/503, a 429 itself, or a spent RateLimit quota steer the key for every worker. */
  async function learnFromResponse(response: HttpResponseSummary, keys: string[], log: WorkLog): Promise<void> {
    const status = response.status;
    const retryAfterMs = status === 429 || status === 503 ? response.retryAfterMs : undefined;
    const resetMs = response.rateLimit && response.rateLimit.remaining <= 0 ? response.rateLimit.resetMs : undefined;
    if (status !== 429 && retryAfterMs === undefined && resetMs === undefined) return;
    try {
      await limiter.observe(keys, { status, retryAfterMs, resetMs });
    } catch (error) {
      log.warn({ err: error }, 'could not record what the target said about its limits');
    }
  }

  /**
   * Writes an outcome, retrying through a short Redis outage: the request has been made, so losing
   * its result (or its dead letter) now would be the worst place to give up.
   */
  async function persist(write: () => Promise<unknown>): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await write();
        return;
      } catch (error) {
        if (attempt >= PERSIST_ATTEMPTS) throw error;
        logger.warn({ err: error, attempt }, 'could not record an outcome; retrying');
        await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt));
      }
    }
  }

  async function deadLetter(
    job: Job,
    envelope: JobEnvelope,
    details: {
      reason: DeadLetterReason;
      message: string;
      attempts: AttemptRecord[];
      operation?: Operation;
      limitKey?: string;
      status?: number | undefined;
    },
  ): Promise<void> {
    const jobId = job.id!;
    const entry = deadLetterEntry(queue, jobId, envelope, details);
    const line = resultLine(envelope, details.operation, jobId, {
      outcome: 'deadLettered',
      attempts: details.attempts.length,
      reason: details.reason,
      message: details.message,
      status: details.status,
      excerpt: details.attempts.at(-1)?.excerpt,
    });
    await persist(() =>
      outcomes.record({
        jobId,
        jobTimestamp: job.timestamp,
        opId: envelope.opId,
        batchId: envelope.batchId,
        outcome: 'deadLettered',
        resultLine: line,
        deadLetter: entry,
      }),
    );
    // Counted once stored: a dead letter that could not be stored fails the job, and the worker's
    // `failed` handler stores (and counts) it as internal-error instead.
    metrics?.deadLetter(details.reason);
  }
}
