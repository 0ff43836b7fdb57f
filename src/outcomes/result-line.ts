import type { HttpResponseSummary } from '../http/http-client.js';
import type { Operation } from '../operation/schema.js';
import { defaultIdempotencyKey, type JobEnvelope } from '../queue/job-data.js';
import type { DeadLetterReason } from './dead-letter.js';

/** The few response headers kept in a result (the http layer fills them). */
export interface ResultHeaders {
  contentType?: string;
  location?: string;
  etag?: string;
  requestId?: string;
}

/** What `sluice results` prints for one operation: one JSON line. */
export interface ResultLine {
  id: string;
  jobId: string;
  idempotencyKey: string;
  meta?: unknown;
  /** `duplicate`: not run, because an earlier operation holds its idempotency key (`duplicateOf`). */
  outcome: 'succeeded' | 'deadLettered' | 'duplicate';
  /** For a duplicate: the job holding its key, that job's batch (when known), and how that job ended (once it has). */
  duplicateOf?: string;
  duplicateOfBatch?: string;
  firstOutcome?: 'succeeded' | 'deadLettered';
  status?: number;
  attempts: number;
  /** When it ended (ISO 8601): its outcome was decided. Not for a duplicate, nor in lines written before this field. */
  finishedAt?: string;
  durationMs?: number;
  /**
   * For successes: the response, trimmed. A downloaded body has no `body`: `download` says where it
   * was written (on the worker's host) with its decoded size and SHA-256.
   */
  result?: {
    headers: ResultHeaders;
    body?: unknown;
    bodyBytes: number;
    bodyTruncated: boolean;
    download?: { path: string; bytes: number; sha256: string };
  };
  /** For a paginated operation: pages and items read, and where the items went. */
  pagination?: { pages: number; items: number; file?: { path: string; bytes: number; sha256: string }; childBatchId?: string };
  /** For dead letters. */
  reason?: string;
  error?: string;
  excerpt?: string;
}

/** How an operation ended, as its result line needs it. */
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

/** The line `sluice results` prints for an operation. */
export function resultLine(envelope: JobEnvelope, operation: Operation | undefined, jobId: string, outcome: Outcome): ResultLine {
  const line: ResultLine = {
    id: envelope.opId,
    jobId,
    idempotencyKey: envelope.idempotencyKey,
    outcome: outcome.outcome,
    attempts: outcome.attempts,
    finishedAt: new Date().toISOString(),
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

/**
 * A result line as its batch keeps it, in the field named by its id: without what the field gives
 * back (its id), its job id when that is its id (every operation but a duplicate), and its
 * idempotency key when it is the one made from its job id: about a third less Redis memory for
 * a line of a small response (268 bytes against 396), and less for a worker to write per outcome
 * (see readResultLine).
 */
export function storedResultLine(line: ResultLine): string {
  const { id, jobId, idempotencyKey, ...rest } = line;
  const stored: Record<string, unknown> = {};
  if (jobId !== id) stored.jobId = jobId;
  if (idempotencyKey !== defaultIdempotencyKey(jobId)) stored.idempotencyKey = idempotencyKey;
  return JSON.stringify(Object.assign(stored, rest));
}

/** A batch's result line, from its field and what the field holds (a stored line, or a whole one as older versions wrote it). */
export function readResultLine(id: string, stored: string): ResultLine {
  const fields = JSON.parse(stored) as Partial<ResultLine>;
  const jobId = fields.jobId ?? id;
  return { id, jobId, idempotencyKey: fields.idempotencyKey ?? defaultIdempotencyKey(jobId), ...fields } as ResultLine;
}
