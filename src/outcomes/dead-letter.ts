import type { Operation } from '../operation/schema.js';
import type { AttemptRecord, JobEnvelope } from '../queue/job-data.js';
import { shardOf } from '../redis/keys.js';
import type { OutcomeRecord } from './outcome-store.js';
import { resultLine } from './result-line.js';

/** Why an operation was dead-lettered. */
export type DeadLetterReason =
  | 'permanent-status'
  /** An accepted status whose body does not match `expect.schema` (attempt error SCHEMA_MISMATCH). */
  | 'schema-mismatch'
  /** An accepted status whose body could not be used: RESPONSE_TOO_LARGE or BAD_ENCODING. */
  | 'bad-response'
  | 'attempts-exhausted'
  | 'timeout'
  | 'max-duration-exceeded'
  | 'rate-limited'
  | 'stalled'
  | 'invalid-operation'
  | 'request-error'
  | 'auth-failed'
  /** Its limit key's circuit stayed open longer than the circuit's `maxOpenMs` while it waited. */
  | 'circuit-open'
  | 'internal-error';

/** A dead letter: the operation, every attempt and why it stopped. Kept until replayed or purged. */
export interface DeadLetter {
  /** The id of the job that died (replays get new job ids). */
  id: string;
  /** The operation's id (its first job id); results are keyed by it. */
  opId: string;
  queue: string;
  batchId?: string;
  idempotencyKey: string;
  limitKey?: string;
  method?: string;
  url?: string;
  reason: DeadLetterReason;
  message: string;
  /** The last HTTP status, when there was one. */
  status?: number;
  attempts: AttemptRecord[];
  /** The operation exactly as it was enqueued. */
  operation: unknown;
  replays: number;
  deadLetteredAt: string;
}

/** Why and how an operation was dead-lettered, as the worker knows it. */
export interface DeadLetterDetails {
  reason: DeadLetterReason;
  message: string;
  attempts: AttemptRecord[];
  /** The operation after validation (absent when it was invalid, or unknown). */
  operation?: Operation;
  limitKey?: string;
  /** The last HTTP status. */
  status?: number | undefined;
}

/**
 * What is recorded when a job is dead-lettered: the dead letter and the batch's result line, built
 * together from the same details (the processor and the worker's safety net both record through it).
 */
export function deadLetterOutcome(
  queue: string,
  job: { id: string; timestamp: number },
  envelope: JobEnvelope,
  details: DeadLetterDetails,
): OutcomeRecord {
  const line = resultLine(envelope, details.operation, job.id, {
    outcome: 'deadLettered',
    attempts: details.attempts.length,
    reason: details.reason,
    message: details.message,
    status: details.status,
    excerpt: details.attempts.at(-1)?.excerpt,
  });
  return {
    jobId: job.id,
    jobTimestamp: job.timestamp,
    opId: envelope.opId,
    batchId: envelope.batchId,
    outcome: 'deadLettered',
    resultLine: line,
    deadLetter: deadLetterEntry(queue, job.id, envelope, details),
  };
}

function deadLetterEntry(queue: string, jobId: string, envelope: JobEnvelope, details: DeadLetterDetails): DeadLetter {
  const entry: DeadLetter = {
    id: jobId,
    opId: envelope.opId,
    // The queue, not its shard: the dead-letter store knows which shard holds it.
    queue: shardOf(queue).queue,
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
