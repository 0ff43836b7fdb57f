import { errorMessage } from '../errors.js';
import type { AttemptClass } from '../http/classify.js';
import type { HttpResponseSummary } from '../http/http-client.js';
import type { AttemptRecord, JobEnvelope } from '../queue/job-data.js';

/** Longest response excerpt kept per attempt in a dead letter. */
export const EXCERPT_CHARS = 2_048;

/** A failed attempt's verdict: neither a success nor a shutdown. */
export type FailedVerdict = Extract<AttemptClass, { code: string }>;

export function excerptOf(body: unknown): string | undefined {
  if (body === undefined) return undefined;
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return text.length > EXCERPT_CHARS ? `${text.slice(0, EXCERPT_CHARS)}…` : text;
}

/** The attempt's number: 429s (the target pacing us) and refused OAuth2 tokens do not spend one. */
export function attemptNumber(previous: readonly AttemptRecord[]): number {
  return previous.filter((record) => !record.rateLimited && !record.authRefreshed).length + 1;
}

/** How many attempts in a row, just before this one, ended in a refused OAuth2 token. */
export function refusalsInARow(previous: readonly AttemptRecord[]): number {
  let count = 0;
  while (previous[previous.length - 1 - count]?.authRefreshed) count++;
  return count;
}

/** What a failed attempt leaves in the job (and, in the end, in its dead letter). */
export function failedAttempt(
  startedAt: Date,
  durationMs: number,
  verdict: FailedVerdict,
  response: HttpResponseSummary | undefined,
  failure: unknown,
): AttemptRecord {
  const rateLimited = response?.status === 429;
  return {
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
}

/** How long the operation has waited on open circuits, this wait included (see JobEnvelope.circuitSince). */
export function circuitWaitedMs(envelope: JobEnvelope, now = Date.now()): number {
  return (envelope.circuitWaitedMs ?? 0) + (envelope.circuitSince === undefined ? 0 : Math.max(0, now - envelope.circuitSince));
}

/** A 401 that dropped an OAuth2 token for a fresh one: recorded, but it spends no attempt. */
export function refusedTokenAttempt(startedAt: Date, durationMs: number): AttemptRecord {
  return {
    at: startedAt.toISOString(),
    durationMs,
    status: 401,
    error: 'HTTP_401',
    message: 'target refused the OAuth2 token; refreshed it',
    authRefreshed: true,
  };
}
