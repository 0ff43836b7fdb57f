import type { Authorized, Credentials } from '../auth/credentials.js';
import { NetworkError, TimeoutError } from '../errors.js';
import { classifyError, classifyResponse, type AttemptClass } from '../http/classify.js';
import type { HttpClient, HttpResponseSummary } from '../http/http-client.js';
import type { Lease, Limiter, RequestOutcome } from '../limits/limiter.js';
import type { WorkLog } from '../observability/logger.js';
import { statusClassOf, type WorkerMetrics } from '../observability/metrics.js';
import type { Operation } from '../operation/schema.js';

/** 401s in a row an operation may answer with a fresh OAuth2 token without spending an attempt. */
const MAX_AUTH_REFRESHES = 3;

export interface AttemptSenderDeps {
  http: HttpClient;
  limiter: Limiter;
  credentials: Credentials;
  metrics?: WorkerMetrics | undefined;
}

/** The request with its credentials, or why there are none (a failed OAuth2 token request). */
export type Authorization = { ok: true; value: Authorized } | { ok: false; error: unknown };

export interface SentAttempt {
  startedAt: Date;
  durationMs: number;
  /** The answer; undefined when the request failed (then `failure` says why). */
  response: HttpResponseSummary | undefined;
  failure: unknown;
  verdict: AttemptClass;
  authorized: Authorized | undefined;
}

/**
 * Sends one attempt of an operation whose limits are acquired (`lease`): the request, then the
 * lease back, the request counted, and what the answer said about the key's limits told to the limiter.
 */
export async function sendAttempt(
  deps: AttemptSenderDeps,
  operation: Operation,
  authorization: Authorization,
  limits: { keys: string[]; lease: Lease | undefined; probes: string[] },
  signal: AbortSignal | undefined,
  log: WorkLog,
): Promise<SentAttempt> {
  const startedAt = new Date();
  let response: HttpResponseSummary | undefined;
  let verdict: AttemptClass;
  let failure: unknown;
  try {
    if (!authorization.ok) throw authorization.error;
    // A signed request is signed now, after any wait for the limits: its timestamp is the send time.
    const spec = authorization.value.sign?.(Date.now()) ?? authorization.value.spec;
    response = await deps.http.send(spec, signal);
    // What a target echoes of a secret (an apiKey in the query, in Link or Location) is not kept.
    for (const name of ['link', 'location'] as const) {
      const value = response.headers[name];
      if (value) response.headers[name] = deps.credentials.scrub(operation.target, value);
    }
    verdict = classifyResponse(response, operation.expect);
  } catch (error) {
    failure = error;
    verdict = classifyError(error);
  } finally {
    await deps.limiter.release(limits.lease);
  }
  const durationMs = response?.durationMs ?? Date.now() - startedAt.getTime();
  deps.metrics?.request(limits.keys.join(','), statusClassOf(response?.status, failure), durationMs);
  deps.limiter.recordOutcome(limits.keys, outcomeOf(response, failure), limits.probes);
  if (response) await learnFromResponse(deps.limiter, response, limits.keys, log);
  const authorized = authorization.ok ? authorization.value : undefined;
  return { startedAt, durationMs, response, failure, verdict, authorized };
}

/** What the circuit breakers count: an answer, or the target unreachable or too slow (not a request refused here). */
function outcomeOf(response: HttpResponseSummary | undefined, failure: unknown): RequestOutcome | undefined {
  if (response) return { status: response.status };
  if (failure instanceof NetworkError) return { failure: 'network' };
  if (failure instanceof TimeoutError) return { failure: 'timeout' };
  return undefined;
}

/** Retry-After on a 429/503, a 429 itself, or a spent RateLimit quota steer the key for every worker. */
async function learnFromResponse(limiter: Limiter, response: HttpResponseSummary, keys: string[], log: WorkLog): Promise<void> {
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
 * Whether a 401 may be answered with a fresh OAuth2 token, without spending an attempt. A second
 * 401 in a row is the target's final word on the fleet's current token; for a token that another
 * worker had already dropped or replaced meanwhile, it is not (bounded all the same). When Redis
 * cannot say, the token counts as current.
 */
export async function mayRefreshToken(sent: SentAttempt, refusedInARow: number): Promise<boolean> {
  const authorized = sent.authorized;
  if (sent.response?.status !== 401 || !authorized?.refuse) return false;
  if (refusedInARow === 0) return true;
  if (refusedInARow >= MAX_AUTH_REFRESHES) return false;
  return !(await (authorized.isCurrent?.().catch(() => true) ?? true));
}
