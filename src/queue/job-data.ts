import type { PagingState } from '../operation/paginate-schema.js';
import { isBatchId } from '../redis/keys.js';

/**
 * BullMQ priority of a job that has not started yet. A delayed job comes back to the *back* of
 * BullMQ's wait list, which is taken before its prioritized set: new jobs wait in the prioritized
 * set, so a job deferred for its rate-limit slot or a retry (priority 0) comes back ahead of the
 * unstarted backlog instead of missing its slot (docs/architecture.md, "A job's path").
 */
export const NEW_JOB_PRIORITY = 1;

/**
 * What a sluice job holds in BullMQ: the operation as given plus the producer's bookkeeping.
 * Another language's BullMQ client may also write the bare operation as the job data; workers
 * accept both (see `readEnvelope`).
 */
export interface JobEnvelope {
  /** The operation, as the producer received and validated it (defaults are applied by the worker). */
  op: unknown;
  /** The operation's id: the job id of its first enqueue (replays keep it). */
  opId: string;
  idempotencyKey: string;
  batchId?: string;
  /** How many times the operation was replayed from the dead-letter queue. */
  replays?: number;
  /** Failed attempts so far (kept for the dead letter). */
  attempts?: AttemptRecord[];
  /** A paginated operation's progress: the page to read next (see http/pagination.ts). */
  paging?: PagingState;
  /** When the operation began waiting on an open circuit (ms), until it is next sent. */
  circuitSince?: number;
  /** Time spent waiting on open circuits before, which does not count against `retry.maxDurationMs`. */
  circuitWaitedMs?: number;
}

/** One attempt as recorded for dead letters. */
export interface AttemptRecord {
  /** ISO time the attempt started. */
  at: string;
  durationMs: number;
  status?: number;
  /** Error code for failures without a status (TIMEOUT_TOTAL, ECONNREFUSED, …) or HTTP_nnn. */
  error?: string;
  message?: string;
  /** The start of the response body, at most a few KiB. */
  excerpt?: string;
  /** A 429: the target pacing us. It does not count against `retry.attempts`. */
  rateLimited?: boolean;
  /** A 401 that dropped an OAuth2 token for a fresh one. It does not count against `retry.attempts`. */
  authRefreshed?: boolean;
}

/**
 * Reads job data written by sluice or by any other BullMQ client. A job without a key of its own
 * (and no `idempotencyKey` in its operation) gets `fallbackKey()`, which must be unique to the job
 * instance: another client's job ids are counters that restart with a new queue.
 */
export function readEnvelope(data: unknown, jobId: string, fallbackKey: () => string): JobEnvelope {
  const keyOf = (value: unknown) => {
    const key = (value as { idempotencyKey?: unknown } | null)?.idempotencyKey;
    return typeof key === 'string' && key !== '' ? key : undefined;
  };
  if (typeof data === 'object' && data !== null && !Array.isArray(data) && 'op' in data) {
    const source = data as Partial<JobEnvelope>;
    const envelope = {
      ...source,
      op: source.op,
      opId: typeof source.opId === 'string' ? source.opId : jobId,
      idempotencyKey: typeof source.idempotencyKey === 'string' ? source.idempotencyKey : (keyOf(source.op) ?? fallbackKey()),
    };
    // A batch id that is not one (another client's, an older version's `a:b`) could name another batch's keys: no batch.
    if ('batchId' in envelope && !isBatchId(envelope.batchId)) delete envelope.batchId;
    return envelope;
  }
  return { op: data, opId: jobId, idempotencyKey: keyOf(data) ?? fallbackKey() };
}

/** The key of an operation enqueued by sluice without one: its job id is a UUID, unique for good. */
export function defaultIdempotencyKey(jobId: string): string {
  return `sluice-${jobId}`;
}

/** The key of a job another client wrote without one: unique to this job instance in this queue. */
export function foreignIdempotencyKey(queue: string, jobId: string, timestamp: number): string {
  return `sluice-${queue}-${jobId}-${timestamp}`;
}
