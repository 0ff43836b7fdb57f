import type { AttemptClass } from '../http/classify.js';
import type { Operation } from '../operation/schema.js';
import type { PagingState } from '../operation/paginate-schema.js';
import type { DeadLetterReason } from '../outcomes/dead-letter.js';
import type { AttemptRecord } from '../queue/job-data.js';
import { backoffDelay } from './backoff.js';

/** 429s an operation may wait out before it is dead-lettered (`rate-limited`). */
export const MAX_RATE_LIMIT_DEFERRALS = 50;

/** Everything an attempt's end depends on, gathered by the processor. */
export interface AttemptFacts {
  /** What the answer (or the error) meant; for a paginated operation, after its page was taken. */
  verdict: AttemptClass;
  /** The answer's status; undefined when there was none. */
  status: number | undefined;
  /** No answer because the target's credentials could not be had (an OAuth2 token request failed). */
  authFailed: boolean;
  /** A 401 that fresh OAuth2 credentials may cure without spending an attempt. */
  refreshAuth: boolean;
  /** For a page that has a next one: the walk's progress after it. */
  nextPage: PagingState | undefined;
  /** The attempt's number (see attemptNumber). */
  attempt: number;
  /** Every attempt recorded so far, this one included when it failed. */
  attempts: readonly AttemptRecord[];
  retry: Operation['retry'];
  now: number;
  /** Time the operation spent waiting on open circuits: not counted against `retry.maxDurationMs`. */
  circuitWaitedMs?: number;
  random?: () => number;
}

export type AttemptDecision =
  /** Shutdown: back to the queue at once, spending nothing. */
  | { kind: 'requeue' }
  | { kind: 'refresh-auth' }
  | { kind: 'next-page'; paging: PagingState }
  | { kind: 'succeed' }
  | { kind: 'retry'; delayMs: number; rateLimited: boolean }
  | { kind: 'dead-letter'; reason: DeadLetterReason };

/**
 * How an attempt ends. Retries follow the operation's own policy (not BullMQ's attempts), so that
 * jobs written by other clients, with any job options, retry the same way.
 */
export function decideAttempt(facts: AttemptFacts): AttemptDecision {
  const { verdict } = facts;
  if (verdict.kind === 'aborted') return { kind: 'requeue' };
  if (facts.refreshAuth) return { kind: 'refresh-auth' };
  if (verdict.kind === 'success') return facts.nextPage ? { kind: 'next-page', paging: facts.nextPage } : { kind: 'succeed' };
  if (verdict.kind === 'permanent') {
    const reason = facts.status !== undefined ? responseReason(verdict.code) : facts.authFailed ? 'auth-failed' : 'request-error';
    return { kind: 'dead-letter', reason };
  }
  // A 429 is the target pacing us: waiting for it spends no attempt (maxDurationMs and
  // MAX_RATE_LIMIT_DEFERRALS bound it instead).
  const rateLimited = facts.status === 429;
  const deferrals = facts.attempts.filter((entry) => entry.rateLimited).length;
  const delayMs = rateLimited
    ? Math.max(verdict.retryAfterMs ?? 0, backoffDelay(facts.retry, deferrals, undefined, facts.random))
    : backoffDelay(facts.retry, facts.attempt, verdict.retryAfterMs, facts.random);
  const firstAt = Date.parse(facts.attempts[0]!.at);
  const withinBudget = rateLimited ? deferrals <= MAX_RATE_LIMIT_DEFERRALS : facts.attempt < facts.retry.attempts;
  if (!withinBudget) {
    const reason = rateLimited ? 'rate-limited' : verdict.code.startsWith('TIMEOUT') ? 'timeout' : 'attempts-exhausted';
    return { kind: 'dead-letter', reason };
  }
  const spentMs = facts.now + delayMs - firstAt - (facts.circuitWaitedMs ?? 0);
  if (spentMs > facts.retry.maxDurationMs) return { kind: 'dead-letter', reason: 'max-duration-exceeded' };
  return { kind: 'retry', delayMs, rateLimited };
}

/** Why an operation whose target answered was dead-lettered at once (`code`: the attempt's error code). */
export function responseReason(code: string): DeadLetterReason {
  if (code === 'SCHEMA_MISMATCH') return 'schema-mismatch';
  if (code === 'RESPONSE_TOO_LARGE' || code === 'BAD_ENCODING' || code === 'PAGINATION_BAD_PAGE') return 'bad-response';
  // A page whose items could not be taken (a bad child template, a misplaced items file) or whose next URL is refused.
  if (code === 'PAGINATION_FAILED' || code === 'ADDRESS_REFUSED') return 'request-error';
  return 'permanent-status';
}
