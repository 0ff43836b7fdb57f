import type { DeadLetter, DeadLetterReason } from '../dead-letter/types.js';
import type { HttpResponseSummary } from '../http/http-client.js';
import type { Operation } from '../operation/schema.js';
import type { AttemptRecord, JobEnvelope } from '../queue/job-data.js';
import type { ResultLine } from '../queue/result-line.js';

export type { DeadLetterReason };

/** Longest response excerpt kept per attempt in a dead letter. */
export const EXCERPT_CHARS = 2_048;

export function excerptOf(body: unknown): string | undefined {
  if (body === undefined) return undefined;
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return text.length > EXCERPT_CHARS ? `${text.slice(0, EXCERPT_CHARS)}…` : text;
}

/** Why an operation whose target answered was dead-lettered at once (`code`: the attempt's error code). */
export function responseReason(code: string): DeadLetterReason {
  if (code === 'SCHEMA_MISMATCH') return 'schema-mismatch';
  if (code === 'RESPONSE_TOO_LARGE' || code === 'BAD_ENCODING' || code === 'PAGINATION_BAD_PAGE') return 'bad-response';
  // A page whose items could not be taken (a bad child template, a misplaced items file) or whose next URL is refused.
  if (code === 'PAGINATION_FAILED' || code === 'ADDRESS_REFUSED') return 'request-error';
  return 'permanent-status';
}

type Outcome =
  | { outcome: 'succeeded'; attempts: number; response: HttpResponseSummary }
  | {
      outcome: 'deadLettered';
      attempts: number;
      reason: DeadLetterReason;
      message: string;
      status: number | undefined;
      excerpt: string | undefined;
    };

export function resultLine(envelope: JobEnvelope, operation: Operation | undefined, jobId: string, outcome: Outcome): ResultLine {
  const line: ResultLine = {
    id: envelope.opId,
    jobId,
    idempotencyKey: envelope.idempotencyKey,
    outcome: outcome.outcome,
    attempts: outcome.attempts,
  };
  const meta = operation?.meta ?? (envelope.op as { meta?: unknown } | null)?.meta;
  if (meta !== undefined) line.meta = meta;
  if (outcome.outcome === 'succeeded') {
    const { response } = outcome;
    line.status = response.status;
    line.durationMs = response.durationMs;
    line.result = response.download
      ? { headers: response.headers, bodyBytes: response.body.bytes, bodyTruncated: false, download: response.download }
      : { headers: response.headers, body: response.body.value, bodyBytes: response.body.bytes, bodyTruncated: response.body.truncated };
  } else {
    if (outcome.status !== undefined) line.status = outcome.status;
    line.reason = outcome.reason;
    line.error = outcome.message;
    if (outcome.excerpt !== undefined) line.excerpt = outcome.excerpt;
  }
  return line;
}

export function deadLetterEntry(
  queue: string,
  jobId: string,
  envelope: JobEnvelope,
  details: {
    reason: DeadLetterReason;
    message: string;
    attempts: AttemptRecord[];
    operation?: Operation;
    limitKey?: string;
    status?: number | undefined;
  },
): DeadLetter {
  const entry: DeadLetter = {
    id: jobId,
    opId: envelope.opId,
    queue,
    idempotencyKey: envelope.idempotencyKey,
    reason: details.reason,
    message: details.message,
    attempts: details.attempts,
    operation: envelope.op,
    replays: envelope.replays ?? 0,
    deadLetteredAt: new Date().toISOString(),
  };
  if (envelope.batchId !== undefined) entry.batchId = envelope.batchId;
  if (details.limitKey !== undefined) entry.limitKey = details.limitKey;
  if (details.operation) {
    entry.method = details.operation.method;
    entry.url = details.operation.url;
  }
  if (details.status !== undefined) entry.status = details.status;
  return entry;
}
